"""Float64 references of a benchmark cell, computed in column chunks to bound memory and
cached on the :class:`~byzcore.bench.inputs.Case` (the installed ``byzcore bench`` checks
every cell against them, so they live in the package, not in tests/).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .inputs import Case

__all__ = ["arc_threshold64", "bulyan_selection64", "caf_weights64", "centred_gram64", "checked_columns",
           "closest_to_median64", "columns64", "counter_key", "diameter64", "dnc_survivors64", "krum_scores64",
           "nearest_rows", "scatter_eigenvalue64", "sqdist64", "sqnorms64", "weiszfeld64"]


def _chunks(c: Case):
    step = max(1, (1 << 22) // c.n)
    for a in range(0, c.d, step):
        yield a, min(c.d, a + step)


def checked_columns(c: Case) -> np.ndarray:
    """Columns on which coordinate-wise results are checked: all of them, or a seeded
    sample of about 2^22 entries on big cells (a coordinate-wise kernel cannot be right
    on a random sample and wrong elsewhere by chance)."""
    if "cols" not in c._cache:
        limit = max(1, (1 << 22) // c.n)
        if c.d <= limit:
            cols = np.arange(c.d)
        else:
            cols = np.sort(np.random.default_rng(c.seed + 1).choice(c.d, limit, replace=False))
        c._cache["cols"] = cols
    return c._cache["cols"]


def columns64(c: Case) -> np.ndarray:
    """The checked columns of the input in float64, ``(n, len(checked_columns))``."""
    if "Xs64" not in c._cache:
        c._cache["Xs64"] = c.X[:, checked_columns(c)].astype(np.float64)
    return c._cache["Xs64"]


def sqnorms64(c: Case) -> np.ndarray:
    """Squared row norms in float64."""
    if "sqn" not in c._cache:
        s = np.zeros(c.n)
        for a, b in _chunks(c):
            x = c.X[:, a:b].astype(np.float64)
            s += np.einsum("ij,ij->i", x, x)
        c._cache["sqn"] = s
    return c._cache["sqn"]


def sqdist64(c: Case) -> np.ndarray:
    """Squared distances in float64 (Gram in float64: no visible cancellation here)."""
    if "D2" not in c._cache:
        G = np.zeros((c.n, c.n))
        for a, b in _chunks(c):
            x = c.X[:, a:b].astype(np.float64)
            G += x @ x.T
        sq = np.diag(G).copy()
        D2 = np.maximum(sq[:, None] + sq[None, :] - 2 * G, 0)
        np.fill_diagonal(D2, 0)
        c._cache["D2"] = D2
    return c._cache["D2"]


def krum_scores64(c: Case) -> np.ndarray:
    """Krum scores: the sum of each row's ``n - f - 2`` smallest squared distances to others."""
    D2 = sqdist64(c).copy()
    np.fill_diagonal(D2, np.inf)
    return np.sort(D2, axis=1)[:, : c.n - c.f - 2].sum(axis=1)


