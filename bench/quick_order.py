"""Quick figures for the order-statistics kernels (issue 2's targets), float32 on the CPU.

    python bench/quick_order.py            # bandwidth, n=32 d=1e6 targets, torch grid
    python bench/quick_order.py --no-grid  # only the targets

Prints the machine's read bandwidth (NumPy and PyTorch sums of a 1 GiB float32 array), then
byzcore.median / trimmed_mean at n=32, d=1e6 against np.median(X, 0), the sort-based trimmed
mean np.sort(X, 0)[f:n-f].mean(0) and torch.median(dim=0), and the median over the grid
n in 5..1000, d in 1e3..1e7 (sizes above 4 GiB skipped) against torch.median(dim=0).
Every result is checked against the reference before it is timed; times are the best of
several runs. Effective GB/s = n*d*4 bytes / time.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import byzcore
from byzcore.bench import time_call


def best(fn, reps=5, budget=20.0):
    """The best of ``reps`` timed calls after a warm-up (about ``budget`` seconds at most)."""
    return time_call(fn, repeat=reps, budget=budget, reduce=min)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-grid", action="store_true")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    print(f"byzcore {byzcore.build_info()}  load average {os.getloadavg()}")

    A = np.ones(2**28, dtype=np.float32)
    t_np = best(lambda: A.sum(), args.reps)
    line = f"read bandwidth (1 GiB float32 sum): numpy {2**30 / t_np / 1e9:.1f} GB/s"
    bw = 2**30 / t_np / 1e9
    if torch is not None:
        At = torch.from_numpy(A)
        t_t = best(lambda: At.sum(), args.reps)
        bw = max(bw, 2**30 / t_t / 1e9)
        line += f", torch ({torch.get_num_threads()} threads) {2**30 / t_t / 1e9:.1f} GB/s"
        del At
    del A
    print(line + f"  -> machine read bandwidth {bw:.1f} GB/s")

    n, d = 32, 10**6
    X = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    gb = n * d * 4 / 1e9
    np.testing.assert_allclose(byzcore.median(X), np.median(X, axis=0), rtol=1e-6, atol=1e-7)
    t_b = best(lambda: byzcore.median(X), args.reps)
    t_n = best(lambda: np.median(X, axis=0), 3)
    print(f"median       n={n} d={d}: byzcore {t_b * 1e3:7.2f} ms ({gb / t_b:5.1f} GB/s, {gb / t_b / bw:4.0%} of bandwidth)"
          f"  np.median {t_n * 1e3:7.1f} ms -> {t_n / t_b:5.1f}x", end="")
    if torch is not None:
        T = torch.from_numpy(X)
        t_t = best(lambda: torch.median(T, dim=0), 3)
        print(f"  torch.median {t_t * 1e3:7.1f} ms -> {t_t / t_b:5.1f}x")
    else:
        print()
    for f in (1, 8, 15):
        ref = lambda: np.sort(X, axis=0)[f:n - f].mean(axis=0)  # noqa: E731
        np.testing.assert_allclose(byzcore.trimmed_mean(X, f), ref(), rtol=1e-5, atol=1e-6)
        t_b = best(lambda: byzcore.trimmed_mean(X, f), args.reps)
        t_s = best(ref, 3)
        print(f"trimmed_mean n={n} d={d} f={f:2d}: byzcore {t_b * 1e3:7.2f} ms ({gb / t_b:5.1f} GB/s, {gb / t_b / bw:4.0%})"
              f"  np.sort reference {t_s * 1e3:7.1f} ms -> {t_s / t_b:5.1f}x")
    del X

    if args.no_grid or torch is None:
        return
    print("median vs torch.median(dim=0), float32:")
    for n in (5, 10, 32, 100, 300, 1000):
        for d in (10**3, 10**4, 10**5, 10**6, 10**7):
            if n * d * 4 > 4 * 2**30:
                continue
            X = np.random.default_rng(1).standard_normal((n, d)).astype(np.float32)
            T = torch.from_numpy(X)
            ref = torch.median(T, dim=0).values.numpy()  # lower median for even n
            out = byzcore.median(X)
            if n % 2:
                np.testing.assert_array_equal(out, ref)
            else:
                assert np.all(out >= ref)
            reps = args.reps if n * d < 10**8 else 2
            t_b = best(lambda: byzcore.median(X), reps)
            t_t = best(lambda: torch.median(T, dim=0), reps)
            print(f"  n={n:5d} d={d:9d}: byzcore {t_b * 1e3:9.3f} ms ({n * d * 4 / t_b / 1e9:5.1f} GB/s)"
                  f"  torch {t_t * 1e3:9.3f} ms  -> {t_t / t_b:6.1f}x", flush=True)
            del X, T


if __name__ == "__main__":
    main()
