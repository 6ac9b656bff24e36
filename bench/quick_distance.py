"""Quick figures for the distance kernels (run from a built install, not from the source tree).

    python bench/quick_distance.py [--d 1000000] [--n 100] [--repeat 5] [--what pairwise,gm,krum]

Prints: pairwise_distances against NumPy's ``X @ X.T`` (float32, same process, interleaved
runs, best of --repeat each), geometric_median GB/s per iteration, and krum at n = 100..1000.
To compare against the NumPy BLAS kernel the machine would pick on its own, unset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this command only; the kernel actually used is
printed (threadpoolctl).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import byzcore
from byzcore.bench import time_call


CLOCK = time.perf_counter


def best(fn, repeat):
    """The best of ``repeat`` timed calls after a warm-up, on ``CLOCK``."""
    return time_call(fn, repeat=repeat, budget=1e9, reduce=min, clock=CLOCK)


def blas_kernel() -> str:
    try:
        import threadpoolctl

        info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} x{i.get('num_threads')}" for i in info)
    except ImportError:
        return "threadpoolctl not installed"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--d", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--what", default="pairwise,gm,krum")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with process CPU time (robust on a loaded machine; use with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)")
    a = p.parse_args()
    global CLOCK
    if a.cpu_time:
        CLOCK = time.process_time
    what = a.what.split(",")
    info = byzcore.build_info() if hasattr(byzcore, "build_info") else {}
    print(f"byzcore isa={info.get('simd', '?')} threads={info.get('threads', '?')}; numpy {np.__version__} BLAS: {blas_kernel()}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')!r} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')!r}")
    rng = np.random.default_rng(0)
    if "pairwise" in what:
        X = rng.standard_normal((a.n, a.d), dtype=np.float32)
        X += rng.standard_normal(a.d, dtype=np.float32)  # messages that share a common part, as gradients do
        G = X @ X.T
        nrm = np.diag(G).astype(np.float64)
        D = byzcore.pairwise_distances(X)
        approx = nrm[:, None] + nrm[None, :] - 2 * G.astype(np.float64)
        print(f"  check: max |D - numpy Gram formula| / max D = {np.abs(D - approx).max() / D.max():.2e}")
        tb, tn = [], []
        for _ in range(a.repeat):  # interleaved, so load changes hit both alike
            tb.append(best(lambda: byzcore.pairwise_distances(X), 1))
            tn.append(best(lambda: X @ X.T, 1))
        b, nm = min(tb), min(tn)
        print(f"pairwise_distances n={a.n} d={a.d} float32 ({'cpu' if a.cpu_time else 'wall'} time): byzcore {b * 1e3:.1f} ms, numpy X @ X.T {nm * 1e3:.1f} ms, ratio {b / nm:.2f}")
        del X
    if "gm" in what:
        for n in (32, 64, 100):
            X = rng.standard_normal((n, a.d), dtype=np.float32)
            it = [0]

            def run():
                it[0] = byzcore.geometric_median(X, max_iter=10, tol=0.0)

            t10 = best(run, max(1, a.repeat // 2))
            t0 = best(lambda: byzcore.geometric_median(X, max_iter=0), max(1, a.repeat // 2))
            per = (t10 - t0) / 10
            print(f"geometric_median n={n} d={a.d} float32: start (median + 1 sweep) {t0 * 1e3:.1f} ms, "
                  f"{per * 1e3:.2f} ms/iteration = {X.nbytes / per / 1e9:.1f} GB/s of messages read per iteration")
            del X
    if "krum" in what:
        dk = max(1000, a.d // 10)
        for n in (100, 300, 1000):
            X = rng.standard_normal((n, dk), dtype=np.float32)
            t = best(lambda: byzcore.krum(X, f=n // 4), max(1, a.repeat // 2))
            print(f"krum n={n} d={dk} f={n // 4} float32: {t * 1e3:.1f} ms ({n * n * dk / 2 / t / 1e9:.1f} G pair-coordinates/s)")


if __name__ == "__main__":
    main()
