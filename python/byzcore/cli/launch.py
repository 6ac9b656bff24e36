"""The torchrun entry point of the server-worker runtime::

    torchrun --nproc-per-node P -m byzcore.distributed.launch [byzcore run options]

(``byzcore.distributed.launch`` run as a program calls :func:`main`). Every rank parses the
same ``byzcore run`` options; rank 0 writes ``--out`` and prints the final metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..distributed.runtime import rank_main
from ..experiments import save_result
from .run import add_arguments, config_from_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run this process's rank (``RANK`` of ``WORLD_SIZE``, from torchrun's environment) of the
    run the options describe (default ``sys.argv[1:]``); returns 0."""
    parser = argparse.ArgumentParser(prog="torchrun ... -m byzcore.distributed.launch")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = config_from_args(args)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    options = {"timeout_s": args.timeout, "progress": rank == 0 and not args.no_progress}
    result = rank_main(rank, world, cfg.to_dict(), options)
    if rank == 0:
        if args.out:
            save_result(result, args.out, plot=not args.no_plot)
        print(json.dumps({"final": result.summary()["final"], "rounds": len(result.metrics) - 1,
                          "seconds": round(result.seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
