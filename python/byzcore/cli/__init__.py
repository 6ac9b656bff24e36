"""The command line, on top of everything else (nothing in byzcore imports it): the
``byzcore`` switchboard (:mod:`~byzcore.cli.main`) and one module per command:
:mod:`~byzcore.cli.run`, :mod:`~byzcore.cli.bench`, :mod:`~byzcore.cli.info`, and
:mod:`~byzcore.cli.launch` (the torchrun entry point of the distributed runtime)."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
