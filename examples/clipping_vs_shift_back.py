"""Reproduce the paper-style figure of Malinovsky et al. (arXiv 2311.14127): with partial
participation and the shift-back attack, Byz-VR-MARINA-PP converges when it clips the
gradient differences and fails without clipping.

    python examples/clipping_vs_shift_back.py [--rounds 1500] [--out runs/clipping_vs_shift_back]

Writes ``curves.png`` (loss and gradient norm against rounds and against bytes sent) and one
folder of metrics per run. About ten seconds per run on a laptop with the default problem
(synthetic a9a-shaped logistic regression, 15 workers, 3 Byzantine, 4 clients per round).
"""

from __future__ import annotations

import argparse
import math
import os

import byzcore.algorithms as A
from byzcore.experiments import plot_curves


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1500)
    ap.add_argument("--problem", default="a9a-synthetic", help="e.g. libsvm:a9a for the real dataset")
    ap.add_argument("--out", default=os.path.join("runs", "clipping_vs_shift_back"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-samples", type=int, default=None, help="shrink the synthetic dataset (quick runs)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    base = dict(algorithm="byz_vr_marina_pp", problem=args.problem, workers=15, byzantine=3, clients_per_round=4,
                attack="shift-back", aggregator="bucketing:2+median", rounds=args.rounds, lr=0.5, p=0.1,
                seed=args.seed, eval_every=5, n_samples=args.n_samples)
    variants = [
        ("clipping, alpha = 1", dict(alpha=1.0)),
        ("clipping, alpha = 1, rand_k:12", dict(alpha=1.0, compressor="rand_k:12")),
        ("no clipping (alpha = inf)", dict(alpha=math.inf)),
        ("no attack, no clipping", dict(alpha=math.inf, attack="none")),
    ]
    runs = []
    for label, extra in variants:
        res = A.run(progress=not args.no_progress, **{**base, **extra})
        res.save(os.path.join(args.out, label.replace(" ", "_").replace(",", "").replace("=", "").replace(":", "")))
        runs.append((label, res))
        f = res.final
        print(f"{label:34s} final loss {f['loss'] if f['loss'] is not None else float('nan'):.5f}  "
              f"grad norm {f['grad_norm'] if f['grad_norm'] is not None else float('nan'):.3g}  "
              f"({res.seconds:.1f} s)")
    path = os.path.join(args.out, "curves.png")
    if plot_curves(runs, path, title="Byz-VR-MARINA-PP under shift-back, 4 of 15 clients per round"):
        print(f"wrote {path}")
    else:
        print("matplotlib is not installed: metrics written, no figure")


if __name__ == "__main__":
    main()
