"""Run the emulated CUDA kernels (tools/cuda_emu/build.py) against plain NumPy references.

    python tools/cuda_emu/check.py OUTDIR

Every op of docs/spec.md#rules on float32 and float64, sizes that reach both the small-n and the
large-n paths, ties, duplicates and non-finite messages. Prints one line per failure and exits
non-zero if any.
"""

from __future__ import annotations

import importlib.util
import glob
import os
import sys
import traceback

import numpy as np

M64 = (1 << 64) - 1


def load(out: str):
    path = glob.glob(os.path.join(out, "_core_emu*.so"))[0]
    spec = importlib.util.spec_from_file_location("_core_emu", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


core = load(sys.argv[1])
failures = 0


def messages(X):
    X = np.ascontiguousarray(X)
    ptrs = [X.ctypes.data + i * X.strides[0] for i in range(X.shape[0])]
    return core.Messages(ptrs, X.shape[1], X.dtype.name, "cuda", 0, 0), X


def call(name, X, *args, shape, dtype=None):
    """The op on the emulated GPU, also compared with the CPU kernel of the same module."""
    global failures
    results = []
    for device in ("cuda", "cpu"):
        X = np.ascontiguousarray(X)
        ptrs = [X.ctypes.data + i * X.strides[0] for i in range(X.shape[0])]
        M = core.Messages(ptrs, X.shape[1], X.dtype.name, device, 0, 0)
        out = np.full(shape, np.float32(-7.25) if dtype is None else 0, dtype=dtype or X.dtype)
        try:
            r = getattr(core, name)(M, *args, out.ctypes.data)
        except RuntimeError as e:  # a CPU kernel not written yet
            if device == "cpu":
                return results[0]
            raise
        results.append((out, r))
    (g, gr), (c, cr) = results
    rel = 1e-5 if X.dtype == np.float32 else 1e-9
    if name == "geometric_median":
        rel = 1e-5 if X.dtype == np.float32 else 1e-8
        if abs(gr - cr) > 1:
            failures += 1
            print("FAIL vs CPU steps", name, X.shape, X.dtype, gr, cr)
    check(f"{name} vs CPU {X.shape} {X.dtype}", g, c, rel)
    return g, gr


def check(label, got, want, rel):
    global failures
    try:
        finite = want[np.isfinite(want)]
        scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel * scale)
    except AssertionError as e:
        failures += 1
        print("FAIL", label, str(e).splitlines()[3:8])


def ranked(X):
    Y = np.where(np.isfinite(X), X, np.inf).astype(np.float64)
    return np.sort(Y, axis=0)


def rank_mean(X, lo, hi):
    S = ranked(X)
    with np.errstate(invalid="ignore"):
        return S[lo:hi + 1].mean(axis=0)


def sqdist(X):
    X64 = X.astype(np.float64)
    n = len(X)
    D = np.zeros((n, n))
    bad = ~np.isfinite(X64).all(axis=1)
    for i in range(n):
        for j in range(n):
            if i != j:
                D[i, j] = np.inf if bad[i] or bad[j] else ((X64[i] - X64[j]) ** 2).sum()
    return D


def krum_scores(X, f):
    D = sqdist(X)
    n = len(X)
    k = n - f - 2
    return np.array([np.sort(np.delete(D[i], i))[:k].sum() for i in range(n)])


