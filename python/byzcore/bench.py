"""``byzcore bench``: time every kernel against NumPy and PyTorch on the same input.

For each kernel and each cell of an ``n x d`` grid the command

1. builds one seeded input shaped like a round of robust aggregation (honest messages around
   a common mean with a different noise level each, plus ``f`` Byzantine outliers);
2. checks byzcore's result against a float64 NumPy reference with a tolerance derived from
   rounding-error bounds for the dtype, and refuses to time a cell that disagrees;
3. times byzcore, the NumPy equivalent (what a user would write: ``np.median(X, axis=0)``,
   a sort-based trimmed mean, ``X @ X.T``-based distances, a plain Weiszfeld loop, ...) and
   the PyTorch equivalent (``torch.median(T, dim=0).values``, ``torch.cdist``, ...) on that
   same input, in the same process: the median of repeats after one warm-up call;

and prints the time, the effective bandwidth (bytes of the input read once / time), its
fraction of the machine's read bandwidth (measured at start: a NumPy sum over a large array,
on one thread and on all cores, the better of the two), and the speed-ups.

The kernel registry :data:`KERNELS` and :class:`Case` are also used by ``bench/`` (the
pytest-benchmark suite), so both check and time exactly the same thing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

DEFAULT_OPS = ("median", "trimmed_mean", "mean", "pairwise_distances", "krum", "multi_krum",
               "geometric_median", "clip", "centered_clipping", "nnm", "rand_k")
DEFAULT_N = (5, 32, 100, 1000)
DEFAULT_D = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
DEFAULT_MAX_BYTES = {"cpu": 512 << 20, "cuda": 16 << 30}

EPILOG = """\
columns:
  time      median of the timed repeats (after one warm-up call) of the byzcore call on
            the cell's input; for geometric_median the time of ONE Weiszfeld iteration
            ((t(max_iter=I) - t(max_iter=0)) / I, so the median start is not counted)
  GB/s      n * d * itemsize / time: the input read once (a kernel that reads it twice,
            or is compute-bound like pairwise_distances, shows less)
  %BW       GB/s as a fraction of the machine's read bandwidth printed in the header
  numpy     time of the NumPy equivalent on the same input (per iteration for
            geometric_median); "-" where it was not run: predicted over --baseline-cap
            seconds, or --device cuda
  x-np      numpy time / byzcore time (higher is better for byzcore)
  torch     time of the PyTorch equivalent on the same input; "-" where not installed
  x-torch   torch time / byzcore time
  note      pairwise_distances also shows the BLAS Gram X @ X.T alone (NumPy on the CPU,
            cuBLAS via torch on the GPU) and byzcore's time as a multiple of it

