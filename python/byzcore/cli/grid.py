"""``byzcore grid FILE`` (an experiment grid) and ``byzcore reproduce NAME`` (a preset grid
that reproduces a published figure): run in parallel, resumable, then print the tables."""

from __future__ import annotations

import argparse
import os
import sys

from ..experiments.grid import GridRun, default_jobs, is_finished, load_grid, run_grid
from ..experiments.report import Report, write_report
from ..experiments.reproduce import available_presets, default_out, load_preset, reproduce
from ..experiments.tables import format_rows

__all__ = ["add_grid_arguments", "add_reproduce_arguments", "grid_main", "reproduce_main"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="worker processes")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder")
    parser.add_argument("--quick", action="store_true", help="the grid's [quick] variant (seconds)")
    parser.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 (instead of the file's)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plot", action="store_true", help="no figures")


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``byzcore grid`` options."""
    parser.add_argument("file", help="a .toml (or .json) grid file: list values expand into runs")
    _common(parser)
    parser.set_defaults(func=grid_main)


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``byzcore reproduce`` options."""
    parser.add_argument("name", help="a preset: " + ", ".join(available_presets()))
    _common(parser)
    parser.set_defaults(func=reproduce_main)


def _dry_run(grid, out: str) -> int:
    ids = list(dict.fromkeys(p.run_id for p in grid.points))
    done = sum(is_finished(out, i) for i in ids)
    print(f"{grid.name}: {len(grid.points)} points, {len(ids)} distinct runs, {done} finished in {out}")
    print("varied: " + ", ".join(grid.varied))
    return 0


def _print(done: GridRun, report: Report) -> int:
    g = done.grid
    print(f"{g.name}: ran {len(done.ran)}, skipped {len(done.skipped)} finished, failed {len(done.failed)} "
          f"({done.seconds:.1f} s)")
    keys = [k for k in g.varied if k not in ("seed", "attack")]
    metric = next((k[len("worst_"):] for k in (report.worst[0] if report.worst else {}) if k.startswith("worst_")),
                  g.metric)
    if report.worst:
        print(f"worst-case final {metric} over attacks (mean over seeds):")
        for line in format_rows(report.worst, [*keys, f"worst_{metric}", "worst_attack"]):
            print("  " + line)
    for run_id, err in done.failed.items():
        print(f"  run {run_id} failed: {err}", file=sys.stderr)
    missing = " (no figures: matplotlib is not installed)" if report.notes else ""
    print("wrote " + ", ".join(report.paths) + missing)
    return 1 if done.failed else 0


def grid_main(args: argparse.Namespace) -> int:
    """``byzcore grid``: 0 when every run finished, 1 when some failed, 2 for a bad file."""
    try:
        grid = load_grid(args.file, quick=args.quick, seeds=args.seeds)
        out = args.out or os.path.join("runs", "grid", grid.name.replace(os.sep, "-").replace("..", "-"))
        if args.dry_run:
            return _dry_run(grid, out)
        done = run_grid(grid, out, jobs=args.jobs, progress=not args.no_progress)
    except ValueError as exc:
        print(f"byzcore grid: {exc}", file=sys.stderr)
        return 2
    return _print(done, write_report(grid, out, failed=done.failed, plots=not args.no_plot))


def reproduce_main(args: argparse.Namespace) -> int:
    """``byzcore reproduce``: as ``byzcore grid`` on a preset."""
    try:
        if args.dry_run:
            grid = load_preset(args.name, quick=args.quick, seeds=args.seeds)
            return _dry_run(grid, args.out or default_out(args.name, args.quick))
        done, report = reproduce(args.name, args.out, quick=args.quick, seeds=args.seeds, jobs=args.jobs,
                                 progress=not args.no_progress, plots=not args.no_plot)
    except ValueError as exc:
        print(f"byzcore reproduce: {exc}", file=sys.stderr)
        return 2
    return _print(done, report)
