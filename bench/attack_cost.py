"""Time of one attack call (the Byzantine messages of one round) against the aggregator's own.

The line-searched attacks (``opt-alie``, ``opt-ipm``) call the aggregator at most 29 times,
so their cost is about 29 aggregator calls plus building each candidate matrix::

    python bench/attack_cost.py --n 32 --f 7 --d 100000 --rules trimmed_mean,median,krum
"""

from __future__ import annotations

import argparse
import time


def _best_ms(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--f", type=int, default=7)
    p.add_argument("--d", type=int, default=100_000)
    p.add_argument("--rules", default="trimmed_mean,median,krum")
    p.add_argument("--attacks", default="alie,opt-alie,opt-ipm,minmax,minsum")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import numpy as np

    import byzcore.attacks as A
    from byzcore.aggregators import make_aggregator

    rng = np.random.default_rng(0)
    H = rng.normal(size=(args.n - args.f, args.d))
    print(f"n = {args.n}, f = {args.f}, d = {args.d}, float64; best of {args.repeats}")
    for rule in args.rules.split(","):
        agg = make_aggregator(rule, f=args.f)
        X = np.concatenate([H, np.zeros((args.f, args.d))])
        print(f"{rule:14s} aggregator {_best_ms(lambda agg=agg, X=X: agg(X), args.repeats):9.1f} ms")
        ctx = A.AttackContext(honest=H, own=np.zeros((args.f, args.d)), n=args.n, f=args.f, round=0, rng=rng,
                              aggregator=agg)
        for spec in args.attacks.split(","):
            atk = A.make_attack(spec)
            print(f"{rule:14s} {spec:10s} {_best_ms(lambda atk=atk, ctx=ctx: atk(ctx), args.repeats):9.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
