"""Exact MDA and SMEA at n = 30, f = 7, d = 1e5 (float32): with 7 shifted Byzantine rows and on
pure noise (SMEA's worst case). Run: ``OMP_NUM_THREADS=1 python bench/exact_subset_at_30.py``."""

import time

import numpy as np

import byzcore as bz


def main() -> None:
    rng = np.random.default_rng(0)
    for case in ("shifted", "noise"):
        X = rng.normal(size=(30, 100_000)).astype(np.float32)
        if case == "shifted":
            X[:7] += 5.0
        for name in ("mda", "smea"):
            t = time.perf_counter()
            getattr(bz, name)(X, 7)
            print(f"{case:8s} {name}: {(time.perf_counter() - t) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
