"""A grid's report: its tables and figures, built from the run folders on disk (so a resumed
grid reports exactly what a fresh one does).

Files written into the grid's folder: ``results.csv`` (one row per grid point),
``summary.csv`` (mean and standard error over seeds), ``worst_case.csv`` (worst over attacks),
``curves.png`` (one panel per cell, see :func:`curve_panels`) and, when the grid varies
``byzantine`` or ``split``, ``heatmaps.png`` (worst-case final metric over f x heterogeneity,
one heatmap per remaining setting, e.g. per rule).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .grid import Grid, _value
from .plots import have_matplotlib, note_no_matplotlib, plot_grid_curves, plot_heatmaps
from .tables import HIGHER_IS_BETTER, collect_rows, read_metrics, summarise, worst_case, write_table

__all__ = ["Report", "curve_panels", "write_report"]


@dataclass
class Report:
    """What :func:`write_report` produced: the rows of each table and the paths written.

    Attributes
    ----------
    results : list of dict
        The rows of ``results.csv``, one per grid point (:func:`~byzcore.experiments.tables.collect_rows`).
    summary : list of dict
        The rows of ``summary.csv``, mean and standard error over seeds
        (:func:`~byzcore.experiments.tables.summarise`).
    worst : list of dict
        The rows of ``worst_case.csv``, the worst case over attacks
        (:func:`~byzcore.experiments.tables.worst_case`).
    metrics : list of str
        The names of the metric columns of ``results``.
    paths : list of str
        The files written (CSV, Parquet when pyarrow is installed, PNG when matplotlib is).
    notes : list of str
        What was asked for and not written, and why: with ``plots`` and no matplotlib,
        :data:`~byzcore.experiments.plots.NO_MATPLOTLIB` (also printed to stderr).

    References
    ----------
    docs/spec.md#grids.
    """

    results: list
    summary: list
    worst: list
    metrics: list
    paths: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _matches(point, where: dict) -> bool:
    for key, want in where.items():
        have = _value_of(point, key)
        wants = want if isinstance(want, list) else [want]
        if key != "case":
            wants = [_value(key, w) for w in wants]
        if have not in wants:
            return False
    return True


def _label(point, keys: list, fmt: str | None) -> str:
    fmt = point.label or fmt
    if fmt:
        return fmt.format(case=point.case, **dataclasses.asdict(point.config))
    vals = [(k, _value_of(point, k)) for k in keys]
    if len(vals) == 1:
        return str(vals[0][1])
    return ", ".join(f"{k}={v}" for k, v in vals) or "run"


def curve_panels(grid: Grid, out: str) -> list:
    """The panels of ``curves.png``, read from the run folders under ``out``.

    The ``[figure]`` table of the grid chooses them: ``panels`` is a list of tables, each with
    ``title``, ``where`` (key -> value or list: the points it shows) and optionally ``label`` (a
    format string over the configuration fields and ``case``, e.g. ``"alpha = {alpha}"``) and
    ``x`` (this panel's x axis); a case's own ``label`` names its curves first;
    without ``panels``, there is one panel per distinct value of the varied keys other than
    ``seed`` and ``lines`` (default ``["aggregator"]`` when the rule varies). In a panel, one
    line per distinct setting (all varied keys but ``seed``), averaged over seeds.

    Parameters
    ----------
    grid : Grid
        The grid (its ``figure``, ``varied`` and ``points``).
    out : str
        Its folder (runs under ``out/runs/<run id>``).

    Returns
    -------
    list of tuple
        ``(title, [(label, [metrics rows of each seed]), ...], x)`` per panel, as
        :func:`~byzcore.experiments.plots.plot_grid_curves` takes them; ``x`` is the panel's
        own x axis or ``None``. Runs with no ``metrics.jsonl`` yet are left out, and so are
        panels and lines with nothing to draw.

    References
    ----------
    docs/spec.md#grids.
    """
    fig = grid.figure
    keys = [k for k in grid.varied if k != "seed"]
    specs = fig.get("panels")
    if not specs:
        lines = fig.get("lines") or (["aggregator"] if "aggregator" in keys else keys[-1:])
        lines = [lines] if isinstance(lines, str) else list(lines)
        # A key that the line keys determine (Zeno's rho beside the rule of robust SGD) is an
        # attribute of the line, not a reason for another panel.
        panel_keys = [k for k in keys if k not in lines and not _determined(grid.points, lines, k)]
        seen: dict = {}
        for p in grid.points:
            vals = tuple((k, _value_of(p, k)) for k in panel_keys)
            seen.setdefault(vals, None)
        specs = [{"title": ", ".join(f"{k}={v}" for k, v in vals) or grid.name, "where": dict(vals),
                  "label": fig.get("label")} for vals in seen]
        for s in specs:
            s["where"] = {k: (v if k == "case" else _plain(v)) for k, v in s["where"].items()}
    panels = []
    for spec in specs:
        members = [p for p in grid.points if _matches(p, spec.get("where", {}))]
        if not members:
            continue
        inner = [k for k in keys if len({str(_value_of(p, k)) for p in members}) > 1]
        lines_: dict = {}
        for p in members:
            setting = tuple(str(_value_of(p, k)) for k in inner)
            lines_.setdefault(setting, []).append(p)
        drawn = []
        for group in lines_.values():
            seeds = [rows for rows in (read_metrics(os.path.join(out, "runs", p.run_id)) for p in group) if rows]
            if seeds:
                drawn.append((_label(group[0], inner, spec.get("label")), seeds))
        if drawn:
            panels.append((spec.get("title", ""), drawn, spec.get("x")))
    return panels


def _value_of(point, key: str):
    return point.case if key == "case" else getattr(point.config, key)


def _determined(points: list, by: list, key: str) -> bool:
    """Whether the values of ``by`` determine the value of ``key`` over ``points``."""
    seen: dict = {}
    for p in points:
        seen.setdefault(tuple(str(_value_of(p, k)) for k in by), set()).add(str(_value_of(p, key)))
    return all(len(v) == 1 for v in seen.values())


def _plain(v):
    # A configuration value as the grid file writes it (inf as "inf": TOML-free JSON too).
    return "inf" if isinstance(v, float) and math.isinf(v) else v


def _heatmap_panels(grid: Grid, worst: list, metric: str) -> list:
    keys = [k for k in grid.varied if k not in ("seed", "attack", "byzantine", "split")]
    by: dict = {}
    for r in worst:
        by.setdefault(tuple(str(r.get(k)) for k in keys), []).append(r)
    panels = []
    for vals, rows in by.items():
        fs = sorted({r.get("byzantine") for r in rows}, key=lambda v: (v is None, v))
        splits = list(dict.fromkeys(r.get("split") for r in rows))
        m = np.full((len(fs), len(splits)), np.nan)
        for r in rows:
            v = r.get(f"worst_{metric}")
            m[fs.index(r.get("byzantine")), splits.index(r.get("split"))] = math.inf if v is None else v
        panels.append((", ".join(f"{k}={v}" for k, v in zip(keys, vals)) or grid.name, fs, splits, m))
    return panels


def write_report(grid: Grid, out: str, *, failed: dict | None = None, plots: bool = True) -> Report:
    """Write the grid's tables (and figures) into ``out`` from the runs found there.

    The tables are ``results.csv``, ``summary.csv`` (over the varied keys but ``seed``) and
    ``worst_case.csv`` (over attacks, of ``grid.metric``, or of the first metric found when
    no run recorded that one); docs/spec.md#grids defines their columns.

    Parameters
    ----------
    grid : Grid
        The grid.
    out : str
        Its folder.
    failed : dict of str to str or None, optional
        Run id -> error message (runs that failed now), for the ``error`` column.
    plots : bool, optional
        Also write ``curves.png`` and, when ``byzantine`` or ``split`` varies,
        ``heatmaps.png`` (default True). Without matplotlib no figure is written: one line
        on stderr says so (:func:`~byzcore.experiments.plots.note_no_matplotlib`) and
        ``Report.notes`` holds it.

    Returns
    -------
    Report
        The rows of each table, the paths written and the notes.
    """
    results, metrics = collect_rows(grid.points, out, failed)
    keys = [k for k in grid.varied if k != "seed"]
    summary = summarise(results, keys, metrics)
    metric = grid.metric if grid.metric in metrics else (metrics[0] if metrics else grid.metric)
    worst_keys = [k for k in keys if k != "attack"]
    attack_summary = summary if "attack" in keys else [{**r, "attack": grid.points[0].config.attack} for r in summary]
    worst = worst_case(attack_summary, worst_keys, metric)
    paths = []
    paths += write_table(results, os.path.join(out, "results.csv"))
    paths += write_table(summary, os.path.join(out, "summary.csv"))
    paths += write_table(worst, os.path.join(out, "worst_case.csv"))
    notes = []
    if plots and not have_matplotlib():
        notes.append(note_no_matplotlib())
    elif plots:
        fig = grid.figure
        y = fig.get("y", "loss")
        png = os.path.join(out, "curves.png")
        if plot_grid_curves(curve_panels(grid, out), png, x=fig.get("x", "round"), y=y,
                            logy=bool(fig.get("logy", y not in HIGHER_IS_BETTER)),
                            title=fig.get("title", grid.description or grid.name), ncols=int(fig.get("ncols", 3)),
                            sharey=bool(fig.get("sharey", False)), ylim=fig.get("ylim")):
            paths.append(png)
        if "byzantine" in grid.varied or "split" in grid.varied:
            png = os.path.join(out, "heatmaps.png")
            if plot_heatmaps(_heatmap_panels(grid, worst, metric), png, metric=metric, row_label="byzantine (f)",
                             col_label="split"):
                paths.append(png)
    return Report(results=results, summary=summary, worst=worst, metrics=metrics, paths=paths, notes=notes)