Every cell is checked against a float64 NumPy reference before it is timed; a cell that
disagrees is reported as MISMATCH without timings, and the command then exits with 1.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: some machines set these so that old OpenBLAS builds
run safely; they make a current NumPy's OpenBLAS pick a slower kernel (this matters for
the X @ X.T baseline of pairwise_distances, krum and nnm). To compare against a current
NumPy fairly, unset both for the bench command only:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE byzcore bench
The header shows which BLAS kernel NumPy runs (threadpoolctl, when installed). Do not
change them for tests or CI.
"""


# ============================================================================ the input
@dataclass
class Case:
    """One cell of the grid: the input in every form a kernel needs, its parameters, and
    float64 references computed lazily and shared by the kernels of the cell."""

    X: np.ndarray            # (n, d) in the benchmark dtype, on the host
    f: int
    seed: int = 0
    device: str = "cpu"
    gm_iters: int = 5
    _torch_X: Any = None
    _cache: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def eps(self) -> float:
        return float(np.finfo(self.X.dtype).eps)

    @property
    def nbytes(self) -> int:
        return int(self.X.nbytes)

    @property
    def k(self) -> int:
        """rand_k keeps 1% of the coordinates (at least one)."""
        return max(1, self.d // 100)

    @property
    def m(self) -> int:
        return self.n - self.f

    def torch_X(self) -> Any:
        """The input as a torch tensor on the bench device (CPU: shares NumPy's memory)."""
        if self._torch_X is None:
            import torch

            t = torch.from_numpy(self.X)
            self._torch_X = t.to(self.device) if self.device != "cpu" else t
        return self._torch_X

    def bz_X(self) -> Any:
        """What byzcore is called with: the NumPy array, or the CUDA tensor."""
        return self.X if self.device == "cpu" else self.torch_X()

    # ---- float64 references, computed in column chunks to bound memory
    def _chunks(self):
        step = max(1, (1 << 22) // self.n)
        for a in range(0, self.d, step):
            yield a, min(self.d, a + step)

    def cols(self) -> np.ndarray:
        """Columns on which coordinate-wise results are checked: all of them, or a seeded
        sample of about 2^22 entries on big cells (a coordinate-wise kernel cannot be right
        on a random sample and wrong elsewhere by chance)."""
        if "cols" not in self._cache:
            limit = max(1, (1 << 22) // self.n)
            if self.d <= limit:
                c = np.arange(self.d)
            else:
                c = np.sort(np.random.default_rng(self.seed + 1).choice(self.d, limit, replace=False))
            self._cache["cols"] = c
        return self._cache["cols"]

    def Xs64(self) -> np.ndarray:
        if "Xs64" not in self._cache:
            self._cache["Xs64"] = self.X[:, self.cols()].astype(np.float64)
        return self._cache["Xs64"]

    def sqnorms64(self) -> np.ndarray:
        if "sqn" not in self._cache:
            s = np.zeros(self.n)
            for a, b in self._chunks():
                c = self.X[:, a:b].astype(np.float64)
                s += np.einsum("ij,ij->i", c, c)
            self._cache["sqn"] = s
        return self._cache["sqn"]

    def sqdist64(self) -> np.ndarray:
        """Squared distances in float64 (Gram in float64: no visible cancellation here)."""
        if "D2" not in self._cache:
            G = np.zeros((self.n, self.n))
            for a, b in self._chunks():
                c = self.X[:, a:b].astype(np.float64)
                G += c @ c.T
            sq = np.diag(G).copy()
            D2 = np.maximum(sq[:, None] + sq[None, :] - 2 * G, 0)
            np.fill_diagonal(D2, 0)
            self._cache["D2"] = D2
        return self._cache["D2"]

    def krum_scores64(self) -> np.ndarray:
        D2 = self.sqdist64().copy()
        np.fill_diagonal(D2, np.inf)
        return np.sort(D2, axis=1)[:, : self.n - self.f - 2].sum(axis=1)

    def threshold(self) -> float:
        """Clipping threshold / tau: the median row norm, so about half the rows are clipped."""
        return float(np.median(np.sqrt(self.sqnorms64())))

    def matmul64(self, W: np.ndarray) -> np.ndarray:
        """W @ X in float64 on the checked columns."""
        return W @ self.Xs64()

    def weiszfeld64(self, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
        """A plain float64 smoothed-Weiszfeld reference, from z, iters iterations."""
        z = z.astype(np.float64)
        for _ in range(iters):
            d2 = np.zeros(self.n)
            for a, b in self._chunks():
                c = self.X[:, a:b].astype(np.float64) - z[a:b]
                d2 += np.einsum("ij,ij->i", c, c)
            w = 1.0 / np.maximum(nu, np.sqrt(d2))
            zn = np.empty(self.d)
            for a, b in self._chunks():
                zn[a:b] = w @ self.X[:, a:b].astype(np.float64)
            z = zn / w.sum()
        return z


def default_f(n: int) -> int:
    """The number of Byzantine messages a cell holds: 20% of n, within every rule's bound."""
    return max(0, min(n // 5, (n - 3) // 2))


def make_messages(n: int, d: int, dtype: Any = np.float32, *, f: int | None = None, seed: int = 0) -> np.ndarray:
    """A seeded ``(n, d)`` input like one round of robust aggregation: honest rows
    ``g + sigma_i * noise`` with sigma spread over [0.5, 1.5] (so distances and scores are
    well separated and the checks are meaningful), and the last ``f`` rows Byzantine
    (``-3 g + noise``, far from the honest ones). The noise is uniform with unit variance
    (drawing it is twice as fast as Gaussian noise, which matters at 10^8 entries). All
    finite: NumPy's references have no non-finite policy to compare with."""
    f = default_f(n) if f is None else f
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    X = rng.random((n, d), dtype=dt)
    X -= dt.type(0.5)
    X *= (2 * math.sqrt(3) * np.linspace(0.5, 1.5, n)).astype(dt)[:, None]
    g = rng.standard_normal(d, dtype=dt)
    X[: n - f] += g
    X[n - f:] -= 3 * g
    return X


# ============================================================================ checks
def _ratio(got: np.ndarray, ref: np.ndarray, tol: Any) -> float:
    """max |got - ref| / tol (elementwise tol allowed); NaN anywhere in got gives inf."""
    got = np.asarray(got, dtype=np.float64)
    diff = np.abs(got - ref)
    if not np.all(np.isfinite(diff)):
        return math.inf
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), diff.shape)
    r = np.divide(diff, tol, out=np.full(diff.shape, np.inf), where=tol > 0)
    r[diff == 0] = 0
    return float(r.max()) if r.size else 0.0


def _sum_tol(m: int, eps: float) -> float:
    """Relative error bound for a sum of m same-sign terms in any order (Higham, Accuracy and
    Stability, eq. 4.4: (m - 1) u with u = eps / 2), plus the final scaling, doubled."""
    return (m + 1) * eps


def _norm_tol(d: int, eps: float) -> float:
    """Relative error allowed on a norm-derived factor (a clip scale, a distance weight).

    The worst-case bound d*eps is useless for d = 1e7 in float32; kernels sum squares in
    SIMD lanes and tiles, whose rounding errors grow like sqrt(d) * eps (Higham sec. 2.8).
    4 sqrt(d) eps stays far below what a structural bug (a wrong row, coordinate or scale)
    changes, which is of order one."""
    return (16 + 4 * math.sqrt(d)) * eps


def _host(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_mean(c: Case, out: Any) -> float:
    out = _host(out)[c.cols()]
    Xs = c.Xs64()
    return _ratio(out, Xs.mean(0), _sum_tol(c.n, c.eps) * np.abs(Xs).mean(0))


def check_median(c: Case, out: Any) -> float:
    out = _host(out)[c.cols()]
    ref = np.median(c.Xs64(), axis=0)
    # Selection is exact; an even n averages two values: one rounding (2 eps for margin).
    return _ratio(out, ref, 0 if c.n % 2 else 2 * c.eps * np.abs(ref))


def check_trimmed_mean(c: Case, out: Any) -> float:
    out = _host(out)[c.cols()]
    kept = np.sort(c.Xs64(), axis=0)[c.f: c.n - c.f]
    return _ratio(out, kept.mean(0), _sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


def _dist_tol_sq(c: Case) -> np.ndarray:
    """Allowed error on squared distances: a Gram-based distance loses digits relative to
    ||x_i||^2 + ||x_j||^2 (cancellation), not to the distance itself."""
    sq = c.sqnorms64()
    return _norm_tol(c.d, c.eps) * (sq[:, None] + sq[None, :])


def check_pairwise_distances(c: Case, out: Any) -> float:
    out = _host(out).astype(np.float64)
    if not (np.all(np.diag(out) == 0) and np.all(out >= 0) and np.array_equal(out, out.T)):
        return math.inf  # zero diagonal, non-negative, symmetric: the contract itself
    ref = np.sqrt(c.sqdist64())
    tsq = _dist_tol_sq(c)
    # |sqrt(a) - sqrt(b)| <= min(sqrt|a - b|, |a - b| / sqrt(b)), plus the sqrt's rounding.
    tol = np.minimum(np.sqrt(tsq), tsq / np.maximum(ref, 1e-300)) + 2 * c.eps * ref
    return _ratio(out, ref, tol)


def check_krum(c: Case, out: Any) -> float:
    out = _host(out)
    scores = c.krum_scores64()
    best = int(np.argmin(scores))
    if np.array_equal(out, c.X[best]):
        return 0.0
    # Another row is acceptable only if its score ties the best within rounding.
    same = [i for i in range(c.n) if np.array_equal(out, c.X[i])]
    if not same:
        return math.inf  # not one of the messages
    tol = (c.n - c.f - 2) * float(_dist_tol_sq(c).max())
    return (scores[same[0]] - scores[best]) / tol


def check_multi_krum(c: Case, out: Any) -> float:
    out = _host(out)[c.cols()]
    chosen = np.argsort(c.krum_scores64(), kind="stable")[: c.m]
    kept = c.Xs64()[chosen]
    return _ratio(out, kept.mean(0), _sum_tol(c.m, c.eps) * np.abs(kept).mean(0))


def check_nnm(c: Case, out: Any) -> float:
    out = _host(out)[:, c.cols()]
    near = np.argsort(c.sqdist64(), axis=1, kind="stable")[:, : c.m]
    W = np.zeros((c.n, c.n))
    np.put_along_axis(W, near, 1.0 / c.m, axis=1)
    scale = W @ np.abs(c.Xs64())
    return _ratio(out, c.matmul64(W), _sum_tol(c.m, c.eps) * scale)


def _clip_factors(c: Case, tau: float) -> np.ndarray:
    norms = np.sqrt(c.sqnorms64())
    return np.minimum(1.0, tau / np.maximum(norms, 1e-300))


def check_clip(c: Case, out: Any) -> float:
    out = _host(out)[:, c.cols()]
    ref = c.Xs64() * _clip_factors(c, c.threshold())[:, None]
    return _ratio(out, ref, (_norm_tol(c.d, c.eps) + 2 * c.eps) * np.abs(ref))


def check_centered_clipping(c: Case, out: Any) -> float:
    out = _host(out)[c.cols()]
    clipped = c.Xs64() * _clip_factors(c, c.threshold())[:, None]
    tol = (_sum_tol(c.n, c.eps) + _norm_tol(c.d, c.eps)) * np.abs(clipped).mean(0)
    return _ratio(out, clipped.mean(0), tol)


def check_rand_k(c: Case, out: Any) -> float:
    import byzcore

    out = _host(out)
    idx = np.asarray(byzcore.rand_k_indices(c.d, c.k, seed=c.seed))
    if idx.shape != (c.k,) or idx[0] < 0 or idx[-1] >= c.d or np.any(np.diff(idx) <= 0):
        return math.inf  # k distinct ascending coordinates in range
    ref = c.X[:, idx].astype(np.float64) * (c.d / c.k)
    r = _ratio(out[:, idx], ref, 2 * c.eps * np.abs(ref))
    others = np.setdiff1d(c.cols(), idx, assume_unique=True)
    return r if np.all(out[:, others] == 0) else math.inf


GM_CHECK_ITERS = 2  # enough to exercise the update; every iteration costs two float64 passes


def check_geometric_median(c: Case, out: Any) -> float:
    """``out`` is byzcore's result with max_iter=GM_CHECK_ITERS, tol=0, started (like the
    reference) at byzcore's coordinate-wise median, itself checked on sampled columns."""
    import byzcore

    z0 = _host(byzcore.median(c.bz_X())).astype(np.float64)
    if check_median(c, z0.astype(c.X.dtype)) > 1:
        return math.inf
    ref = c.weiszfeld64(z0, GM_CHECK_ITERS)
    out = _host(out)
    # Each iteration: weights from norms (_norm_tol) and a weighted mean (_sum_tol).
    tol = (GM_CHECK_ITERS + 1) * (_sum_tol(c.n, c.eps) + _norm_tol(c.d, c.eps)) * np.abs(c.X).max(axis=0)
    return _ratio(out, ref, tol)


# ============================================================================ the kernels
@dataclass
class Kernel:
    """One benchmarked kernel: byzcore's call, its NumPy and PyTorch equivalents (each
    ``case -> thunk``), the check of byzcore's result, and how its cost grows with n."""

    name: str
    bz: Callable[[Case], Callable[[], Any]]
    numpy: Callable[[Case], Callable[[], Any]] | None
    torch: Callable[[Case], Callable[[], Any]] | None
    check: Callable[[Case, Any], float]
    n_power: int = 1          # cost ~ n**n_power * d (for the baseline-time prediction)
    per_iteration: bool = False
    check_call: Callable[[Case], Any] | None = None  # byzcore call checked, if not bz's

    def checked_result(self, case: Case) -> Any:
        return self.check_call(case) if self.check_call else self.bz(case)()


def _np_gram_dist2(X: np.ndarray) -> np.ndarray:
    """Squared distances as NumPy users write them: norms + the BLAS Gram X @ X.T."""
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None, :] - 2 * (X @ X.T)
    np.maximum(D, 0, out=D)
    np.fill_diagonal(D, 0)
    return D


def _np_krum_scores(X: np.ndarray, f: int) -> np.ndarray:
    D = _np_gram_dist2(X)
    np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, : X.shape[0] - f - 2].sum(axis=1)


def _np_weiszfeld(X: np.ndarray, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
    for _ in range(iters):
        diff = X - z
        w = 1.0 / np.maximum(nu, np.sqrt(np.einsum("ij,ij->i", diff, diff)))
        z = (w @ X) / w.sum()
    return z


def _np_clip(X: np.ndarray, thr: float) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    with np.errstate(divide="ignore"):
        scale = np.minimum(1, thr / norms).astype(X.dtype)
    return X * scale[:, None]


def _np_rand_k(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    d = X.shape[1]
    idx = np.random.default_rng(seed).choice(d, k, replace=False)
    out = np.zeros_like(X)
    out[:, idx] = X[:, idx] * X.dtype.type(d / k)
    return out


def _np_nnm(X: np.ndarray, f: int) -> np.ndarray:
    n = X.shape[0]
    near = np.argpartition(_np_gram_dist2(X), n - f - 1, axis=1)[:, : n - f]
    W = np.zeros((n, n), dtype=X.dtype)
    np.put_along_axis(W, near, 1.0 / (n - f), axis=1)
    return W @ X


def _t():
    import torch

    return torch


def _torch_krum_scores(T: Any, f: int) -> Any:
    torch = _t()
    D = torch.cdist(T, T).square_()
    D.fill_diagonal_(math.inf)
    return torch.topk(D, T.shape[0] - f - 2, dim=1, largest=False).values.sum(1)


def _torch_weiszfeld(T: Any, z: Any, iters: int, nu: float = 1e-6) -> Any:
    torch = _t()
    for _ in range(iters):
        w = 1.0 / torch.linalg.vector_norm(T - z, dim=1).clamp_min(nu)
        z = (w @ T) / w.sum()
    return z


def _torch_clip(T: Any, thr: float) -> Any:
    torch = _t()
    return T * torch.clamp(thr / torch.linalg.vector_norm(T, dim=1), max=1)[:, None]


def _torch_rand_k(T: Any, k: int) -> Any:
    torch = _t()
    d = T.shape[1]
    idx = torch.randperm(d, device=T.device)[:k]
    out = torch.zeros_like(T)
    out[:, idx] = T[:, idx] * (d / k)
    return out


def _torch_nnm(T: Any, f: int) -> Any:
    torch = _t()
    n = T.shape[0]
    near = torch.topk(torch.cdist(T, T), n - f, dim=1, largest=False).indices
    W = torch.zeros((n, n), dtype=T.dtype, device=T.device).scatter_(1, near, 1.0 / (n - f))
    return W @ T


def _bz():
    import byzcore

    return byzcore


def gm_iterations(X: Any, max_iter: int) -> int:
    """The Weiszfeld iterations byzcore runs with tol=0 (an exact fixed point may still stop
    it early), read from the core, which returns the count the public function drops."""
    from ._arrays import Batch
    from ._native import core

    b = Batch("geometric_median", X)
    _, ptr = b.empty((b.d,))
    return int(core.geometric_median(b.messages, [], 1e-6, max_iter, 0.0, ptr))


def _call(fn: Callable[..., Any], *getters: Callable[[Case], Any]) -> Callable[[Case], Callable[[], Any]]:
    """``case -> thunk``: the arguments are taken from the case before timing starts (a
    threshold, a tensor view), so the thunk times ``fn`` alone."""

    def make(c: Case) -> Callable[[], Any]:
        args = [g(c) for g in getters]
        return lambda: fn(*args)

    return make


def _gm_start(c: Case) -> np.ndarray:
    """The baselines' Weiszfeld start (byzcore's median; not part of what they time)."""
    if "z0" not in c._cache:
        c._cache["z0"] = _host(_bz().median(c.bz_X())).astype(c.X.dtype)
    return c._cache["z0"]


def _gm_start_torch(c: Case) -> Any:
    return _t().from_numpy(_gm_start(c)).to(c.torch_X().device)


# What each library is called with: byzcore's input, the NumPy array, the torch tensor.
BZ, NP, TO = Case.bz_X, (lambda c: c.X), Case.torch_X
F, K, SEED, THR, GMI = (lambda c: c.f), (lambda c: c.k), (lambda c: c.seed), Case.threshold, (lambda c: c.gm_iters)


def _np_trimmed(X: np.ndarray, f: int) -> np.ndarray:
    return np.sort(X, axis=0)[f: X.shape[0] - f].mean(axis=0)


def _torch_trimmed(T: Any, f: int) -> Any:
    return _t().sort(T, dim=0).values[f: T.shape[0] - f].mean(0)


def _np_krum(X: np.ndarray, f: int) -> np.ndarray:
    return X[int(np.argmin(_np_krum_scores(X, f)))].copy()


def _np_multi_krum(X: np.ndarray, f: int) -> np.ndarray:
    return X[np.argsort(_np_krum_scores(X, f))[: X.shape[0] - f]].mean(axis=0)


def _torch_krum(T: Any, f: int) -> Any:
    return T[_torch_krum_scores(T, f).argmin()].clone()


def _torch_multi_krum(T: Any, f: int) -> Any:
    return T[_torch_krum_scores(T, f).argsort()[: T.shape[0] - f]].mean(0)


KERNELS: dict[str, Kernel] = {k.name: k for k in [
    Kernel("median",
           _call(lambda X: _bz().median(X), BZ),
           _call(lambda X: np.median(X, axis=0), NP),
           _call(lambda T: _t().median(T, dim=0).values, TO),
           check_median),
    Kernel("trimmed_mean",
           _call(lambda X, f: _bz().trimmed_mean(X, f), BZ, F),
           _call(_np_trimmed, NP, F),
           _call(_torch_trimmed, TO, F),
           check_trimmed_mean),
    Kernel("mean",
           _call(lambda X: _bz().mean(X), BZ),
           _call(lambda X: X.mean(axis=0), NP),
           _call(lambda T: T.mean(0), TO),
           check_mean),
    Kernel("pairwise_distances",
           _call(lambda X: _bz().pairwise_distances(X, squared=False), BZ),
           _call(lambda X: np.sqrt(_np_gram_dist2(X)), NP),
           _call(lambda T: _t().cdist(T, T), TO),
           check_pairwise_distances, n_power=2),
    Kernel("krum",
           _call(lambda X, f: _bz().krum(X, f), BZ, F),
           _call(_np_krum, NP, F),
           _call(_torch_krum, TO, F),
           check_krum, n_power=2),
    Kernel("multi_krum",
           _call(lambda X, f: _bz().multi_krum(X, f), BZ, F),
           _call(_np_multi_krum, NP, F),
           _call(_torch_multi_krum, TO, F),
           check_multi_krum, n_power=2),
    Kernel("geometric_median",
           _call(lambda X, it: _bz().geometric_median(X, max_iter=it, tol=0.0), BZ, GMI),
           _call(_np_weiszfeld, NP, _gm_start, GMI),
           _call(_torch_weiszfeld, TO, _gm_start_torch, GMI),
           check_geometric_median, per_iteration=True,
           check_call=lambda c: _bz().geometric_median(c.bz_X(), max_iter=GM_CHECK_ITERS, tol=0.0)),
    Kernel("clip",
           _call(lambda X, thr: _bz().clip(X, thr), BZ, THR),
           _call(_np_clip, NP, THR),
           _call(_torch_clip, TO, THR),
           check_clip),
    Kernel("centered_clipping",
           _call(lambda X, tau: _bz().centered_clipping(X, tau), BZ, THR),
           _call(lambda X, tau: _np_clip(X, tau).mean(axis=0), NP, THR),
           _call(lambda T, tau: _torch_clip(T, tau).mean(0), TO, THR),
           check_centered_clipping),
    Kernel("nnm",
           _call(lambda X, f: _bz().nnm(X, f), BZ, F),
           _call(_np_nnm, NP, F),
           _call(_torch_nnm, TO, F),
           check_nnm, n_power=2),
    Kernel("rand_k",
           _call(lambda X, k, seed: _bz().rand_k(X, k, seed=seed), BZ, K, SEED),
           _call(_np_rand_k, NP, K, SEED),
           _call(_torch_rand_k, TO, K),
           check_rand_k),
]}


def unavailable_reason(exc: BaseException) -> str | None:
    """The reason a kernel cannot run in this build (not a bug in the cell), or None."""
    msg = str(exc)
    for marker in ("not written yet", "built without CUDA", "not compiled with CUDA"):
        if marker in msg:
            return msg
    return None


# ============================================================================ timing
def _sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_call(fn: Callable[[], Any], *, repeat: int, budget: float, sync: Callable[[], None]) -> float:
    """Median seconds per call: one warm-up call, then up to ``repeat`` samples (fewer when
    one call is slow, so a sample set costs about ``budget`` seconds); fast calls are looped
    so that each sample lasts about a millisecond."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    loops = max(1, min(10_000, int(1e-3 / max(first, 1e-9))))
    samples = max(1, min(repeat, int(budget / max(first * loops, 1e-9))))
    times = []
    for _ in range(samples):
        sync()
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / loops)
    return statistics.median(times)


def measure_read_bandwidth(nbytes: int, device: str = "cpu") -> dict:
    """Read bandwidth in GB/s: a sum over an ``nbytes`` float64 array, best of 3.

    On the CPU, NumPy's sum runs on one thread; the same sum split over every core in a
    thread pool (NumPy releases the GIL in reductions) shows what all cores read, which is
    what the multi-threaded kernels are compared to: ``best`` is the larger of the two."""
    if device == "cuda":
        import torch

        a = torch.ones(nbytes // 8, dtype=torch.float64, device="cuda")
        t = time_call(lambda: a.sum(), repeat=5, budget=2.0, sync=torch.cuda.synchronize)
        gbps = nbytes / t / 1e9
        return {"bytes": nbytes, "torch_sum_gbps": gbps, "best_gbps": gbps}
    from concurrent.futures import ThreadPoolExecutor

    a = np.ones(nbytes // 8)
    t1 = time_call(a.sum, repeat=3, budget=2.0, sync=lambda: None)
    workers = os.cpu_count() or 1
    parts = np.array_split(a, workers)
    with ThreadPoolExecutor(workers) as pool:
        tn = time_call(lambda: list(pool.map(np.sum, parts)), repeat=3, budget=2.0, sync=lambda: None)
    one, alln = nbytes / t1 / 1e9, nbytes / tn / 1e9
    return {"bytes": nbytes, "numpy_sum_1thread_gbps": one, "numpy_sum_all_cores_gbps": alln,
            "threads": workers, "best_gbps": max(one, alln)}


# ============================================================================ reporting
def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g}{unit}"
    return f"{t / 1e-9:.3g}ns"


def _fmt_x(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3g}x" if x < 100 else f"{x:.0f}x")


COLUMNS = ("op", "n", "d", "time", "GB/s", "%BW", "numpy", "x-np", "torch", "x-torch", "note")
_WIDTHS = (18, 5, 9, 8, 7, 5, 8, 7, 8, 7, 0)


def _line(values: tuple) -> str:
    return " ".join(str(v).rjust(w) if i and w else str(v).ljust(w) for i, (v, w) in enumerate(zip(values, _WIDTHS))).rstrip()


def format_row(r: dict) -> str:
    if r["status"] != "ok":
        return _line((r["op"], r["n"], r["d"], "-", "-", "-", "-", "-", "-", "-", f"{r['status'].upper()}: {r.get('note', '')}"))
    bw = r.get("bw_fraction")
    return _line((r["op"], r["n"], r["d"], _fmt_time(r["time_s"]), f"{r['gbps']:.3g}",
                  "-" if bw is None else f"{100 * bw:.0f}%",
                  _fmt_time(r.get("numpy_s")), _fmt_x(r.get("speedup_numpy")),
                  _fmt_time(r.get("torch_s")), _fmt_x(r.get("speedup_torch")), r.get("note", "")))


def environment(device: str) -> dict:
    """What the figures depend on: CPU, build, library versions, BLAS, threads."""
    import byzcore

    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                           "cpu": _cpu_model(), "cores": os.cpu_count(), "device": device,
                           "byzcore": byzcore.build_info(), "numpy": np.__version__}
    env["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env["openblas_env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                       for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        env["blas"] = None
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if device == "cuda" and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        env["torch"] = None
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _header(env: dict, bw: dict) -> list[str]:
    bz = env["byzcore"]
    first = (f"byzcore {bz['version']} ({bz['simd']}, {bz['threads']} threads, cuda={bz['cuda']}) | "
             f"{env['cpu']}, {env['cores']} cores | numpy {env['numpy']} | torch {env['torch'] or 'not installed'}")
    lines = [first]
    if env.get("blas"):
        lines.append("numpy BLAS: " + ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']} "
                                                f"({b['num_threads']} threads)" for b in env["blas"]))
    if env["openblas_env"]:
        lines.append("note: " + " ".join(f"{k}={v}" for k, v in env["openblas_env"].items()) +
                     " is set: it can slow NumPy's BLAS; see `byzcore bench --help`")
    load = env.get("load_average")
    if load and load[0] > 0.5 * (env["cores"] or 1):
        lines.append(f"note: load average {load[0]:.1f} on {env['cores']} cores: other processes compete for the "
                     "cores, so multi-threaded timings are pessimistic")
    if "numpy_sum_1thread_gbps" in bw:
        lines.append(f"read bandwidth: {bw['best_gbps']:.1f} GB/s (NumPy sum of {bw['bytes'] / 2**30:.2g} GiB: "
                     f"{bw['numpy_sum_1thread_gbps']:.1f} GB/s on 1 thread, "
                     f"{bw['numpy_sum_all_cores_gbps']:.1f} GB/s on {bw['threads']})")
    elif bw:
        lines.append(f"read bandwidth: {bw['best_gbps']:.1f} GB/s (torch sum of {bw['bytes'] / 2**30:.2g} GiB on {env.get('gpu')})")
    return lines


# ============================================================================ the command
class _Counter:
    """The progress bar when tqdm is not installed: a counter on stderr."""

    def __init__(self, total: int, disable: bool):
        self.total, self.k, self.disable = total, 0, disable
        self.tty = sys.stderr.isatty()

    def set_description(self, s: str) -> None:
        self.desc = s

    def update(self, k: int = 1) -> None:
        self.k += k
        if not self.disable:
            end = "\r" if self.tty else "\n"
            sys.stderr.write(f"bench {self.k}/{self.total} {getattr(self, 'desc', '')}".ljust(60) + end)
            sys.stderr.flush()

    def write(self, s: str) -> None:
        print(s, flush=True)

    def close(self) -> None:
        if not self.disable and self.tty:
            sys.stderr.write("\n")


def _progress(total: int, disable: bool) -> Any:
    try:
        from tqdm import tqdm

        class _Bar(tqdm):  # rows go to stdout, the bar to stderr
            def write(self, s: str) -> None:  # type: ignore[override]
                tqdm.write(s, file=sys.stdout)

        return _Bar(total=total, disable=disable, file=sys.stderr, unit="cell", leave=False)
    except ImportError:
        return _Counter(total, disable)


def _size(text: str) -> int:
    """512MiB, 2GB, 1e9 -> bytes."""
    t = text.strip()
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6,
             "gb": 10**9, "tb": 10**12, "b": 1}
    for u, s in units.items():
        if t.lower().endswith(u):
            return int(float(t[: -len(u)]) * s)
    return int(float(t))


def _count(text: str) -> int:
    """1e6 -> 1000000."""
    v = float(text)
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return int(v)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _HelpFormatter
    parser.description = ("Time byzcore's kernels against NumPy and PyTorch on the same inputs, after checking "
                          "each result against a float64 NumPy reference.")
    parser.epilog = EPILOG
    parser.add_argument("--ops", nargs="+", default=list(DEFAULT_OPS), choices=list(KERNELS), metavar="OP",
                        help=f"kernels to run, from: {' '.join(KERNELS)}")
    parser.add_argument("--n", nargs="+", type=_count, default=list(DEFAULT_N), help="numbers of messages")
    parser.add_argument("--d", nargs="+", type=_count, default=list(DEFAULT_D), help="message dimensions (1e6 works)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: inputs are torch CUDA tensors, baselines are torch on the GPU")
    parser.add_argument("--max-bytes", type=_size, default=None,
                        help="skip cells whose input n*d*itemsize exceeds this (e.g. 512MiB, 4GB); "
                             f"default {DEFAULT_MAX_BYTES['cpu'] >> 20}MiB on cpu, {DEFAULT_MAX_BYTES['cuda'] >> 30}GiB on cuda")
    parser.add_argument("--baseline-cap", type=float, default=3.0,
                        help="do not run a NumPy/PyTorch baseline predicted (from the smaller cells) to take "
                             "longer than this many seconds per call; shown as '-'")
    parser.add_argument("--f", type=int, default=None, help="Byzantine messages per cell (default 20%% of n)")
    parser.add_argument("--gm-iters", type=int, default=5, help="Weiszfeld iterations timed for geometric_median")
    parser.add_argument("--bw-bytes", type=_size, default=1 << 30, help="array size for the read-bandwidth measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baselines")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", default=None, help="also write every figure and the environment to this JSON file")
    parser.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The ``byzcore bench`` command that reproduces this run (every option spelled out)."""
    parts = ["byzcore bench", "--ops", *args.ops, "--n", *map(str, args.n), "--d", *(f"{d:g}" for d in args.d),
             "--dtype", args.dtype, "--repeat", str(args.repeat), "--device", args.device]
    if args.max_bytes is not None:
        parts += ["--max-bytes", str(args.max_bytes)]
    parts += ["--baseline-cap", f"{args.baseline_cap:g}", "--gm-iters", str(args.gm_iters), "--seed", str(args.seed)]
    if args.f is not None:
        parts += ["--f", str(args.f)]
    if args.no_torch:
        parts.append("--no-torch")
    return " ".join(parts)


def _check_device(device: str) -> None:
    if device != "cuda":
        return
    try:
        import torch
    except ImportError:
        raise SystemExit("byzcore bench --device cuda needs PyTorch with CUDA (it runs on torch CUDA tensors); "
                         "install torch, or use --device cpu") from None
    if not torch.cuda.is_available():
        raise SystemExit("byzcore bench --device cuda: no CUDA GPU is visible to PyTorch "
                         "(torch.cuda.is_available() is False); run it on a machine with a GPU, or use --device cpu")
    import byzcore

    if not byzcore.build_info()["cuda"]:
        raise SystemExit("byzcore bench --device cuda: this byzcore was built without CUDA support; "
                         "reinstall with `BYZCORE_CUDA=1 pip install .` on a machine with the CUDA toolkit")


class _Predictor:
    """Predicts a baseline's time from the last cell it ran on (cost ~ n**p * d)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[int, int, float]] = {}

    def predict(self, key: tuple[str, str], n: int, d: int, p: int) -> float | None:
        if key not in self.last:
            return None
        n0, d0, t0 = self.last[key]
        return t0 * (n / n0) ** p * (d / d0)

    def record(self, key: tuple[str, str], n: int, d: int, t: float) -> None:
        # Below ~20 ms, call overhead and scheduling noise dominate: no basis to scale from.
        if t >= 0.02:
            self.last[key] = (n, d, t)


def run(args: argparse.Namespace) -> int:
    _check_device(args.device)
    dtype = np.dtype(args.dtype)
    max_bytes = args.max_bytes if args.max_bytes is not None else DEFAULT_MAX_BYTES[args.device]
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            use_torch = False
    ops = list(dict.fromkeys(args.ops))
    cells = [(n, d) for n in sorted(set(args.n)) for d in sorted(set(args.d))]
    kept = [(n, d) for n, d in cells if n * d * dtype.itemsize <= max_bytes]
    skipped = [(n, d) for n, d in cells if (n, d) not in kept]

    env = environment(args.device)
    bw = measure_read_bandwidth(min(args.bw_bytes, max(max_bytes, 1 << 24)), args.device) if args.bw_bytes > 0 else {}
    for line in _header(env, bw):
        print(line)
    print(f"dtype {dtype.name}, device {args.device}, f = {'20% of n' if args.f is None else args.f}, "
          f"repeat {args.repeat}, max bytes {max_bytes / 2**20:.0f} MiB"
          + (f"; skipped {len(skipped)} cells over --max-bytes: " + " ".join(f"{n}x{d:g}" for n, d in skipped)
             if skipped else ""))
    print(_line(COLUMNS))
    sys.stdout.flush()

    sync = _sync(args.device)
    budget = 2.0
    results: list[dict] = []
    unavailable: dict[str, str] = {}
    pred = _Predictor()
    bar = _progress(len(kept) * len(ops), args.no_progress)
    try:
        for n, d in kept:
            f = default_f(n) if args.f is None else args.f
            case = Case(make_messages(n, d, dtype, f=min(f, n), seed=args.seed), f=f, seed=args.seed,
                        device=args.device, gm_iters=args.gm_iters)
            for op in ops:
                bar.set_description(f"{op} n={n} d={d:g}")
                row = {"op": op, "n": n, "d": d, "dtype": dtype.name, "device": args.device, "f": f,
                       "bytes": case.nbytes}
                if op in unavailable:
                    row.update(status="unavailable", note=unavailable[op])
                else:
                    _bench_cell(KERNELS[op], case, row, args, use_torch, sync, budget, pred)
                    if row["status"] == "unavailable":
                        unavailable[op] = row["note"]
                        bar.write(f"note: {op} is not available in this build ({row['note']}); skipping it")
                    else:
                        row["bw_fraction"] = row["gbps"] / bw["best_gbps"] if bw and row.get("gbps") else None
                        bar.write(format_row(row))
                results.append(row)
                bar.update(1)
            del case
            _free(args.device)
    finally:
        bar.close()

    bad = [r for r in results if r["status"] in ("mismatch", "error")]
    if unavailable:
        print("not measured (kernel not available in this build): " + ", ".join(unavailable))
    if bad:
        print(f"{len(bad)} cell(s) disagreed with the NumPy reference or failed; their timings were not reported")
    if args.json:
        doc = {"command": command_line(args),
               "environment": env, "bandwidth": bw, "dtype": dtype.name, "device": args.device,
               "max_bytes": max_bytes, "skipped_cells": [{"n": n, "d": d} for n, d in skipped],
               "unavailable": unavailable, "results": results}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    return 1 if bad else 0


def _free(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _bench_cell(k: Kernel, case: Case, row: dict, args: argparse.Namespace, use_torch: bool,
                sync: Callable[[], None], budget: float, pred: _Predictor) -> None:
    """Fills ``row``: checks byzcore on the case, then times it and its baselines."""
    n, d = case.n, case.d
    try:
        out = k.checked_result(case)
        sync()
        ratio = k.check(case, out)
        del out
    except Exception as exc:  # noqa: BLE001 - reported per cell, the run goes on
        reason = unavailable_reason(exc)
        if reason:
            row.update(status="unavailable", note=reason)
        elif isinstance(exc, (ValueError, TypeError)):
            row.update(status="skipped", note=str(exc))
        else:
            row.update(status="error", note=f"{type(exc).__name__}: {exc}")
        return
    row["check_ratio"] = ratio  # max |error| / tolerance; <= 1 passes
    if not ratio <= 1:
        row.update(status="mismatch", note=f"differs from the NumPy reference: max error / tolerance = {ratio:.3g}")
        return

    t = time_call(k.bz(case), repeat=args.repeat, budget=budget, sync=sync)
    notes = []
    if k.per_iteration:
        iters = gm_iterations(case.bz_X(), case.gm_iters)
        sync()
        t0 = time_call(lambda: _bz().geometric_median(case.bz_X(), max_iter=0), repeat=args.repeat,
                       budget=budget, sync=sync)
        if iters < 1:
            row.update(status="skipped", note="geometric_median ran no iteration")
            return
        t = max(t - t0, 1e-9) / iters
        notes.append(f"per iteration ({iters} its)")
    row.update(status="ok", time_s=t, gbps=case.nbytes / t / 1e9)

    for lib, maker in (("numpy", k.numpy), ("torch", k.torch)):
        if maker is None or (lib == "numpy" and args.device != "cpu") or (lib == "torch" and not use_torch):
            continue
        key = (k.name, lib)
        guess = pred.predict(key, n, d, k.n_power)
        if guess is not None and guess > args.baseline_cap:
            notes.append(f"{lib} skipped (~{_fmt_time(guess)})")
            continue
        try:
            tb = time_call(maker(case), repeat=args.repeat, budget=budget,
                           sync=_sync(args.device) if lib == "torch" else (lambda: None))
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: the cell keeps byzcore's figure
            notes.append(f"{lib} failed ({type(exc).__name__})")
            _free(args.device)
            continue
        if k.per_iteration:
            tb /= case.gm_iters
        pred.record(key, n, d, tb * (case.gm_iters if k.per_iteration else 1))
        row[f"{lib}_s"] = tb
        row[f"speedup_{lib}"] = tb / t
    if k.name == "pairwise_distances" and ("numpy_s" in row or "torch_s" in row):
        # The BLAS Gram alone, the floor distances are measured against: NumPy's X @ X.T on
        # the CPU, cuBLAS through torch on the GPU.
        if args.device == "cpu":
            tg = time_call(lambda: case.X @ case.X.T, repeat=args.repeat, budget=budget, sync=lambda: None)
        else:
            T = case.torch_X()
            tg = time_call(lambda: T @ T.T, repeat=args.repeat, budget=budget, sync=sync)
        row["gram_s"] = tg
        notes.append(f"X@X.T {_fmt_time(tg)} ({t / tg:.2f}x of it)")
    row["note"] = "; ".join(notes)
