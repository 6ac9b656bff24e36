"""The CUDA kernels against the CPU kernels (docs/spec.md#rules).

Every operation on a GPU input (torch CUDA tensors, and CuPy arrays when CuPy is installed)
must give the CPU result for the same data, come back as the caller's type on the caller's
device, run on the caller's stream, and draw the same rand_k coordinates as the CPU. Without
a GPU these tests skip; the build_info check runs everywhere.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from conftest import cuda_available, cupy_cuda, to_numpy, torch_cuda

import byzcore

gpu = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU and byzcore built with CUDA")


def gpu_frameworks() -> list[str]:
    fws = (["torch"] if torch_cuda() else []) + (["cupy"] if cupy_cuda() else [])
    return fws or ["torch"]  # skipped by `gpu` anyway


def to_gpu(x: np.ndarray, fw: str) -> Any:
    if fw == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")
    import cupy

    return cupy.asarray(x)


def is_gpu_array(x: Any, fw: str) -> bool:
    if fw == "torch":
        import torch

        return isinstance(x, torch.Tensor) and x.is_cuda
    import cupy

    return isinstance(x, cupy.ndarray)


def messages(n: int, d: int, dtype: Any, seed: int, bad: int = 0) -> np.ndarray:
    """n messages around a common point; the last `bad` ones hold NaN / Inf entries."""
    rng = np.random.default_rng(seed)
    X = 3.0 + rng.standard_normal((n, d))
    for b in range(bad):
        row = n - 1 - b
        X[row, rng.integers(0, d)] = [np.nan, np.inf, -np.inf][b % 3]
    return X.astype(dtype)


def assert_same(gpu_result: Any, cpu_result: Any, dtype: Any, rel: float | None = None) -> None:
    g, c = to_numpy(gpu_result), to_numpy(cpu_result)
    assert g.shape == c.shape
    assert g.dtype == c.dtype
    if rel is None:
        rel = 1e-5 if np.dtype(dtype) == np.float32 else 1e-11
    finite = c[np.isfinite(c)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    np.testing.assert_allclose(g, c, rtol=rel, atol=rel * scale)


# ---------------------------------------------------------------- build facts (always run)
def test_build_info_reports_cuda_consistently() -> None:
    info = byzcore.build_info()
    assert isinstance(info["cuda"], bool)
    assert isinstance(info["cuda_devices"], int)
    assert info["cuda_devices"] >= 0
    if info["cuda"]:
        assert info["cuda_build"].startswith("CUDA ")
    else:
        assert info["cuda_build"] == "not built"
        assert info["cuda_devices"] == 0
    if info["cuda"] and torch_cuda():
        import torch

        assert info["cuda_devices"] == torch.cuda.device_count()


@pytest.mark.skipif(byzcore.build_info()["cuda"] or not torch_cuda(),
                    reason="needs a GPU and a byzcore built without CUDA")
def test_cuda_input_without_cuda_build_says_so() -> None:
    import torch

    with pytest.raises(RuntimeError, match=r"^\[median\] byzcore was built without CUDA support"):
        byzcore.median(torch.ones(3, 4, device="cuda"))


# ---------------------------------------------------------------- every op, GPU == CPU
def f_for(n: int) -> int:
    return max(0, (n - 3) // 4)


OPS: dict[str, Callable[[Any, int], Any]] = {
    "mean": lambda X, f: byzcore.mean(X),
    "median": lambda X, f: byzcore.median(X),
    "trimmed_mean": byzcore.trimmed_mean,
    "pairwise_distances": lambda X, f: byzcore.pairwise_distances(X),
    "pairwise_distances_sqrt": lambda X, f: byzcore.pairwise_distances(X, squared=False),
    "krum_scores": byzcore.krum_scores,
    "krum": byzcore.krum,
    "multi_krum": byzcore.multi_krum,
    "multi_krum_m2": lambda X, f: byzcore.multi_krum(X, f, m=2),
    "geometric_median": lambda X, f: byzcore.geometric_median(X),
    "clip": lambda X, f: byzcore.clip(X, 0.5 * float(X.shape[1]) ** 0.5),
    "rand_k": lambda X, f: byzcore.rand_k(X, max(1, X.shape[1] // 3), seed=11),
    "centered_clipping": lambda X, f: byzcore.centered_clipping(X, 1.5, iters=3),
    "bucketing": lambda X, f: byzcore.bucketing(X, 2, byzcore.median, seed=5),
    "nnm": byzcore.nnm,
}
MIN_N = {"krum_scores": 3, "krum": 3, "multi_krum": 3, "multi_krum_m2": 3}
ROBUST = {"median", "trimmed_mean", "krum", "multi_krum", "geometric_median", "centered_clipping"}
SIZES = [(1, 5), (2, 3), (3, 1), (5, 7), (8, 1000), (17, 33), (32, 4099), (33, 64), (64, 129), (101, 2000)]
# The catalogue rules of issue 9 (tests/test_rules_coord.py checks them against the reference).
OPS.update({
    "meamed": byzcore.meamed,
    "bulyan": byzcore.bulyan,
    "monna": lambda X, f: byzcore.monna(X, f, pivot=0),
    "cge": byzcore.cge,
    "arc": byzcore.arc,
    "weighted_mean": lambda X, f: byzcore.mean(X, weights=np.arange(1, X.shape[0] + 1)),
})
MIN_N["bulyan"] = 3
ROBUST |= {"meamed", "bulyan", "cge", "arc", "monna"}  # messages() poisons the last rows: monna's pivot 0 stays honest
# The subset rules (their search runs on the host from the device's distance matrix), the ByzFL
# Krum variant, weighted Multi-Krum and trimming by fraction. beta = 0.25 trims at least the
# f_for(n) (and max(1, f_for(n))) poisoned rows of the non-finite test at every size there.
OPS.update({
    "mda": byzcore.mda,
    "smea": byzcore.smea,
    "caf": byzcore.caf,
    "dnc": lambda X, f: byzcore.dnc(X, f, iters=2, sub_dim=max(1, X.shape[1] // 2), seed=3),
    "multi_krum_byzfl": lambda X, f: byzcore.multi_krum(X, f, variant="byzfl"),
    "multi_krum_weighted": lambda X, f: byzcore.multi_krum(X, f, weights=np.arange(1, X.shape[0] + 1)),
    "trimmed_mean_beta": lambda X, f: byzcore.trimmed_mean(X, beta=0.25),
})
MIN_N["multi_krum_weighted"] = 3
# SMEA's exact search is exponential on the pure noise messages() draws (docs/rules.md): n = 21,
# f = 4 is C(21, 4) = 5,985 subsets at most; n = 32, f = 7 would take seconds per call.
MAX_N = {"smea": 21}
ROBUST |= {"mda", "smea", "caf", "dnc", "multi_krum_byzfl", "multi_krum_weighted", "trimmed_mean_beta"}


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("fw", gpu_frameworks())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d", SIZES)
@pytest.mark.parametrize("op", sorted(OPS))
def test_gpu_matches_cpu(op: str, n: int, d: int, dtype: Any, fw: str) -> None:
    if n < MIN_N.get(op, 1):
        pytest.skip("n below the rule's bound")
    if n > MAX_N.get(op, n):
        pytest.skip("an exponential search at this n")
    f = f_for(n)
    X = messages(n, d, dtype, seed=n * 7919 + d)
    Xg = to_gpu(X, fw)
    before = X.copy()
    cpu = OPS[op](X, f)
    res = OPS[op](Xg, f)
    assert is_gpu_array(res, fw)
    np.testing.assert_array_equal(to_numpy(Xg), before)  # input untouched
    rel = None
    if op == "geometric_median":  # stops within tol = 1e-7 of the optimum on both devices
        rel = 1e-4 if dtype == np.float32 else 1e-6
    assert_same(res, cpu, dtype, rel)


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d", [(5, 9), (21, 300), (40, 77), (101, 500)])
@pytest.mark.parametrize("op", sorted(ROBUST))
def test_gpu_non_finite_messages(op: str, n: int, d: int, dtype: Any) -> None:
    """At most f messages hold NaN/Inf: the GPU result is finite and equals the CPU one."""
    if n > MAX_N.get(op, n):
        pytest.skip("an exponential search at this n")
    fw = gpu_frameworks()[0]
    f = max(1, f_for(n))
    X = messages(n, d, dtype, seed=d, bad=f)
    cpu = OPS[op](X, f)
    res = OPS[op](to_gpu(X, fw), f)
    assert np.isfinite(to_numpy(res)).all()
    rel = (1e-4 if dtype == np.float32 else 1e-6) if op == "geometric_median" else None
    assert_same(res, cpu, dtype, rel)


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_distances_of_identical_and_non_finite_messages(dtype: Any) -> None:
    fw = gpu_frameworks()[0]
    X = messages(6, 257, dtype, seed=1)
    X[1] = X[0]                      # exact duplicate: distance exactly 0 (cancellation guard)
    X[2] = X[0] + dtype(1e-3)        # near duplicate
    X[5, 3] = np.nan
    D = to_numpy(byzcore.pairwise_distances(to_gpu(X, fw)))
    assert D[0, 1] == 0
    assert D[1, 0] == 0
    assert np.all(np.diag(D) == 0)
    assert np.all(np.isinf(np.delete(D[5], 5)))
    assert np.all(np.isinf(np.delete(D[:, 5], 5)))
    np.testing.assert_allclose(D[0, 2], 257 * 1e-6, rtol=1e-3)
    assert_same(D, byzcore.pairwise_distances(X), dtype)


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("n", [4, 31, 32, 33, 100])
def test_gpu_median_ties_and_extremes(n: int) -> None:
    fw = gpu_frameworks()[0]
    rng = np.random.default_rng(n)
    X = rng.integers(-3, 4, size=(n, 301)).astype(np.float64)  # many ties
    X[0, :50] = 1e300
    X[1, 50:100] = -1e300
    for dtype in (np.float32, np.float64):
        Y = np.clip(X, -1e30, 1e30).astype(dtype) if dtype == np.float32 else X
        f = (n - 1) // 3
        assert_same(byzcore.median(to_gpu(Y, fw)), byzcore.median(Y), dtype)
        assert_same(byzcore.trimmed_mean(to_gpu(Y, fw), f), byzcore.trimmed_mean(Y, f), dtype)


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("fw", gpu_frameworks())
def test_gpu_list_of_messages(fw: str) -> None:
    X = messages(9, 50, np.float32, seed=3)
    rows = [to_gpu(x, fw) for x in X]
    for op in ("median", "trimmed_mean", "krum", "nnm", "geometric_median", "mean"):
        rel = 1e-4 if op == "geometric_median" else None
        assert_same(OPS[op](rows, 2), OPS[op](X, 2), np.float32, rel)


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize("fw", gpu_frameworks())
@pytest.mark.parametrize("d,k,seed", [(1, 1, 0), (10, 10, 1), (10, 3, 2), (1000, 1, 3), (4097, 100, 2**64 - 1),
                                      (100_000, 5_000, 7), (1_000_003, 999, 12345)])
def test_rand_k_indices_same_on_every_device(d: int, k: int, seed: int, fw: str) -> None:
    cpu = byzcore.rand_k_indices(d, k, seed=seed)
    like = to_gpu(np.zeros(4, np.float32), fw)
    res = byzcore.rand_k_indices(d, k, seed=seed, like=like)
    assert is_gpu_array(res, fw)
    np.testing.assert_array_equal(to_numpy(res), cpu)
    assert np.all(np.diff(cpu) > 0)
    assert len(cpu) == k


@gpu
@pytest.mark.cuda
def test_gpu_centered_clipping_with_center() -> None:
    fw = gpu_frameworks()[0]
    X = messages(12, 40, np.float64, seed=9, bad=2)
    c = np.full(40, 2.5)
    assert_same(byzcore.centered_clipping(to_gpu(X, fw), 0.7, center=to_gpu(c, fw), iters=4),
                byzcore.centered_clipping(X, 0.7, center=c, iters=4), np.float64)


@gpu
@pytest.mark.cuda
@pytest.mark.skipif(not torch_cuda(), reason="needs torch with CUDA")
@pytest.mark.parametrize("tdtype", ["float16", "bfloat16"])
def test_gpu_half_precision(tdtype: str) -> None:
    import torch

    X = torch.from_numpy(messages(7, 65, np.float32, seed=4)).to(getattr(torch, tdtype))
    res = byzcore.median(X.cuda())
    assert res.dtype == X.dtype
    assert res.is_cuda
    torch.testing.assert_close(res.cpu(), byzcore.median(X))


@gpu
@pytest.mark.cuda
@pytest.mark.skipif(not torch_cuda(), reason="needs torch with CUDA")
def test_runs_on_the_callers_stream() -> None:
    """The input is written on a side stream after a long sleep and read by byzcore without
    any synchronisation: only a kernel ordered on that same stream sees the data."""
    import torch

    X = messages(16, 1 << 16, np.float32, seed=2)
    src = torch.from_numpy(X).cuda()
    dst = torch.zeros_like(src)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)  # about 0.05-0.1 s of GPU time on this stream
        dst.copy_(src)
        res_median = byzcore.median(dst)
        res_gm = byzcore.geometric_median(dst)
        res_krum = byzcore.krum(dst, 2)
    side.synchronize()
    assert_same(res_median, byzcore.median(X), np.float32)
    assert_same(res_gm, byzcore.geometric_median(X), np.float32, rel=1e-4)
    assert_same(res_krum, byzcore.krum(X, 2), np.float32)


@gpu
@pytest.mark.cuda
@pytest.mark.skipif(not torch_cuda(), reason="needs torch with CUDA")
def test_second_gpu_and_current_device_kept() -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    X = messages(10, 100, np.float32, seed=6)
    torch.cuda.set_device(0)
    res = byzcore.median(torch.from_numpy(X).to("cuda:1"))
    assert res.device == torch.device("cuda:1")
    assert torch.cuda.current_device() == 0
    assert_same(res, byzcore.median(X), np.float32)
