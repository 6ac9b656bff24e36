"""Every CUDA kernel once on small inputs, checked against the CPU kernels.

Small on purpose: it is what `compute-sanitizer` (memcheck, racecheck, initcheck) runs,
so every code path of the CUDA twins is hit in a few seconds of sanitised execution:
register networks (n <= 32) and radix-select (n > 32), lists of per-worker tensors,
non-finite messages, both dtypes, the stream-ordered scratch allocations.

    PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck python tools/cuda_smoke.py

(without torch's caching allocator every tensor is its own allocation, so memcheck sees
an out-of-bounds access past a tensor's end instead of landing in a pooled neighbour).
Exits 1 if any GPU result differs from the CPU one.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import byzcore

OPS = {
    "mean": lambda X, f: byzcore.mean(X),
    "median": lambda X, f: byzcore.median(X),
    "trimmed_mean": byzcore.trimmed_mean,
    "pairwise_distances": lambda X, f: byzcore.pairwise_distances(X, squared=False),
    "krum_scores": byzcore.krum_scores,
    "krum": byzcore.krum,
    "multi_krum": lambda X, f: byzcore.multi_krum(X, f, m=2),
    "geometric_median": lambda X, f: byzcore.geometric_median(X, max_iter=5),
    "clip": lambda X, f: byzcore.clip(X, 1.0),
    "rand_k": lambda X, f: byzcore.rand_k(X, max(1, X.shape[-1] // 3), seed=3),
    "centered_clipping": lambda X, f: byzcore.centered_clipping(X, 1.5, iters=2),
    "bucketing": lambda X, f: byzcore.bucketing(X, 2, byzcore.median, seed=5),
    "nnm": byzcore.nnm,
}
SIZES = [(1, 3), (5, 7), (32, 257), (33, 100), (130, 67)]


def host(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def main(device: str) -> int:
    failures = 0
    for n, d in SIZES:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(n * 31 + d)
            X = (3.0 + rng.standard_normal((n, d))).astype(dtype)
            f = (n - 1) // 4
            if f and n > 4:
                X[-1, 0], X[-2, d // 2] = np.nan, np.inf  # two Byzantine messages
            for op, call in OPS.items():
                if (op.startswith("krum") or op == "multi_krum") and n < 2 * f + 3:
                    continue
                Xg = torch.from_numpy(X).to(device)
                for form, arg in (("tensor", Xg), ("list", list(Xg.unbind(0)))):
                    if form == "list" and op not in ("median", "trimmed_mean", "krum", "geometric_median"):
                        continue
                    gpu, cpu = host(call(arg, f)), host(call(X, f))
                    rel = 1e-4 if dtype == np.float32 else 1e-9
                    ok = gpu.shape == cpu.shape and np.allclose(gpu, cpu, rtol=rel, atol=rel, equal_nan=True)
                    if not ok:
                        failures += 1
                        print(f"FAIL {op} n={n} d={d} {np.dtype(dtype).name} {form}: "
                              f"max diff {np.nanmax(np.abs(gpu - cpu)) if gpu.shape == cpu.shape else 'shape'}")
    # rand_k_indices must draw the CPU's coordinates
    for d, k, seed in ((10, 3, 1), (100_000, 777, 2**64 - 1)):
        g = host(byzcore.rand_k_indices(d, k, seed=seed, like=torch.zeros(1, device=device)))
        c = host(byzcore.rand_k_indices(d, k, seed=seed))
        if not np.array_equal(g, c):
            failures += 1
            print(f"FAIL rand_k_indices d={d} k={k}")
    if device == "cuda":
        torch.cuda.synchronize()
    print(f"cuda smoke: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cuda"))  # "cpu": a dry run of the script
