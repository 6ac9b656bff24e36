"""Tolerances derived from rounding-error bounds, and the check of each kernel's result
against the float64 references (:mod:`byzcore.bench.references`).

Every check returns ``max |error| / tolerance``: at most 1 passes; ``inf`` means the result
breaks the contract itself (NaN, not one of the messages, an asymmetric distance matrix).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .inputs import Case
from .references import (
    arc_threshold64,
    bulyan_selection64,
    caf_weights64,
    checked_columns,
    closest_to_median64,
    columns64,
    diameter64,
    dnc_survivors64,
    krum_scores64,
    nearest_rows,
    scatter_eigenvalue64,
    sqdist64,
    sqnorms64,
    weiszfeld64,
)

__all__ = [
    "DNC_ITERS",
    "DNC_SUB_DIM",
    "GM_CHECK_ITERS",
    "check_arc",
    "check_bulyan",
    "check_caf",
    "check_centered_clipping",
    "check_cge",
    "check_clip",
    "check_dnc",
    "check_geometric_median",
    "check_krum",
    "check_mda",
    "check_meamed",
    "check_mean",
    "check_median",
    "check_monna",
    "check_multi_krum",
    "check_nnm",
    "check_pairwise_distances",
    "check_rand_k",
    "check_smea",
    "check_trimmed_mean",
    "check_trimmed_mean_beta",
    "check_weighted_mean",
    "dist_tol_sq",
    "error_ratio",
    "norm_tol",
    "sum_tol",
    "to_host",
]


def error_ratio(got: np.ndarray, ref: np.ndarray, tol: Any) -> float:
    """``max |got - ref| / tol`` (elementwise ``tol`` allowed); NaN anywhere in ``got`` gives inf."""
    got = np.asarray(got, dtype=np.float64)
    diff = np.abs(got - ref)
    if not np.all(np.isfinite(diff)):
        return math.inf
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), diff.shape)
    r = np.divide(diff, tol, out=np.full(diff.shape, np.inf), where=tol > 0)
    r[diff == 0] = 0
    return float(r.max()) if r.size else 0.0


def sum_tol(m: int, eps: float) -> float:
    """Relative error bound for a sum of m same-sign terms in any order (Higham, Accuracy and
    Stability, eq. 4.4: (m - 1) u with u = eps / 2), plus the final scaling, doubled."""
    return (m + 1) * eps


def norm_tol(d: int, eps: float) -> float:
    """Relative error allowed on a norm-derived factor (a clip scale, a distance weight).

    The worst-case bound d*eps is useless for d = 1e7 in float32; kernels sum squares in
    SIMD lanes and tiles, whose rounding errors grow like sqrt(d) * eps (Higham sec. 2.8).
    4 sqrt(d) eps stays far below what a structural bug (a wrong row, coordinate or scale)
    changes, which is of order one."""
    return (16 + 4 * math.sqrt(d)) * eps


def to_host(x: Any) -> np.ndarray:
    """``x`` (a NumPy array or a torch tensor on any device) as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_mean(c: Case, out: Any) -> float:
    """The error of ``mean``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-mean
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)
    return error_ratio(out, Xs.mean(0), sum_tol(c.n, c.eps) * np.abs(Xs).mean(0))


def check_median(c: Case, out: Any) -> float:
    """The error of ``median``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-median
    """
    out = to_host(out)[checked_columns(c)]
    ref = np.median(columns64(c), axis=0)
    # Selection is exact; an even n averages two values: one rounding (2 eps for margin).
    return error_ratio(out, ref, 0 if c.n % 2 else 2 * c.eps * np.abs(ref))


def check_trimmed_mean(c: Case, out: Any) -> float:
    """The error of ``trimmed_mean``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    out = to_host(out)[checked_columns(c)]
    kept = np.sort(columns64(c), axis=0)[c.f: c.n - c.f]
    return error_ratio(out, kept.mean(0), sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


def dist_tol_sq(c: Case) -> np.ndarray:
    """Allowed error on squared distances: a Gram-based distance loses digits relative to
    ||x_i||^2 + ||x_j||^2 (cancellation), not to the distance itself."""
    sq = sqnorms64(c)
    return norm_tol(c.d, c.eps) * (sq[:, None] + sq[None, :])


def check_pairwise_distances(c: Case, out: Any) -> float:
    """The error of ``pairwise_distances``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-pairwise-distances
    """
    out = to_host(out).astype(np.float64)
    if not (np.all(np.diag(out) == 0) and np.all(out >= 0) and np.array_equal(out, out.T)):
        return math.inf  # zero diagonal, non-negative, symmetric: the contract itself
    ref = np.sqrt(sqdist64(c))
    tsq = dist_tol_sq(c)
    # |sqrt(a) - sqrt(b)| <= min(sqrt|a - b|, |a - b| / sqrt(b)), plus the sqrt's rounding.
    tol = np.minimum(np.sqrt(tsq), tsq / np.maximum(ref, 1e-300)) + 2 * c.eps * ref
    return error_ratio(out, ref, tol)


def check_krum(c: Case, out: Any) -> float:
    """The error of ``krum``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-krum
    """
    out = to_host(out)
    scores = krum_scores64(c)
    best = int(np.argmin(scores))
    if np.array_equal(out, c.X[best]):
        return 0.0
    # Another row is acceptable only if its score ties the best within rounding.
    same = [i for i in range(c.n) if np.array_equal(out, c.X[i])]
    if not same:
        return math.inf  # not one of the messages
    tol = (c.n - c.f - 2) * float(dist_tol_sq(c).max())
    return (scores[same[0]] - scores[best]) / tol


def check_multi_krum(c: Case, out: Any) -> float:
    """The error of ``multi_krum``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    out = to_host(out)[checked_columns(c)]
    chosen = np.argsort(krum_scores64(c), kind="stable")[: c.m]
    kept = columns64(c)[chosen]
    return error_ratio(out, kept.mean(0), sum_tol(c.m, c.eps) * np.abs(kept).mean(0))


def check_nnm(c: Case, out: Any) -> float:
    """The error of ``nnm``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#pre-nnm
    """
    out = to_host(out)[:, checked_columns(c)]
    near = np.argsort(sqdist64(c), axis=1, kind="stable")[:, : c.m]
    W = np.zeros((c.n, c.n))
    np.put_along_axis(W, near, 1.0 / c.m, axis=1)
    scale = W @ np.abs(columns64(c))
    return error_ratio(out, W @ columns64(c), sum_tol(c.m, c.eps) * scale)


def _clip_factors(c: Case, tau: float) -> np.ndarray:
    norms = np.sqrt(sqnorms64(c))
    return np.minimum(1.0, tau / np.maximum(norms, 1e-300))


def check_clip(c: Case, out: Any) -> float:
    """The error of ``clip``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#helper-clip
    """
    out = to_host(out)[:, checked_columns(c)]
    ref = columns64(c) * _clip_factors(c, c.threshold())[:, None]
    return error_ratio(out, ref, (norm_tol(c.d, c.eps) + 2 * c.eps) * np.abs(ref))


def check_centered_clipping(c: Case, out: Any) -> float:
    """The error of ``centered_clipping``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-centered-clipping
    """
    out = to_host(out)[checked_columns(c)]
    clipped = columns64(c) * _clip_factors(c, c.threshold())[:, None]
    tol = (sum_tol(c.n, c.eps) + norm_tol(c.d, c.eps)) * np.abs(clipped).mean(0)
    return error_ratio(out, clipped.mean(0), tol)


def check_rand_k(c: Case, out: Any) -> float:
    """The error of ``rand_k``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#helper-rand-k
    """
    import byzcore

    out = to_host(out)
    idx = np.asarray(byzcore.rand_k_indices(c.d, c.k, seed=c.seed))
    if idx.shape != (c.k,) or idx[0] < 0 or idx[-1] >= c.d or np.any(np.diff(idx) <= 0):
        return math.inf  # k distinct ascending coordinates in range
    ref = c.X[:, idx].astype(np.float64) * (c.d / c.k)
    r = error_ratio(out[:, idx], ref, 2 * c.eps * np.abs(ref))
    others = np.setdiff1d(checked_columns(c), idx, assume_unique=True)
    return r if np.all(out[:, others] == 0) else math.inf


GM_CHECK_ITERS = 2  # enough to exercise the update; every iteration costs two float64 passes


def check_geometric_median(c: Case, out: Any) -> float:
    """``out`` is byzcore's result with max_iter=GM_CHECK_ITERS, tol=0, started (like the
    reference) at byzcore's coordinate-wise median, itself checked on sampled columns."""
    import byzcore

    z0 = to_host(byzcore.median(c.bz_X())).astype(np.float64)
    if check_median(c, z0.astype(c.X.dtype)) > 1:
        return math.inf
    ref = weiszfeld64(c, z0, GM_CHECK_ITERS)
    out = to_host(out)
    # Each iteration: weights from norms (_norm_tol) and a weighted mean (_sum_tol).
    tol = (GM_CHECK_ITERS + 1) * (sum_tol(c.n, c.eps) + norm_tol(c.d, c.eps)) * np.abs(c.X).max(axis=0)
    return error_ratio(out, ref, tol)


