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
    """The largest ``|got - ref| / tol``, the figure every check returns.

    Where ``tol`` is 0 only an exact match passes (ratio 0; any difference gives ``inf``).

    Parameters
    ----------
    got : array_like
        The result, compared in float64.
    ref : numpy.ndarray
        The float64 reference, of ``got``'s shape.
    tol : float or array_like
        The allowed absolute error, a scalar or elementwise (broadcast to the shape).

    Returns
    -------
    float
        ``max |got - ref| / tol``; ``inf`` where a difference is not finite (a NaN or an
        infinity in ``got``), 0.0 for empty arrays.
    """
    got = np.asarray(got, dtype=np.float64)
    diff = np.abs(got - ref)
    if not np.all(np.isfinite(diff)):
        return math.inf
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), diff.shape)
    r = np.divide(diff, tol, out=np.full(diff.shape, np.inf), where=tol > 0)
    r[diff == 0] = 0
    return float(r.max()) if r.size else 0.0


def sum_tol(m: int, eps: float) -> float:
    """The error allowed on a mean of ``m`` terms, as a fraction of the mean of their magnitudes.

    Higham (Accuracy and Stability of Numerical Algorithms, eq. 4.4) bounds a sum of ``m`` terms
    in any order by ``(m - 1) u`` times the sum of their magnitudes, ``u = eps / 2``; with the
    final scaling that is ``m u``. ``(m + 1) eps`` is more than twice that.

    Parameters
    ----------
    m : int
        The number of terms.
    eps : float
        The machine epsilon of the result's dtype.

    Returns
    -------
    float
        ``(m + 1) * eps``.
    """
    return (m + 1) * eps


def norm_tol(d: int, eps: float) -> float:
    """The relative error allowed on a norm-derived factor (a clip scale, a distance, a weight).

    The worst-case bound ``d eps`` is useless for ``d = 1e7`` in float32; kernels sum squares in
    SIMD lanes and tiles, whose rounding errors grow like ``sqrt(d) eps`` (Higham, sec. 2.8).
    ``4 sqrt(d) eps`` stays far below what a structural bug (a wrong row, coordinate or scale)
    changes, which is of order one.

    Parameters
    ----------
    d : int
        The message length (the number of squares summed).
    eps : float
        The machine epsilon of the input's dtype.

    Returns
    -------
    float
        ``(16 + 4 sqrt(d)) * eps``.
    """
    return (16 + 4 * math.sqrt(d)) * eps


def to_host(x: Any) -> np.ndarray:
    """A NumPy array or a torch tensor (on any device) as a NumPy array on the host.

    Parameters
    ----------
    x : array or tensor
        A result of byzcore or of a baseline.

    Returns
    -------
    numpy.ndarray
        ``x`` itself for a NumPy array, else a host copy.
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_mean(c: Case, out: Any) -> float:
    """Check byzcore's ``mean`` against the float64 mean.

    On the checked columns; tolerance ``sum_tol(n, eps)`` times the mean of ``|x_ij|``
    per coordinate.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``mean(X)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-mean
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)
    return error_ratio(out, Xs.mean(0), sum_tol(c.n, c.eps) * np.abs(Xs).mean(0))


def check_median(c: Case, out: Any) -> float:
    """Check byzcore's ``median`` against ``numpy.median`` in float64.

    On the checked columns. Selection is exact: for odd ``n`` the tolerance is 0; for even ``n``
    the two middle values are averaged, one rounding, allowed as ``2 eps |ref|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``median(X)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-median
    """
    out = to_host(out)[checked_columns(c)]
    ref = np.median(columns64(c), axis=0)
    # Selection is exact; an even n averages two values: one rounding (2 eps for margin).
    return error_ratio(out, ref, 0 if c.n % 2 else 2 * c.eps * np.abs(ref))


