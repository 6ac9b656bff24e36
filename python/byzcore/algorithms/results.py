"""A finished run (:class:`Result`) and its files: ``metrics.jsonl`` and ``summary.json``."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result", "jsonable"]


@dataclass
class Result:
    """A finished run: its configuration, recorded metrics and last iterate.

    :func:`~byzcore.algorithms.run` makes one; :meth:`save` writes ``metrics.jsonl`` and
    ``summary.json``.

    Parameters
    ----------
    config : dict
        The run's :class:`~byzcore.algorithms.RunConfig` as a strict-JSON dict
        (:meth:`~byzcore.algorithms.RunConfig.to_dict`).
    metrics : list of dict
        One dict per recorded round (see :class:`~byzcore.algorithms.RoundLoop`).
    final : dict
        ``loss``, ``grad_norm``, ``accuracy`` and ``gap``, those the last recorded row holds.
    x : numpy.ndarray
        ``(d,)`` the last iterate.
    byzantine : list of int
        The Byzantine worker ids.
    diverged : bool, default False
        Whether the model stopped being finite (the run then stopped).
    seconds : float, default 0.0
        The run's wall-clock duration, problem construction included.
    algorithm : dict, default {}
        The algorithm's parameters (:meth:`~byzcore.algorithms.Algorithm.describe`).
    totals : dict, default {}
        The run's totals: ``oracle_calls``; ``f_star`` with the optimality gap; ``detection``
        for Zeno/Zeno++.

    References
    ----------
    docs/spec.md#metrics
    """

    config: dict
    metrics: list
    final: dict
    x: np.ndarray
    byzantine: list
    diverged: bool = False
    seconds: float = 0.0
    algorithm: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)

    def column(self, key: str) -> np.ndarray:
        """One metric over the recorded rounds (``nan`` where missing)."""
        return np.array([np.nan if m.get(key) is None else m[key] for m in self.metrics], dtype=np.float64)

    def summary(self) -> dict:
        """What ``summary.json`` holds: the configuration, the algorithm's description, the
        Byzantine workers, the final metrics, whether the run diverged, its duration, and the
        run's ``totals`` (``oracle_calls``; ``f_star`` with the optimality gap; ``detection``:
        Zeno/Zeno++'s accepted / false-positive / false-negative counts and rates)."""
        return {"config": self.config, "algorithm": self.algorithm, "byzantine": self.byzantine,
                "final": {k: jsonable(v) for k, v in self.final.items()}, "diverged": self.diverged,
                "rounds_recorded": len(self.metrics), "seconds": round(self.seconds, 3),
                "totals": jsonable(self.totals)}

    def save(self, out: str) -> list[str]:
        """Write ``out/metrics.jsonl`` (one JSON object per recorded round) and
        ``out/summary.json``; non-finite values are written as ``null``.

        Parameters
        ----------
        out : str
            The folder (created if missing).

        Returns
        -------
        list of str
            The paths written. ``byzcore.experiments.save_result`` adds ``curves.png``.
        """
        os.makedirs(out, exist_ok=True)
        paths = [os.path.join(out, "metrics.jsonl"), os.path.join(out, "summary.json")]
        with open(paths[0], "w", encoding="utf-8") as fh:
            fh.writelines(
                json.dumps({k: jsonable(v) for k, v in m.items()}, allow_nan=False) + "\n" for m in self.metrics
            )
        with open(paths[1], "w", encoding="utf-8") as fh:
            json.dump(self.summary(), fh, indent=2, allow_nan=False)
            fh.write("\n")
        return paths

    def label(self) -> str:
        """A short legend for this run: algorithm (aggregator, attack[, clipping])."""
        c = self.config
        extra = ""
        if c.get("algorithm") == "byz_vr_marina_pp":
            extra = ", no clipping" if c.get("alpha") is None else f", alpha={c['alpha']}"
        return f"{c.get('algorithm')} ({c.get('aggregator')}, {c.get('attack')}{extra})"


def jsonable(v: Any) -> Any:
    """``v`` with NumPy scalars and arrays made plain Python values, non-finite floats made
    ``None`` (strict JSON has no NaN or Infinity), tuples made lists, recursively.

    Parameters
    ----------
    v : object
        A value, list, tuple, dict or NumPy array.

    Returns
    -------
    object
        A value ``json.dumps(..., allow_nan=False)`` accepts.

    References
    ----------
    docs/spec.md#metrics
    """
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v