def weiszfeld64(c: Case, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
    """A plain float64 smoothed-Weiszfeld reference, from ``z``, ``iters`` iterations."""
    z = z.astype(np.float64)
    for _ in range(iters):
        d2 = np.zeros(c.n)
        for a, b in _chunks(c):
            x = c.X[:, a:b].astype(np.float64) - z[a:b]
            d2 += np.einsum("ij,ij->i", x, x)
        w = 1.0 / np.maximum(nu, np.sqrt(d2))
        zn = np.empty(c.d)
        for a, b in _chunks(c):
            zn[a:b] = w @ c.X[:, a:b].astype(np.float64)
        z = zn / w.sum()
    return z


# ---------------------------------------------------------------- the catalogue rules (issue 9)
def closest_to_median64(S: np.ndarray, keep: int) -> np.ndarray:
    """Per column of ``S`` (float64), the mean of the ``keep`` values closest to the median
    (mean of the two middle values for even n): the window of ``keep`` sorted values slides up
    while the next value above is strictly closer to the median than the lowest one."""
    S = np.sort(S, axis=0)
    n = S.shape[0]
    med = 0.5 * S[(n - 1) // 2] + 0.5 * S[n // 2]
    start = np.zeros(S.shape[1], dtype=np.int64)
    for q in range(n - keep):
        start += (0.5 * S[q] + 0.5 * S[q + keep]) < med
    csum = np.vstack([np.zeros((1, S.shape[1])), np.cumsum(S, axis=0)])
    cols = np.arange(S.shape[1])
    return (csum[start + keep, cols] - csum[start, cols]) / keep


def bulyan_selection64(c: Case) -> list[int]:
    """Bulyan's ``n - 2f`` messages, by Krum iterated over the remaining ones (``r - f - 2``
    neighbours among the ``r`` left, at least 1), in index order."""
    D = sqdist64(c)
    left, chosen = list(range(c.n)), []
    for _ in range(c.n - 2 * c.f):
        r = len(left)
        k = min(r - 1, max(1, r - c.f - 2))
        sub = D[np.ix_(left, left)] + np.diag(np.full(r, np.inf))
        scores = np.sort(sub, axis=1)[:, :k].sum(axis=1)
        chosen.append(left.pop(int(np.argmin(scores))))
    return sorted(chosen)


def nearest_rows(dist: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` indices of smallest ``dist`` (ties: lower index), ascending."""
    return np.sort(np.argsort(dist, kind="stable")[:keep])


def arc_threshold64(c: Case) -> float:
    """ARC's radius: the norm of the largest message left after the ``floor(2 (f/n)(n - f))``
    largest-norm ones (which are clipped to it); +inf when none is clipped."""
    nb = 2 * c.f * (c.n - c.f) // c.n
    return math.inf if nb == 0 else float(np.sort(np.sqrt(sqnorms64(c)))[c.n - nb - 1])


def diameter64(c: Case, S) -> float:
    """Largest squared distance within the subset ``S``."""
    D = sqdist64(c)
    return float(D[np.ix_(S, S)].max())


def scatter_eigenvalue64(c: Case, S) -> float:
    """Largest eigenvalue of the subset's scatter matrix, from its centred Gram matrix
    (``-J D_S J / 2``): the d x d matrix shares its nonzero spectrum."""
    S = list(S)
    D = sqdist64(c)[np.ix_(S, S)]
    J = np.eye(len(S)) - 1.0 / len(S)
    return float(np.linalg.eigvalsh(-0.5 * J @ D @ J)[-1])


def centred_gram64(c: Case, w: np.ndarray) -> np.ndarray:
    """``Y Y^T`` for ``Y = X - w X`` (weights ``w`` summing to 1), accumulated in float64
    over column chunks from the coordinates themselves (not from the distances)."""
    G = np.zeros((c.n, c.n))
    for a, b in _chunks(c):
        x = c.X[:, a:b].astype(np.float64)
        y = x - w @ x
        G += y @ y.T
    return G


def caf_weights64(c: Case) -> np.ndarray:
    """CAF's final weights (summing to 1): while the weights sum to more than n - 2f, scale
    each by ``1 - tau_i / max tau`` (``tau_i`` its squared projection on the top eigenvector of
    the weighted covariance); keep the weights of the step whose top eigenvalue was smallest."""
    n, f = c.n, c.f
    cw = np.ones(n)
    best, best_lam = cw / n, math.inf
    while cw.sum() > n - 2 * f:
        w = cw / cw.sum()
        G = centred_gram64(c, w)          # Y Y^T; the covariance is Y^T W Y
        s = np.sqrt(w)
        lam, U = np.linalg.eigh(s[:, None] * G * s[None, :])
        if lam[-1] < best_lam:
            best_lam, best = lam[-1], w
        if lam[-1] <= 0:
            break
        tau = (G @ (s * U[:, -1])) ** 2 / lam[-1]   # ((x_i - mu) . v)^2
        tmax = tau[cw > 0].max()
        if tmax <= 0:
            break
        cw = np.where(cw > 0, np.maximum(cw * (1 - tau / tmax), 0.0), 0.0)
    return best


_MASK = (1 << 64) - 1


def _splitmix_finaliser(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def counter_key(seed: int, i: int) -> int:
    """The key of draw ``i`` under ``seed``: two SplitMix64 finaliser rounds over a Weyl
    sequence, in Python integers modulo 2**64 (docs/spec.md, the counter-based generator)."""
    z = _splitmix_finaliser((seed * 0xD1B54A32D192ED03 + (i + 1) * 0x9E3779B97F4A7C15) & _MASK)
    return _splitmix_finaliser((z + 0x9E3779B97F4A7C15) & _MASK)


def dnc_survivors64(c: Case, iters: int, sub_dim: int, cf: float, seed: int) -> np.ndarray:
    """DnC's surviving messages: each round draws ``sub_dim`` coordinates (byzcore's documented
    draw, ``rand_k_indices(d, b, seed=counter_key(seed, t))``), scores each message by its
    squared projection on the top right singular vector of the centred subsample (float64
    SVD), and drops the ``floor(c f)`` highest scores (ties: the higher index)."""
    import byzcore

    n, d = c.n, c.d
    remove = math.floor(cf * c.f)
    good = np.ones(n, dtype=bool)
    for t in range(iters):
        idx = np.asarray(byzcore.rand_k_indices(d, min(sub_dim, d), seed=counter_key(seed, t)))
        R = c.X[:, idx].astype(np.float64)
        R -= R.mean(axis=0)
        v = np.linalg.svd(R, full_matrices=False)[2][0]
        score = (R @ v) ** 2
        order = sorted(range(n), key=lambda i: (-score[i], -i))
        good[order[:remove]] = False
    return good
