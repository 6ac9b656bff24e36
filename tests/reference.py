"""Plain float64 NumPy reference implementations of docs/spec.md#rules.

Written for clarity, not speed (loops where they read better), and independent of byzcore:
nothing here imports it. Every function takes an ``(n, d)`` array (anything ``np.asarray``
reads) and returns float64. The non-finite conventions of docs/spec.md#nonfinite are followed literally:

- order statistics (median, trimmed mean): a non-finite entry (NaN, +Inf, -Inf) ranks above
  every finite value;
- distances: a message holding a non-finite entry is at distance +inf from every other
  message (its own distance to itself stays 0);
- geometric median and centered clipping: such a message gets weight zero / contributes zero;
- mean propagates non-finite values as NumPy does.

Randomness is taken as an argument (the indices of rand_k, the permutation of bucketing),
except :func:`counter_key` / :func:`rand_k_indices` / :func:`permutation`, which restate the
documented counter-based draw (csrc/include/byzcore/counter_rng.h) in plain Python integers so
the tests can check the kernels draw exactly what the documentation says.
"""

from __future__ import annotations

import math

import numpy as np

_MASK = (1 << 64) - 1


def _rows(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(X.shape[0], -1)


def _row_finite(X: np.ndarray) -> np.ndarray:
    """One bool per message: True when every entry is finite."""
    return np.array([all(math.isfinite(v) for v in row) for row in X], dtype=bool)


def _sorted_column(col: np.ndarray) -> list[float]:
    """Values of one coordinate in ascending order, non-finite values last (above all finite)."""
    finite = sorted(v for v in col if math.isfinite(v))
    rest = [v for v in col if not math.isfinite(v)]
    return finite + rest


# ---------------------------------------------------------------- coordinate-wise rules
def mean(X) -> np.ndarray:
    X = _rows(X)
    total = np.zeros(X.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as docs/spec.md#rule-mean says
        for row in X:
            total = total + row
    return total / X.shape[0]


def median(X) -> np.ndarray:
    X = _rows(X)
    n, d = X.shape
    out = np.empty(d)
    for j in range(d):
        s = _sorted_column(X[:, j])
        if n % 2 == 1:
            out[j] = s[n // 2]
        else:
            out[j] = (s[n // 2 - 1] + s[n // 2]) / 2
    return out


def trimmed_mean(X, f: int) -> np.ndarray:
    X = _rows(X)
    n, d = X.shape
    assert n > 2 * f
    out = np.empty(d)
    for j in range(d):
        kept = _sorted_column(X[:, j])[f:n - f]
        out[j] = sum(kept) / len(kept)
    return out


# ---------------------------------------------------------------- distance-based rules
def pairwise_distances(X, squared: bool = True) -> np.ndarray:
    X = _rows(X)
    n = X.shape[0]
    ok = _row_finite(X)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if not (ok[i] and ok[j]):
                D[i, j] = np.inf
            else:
                diff = X[i] - X[j]
                D[i, j] = float(np.dot(diff, diff))
    return D if squared else np.sqrt(D)


def krum_scores(X, f: int) -> np.ndarray:
    X = _rows(X)
    n = X.shape[0]
    assert n >= f + 3
    D = pairwise_distances(X, squared=True)
    scores = np.empty(n)
    for i in range(n):
        others = sorted(D[i, j] for j in range(n) if j != i)
        scores[i] = sum(others[:n - f - 2])
    return scores


def krum_order(X, f: int) -> list[int]:
    """Message indices by increasing Krum score, ties by lower index."""
    scores = krum_scores(X, f)
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


def krum(X, f: int) -> np.ndarray:
    return _rows(X)[krum_order(X, f)[0]].copy()


def multi_krum(X, f: int, m: int | None = None) -> np.ndarray:
    X = _rows(X)
    m = X.shape[0] - f if m is None else m
    chosen = krum_order(X, f)[:m]
    return mean(X[chosen])


def nnm(X, f: int) -> np.ndarray:
    """Row i becomes the mean of itself and its n - f - 1 nearest other messages (ties: lower index)."""
    X = _rows(X)
    n = X.shape[0]
    assert n > f
    D = pairwise_distances(X, squared=True)
    out = np.empty_like(X)
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (D[i, j], j))
        chosen = [i] + others[:n - f - 1]
        out[i] = mean(X[chosen])
    return out


# ---------------------------------------------------------------- geometric median
def geometric_median(X, *, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7,
                     weights=None) -> np.ndarray:
    """Smoothed Weiszfeld (RFA) from the coordinate-wise median (docs/spec.md#rule-geometric-median).

    Stops when ||z_new - z|| <= tol * ||z|| (the relative change) or after max_iter updates.
    A message with a non-finite entry has weight zero.
    """
    X = _rows(X)
    n = X.shape[0]
    a = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = _row_finite(X)
    z = median(X)
    for _ in range(max_iter):
        num = np.zeros(X.shape[1])
        den = 0.0
        for i in range(n):
            if not ok[i] or a[i] == 0:
                continue
            w = a[i] / max(nu, float(np.linalg.norm(X[i] - z)))
            num = num + w * X[i]
            den += w
        z_new = num / den
        change = float(np.linalg.norm(z_new - z))
        size = float(np.linalg.norm(z))
        z = z_new
        if change <= tol * size:
            break
    return z


def smoothed_objective(X, z, nu: float = 1e-6, weights=None) -> float:
    """sum_i a_i * ||x_i - z||, the quantity the geometric median minimises (finite rows only)."""
    X = _rows(X)
    a = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = _row_finite(X)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    return float(sum(a[i] * max(nu, np.linalg.norm(X[i] - z)) for i in range(len(a)) if ok[i]))


# ---------------------------------------------------------------- clipping
def clip_one(x, threshold: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not all(math.isfinite(v) for v in x):
        return np.zeros_like(x)  # infinitely far from zero: clips to zero
    norm = math.sqrt(sum(v * v for v in x))
    if norm == 0:
        return x.copy()
    return min(1.0, threshold / norm) * x


def clip(X, threshold: float) -> np.ndarray:
    """Each row separately (a 1-D input is one row)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        return clip_one(X, threshold)
    R = _rows(X)
    return np.stack([clip_one(r, threshold) for r in R]).reshape(X.shape)


def centered_clipping(X, tau: float, *, center=None, iters: int = 1) -> np.ndarray:
    X = _rows(X)
    n, d = X.shape
    v = np.zeros(d) if center is None else np.asarray(center, dtype=np.float64).reshape(-1).copy()
    for _ in range(iters):
        step = np.zeros(d)
        for i in range(n):
            step = step + clip_one(X[i] - v, tau)
        v = v + step / n
    return v


# ---------------------------------------------------------------- randomness-driven rules
def rand_k(X, indices) -> np.ndarray:
    """rand_k with the drawn coordinates given: kept and scaled by d/k, zero elsewhere.
    Every row keeps the same coordinates; a 1-D input is one row."""
    X = np.asarray(X, dtype=np.float64)
    R = X.reshape(1, -1) if X.ndim == 1 else _rows(X)
    d = R.shape[1]
    idx = [int(i) for i in indices]
    k = len(idx)
    out = np.zeros_like(R)
    for i in range(R.shape[0]):
        for j in idx:
            out[i, j] = R[i, j] * d / k
    return out.reshape(X.shape)


def bucketing(X, s: int, aggregator, perm) -> np.ndarray:
    """Take the messages in the order ``perm``, average consecutive buckets of ``s`` (the
    last may be smaller), and apply ``aggregator`` (a reference function) to the means."""
    X = _rows(X)
    ordered = X[list(perm)]
    means = [mean(ordered[b:b + s]) for b in range(0, len(ordered), s)]
    return np.asarray(aggregator(np.stack(means)), dtype=np.float64)


def bucket_means(X, s: int, perm) -> np.ndarray:
    X = _rows(X)
    ordered = X[list(perm)]
    return np.stack([mean(ordered[b:b + s]) for b in range(0, len(ordered), s)])


# ---------------------------------------------------------------- the documented draw
def counter_key(seed: int, i: int) -> int:
    """SplitMix64 finaliser, two rounds, over a Weyl sequence keyed by the seed (as in
    csrc/include/byzcore/counter_rng.h), in Python integers modulo 2**64."""
    z = (seed * 0xD1B54A32D192ED03 + (i + 1) * 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def rand_k_indices(d: int, k: int, seed: int) -> np.ndarray:
    """The k coordinates with the smallest keys (ties: lower index), ascending."""
    order = sorted(range(d), key=lambda i: (counter_key(seed, i), i))
    return np.array(sorted(order[:k]), dtype=np.int64)


def permutation(n: int, seed: int) -> np.ndarray:
    """0..n-1 sorted by key (ties: lower index): the shuffle bucketing uses."""
    return np.array(sorted(range(n), key=lambda i: (counter_key(seed, i), i)), dtype=np.int64)


# ---------------------------------------------------------------- attacks (docs/spec.md#attacks)
def largest_feasible_scale(ok, hi: float = 1.0, iters: int = 200) -> float:
    """The largest ``g >= 0`` with ``ok(g)`` for a feasible set ``[0, g*]``: double ``hi``
    until infeasible, then bisect (the search Shejwalkar & Houmansadr describe)."""
    while ok(hi):
        hi *= 2.0
    lo = 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def minmax_message(H, p) -> np.ndarray:
    """MinMax: mean + g p with max_i ||m - h_i||^2 <= max_ij ||h_i - h_j||^2, g largest."""
    H, p = _rows(H), np.asarray(p, dtype=np.float64)
    mu = H.mean(axis=0)
    D = max(float(np.sum((a - b) ** 2)) for a in H for b in H)
    g = largest_feasible_scale(lambda g: max(float(np.sum((mu + g * p - h) ** 2)) for h in H) <= D)
    return mu + g * p


def minsum_message(H, p) -> np.ndarray:
    """MinSum: mean + g p with sum_i ||m - h_i||^2 <= max_i sum_j ||h_i - h_j||^2, g largest."""
    H, p = _rows(H), np.asarray(p, dtype=np.float64)
    mu = H.mean(axis=0)
    T = max(sum(float(np.sum((a - b) ** 2)) for b in H) for a in H)
    g = largest_feasible_scale(lambda g: sum(float(np.sum((mu + g * p - h) ** 2)) for h in H) <= T)
    return mu + g * p


# ---------------------------------------------------------------- subset rules (brute force)
def _first_best(X, f: int, value) -> np.ndarray:
    """Mean of the first n - f subset (itertools order) of smallest value(S)."""
    import itertools

    X = _rows(X)
    n = X.shape[0]
    best, best_s = math.inf, None
    for S in itertools.combinations(range(n), n - f):
        v = value(list(S))
        if best_s is None or v < best:
            best, best_s = v, list(S)
    return X[best_s].mean(axis=0)


def mda(X, f: int) -> np.ndarray:
    """Minimum-diameter averaging by enumerating every n - f subset."""
    D = pairwise_distances(X)
    return _first_best(X, f, lambda S: max((D[a, b] for a in S for b in S), default=0.0))


def max_scatter_eigenvalue(X, S) -> float:
    """Largest eigenvalue of sum_{i in S} (x_i - m_S)(x_i - m_S)^T (inf if S holds a
    non-finite message), from the |S| x |S| Gram matrix of the centred rows."""
    Y = _rows(X)[S]
    if not np.all(np.isfinite(Y)):
        return math.inf
    Y = Y - Y.mean(axis=0)
    return float(np.linalg.eigvalsh(Y @ Y.T)[-1])


def smea(X, f: int) -> np.ndarray:
    """Smallest maximum eigenvalue averaging by enumerating every n - f subset."""
    return _first_best(X, f, lambda S: max_scatter_eigenvalue(X, S))


def caf(X, f: int) -> np.ndarray:
    """The covariance filter on the d x d weighted covariance itself (small d)."""
    X = _rows(X)
    n = X.shape[0]
    ok = _row_finite(X)
    c = ok.astype(np.float64)
    Xf = np.where(ok[:, None], X, 0.0)
    best_l, best_mu = math.inf, Xf[ok].mean(axis=0) if ok.any() else X.mean(axis=0)
    while c.sum() > n - 2 * f:
        w = c / c.sum()
        mu = w @ Xf
        Y = Xf - mu
        cov = (Y * w[:, None]).T @ Y
        vals, vecs = np.linalg.eigh(cov)
        lam, v = vals[-1], vecs[:, -1]
        if lam < best_l:
            best_l, best_mu = lam, mu
        if lam <= 0:
            break
        tau = (Y @ v) ** 2
        tmax = tau[c > 0].max()
        if tmax <= 0:
            break
        c = np.where(c > 0, np.maximum(c * (1 - tau / tmax), 0.0), 0.0)
    return best_mu


def dnc(X, f: int, *, iters: int = 1, sub_dim: int = 10000, c: float = 1.0, seed: int = 0) -> np.ndarray:
    """Divide-and-conquer with an SVD of each centred subsample (finite messages only)."""
    X = _rows(X)
    n, d = X.shape
    ok = _row_finite(X)
    remove = math.floor(c * f)
    b = min(sub_dim, d)
    good = np.ones(n, dtype=bool)
    for t in range(iters):
        idx = rand_k_indices(d, b, counter_key(seed, t))
        R = X[ok][:, idx]
        score = np.full(n, math.inf)
        if len(R):
            R = R - R.mean(axis=0)
            v = np.linalg.svd(R, full_matrices=False)[2][0]
            score[ok] = (R @ v) ** 2
        order = sorted(range(n), key=lambda i: (-score[i], -i))
        keep = np.ones(n, dtype=bool)
        keep[order[:remove]] = False
        good &= keep
    return X[good].mean(axis=0)