def check_trimmed_mean(c: Case, out: Any) -> float:
    """Check byzcore's ``trimmed_mean`` against the float64 sort-and-trim mean.

    On the checked columns: the mean of the ``n - 2f`` middle values; tolerance
    ``sum_tol(n - 2f, eps)`` times the mean of the kept ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``trimmed_mean(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    out = to_host(out)[checked_columns(c)]
    kept = np.sort(columns64(c), axis=0)[c.f: c.n - c.f]
    return error_ratio(out, kept.mean(0), sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


def dist_tol_sq(c: Case) -> np.ndarray:
    """The absolute error allowed on each squared distance.

    A Gram-based distance loses digits relative to ``||x_i||^2 + ||x_j||^2`` (cancellation),
    not to the distance itself, so the tolerance is :func:`norm_tol` times that sum.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``(n, n)``: ``norm_tol(d, eps) * (||x_i||^2 + ||x_j||^2)``.
    """
    sq = sqnorms64(c)
    return norm_tol(c.d, c.eps) * (sq[:, None] + sq[None, :])


def check_pairwise_distances(c: Case, out: Any) -> float:
    """Check byzcore's ``pairwise_distances`` (not squared) against the float64 distances.

    First the contract itself: a zero diagonal, no negative entry, an exactly symmetric matrix.
    Then each entry against ``sqrt`` of :func:`~byzcore.bench.references.sqdist64`, with the
    squared tolerance ``t =`` :func:`dist_tol_sq` carried through the square root,
    ``min(sqrt(t), t / dist)``, plus the root's rounding ``2 eps dist``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``pairwise_distances(X, squared=False)``, ``(n, n)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` when the contract is broken or an entry is not finite.

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
    """Check byzcore's ``krum``: one of the messages, of the lowest Krum score within rounding.

    The row of the lowest float64 score passes (0). Another row passes only if its float64 score
    exceeds the lowest by at most ``(n - f - 2)`` times the largest :func:`dist_tol_sq` (a tie
    within rounding).

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``krum(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` when ``out`` is none of the messages.

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
    """Check byzcore's ``multi_krum`` against the float64 mean of the ``n - f`` best-scored messages.

    Selection in the order ``(score, index)`` of the float64 Krum scores; on the checked
    columns, tolerance ``sum_tol(n - f, eps)`` times the mean of the selected ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``multi_krum(X, f)`` (``m = n - f``), ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    out = to_host(out)[checked_columns(c)]
    chosen = np.argsort(krum_scores64(c), kind="stable")[: c.m]
    kept = columns64(c)[chosen]
    return error_ratio(out, kept.mean(0), sum_tol(c.m, c.eps) * np.abs(kept).mean(0))


def check_nnm(c: Case, out: Any) -> float:
    """Check byzcore's ``nnm`` against float64 nearest-neighbour mixing.

    Each row the mean of its ``n - f`` nearest messages (float64 distances, order ``(distance,
    index)``), on the checked columns; tolerance ``sum_tol(n - f, eps)`` times the
    same mean of ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``nnm(X, f)``, ``(n, d)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

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
    """Check byzcore's ``clip`` at the cell's threshold against float64 clipping.

    The threshold is :meth:`Case.threshold <byzcore.bench.inputs.Case.threshold>` (the median
    norm); each row scaled by ``min(1, tau / ||x_i||)`` in float64, on the checked columns;
    tolerance ``(norm_tol(d, eps) + 2 eps) |ref|`` elementwise.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``clip(X, tau)``, ``(n, d)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#helper-clip
    """
    out = to_host(out)[:, checked_columns(c)]
    ref = columns64(c) * _clip_factors(c, c.threshold())[:, None]
    return error_ratio(out, ref, (norm_tol(c.d, c.eps) + 2 * c.eps) * np.abs(ref))


def check_centered_clipping(c: Case, out: Any) -> float:
    """Check byzcore's ``centered_clipping`` (one iteration from zero) against the float64 mean of the clipped rows.

    With ``tau`` the cell's threshold (the median norm), on the checked columns; tolerance
    ``sum_tol(n, eps) + norm_tol(d, eps)`` times the mean of the clipped ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``centered_clipping(X, tau)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-centered-clipping
    """
    out = to_host(out)[checked_columns(c)]
    clipped = columns64(c) * _clip_factors(c, c.threshold())[:, None]
    tol = (sum_tol(c.n, c.eps) + norm_tol(c.d, c.eps)) * np.abs(clipped).mean(0)
    return error_ratio(out, clipped.mean(0), tol)


def check_rand_k(c: Case, out: Any) -> float:
    """Check byzcore's ``rand_k``: the ``k`` drawn coordinates scaled by ``d / k``, zero elsewhere.

    The coordinates are byzcore's own draw, ``rand_k_indices(d, k, seed=c.seed)``, which must be
    ``k`` distinct ascending indices in range (the draw itself is tested against the
    generator in tests/). On them ``out`` must be ``X * d / k`` within ``2 eps |ref|``; on the
    other checked columns exactly 0.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``rand_k(X, k, seed=c.seed)``, ``(n, d)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a bad draw, a nonzero entry off
        it or a non-finite entry.

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
    """Check byzcore's ``geometric_median`` after ``GM_CHECK_ITERS`` iterations against float64 Weiszfeld.

    Both start at byzcore's coordinate-wise median (checked first with :func:`check_median`);
    the reference is :func:`~byzcore.bench.references.weiszfeld64`. On every column, the
    tolerance is ``(GM_CHECK_ITERS + 1) (sum_tol(n, eps) + norm_tol(d, eps))`` times the largest
    ``|x_ij|`` of the coordinate: each iteration takes weights from norms and a weighted mean.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``geometric_median(X, max_iter=GM_CHECK_ITERS, tol=0.0)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` when the median start fails its check
        or for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-geometric-median
    """
    import byzcore

    z0 = to_host(byzcore.median(c.bz_X())).astype(np.float64)
    if check_median(c, z0.astype(c.X.dtype)) > 1:
        return math.inf
    ref = weiszfeld64(c, z0, GM_CHECK_ITERS)
    out = to_host(out)
    # Each iteration: weights from norms (norm_tol) and a weighted mean (sum_tol).
    tol = (GM_CHECK_ITERS + 1) * (sum_tol(c.n, c.eps) + norm_tol(c.d, c.eps)) * np.abs(c.X).max(axis=0)
    return error_ratio(out, ref, tol)


