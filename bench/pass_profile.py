"""Where the time of the catalogue rules goes at one cell: the rule against its passes.

    OMP_NUM_THREADS=1 python bench/pass_profile.py [--n 10] [--d 1000000] [--reps 9]

Times, interleaved call by call on the bench's own input (``make_messages``, float32,
``f = n // 5``): a NumPy float64 sum over as many bytes (one read of the input), ``mean``
of all rows and of the ``n - f`` kept ones (the final pass), ``pairwise_distances`` (the
Gram pass of MDA and SMEA), and ``cge``, ``monna``, ``mda``, ``smea``. Prints the median of
``--reps`` calls each and the input's bytes over that time. Run it alternately with two
builds (``PYTHONPATH``) to compare them on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import byzcore as bc
from byzcore.bench.inputs import make_messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--d", type=float, default=1e6)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
    n, d = args.n, int(args.d)
    f = n // 5
    X = np.ascontiguousarray(make_messages(n, d, np.float32, f=f))
    kept = np.ascontiguousarray(X[: n - f])
    a = np.ones(X.nbytes // 8)
    cases = {
        "numpy sum (one read)": a.sum,
        f"mean ({n} rows)": lambda: bc.mean(X),
        f"mean ({n - f} rows)": lambda: bc.mean(kept),
        "pairwise_distances": lambda: bc.pairwise_distances(X),
        "cge": lambda: bc.cge(X, f),
        "monna": lambda: bc.monna(X, f),
        "mda": lambda: bc.mda(X, f),
        "smea": lambda: bc.smea(X, f),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        fn()
    for _ in range(args.reps):
        for k, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        med = float(np.median(v))
        print(f"{k:22s} {med * 1e3:8.2f} ms  {X.nbytes / med / 1e9:6.1f} GB/s of input")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
