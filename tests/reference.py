"""Plain float64 NumPy reference implementations of docs/spec.md#rules.

Written for clarity, not speed (loops where they read better), and independent of byzcore:
nothing here imports it. Every function takes an ``(n, d)`` array (anything ``np.asarray``
reads) and returns float64. The non-finite conventions of docs/spec.md#nonfinite are followed literally:

- order statistics (median, trimmed mean): a non-finite entry (NaN, +Inf, -Inf) ranks above
  every finite value and counts as +inf where it is selected;
- distances: a message holding a non-finite entry is at distance +inf from every other
  message (its own distance to itself stays 0);
- geometric median and centered clipping: such a message gets weight zero / contributes zero;
- nearest-neighbour mixing: such a message is infinitely far from all, so its neighbours are
  the finite messages, by index;
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


def _ranked_columns(X) -> np.ndarray:
    """Each coordinate's values in ascending order, a non-finite value counted as +inf (so
    it ranks above every finite value)."""
    A = _rows(X)
    return np.sort(np.where(np.isfinite(A), A, np.inf), axis=0)


# ---------------------------------------------------------------- coordinate-wise rules
def mean(X) -> np.ndarray:
    X = _rows(X)
    total = np.zeros(X.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as docs/spec.md#rule-mean says
        for row in X:
            total = total + row
    return total / X.shape[0]


def rank_mean(X, lo: int, hi: int) -> np.ndarray:
    """Per coordinate, the mean of the values of ranks ``lo..hi`` (0-based, ascending)."""
    S = _ranked_columns(X)
    return S[lo:hi + 1].sum(axis=0) / (hi - lo + 1)


def median(X) -> np.ndarray:
    """The middle rank, or the mean of the two middle ranks for even n."""
    n = _rows(X).shape[0]
    return rank_mean(X, (n - 1) // 2, n // 2)


def trimmed_mean(X, f: int) -> np.ndarray:
    """The mean of ranks ``f..n-f-1``: the f largest and f smallest values dropped."""
    n = _rows(X).shape[0]
    assert n > 2 * f
    return rank_mean(X, f, n - f - 1)


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


def multi_krum(X, f: int, m: int | None = None, weights=None) -> np.ndarray:
    """The mean of the m lowest-scored messages; with ``weights``, the same selection averaged
    with the selected messages' weights (docs/spec.md#rule-multi-krum)."""
    X = _rows(X)
    m = X.shape[0] - f if m is None else m
    chosen = krum_order(X, f)[:m]
    if weights is None:
        return mean(X[chosen])
    return weighted_mean(X[chosen], [float(weights[i]) for i in chosen])


def nnm(X, f: int) -> np.ndarray:
    """Row i becomes the mean of itself and its n - f - 1 nearest other messages (ties: lower
    index); a row with a non-finite entry, infinitely far from all, becomes the mean of the
    first n - f finite messages (by index; non-finite ones after them if too few)."""
    X = _rows(X)
    n = X.shape[0]
    assert n > f
    D = pairwise_distances(X, squared=True)
    ok = _row_finite(X)
    out = np.empty_like(X)
    for i in range(n):
        if ok[i]:
            others = sorted((j for j in range(n) if j != i), key=lambda j: (D[i, j], j))
            chosen = [i, *others[:n - f - 1]]
        else:
            chosen = ([j for j in range(n) if ok[j]] + [j for j in range(n) if not ok[j]])[:n - f]
        out[i] = mean(X[chosen])
    return out


# ---------------------------------------------------------------- geometric median
def geometric_median(X, *, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7,
                     weights=None) -> np.ndarray:
    """Smoothed Weiszfeld (RFA) from the coordinate-wise median (docs/spec.md#rule-geometric-median).

    Stops when ||z_new - z|| <= tol * ||z|| (the relative change) or after max_iter updates.
    A message with a non-finite entry has weight zero.
    """
    return weiszfeld(X, nu=nu, max_iter=max_iter, tol=tol, weights=weights)[0]


def weiszfeld(X, *, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7,
              weights=None) -> tuple[np.ndarray, int]:
    """:func:`geometric_median` and the number of updates it made: it stops when the
    relative change ||z_new - z|| <= tol * ||z_new||, after max_iter updates, or when no
    message has weight left (every one non-finite or weighted zero)."""
    X = _rows(X)
    n = X.shape[0]
    a = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = _row_finite(X)
    z = median(X)
    updates = 0
    for _ in range(max_iter):
        num = np.zeros(X.shape[1])
        den = 0.0
        for i in range(n):
            if not ok[i] or a[i] == 0:
                continue
            w = a[i] / max(nu, float(np.linalg.norm(X[i] - z)))
            num = num + w * X[i]
            den += w
        if not den > 0:
            break
        z_new = num / den
        updates += 1
        change = float(np.linalg.norm(z_new - z))
        z = z_new
        if change <= tol * float(np.linalg.norm(z)):
            break
    return z, updates


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


# ---------------------------------------------------------------- training problems
def logistic_loss(X, y, x, lam: float) -> float:
    """Mean logistic loss ``log(1 + exp(-y_j a_j^T x))`` over the rows ``a_j`` of ``X``
    (labels ``y`` in {-1, +1}) plus the non-convex regulariser ``lam * sum x_k^2 / (1 + x_k^2)``."""
    X, x = _rows(X), np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(np.log1p(np.exp(-y * (X @ x)))) + lam * np.sum(x**2 / (1 + x**2)))


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


# ---------------------------------------------------------------- catalogue rules (issue 9)
def weighted_mean(X, weights) -> np.ndarray:
    """sum_i w_i x_i / sum_i w_i; a weight-0 message takes no part."""
    X = _rows(X)
    total = np.zeros(X.shape[1])
    for w, row in zip(weights, X):
        if w != 0:
            total = total + w * row
    return total / sum(weights)


