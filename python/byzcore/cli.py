"""The ``byzcore`` command: ``byzcore run`` (training experiments), ``byzcore bench``
(kernel benchmarks), ``byzcore info`` (build facts). Each subcommand's module adds its own
arguments, so this file stays a switchboard; heavy imports happen inside the subcommand."""

from __future__ import annotations

import argparse
import json
import sys


def _info(args: argparse.Namespace) -> int:
    import byzcore

    print(json.dumps(byzcore.build_info(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byzcore", description="Byzantine-robust aggregation and training.")
    sub = parser.add_subparsers(dest="command")
    from . import experiment, bench

    experiment.add_arguments(sub.add_parser("run", help="run a robust training experiment",
                                            formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    bench.add_arguments(sub.add_parser("bench", help="benchmark the kernels against NumPy and PyTorch",
                                       formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    sub.add_parser("info", help="print build information").set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