def counter_key(seed, j):
    j = np.asarray(j, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + (j + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        for r in range(2):
            if r:
                z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
    return z


def rand_k_indices(d, k, seed):
    keys = counter_key(seed, np.arange(d))
    order = np.lexsort((np.arange(d), keys))
    return np.sort(order[:k])


def weiszfeld(X, nu=1e-6, max_iter=100, tol=1e-7, a=None):
    X64 = X.astype(np.float64)
    n = len(X)
    a = np.ones(n) if a is None else np.asarray(a, float)
    z = rank_mean(X, (n - 1) // 2, n // 2)
    good = np.isfinite(X64).all(axis=1)
    it = 0
    for it in range(1, max_iter + 1):
        dist = np.sqrt(((X64[good] - z) ** 2).sum(axis=1))
        w = a[good] / np.maximum(nu, dist)
        zn = (w[:, None] * X64[good]).sum(axis=0) / w.sum()
        done = np.linalg.norm(zn - z) <= tol * np.linalg.norm(zn)
        z = zn
        if done:
            break
    return z, it


def centered_clipping(X, tau, center, iters):
    X64 = X.astype(np.float64)
    v = np.zeros(X.shape[1]) if center is None else center.astype(np.float64)
    good = np.isfinite(X64).all(axis=1)
    for _ in range(iters):
        diff = X64[good] - v
        norm = np.sqrt((diff ** 2).sum(axis=1))
        s = np.where(norm <= tau, 1.0, tau / np.where(norm == 0, 1, norm))
        v = v + (s[:, None] * diff).sum(axis=0) / len(X)
    return v


def data(n, d, dtype, seed, bad=0, ties=False):
    rng = np.random.default_rng(seed)
    X = (rng.integers(-3, 4, (n, d)) if ties else 3 + rng.standard_normal((n, d))).astype(np.float64)
    for b in range(bad):
        X[n - 1 - b, rng.integers(0, d)] = [np.nan, np.inf, -np.inf][b % 3]
    return X.astype(dtype)


def run_case(n, d, dtype, seed, bad=0, ties=False):
    X = data(n, d, dtype, seed, bad, ties)
    rel = 2e-6 if dtype == np.float32 else 1e-12
    tag = f"n={n} d={d} {np.dtype(dtype).name} bad={bad} ties={ties}"
    f = max(bad, (n - 3) // 4)
    if bad == 0:
        check(f"mean {tag}", call("mean", X, shape=d)[0], X.astype(np.float64).mean(0), rel)
    check(f"median {tag}", call("median", X, shape=d)[0], rank_mean(X, (n - 1) // 2, n // 2), rel)
    if n > 2 * f:
        check(f"trimmed_mean {tag}", call("trimmed_mean", X, f, shape=d)[0], rank_mean(X, f, n - f - 1), rel)
    D = sqdist(X)
    got = call("pairwise_distances", X, True, shape=(n, n))[0]
    check(f"pairwise {tag}", got, D, max(rel, 1e-9) if dtype == np.float64 else 1e-5)
    check(f"pairwise sqrt {tag}", call("pairwise_distances", X, False, shape=(n, n))[0], np.sqrt(D),
          max(rel, 1e-9) if dtype == np.float64 else 1e-5)
    if n >= f + 3:
        sc = krum_scores(X, f)
        check(f"krum_scores {tag}", call("krum_scores", X, f, shape=n)[0], sc, 1e-5 if dtype == np.float32 else 1e-9)
        best = int(np.argmin(sc))
        check(f"krum {tag}", call("krum", X, f, shape=d)[0], X[best].astype(np.float64), rel)
        m = max(1, n - f - 1)
        order = np.lexsort((np.arange(n), sc))[:m]
        check(f"multi_krum {tag}", call("multi_krum", X, f, m, shape=d)[0], X[order].astype(np.float64).mean(0), rel)
    if bad <= (n - 1) // 2:
        z, it = weiszfeld(X)
        got, steps = call("geometric_median", X, [], 1e-6, 100, 1e-7, shape=d)
        check(f"geometric_median {tag}", got, z, 1e-5 if dtype == np.float32 else 1e-8)
        if abs(steps - it) > 1:
            print("FAIL geometric_median steps", tag, steps, it)
        w = np.linspace(0.5, 2.0, n)
        z, it = weiszfeld(X, a=w, max_iter=7, tol=0)
        got, steps = call("geometric_median", X, list(w), 1e-6, 7, 0.0, shape=d)
        check(f"geometric_median weighted {tag}", got, z, 1e-5 if dtype == np.float32 else 1e-8)
        if steps != 7 and n > 1:
            print("FAIL geometric_median steps", tag, steps)
    thr = 0.8 * np.sqrt(d)
    X64 = X.astype(np.float64)
    big = np.abs(np.where(np.isfinite(X64), X64, 0)).max(axis=1, keepdims=True)
    big = np.where(big > 0, big, 1)
    with np.errstate(invalid="ignore"):
        norms = big[:, 0] * np.sqrt(((X64 / big) ** 2).sum(axis=1))
    scale = np.where(~np.isfinite(norms), 0.0, np.where(norms <= thr, 1.0, thr / np.where(norms == 0, 1, norms)))
    with np.errstate(invalid="ignore"):
        want = np.where(scale[:, None] == 0, 0.0, X64 * scale[:, None])
    check(f"clip {tag}", call("clip", X, thr, shape=(n, d))[0], want, rel)
    check(f"clip 0 {tag}", call("clip", X, 0.0, shape=(n, d))[0], np.zeros((n, d)), rel)
    for k, seed in ((1, 3), (max(1, d // 3), 5), (d, 7)):
        idx = rand_k_indices(d, k, seed)
        got = np.full(k, -1, dtype=np.int64)
        core.rand_k_indices(d, k, seed, "cuda", 0, 0, got.ctypes.data)
        if not np.array_equal(got, idx):
            print("FAIL rand_k_indices", d, k, seed, got[:10], idx[:10])
            globals()["failures"] += 1
        want = np.zeros((n, d))
        want[:, idx] = X64[:, idx] * (d / k)
        check(f"rand_k k={k} {tag}", call("rand_k", X, k, seed, shape=(n, d))[0], want, rel)
    center = np.full(d, 2.0, dtype=dtype)
    for c, iters in ((None, 1), (center, 3)):
        v = centered_clipping(X, 1.5, c, iters)
        M, keep = messages(X)
        out = np.empty(d, dtype=dtype)
        core.centered_clipping(M, 1.5, 0 if c is None else c.ctypes.data, iters, out.ctypes.data)
        check(f"centered_clipping iters={iters} {tag}", out, v, 1e-5 if dtype == np.float32 else 1e-10)
    for s in (1, 2, 3):
        perm = core.random_permutation(n, 9)
        nb = -(-n // s)
        want = np.stack([X64[perm[b * s:(b + 1) * s]].mean(0) for b in range(nb)])
        M, keep = messages(X)
        out = np.empty((nb, d), dtype=dtype)
        core.bucket_means(M, perm, s, out.ctypes.data)
        check(f"bucket_means s={s} {tag}", out, want, rel)
    if n > f:
        m = n - f
        fin = np.isfinite(X64).all(axis=1)
        keys = [D[i] if fin[i] else np.where(fin, 0.0, np.inf) for i in range(n)]
        want = np.stack([X64[np.sort(np.lexsort((np.arange(n), keys[i]))[:m])].mean(0) for i in range(n)])
        check(f"nnm {tag}", call("nnm", X, f, shape=(n, d))[0], want, rel)
    if n > 2 * f:  # the subset rules: call() compares the emulated GPU with the CPU kernel
        for name in ("mda",) + (("caf",) if n <= 70 else ()) + (("smea",) if n <= 17 else ()):
            call(name, X, f, shape=d)
        call("dnc", X, f, 2, max(1, d // 2), 1.0, 7, shape=d)
    # The catalogue rules of issue 9: the emulated kernels against the CPU ones (call compares).
    for g in sorted({0, 1, (n - 1) // 2}):
        if n > 2 * g:
            call("meamed", X, g, shape=d)
            call("cge", X, g, shape=d)
            call("arc", X, g, shape=(n, d))
            if np.isfinite(X64[0]).all():
                call("monna", X, g, 0, shape=d)
    if n >= 3:
        call("bulyan", X, (n - 3) // 4, shape=d)
    call("weighted_mean", X, [float(i % 3) + 0.5 for i in range(n)], shape=d)


def main() -> None:
    cases = [(1, 5), (2, 3), (3, 1), (4, 9), (5, 7), (8, 100), (17, 33), (32, 70), (33, 40), (64, 65), (70, 600),
             (130, 20)]
    for n, d in cases:
        for dtype in (np.float32, np.float64):
            for bad, ties in ((0, False), (0, True), (max(1, (n - 3) // 4) if n >= 4 else 0, False)):
                try:
                    run_case(n, d, dtype, seed=n * 31 + d, bad=bad, ties=ties)
                except Exception:
                    globals()["failures"] += 1
                    print("ERROR", n, d, dtype, bad, ties)
                    traceback.print_exc()
    # float64 messages whose squares overflow: clipped by their true norm, as on the CPU
    X = data(5, 40, np.float64, seed=1)
    X[1] *= 1e200
    got = call("clip", X, 2.0, shape=(5, 40))[0]
    n1 = 1e200 * np.linalg.norm(X[1] / 1e200)
    check("clip overflow", got[1], X[1] * (2.0 / n1), 1e-12)
    # rand_k draw on a longer vector: several radix passes, many blocks
    for d, k in ((100_000, 777), (200_003, 100_000)):
        got = np.empty(k, np.int64)
        core.rand_k_indices(d, k, 42, "cuda", 0, 0, got.ctypes.data)
        if not np.array_equal(got, rand_k_indices(d, k, 42)):
            print("FAIL rand_k_indices long", d, k)
            globals()["failures"] += 1
    print("failures:", failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