def trimmed_mean_fraction(X, beta: float) -> np.ndarray:
    """Flower's FedTrimmedAvg: int(beta * n) values cut at each end."""
    return trimmed_mean(X, int(beta * _rows(X).shape[0]))


def closest_to_median(X, keep: int) -> np.ndarray:
    """Per coordinate: the mean of the `keep` values closest to the median, ties in distance
    to the smaller value; non-finite values rank last (+inf)."""
    X = _rows(X)
    d = X.shape[1]
    med = median(X)
    out = np.empty(d)
    for j in range(d):
        col = [v if math.isfinite(v) else math.inf for v in X[:, j]]
        by_distance = sorted(col, key=lambda v: (abs(v - med[j]), v))
        kept = by_distance[:keep]
        out[j] = sum(kept) / len(kept)
    return out


def meamed(X, f: int) -> np.ndarray:
    n = _rows(X).shape[0]
    assert n > 2 * f
    return closest_to_median(X, n - f)


def bulyan_selection(X, f: int) -> list[int]:
    """theta = n - 2f rounds of Krum on the remaining messages, each with max(1, r - f - 2)
    neighbours (r messages left), lowest score first, ties to the lower index."""
    X = _rows(X)
    n = X.shape[0]
    D = pairwise_distances(X, squared=True)
    left = list(range(n))
    chosen = []
    for _ in range(n - 2 * f):
        r = len(left)
        k = min(r - 1, max(1, r - f - 2))
        scores = []
        for i in left:
            others = sorted(D[i, j] for j in left if j != i)
            scores.append(sum(others[:k]))
        best = min(range(r), key=lambda a: (scores[a], a))
        chosen.append(left.pop(best))
    return sorted(chosen)


def bulyan(X, f: int) -> np.ndarray:
    X = _rows(X)
    assert X.shape[0] >= 4 * f + 3
    theta = X.shape[0] - 2 * f
    return closest_to_median(X[bulyan_selection(X, f)], theta - 2 * f)


def _nearest_mean(X: np.ndarray, dist: list[float], keep: int) -> np.ndarray:
    chosen = sorted(range(len(dist)), key=lambda i: (dist[i], i))[:keep]
    return mean(X[sorted(chosen)])


def monna(X, f: int, pivot: int = 0) -> np.ndarray:
    X = _rows(X)
    n = X.shape[0]
    assert n > 2 * f
    ok = _row_finite(X)
    dist = [0.0 if i == pivot else (math.sqrt(float(np.dot(X[i] - X[pivot], X[i] - X[pivot]))) if ok[i] else math.inf)
            for i in range(n)]
    return _nearest_mean(X, dist, n - f)


def _norms(X: np.ndarray) -> list[float]:
    """Euclidean norm of each message, +inf for one holding a non-finite entry."""
    ok = _row_finite(X)
    return [math.sqrt(sum(v * v for v in X[i])) if ok[i] else math.inf for i in range(X.shape[0])]


def cge(X, f: int) -> np.ndarray:
    X = _rows(X)
    n = X.shape[0]
    assert n > 2 * f
    return _nearest_mean(X, _norms(X), n - f)


def arc(X, f: int) -> np.ndarray:
    """The floor(2 f (n - f) / n) largest-norm messages clipped to the largest remaining norm."""
    X = _rows(X)
    n = X.shape[0]
    assert n > 2 * f
    norms = _norms(X)
    clipped = (2 * f * (n - f)) // n
    threshold = sorted(norms)[n - clipped - 1]
    return np.stack([clip_one(X[i], threshold) for i in range(n)])


def krum_byzfl_order(X, f: int) -> list[int]:
    """ByzFL's Krum scores: the n - f - 1 smallest squared distances to the others."""
    D = pairwise_distances(X, squared=True)
    n = D.shape[0]
    scores = [sum(sorted(D[i, j] for j in range(n) if j != i)[:n - f - 1]) for i in range(n)]
    return sorted(range(n), key=lambda i: (scores[i], i))


def multi_krum_byzfl(X, f: int, m: int | None = None, weights=None) -> np.ndarray:
    X = _rows(X)
    m = X.shape[0] - f if m is None else m
    chosen = sorted(krum_byzfl_order(X, f)[:m])
    if weights is None:
        return mean(X[chosen])
    return weighted_mean(X[chosen], [float(weights[i]) for i in chosen])


# --- training settings of docs/spec.md#algorithms and #problems (issue 10) ---------------------

def logistic_objective(X, y, x, lam: float, reg: str) -> float:
    """``mean_j log(1 + exp(-y_j <a_j, x>)) + lam * r(x)`` with ``r = sum x^2 / (1 + x^2)``
    (``reg="nonconvex"``) or ``||x||^2`` (``reg="l2"``); labels in ``{-1, +1}``."""
    X, y, x = (np.asarray(a, dtype=np.float64) for a in (X, y, x))
    margins = -y * (X @ x)
    loss = float(np.mean(np.logaddexp(0.0, margins)))
    r = float(np.sum(x * x)) if reg == "l2" else float(np.sum(x * x / (1.0 + x * x)))
    return loss + lam * r


def clip_heuristic_step(g_prev, messages, lam: float, aggregator) -> np.ndarray:
    """Eq. 10 of arXiv 2311.14127: ``g_prev + aggregator(clip_lam(m_i - g_prev))``."""
    g_prev = np.asarray(g_prev, dtype=np.float64)
    diffs = clip(np.asarray(messages, dtype=np.float64) - g_prev, lam)
    return g_prev + np.asarray(aggregator(diffs), dtype=np.float64)
