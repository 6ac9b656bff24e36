"""``byzcore run`` (its options still live in byzcore.experiment)."""

from __future__ import annotations

from ..experiment import add_arguments, config_from_args, main

__all__ = ["add_arguments", "config_from_args", "main"]
