"""``byzcore info``: how this byzcore was built (:func:`byzcore.build_info`), as JSON."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "main"]


def main(args: argparse.Namespace) -> int:
    """Print :func:`byzcore.build_info` as indented JSON; returns 0."""
    import byzcore

    print(json.dumps(byzcore.build_info(), indent=2))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``byzcore info`` has no options; this sets ``func``."""
    parser.set_defaults(func=main)
