"""byzcore inside Flower (docs/flower.md): robust strategies for the Message API
(:class:`ByzFedAvg`) and the legacy API (:class:`LegacyByzFedAvg`), Zeno-style server
validation (:func:`zeno_score`), Byzantine clients (:func:`byzantine_mod`) and a server-side
injector for omniscient attacks (:class:`ServerAttack`).

Flower is imported on first use of a name that needs it, so ``import byzcore.flower`` and
the NumPy-only pieces (:class:`RobustRound`, :func:`fits`, :func:`min_clients`) work
without it; install it with ``pip install 'byzcore[flower]'``.
"""

from __future__ import annotations

from typing import Any

from ._core import RobustRound, RoundReport, ServerAttack, bound_of, fits, min_clients, zeno_score

_LAZY = {"ByzFedAvg": "strategy", "LegacyByzFedAvg": "strategy", "byzantine_mod": "client", "flip_labels": "client"}

__all__ = ["ByzFedAvg", "LegacyByzFedAvg", "RobustRound", "RoundReport", "ServerAttack", "bound_of",
           "byzantine_mod", "fits", "flip_labels", "min_clients", "zeno_score"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