# ---------------------------------------------------------------- the catalogue rules (issue 9)
def _check_mean_of(c: Case, out: Any, rows) -> float:
    """``out`` is the mean of the messages ``rows``, on the checked columns."""
    out = to_host(out)[checked_columns(c)]
    kept = columns64(c)[rows]
    return error_ratio(out, kept.mean(0), sum_tol(kept.shape[0], c.eps) * np.abs(kept).mean(0))


def check_meamed(c: Case, out: Any) -> float:
    """Check byzcore's ``meamed`` against the float64 mean of the ``n - f`` values closest to the median.

    Per checked column (:func:`~byzcore.bench.references.closest_to_median64`); tolerance
    ``sum_tol(n, eps)`` times the largest ``|x_ij|`` of the column.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``meamed(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-meamed
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)
    return error_ratio(out, closest_to_median64(Xs, c.n - c.f), sum_tol(c.n, c.eps) * np.abs(Xs).max(0))


def check_bulyan(c: Case, out: Any) -> float:
    """Check byzcore's ``bulyan`` against the float64 selection and trimmed stage.

    The ``n - 2f`` messages of :func:`~byzcore.bench.references.bulyan_selection64`, then per
    checked column the mean of the ``n - 4f`` selected values closest to their median;
    tolerance ``sum_tol(n, eps)`` times the largest selected ``|x_ij|`` of the column.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``bulyan(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-bulyan
    """
    out = to_host(out)[checked_columns(c)]
    Xs = columns64(c)[bulyan_selection64(c)]
    return error_ratio(out, closest_to_median64(Xs, c.n - 4 * c.f), sum_tol(c.n, c.eps) * np.abs(Xs).max(0))


def check_monna(c: Case, out: Any) -> float:
    """Check byzcore's ``monna`` (pivot 0) against the float64 mean of the ``n - f`` messages nearest message 0.

    Order ``(distance, index)``; on the checked columns, tolerance ``sum_tol(n - f, eps)`` times
    the mean of the kept ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``monna(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-monna
    """
    return _check_mean_of(c, out, nearest_rows(sqdist64(c)[0], c.n - c.f))


def check_cge(c: Case, out: Any) -> float:
    """Check byzcore's ``cge`` against the float64 mean of the ``n - f`` smallest-norm messages.

    Order ``(norm, index)``; on the checked columns, tolerance ``sum_tol(n - f, eps)``
    times the mean of the kept ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``cge(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-cge
    """
    return _check_mean_of(c, out, nearest_rows(sqnorms64(c), c.n - c.f))


def check_arc(c: Case, out: Any) -> float:
    """Check byzcore's ``arc`` against float64 clipping at ARC's radius.

    The radius is :func:`~byzcore.bench.references.arc_threshold64`; as :func:`check_clip`
    otherwise, tolerance ``(norm_tol(d, eps) + 2 eps) |ref|`` elementwise on the checked columns.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``arc(X, f)``, ``(n, d)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#pre-arc
    """
    out = to_host(out)[:, checked_columns(c)]
    ref = columns64(c) * _clip_factors(c, arc_threshold64(c))[:, None]
    return error_ratio(out, ref, (norm_tol(c.d, c.eps) + 2 * c.eps) * np.abs(ref))


def check_weighted_mean(c: Case, out: Any) -> float:
    """Check byzcore's weighted ``mean`` against the float64 weighted mean.

    Weights :attr:`Case.weights <byzcore.bench.inputs.Case.weights>` (1, 2, 3, 1, 2, 3, ...),
    normalised; on the checked columns, tolerance ``sum_tol(n, eps)`` times the same
    weighted mean of ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``mean(X, weights=c.weights)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-mean
    """
    out = to_host(out)[checked_columns(c)]
    w = c.weights / c.weights.sum()
    Xs = columns64(c)
    return error_ratio(out, w @ Xs, sum_tol(c.n, c.eps) * (w @ np.abs(Xs)))


def check_trimmed_mean_beta(c: Case, out: Any) -> float:
    """Check byzcore's ``trimmed_mean`` by fraction against the float64 sort-and-trim mean.

    ``g = int(beta n)`` values trimmed at each end (``beta = 0.2``); on the checked columns,
    tolerance ``sum_tol(n - 2g, eps)`` times the mean of the kept ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``trimmed_mean(X, beta=c.beta)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

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
    """Check byzcore's ``mda``: the mean of an ``n - f`` subset of smallest diameter.

    The subset is read back from ``out`` by least squares on the checked columns (each of its
    weights is ``1 / (n - f)``) and ``out`` must be its mean (tolerance as for
    :func:`check_cge`). Its squared diameter (:func:`~byzcore.bench.references.diameter64`) is
    compared with the smallest over every subset when there are at most
    ``BRUTE_FORCE_SUBSETS`` of them, else over the honest rows and every ball (a message and
    its ``n - f - 1`` nearest); an excess counts against ``norm_tol(d, eps)`` times that
    smallest diameter.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``mda(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes (the larger of the mean's and the
        objective's ratios); ``inf`` when ``out`` is not the mean of ``n - f`` messages.

    References
    ----------
    docs/spec.md#rule-mda
    """
    return _check_best_subset(c, out, diameter64)


def check_smea(c: Case, out: Any) -> float:
    """Check byzcore's ``smea``: the mean of an ``n - f`` subset of smallest top eigenvalue.

    As :func:`check_mda`, with the objective
    :func:`~byzcore.bench.references.scatter_eigenvalue64` (the subset's largest scatter
    eigenvalue) in place of the diameter.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``smea(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes (the larger of the mean's and the
        objective's ratios); ``inf`` when ``out`` is not the mean of ``n - f`` messages.

    References
    ----------
    docs/spec.md#rule-smea
    """
    return _check_best_subset(c, out, scatter_eigenvalue64)


def check_caf(c: Case, out: Any) -> float:
    """Check byzcore's ``caf`` against the float64 CAF weights' mean.

    The weights are :func:`~byzcore.bench.references.caf_weights64`; on the checked columns,
    tolerance ``sum_tol(n, eps) + n norm_tol(d, eps)`` times the largest ``|x_ij|`` of the
    column: the weights come through eigenvectors of an ``n x n`` matrix built from the
    rounded inputs.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``caf(X, f)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

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
    """Check byzcore's ``dnc`` against the float64 mean of the messages DnC keeps.

    The survivors of :func:`~byzcore.bench.references.dnc_survivors64` with ``DNC_ITERS``
    rounds of ``DNC_SUB_DIM`` coordinates, ``c = 1`` and the cell's seed; on the checked
    columns, tolerance :func:`sum_tol` of their number times the mean of their ``|x_ij|``.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    out : array or tensor
        byzcore's ``dnc(X, f, iters=DNC_ITERS, sub_dim=DNC_SUB_DIM, seed=c.seed)``, ``(d,)``.

    Returns
    -------
    float
        ``max |error| / tolerance``: at most 1 passes; ``inf`` for a non-finite entry.

    References
    ----------
    docs/spec.md#rule-dnc
    """
    good = dnc_survivors64(c, DNC_ITERS, DNC_SUB_DIM, 1.0, c.seed)
    return _check_mean_of(c, out, np.flatnonzero(good))


DNC_ITERS, DNC_SUB_DIM = 1, 10_000  # byzcore.dnc's defaults, benchmarked as a user calls it
