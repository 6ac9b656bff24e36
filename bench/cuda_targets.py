"""The GPU performance targets of the CUDA issue, measured in one run on one GPU.

    python bench/cuda_targets.py [--d 1e8] [--n 32] [--repeat 10]

- ``median`` and ``trimmed_mean`` at ``n = 32, d = 1e8`` float32 (12.8 GB): time, effective
  GB/s against the device-to-device copy bandwidth measured here, and the speed-up over
  ``torch.median(dim=0)`` / a ``torch.sort``-based trimmed mean on the same tensor;
- ``pairwise_distances`` at ``n = 100, d = 1e6`` (and ``n = 1000``) against a cuBLAS
  ``X @ X.T`` (``torch.mm``, TF32 off) and ``torch.cdist``.

Inputs are generated on the GPU (``torch.randn``); every byzcore result is checked first
against a float64 torch reference on a slice of the columns. Times are CUDA-event medians
after a warm-up.
"""

from __future__ import annotations

import argparse
import sys

import torch

import byzcore


def timed(fn, repeat: int) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs, after one warm-up."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return sorted(times)[len(times) // 2]


def copy_bandwidth(nbytes: int, repeat: int) -> float:
    """Device-to-device copy, bytes read + written per second."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").fill_(1.0)
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), repeat)
    return 2 * nbytes / t


def check(name: str, got: torch.Tensor, ref: torch.Tensor, rel: float) -> None:
    err = ((got.double() - ref).abs() / (1.0 + ref.abs())).max().item()
    status = "ok" if err <= rel else "MISMATCH"
    print(f"  check {name}: max rel err {err:.2e} ({status})")
    if err > rel:
        raise SystemExit(f"{name}: GPU result differs from the float64 reference")


def order_stats(n: int, d: int, f: int, repeat: int, bw: float) -> None:
    torch.manual_seed(0)
    X = torch.randn(n, d, device="cuda", dtype=torch.float32)
    nbytes = X.numel() * X.element_size()
    print(f"median / trimmed_mean: n={n} d={d:.0e} float32 ({nbytes / 1e9:.1f} GB), f={f}")
    cols = slice(0, min(d, 2_000_000))
    s = X[:, cols].double().sort(dim=0).values
    ref_med = 0.5 * (s[(n - 1) // 2] + s[n // 2])
    ref_tm = s[f:n - f].mean(dim=0)
    del s
    check("median", byzcore.median(X)[cols], ref_med, 1e-6)
    check("trimmed_mean", byzcore.trimmed_mean(X, f)[cols], ref_tm, 1e-5)

    rows = []
    t_med = timed(lambda: byzcore.median(X), repeat)
    t_tmed = timed(lambda: torch.median(X, dim=0), repeat)
    rows.append(("median", t_med, t_tmed, "torch.median(dim=0)"))
    t_tm = timed(lambda: byzcore.trimmed_mean(X, f), repeat)
    t_ttm = timed(lambda: X.sort(dim=0).values[f:n - f].mean(dim=0), max(1, repeat // 3))
    rows.append(("trimmed_mean", t_tm, t_ttm, "torch sort + mean"))
    for op, t, tb, base in rows:
        gbps = nbytes / t / 1e9
        print(f"  {op:13s} {t * 1e3:8.2f} ms  {gbps:7.0f} GB/s  {100 * gbps * 1e9 / bw:5.1f}% of copy bandwidth"
              f"  | {base} {tb * 1e3:8.2f} ms -> {tb / t:6.1f}x")
    X = None  # frees the GPU tensor before empty_cache (a `del` would unbind the timed lambdas' cell)
    torch.cuda.empty_cache()


def distances(n: int, d: int, repeat: int) -> None:
    torch.manual_seed(1)
    X = torch.randn(n, d, device="cuda", dtype=torch.float32)
    print(f"pairwise_distances: n={n} d={d:.0e} float32 ({X.numel() * 4 / 1e9:.2f} GB)")
    Xd = X.double()
    G = Xd @ Xd.T
    sq = G.diagonal()
    ref = (sq[:, None] + sq[None, :] - 2 * G).clamp_min(0)
    ref.fill_diagonal_(0)
    del Xd, G
    got = byzcore.pairwise_distances(X)
    err = ((got.double() - ref).abs() / ref.max()).max().item()
    print(f"  check pairwise_distances: max err / max distance {err:.2e} ({'ok' if err < 1e-5 else 'MISMATCH'})")
    t_b = timed(lambda: byzcore.pairwise_distances(X), repeat)
    torch.backends.cuda.matmul.allow_tf32 = False
    t_mm = timed(lambda: torch.mm(X, X.T), repeat)
    t_cd = timed(lambda: torch.cdist(X, X), repeat)
    flops = 2.0 * n * n * d
    print(f"  byzcore {t_b * 1e3:8.3f} ms ({flops / t_b / 1e12:5.1f} TFLOP/s) | cuBLAS X@X.T {t_mm * 1e3:8.3f} ms "
          f"({flops / t_mm / 1e12:5.1f} TFLOP/s) -> byzcore/cuBLAS {t_b / t_mm:5.2f}x | torch.cdist "
          f"{t_cd * 1e3:8.3f} ms -> {t_cd / t_b:5.1f}x faster")
    X = None  # frees the GPU tensor before empty_cache (a `del` would unbind the timed lambdas' cell)
    torch.cuda.empty_cache()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--d", type=float, default=1e8)
    p.add_argument("--f", type=int, default=6)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--dist", nargs="+", default=["100x1e6", "1000x1e6", "1000x1e5"],
                   help="pairwise_distances cells as NxD")
    a = p.parse_args()
    if not torch.cuda.is_available() or not byzcore.build_info()["cuda"]:
        raise SystemExit("needs a CUDA GPU and byzcore built with CUDA")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, byzcore {byzcore.build_info()}")
    bw = copy_bandwidth(4 << 30, a.repeat)
    print(f"device-to-device copy: {bw / 1e9:.0f} GB/s (read + write)")
    order_stats(a.n, int(a.d), a.f, a.repeat, bw)
    for cell in a.dist:
        n, d = cell.lower().split("x")
        distances(int(n), int(float(d)), a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
