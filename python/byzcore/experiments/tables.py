"""The tables of a grid (docs/spec.md#grids): one row per run, the mean and standard error over
seeds, and the worst case over attacks; written as CSV (and Parquet when pyarrow is installed).

A run that diverged has no final metric; it is counted in the ``diverged`` column, left out of
the means, and ranks below every finite value in the worst-case table.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["HIGHER_IS_BETTER", "collect_rows", "format_rows", "group_key", "read_metrics", "summarise", "worst_case",
           "write_table"]

#: Final metrics where larger is better; every other metric is better smaller.
HIGHER_IS_BETTER = ("accuracy",)
_SKIP_LAST = ("round", "time")


def read_metrics(run_folder: str) -> list:
    """The recorded rounds of a run.

    Parameters
    ----------
    run_folder : str
        The run's folder (``out/runs/<run id>``).

    Returns
    -------
    list of dict
        The rows of ``run_folder/metrics.jsonl``, one per recorded round (docs/spec.md#metrics),
        in order; ``[]`` when the file is missing.
    """
    path = os.path.join(run_folder, "metrics.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def collect_rows(points: Iterable, out: str, failed: dict | None = None) -> tuple[list, list]:
    """One row per grid point: ``case``, ``run``, every configuration field, then the run's
    outcome (``status`` ok/error/missing, ``error``, ``diverged``, ``seconds``), its final
    metrics, the other numeric values of its last recorded round (e.g. ``bytes_sent``) and its
    totals as ``total_<name>`` (e.g. Zeno's ``total_accept_rate`` over every round;
    docs/spec.md#metrics). A point without ``summary.json`` has ``status`` ``error`` (when in
    ``failed``) or ``missing`` and no metrics.

    Parameters
    ----------
    points : iterable of GridPoint
        :class:`~byzcore.experiments.grid.GridPoint` objects.
    out : str
        The grid's folder (runs under ``out/runs/<run id>``).
    failed : dict of str to str or None, optional
        Run id -> error message, for runs that failed now.

    Returns
    -------
    (list of dict, list of str)
        The rows and the names of the metric columns.
    """
    failed = failed or {}
    rows, metric_names = [], []
    for p in points:
        folder = os.path.join(out, "runs", p.run_id)
        row: dict[str, Any] = p.row()
        summary_path = os.path.join(folder, "summary.json")
        if os.path.isfile(summary_path):
            with open(summary_path, encoding="utf-8") as fh:
                s = json.load(fh)
            last = (read_metrics(folder) or [{}])[-1]
            values = dict(s.get("final", {}))
            values.update({k: v for k, v in last.items() if k not in values and k not in _SKIP_LAST and _number(v)})
            values.update(_totals(s.get("totals") or {}))
            row.update(status="ok", error="", diverged=bool(s.get("diverged")), seconds=s.get("seconds"))
            for k, v in values.items():
                if k not in metric_names:
                    metric_names.append(k)
                row[k] = v
        else:
            row.update(status="error" if p.run_id in failed else "missing", error=failed.get(p.run_id, ""),
                       diverged=None, seconds=None)
        rows.append(row)
    return rows, metric_names


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _totals(totals: dict, prefix: str = "total_") -> dict:
    """A run's totals (``summary.json``'s ``totals``: oracle calls, Zeno's detection counts and
    rates over every round) as flat ``total_<name>`` columns."""
    out = {}
    for k, v in totals.items():
        if isinstance(v, dict):
            out.update(_totals(v, prefix))
        elif _number(v):
            out[prefix + k] = v
    return out


def group_key(row: dict, keys: list) -> tuple:
    """The values of ``keys`` in ``row``, as a hashable key for grouping.

    Parameters
    ----------
    row : dict
        A table row.
    keys : list of str
        The columns that identify a group.

    Returns
    -------
    tuple of str
        Each value as JSON (``null`` for a missing key), so lists and ``None`` group too.
    """
    return tuple(json.dumps(row.get(k)) for k in keys)


def summarise(rows: list, keys: list, metrics: list) -> list:
    """Mean and standard error over seeds: one row per distinct value of ``keys`` (which
    should not include ``seed``), in order of first appearance.

    Only rows with ``status`` ``ok`` count. Each row holds ``keys``, ``seeds`` (runs
    finished), ``diverged`` (how many of them diverged), ``<m>_mean`` and ``<m>_se`` (sample
    standard deviation / sqrt(count); ``None`` for one value) over the runs that did not
    diverge and recorded ``m``, for every metric ``m`` (``<m>_mean`` is ``None`` when none did).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`collect_rows`.
    keys : list of str
        The columns that identify a setting (the varied keys but ``seed``).
    metrics : list of str
        The metric columns to summarise.

    Returns
    -------
    list of dict
        The rows of ``summary.csv`` (docs/spec.md#grids).
    """
    groups: dict = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        groups.setdefault(group_key(r, keys), []).append(r)
    out = []
    for members in groups.values():
        row = {k: members[0].get(k) for k in keys}
        good = [m for m in members if not m["diverged"]]
        row.update(seeds=len(members), diverged=len(members) - len(good))
        for m in metrics:
            vals = np.array([g[m] for g in good if g.get(m) is not None], dtype=np.float64)
            row[f"{m}_mean"] = float(vals.mean()) if vals.size else None
            row[f"{m}_se"] = float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else None
        out.append(row)
    return out


def _badness(row: dict, metric: str) -> float:
    """Larger is worse; a diverged (or missing) mean is the worst."""
    v = row.get(f"{metric}_mean")
    if row.get("diverged") or v is None:
        return math.inf
    return -v if metric in HIGHER_IS_BETTER else v


def worst_case(summary: list, keys: list, metric: str) -> list:
    """The worst case over attacks (the table ByzFL reports): one row per distinct value of
    ``keys`` (without ``attack`` and ``seed``), with ``worst_<metric>`` (the worst mean over
    seeds; ``None`` when that attack made a run diverge), ``worst_attack`` (the first worst one
    in grid order), ``attacks`` (how many) and one column per attack with its mean.

    Parameters
    ----------
    summary : list of dict
        Rows of :func:`summarise` (grouped by ``keys`` and ``attack``).
    keys : list of str
        The columns that identify a setting.
    metric : str
        A final metric (``loss``, ``accuracy``, ...); worst is largest except for
        :data:`HIGHER_IS_BETTER`, where it is smallest.

    Returns
    -------
    list of dict
        The rows of ``worst_case.csv`` (docs/spec.md#grids); an attack under which a run
        diverged reads ``"diverged"`` in its column.
    """
    groups: dict = {}
    for r in summary:
        groups.setdefault(group_key(r, keys), []).append(r)
    out = []
    for members in groups.values():
        worst = max(members, key=lambda r: _badness(r, metric))  # max keeps the first among equals
        row = {k: members[0].get(k) for k in keys}
        row[f"worst_{metric}"] = None if math.isinf(_badness(worst, metric)) else worst[f"{metric}_mean"]
        row["worst_attack"] = worst.get("attack")
        row["attacks"] = len(members)
        for m in members:
            row[str(m.get("attack"))] = "diverged" if m["diverged"] else m.get(f"{metric}_mean")
        out.append(row)
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_table(rows: list, path: str) -> list:
    """Write ``rows`` to ``path`` (CSV; the columns in order of first appearance) and, when
    pyarrow is installed, the same table next to it as ``.parquet``.

    ``None`` is written as an empty cell, floats by ``repr`` (all their digits). In the
    Parquet file a column mixing text and numbers is written as text.

    Parameters
    ----------
    rows : list of dict
        The table.
    path : str
        The CSV file (its folder is created if missing).

    Returns
    -------
    list of str
        The paths written.
    """
    columns: list = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows([_cell(r.get(k)) for k in columns] for r in rows)
    paths = [path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return paths
    pq_path = os.path.splitext(path)[0] + ".parquet"
    pq.write_table(pa.table({k: _parquet_column([r.get(k) for r in rows]) for k in columns}), pq_path)
    paths.append(pq_path)
    return paths


def _parquet_column(values: list) -> list:
    # A Parquet column has one type: a column mixing text with numbers (an attack's mean or
    # "diverged") is written as text.
    if any(isinstance(v, str) for v in values):
        return [None if v is None else str(v) for v in values]
    return values


def format_rows(rows: list, columns: list) -> list:
    """A table as aligned text lines, for a terminal.

    Parameters
    ----------
    rows : list of dict
        The table.
    columns : list of str
        The columns to show, in order.

    Returns
    -------
    list of str
        A header and one line per row; floats to 4 significant digits, ``None`` as ``-``.
    """
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [columns] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table]
