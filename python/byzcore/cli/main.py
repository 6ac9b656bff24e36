"""The ``byzcore`` command: ``byzcore run`` (training experiments), ``byzcore grid`` and
``byzcore reproduce`` (grids of them, preset grids of published figures), ``byzcore bench``
(kernel benchmarks), ``byzcore info`` (build facts). Each subcommand's module adds its own
arguments, so this file stays a switchboard; heavy imports happen inside the subcommand."""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``byzcore`` parser with its ``run``, ``grid``, ``reproduce``, ``bench`` and ``info`` subcommands."""
    from . import bench, grid, info, run

    parser = argparse.ArgumentParser(prog="byzcore", description="Byzantine-robust aggregation and training.")
    sub = parser.add_subparsers(dest="command")
    run.add_arguments(sub.add_parser("run", help="run a robust training experiment",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    bench.add_arguments(sub.add_parser("bench", help="benchmark the kernels against NumPy and PyTorch",
                                       formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    grid.add_grid_arguments(sub.add_parser("grid", help="run an experiment grid (TOML/JSON) in parallel, resumably",
                                           formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    grid.add_reproduce_arguments(sub.add_parser("reproduce", help="reproduce a published figure (a preset grid)",
                                                formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    info.add_arguments(sub.add_parser("info", help="print build information"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; returns its exit code
    (2 and the help without a subcommand)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