# ---------------------------------------------------------------- the catalogue rules (issue 9)
def _check_mean_of(c: Case, out: Any, rows) -> float:
    """``out`` is the mean of the messages ``rows``, on the checked columns."""
    out = to_host(out)[checked_columns(c)]
    kept = columns64(c)[rows]
    return error_ratio(out, kept.mean(0), sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


def check_meamed(c: Case, out: Any) -> float:
    """The error of ``meamed``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-meamed
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)
    return error_ratio(out, closest_to_median64(Xs, c.n - c.f), sum_tol(c.n, c.eps) * np.abs(Xs).max(0))


def check_bulyan(c: Case, out: Any) -> float:
    """The error of ``bulyan``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-bulyan
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)[bulyan_selection64(c)]
    return error_ratio(out, closest_to_median64(Xs, c.n - 4 * c.f), sum_tol(c.n, c.eps) * np.abs(Xs).max(0))


def check_monna(c: Case, out: Any) -> float:
    """The error of ``monna``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-monna
    """
    return _check_mean_of(c, out, nearest_rows(sqdist64(c)[0], c.n - c.f))


def check_cge(c: Case, out: Any) -> float:
    """The error of ``cge``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-cge
    """
    return _check_mean_of(c, out, nearest_rows(sqnorms64(c), c.n - c.f))


