"""Time per round of the torch-distributed runtime against the single-process simulation.

Runs the same seeded experiment with ``--backend simulation`` and ``--backend
torch-distributed`` and prints the round time each records (the ``time`` metric: plan,
workers' messages, aggregation, step; evaluation excluded), and whether the iterates are equal::

    python bench/runtime_round_cost.py --workers 15 --byzantine 3 --rounds 100 --algorithm sgd
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithm", default="byz_vr_marina_pp")
    p.add_argument("--aggregator", default="bucketing:2+median")
    p.add_argument("--attack", default="alie")
    p.add_argument("--workers", type=int, default=15)
    p.add_argument("--byzantine", type=int, default=3)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--nprocs", type=int, default=None, help="default: workers + 1")
    p.add_argument("--n-samples", type=int, default=None)
    args = p.parse_args(argv)

    import numpy as np

    import byzcore.algorithms as A
    from byzcore.distributed.runtime import run_distributed

    cfg = dict(algorithm=args.algorithm, aggregator=args.aggregator, attack=args.attack, workers=args.workers,
               byzantine=args.byzantine, rounds=args.rounds, n_samples=args.n_samples)
    sim = A.run(cfg)
    dist = run_distributed(cfg, nprocs=args.nprocs, timeout_s=60)
    rounds = len(sim.metrics) - 1
    nprocs = dist.config["nprocs"]
    print(f"{args.algorithm}, {args.aggregator}, {args.attack}: {args.workers} workers ({args.byzantine} Byzantine), "
          f"d = {sim.x.size}, {rounds} rounds")
    print(f"simulation (1 process)          {1e3 * sim.metrics[-1]['time'] / max(rounds, 1):8.2f} ms/round")
    print(f"torch-distributed ({nprocs} processes) {1e3 * dist.metrics[-1]['time'] / max(rounds, 1):8.2f} ms/round")
    print(f"iterates equal: {bool(np.array_equal(sim.x, dist.x))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