def check_arc(c: Case, out: Any) -> float:
    """The error of ``arc``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#pre-arc
    """
    out = to_host(out)[:, checked_columns(c)]
    ref = columns64(c) * _clip_factors(c, arc_threshold64(c))[:, None]
    return error_ratio(out, ref, (norm_tol(c.d, c.eps) + 2 * c.eps) * np.abs(ref))


def check_weighted_mean(c: Case, out: Any) -> float:
    """The error of ``weighted_mean``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-mean
    """
    out = to_host(out)[checked_columns(c)]
    w = c.weights / c.weights.sum()
    Xs = columns64(c)
    return error_ratio(out, w @ Xs, sum_tol(c.n, c.eps) * (w @ np.abs(Xs)))


def check_trimmed_mean_beta(c: Case, out: Any) -> float:
    """The error of ``trimmed_mean_beta``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    g = int(c.beta * c.n)
    out = to_host(out)[checked_columns(c)]
    kept = np.sort(columns64(c), axis=0)[g: c.n - g]
    return error_ratio(out, kept.mean(0), sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


BRUTE_FORCE_SUBSETS = 20_000  # C(n, f) up to which MDA and SMEA are checked against every subset


def _check_best_subset(c: Case, out: Any, objective) -> float:
    """``out`` must be the mean of an ``n - f`` subset whose objective is the smallest: found by
    enumerating every subset when there are at most BRUTE_FORCE_SUBSETS, otherwise no worse
    than the honest rows and every "ball" (a message and its n - f - 1 nearest). The subset is
    read back from ``out`` by least squares on the checked columns (its weights are 1/(n-f))."""
    k = c.n - c.f
    got = to_host(out)[checked_columns(c)].astype(np.float64)
    w = np.linalg.lstsq(columns64(c).T, got, rcond=None)[0]
    S = np.flatnonzero(w > 0.5 / k)
    if len(S) != k:
        return math.inf
    ratio = _check_mean_of(c, out, S)
    if math.comb(c.n, c.f) <= BRUTE_FORCE_SUBSETS:
        best = min(objective(c, list(T)) for T in itertools.combinations(range(c.n), k))
    else:
        D = sqdist64(c)
        rivals = [list(range(k))] + [list(nearest_rows(D[i], k)) for i in range(c.n)]
        best = min(objective(c, T) for T in rivals)
    # The objective from float32 inputs through a Gram: a relative rounding of norm_tol.
    slack = objective(c, list(S)) - best
    return max(ratio, slack / (norm_tol(c.d, c.eps) * max(best, 1e-300)) if slack > 0 else 0.0)


def check_mda(c: Case, out: Any) -> float:
    """The error of ``mda``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-mda
    """
    return _check_best_subset(c, out, diameter64)


def check_smea(c: Case, out: Any) -> float:
    """The error of ``smea``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-smea
    """
    return _check_best_subset(c, out, scatter_eigenvalue64)


def check_caf(c: Case, out: Any) -> float:
    """The error of ``caf``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-caf
    """
    out = to_host(out)[checked_columns(c)]
    w = caf_weights64(c)
    Xs = columns64(c)
    # The weights come through eigenvectors of an n x n matrix built from float32 inputs:
    # their rounding is of the order of norm_tol, relative to the spread of the messages.
    tol = (sum_tol(c.n, c.eps) + c.n * norm_tol(c.d, c.eps)) * np.abs(Xs).max(0)
    return error_ratio(out, w @ Xs, tol)


def check_dnc(c: Case, out: Any) -> float:
    """The error of ``dnc``'s result ``out`` on case ``c`` against the float64 reference, as a
    fraction of the tolerance (at most 1 passes).

    References
    ----------
    docs/spec.md#rule-dnc
    """
    good = dnc_survivors64(c, DNC_ITERS, DNC_SUB_DIM, 1.0, c.seed)
    return _check_mean_of(c, out, np.flatnonzero(good))


DNC_ITERS, DNC_SUB_DIM = 1, 10_000  # byzcore.dnc's defaults, benchmarked as a user calls it
