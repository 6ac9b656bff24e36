"""Float64 references of a benchmark cell, computed in column chunks to bound memory; the
ones every kernel shares are cached on the :class:`~byzcore.bench.inputs.Case`. The
installed ``byzcore bench`` checks every cell against them, so they live in the package,
not in tests/.

Each one restates, in plain float64 NumPy, the definition of docs/spec.md it cites by
anchor (the rules in docs/spec.md#rules).
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
    """The columns on which coordinate-wise results are checked (a helper of the checks, not a rule).

    All of them, or on big cells a seeded sample of ``2**22 // n`` of them (about 2^22 entries;
    seed ``c.seed + 1``): a coordinate-wise kernel cannot be right on a random sample and wrong
    elsewhere by chance. Cached on ``c``.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        The column indices, int64, ascending.
    """
    if "cols" not in c._cache:
        limit = max(1, (1 << 22) // c.n)
        if c.d <= limit:
            cols = np.arange(c.d)
        else:
            cols = np.sort(np.random.default_rng(c.seed + 1).choice(c.d, limit, replace=False))
        c._cache["cols"] = cols
    return c._cache["cols"]


def columns64(c: Case) -> np.ndarray:
    """The checked columns of the input in float64 (a helper of the checks, not a rule).

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``c.X[:, checked_columns(c)]`` as float64, ``(n, len(checked_columns(c)))``; cached on ``c``.
    """
    if "Xs64" not in c._cache:
        c._cache["Xs64"] = c.X[:, checked_columns(c)].astype(np.float64)
    return c._cache["Xs64"]


def sqnorms64(c: Case) -> np.ndarray:
    """The squared norms ``||x_i||^2`` of the messages in float64 (the norms of ``clip``, ``cge`` and ``arc``).

    Summed over column chunks of about 2^22 entries, so memory stays bounded at any ``d``.
    See docs/spec.md#notation.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64; cached on ``c``.
    """
    if "sqn" not in c._cache:
        s = np.zeros(c.n)
        for a, b in _chunks(c):
            x = c.X[:, a:b].astype(np.float64)
            s += np.einsum("ij,ij->i", x, x)
        c._cache["sqn"] = s
    return c._cache["sqn"]


def sqdist64(c: Case) -> np.ndarray:
    """The squared distances ``||x_i - x_j||^2`` in float64 (docs/spec.md#rule-pairwise-distances).

    From the float64 Gram matrix accumulated over column chunks, ``||x_i||^2 + ||x_j||^2 -
    2 <x_i, x_j>`` clamped at zero, with a zero diagonal (in float64 the Gram's cancellation
    is far below the float32 tolerances).

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float64, symmetric; cached on ``c``.
    """
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
    """The Krum scores in float64 (docs/spec.md#rule-krum-scores).

    Each message's score is the sum of its ``n - f - 2`` smallest squared distances to the
    other messages (:func:`sqdist64`). The rule's bound ``n >= f + 3`` is not checked here.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 scores, with ``f = c.f``.
    """
    D2 = sqdist64(c).copy()
    np.fill_diagonal(D2, np.inf)
    return np.sort(D2, axis=1)[:, : c.n - c.f - 2].sum(axis=1)


def weiszfeld64(c: Case, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
    """The smoothed Weiszfeld iteration of ``geometric_median`` in float64 (docs/spec.md#rule-geometric-median).

    Unweighted: ``beta_i = 1 / max(nu, ||x_i - z||)``, ``z <- sum_i beta_i x_i / sum_i beta_i``,
    exactly ``iters`` times (no tolerance test), over column chunks.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    z : numpy.ndarray
        The ``(d,)`` start (the check starts at byzcore's coordinate-wise median, as the rule does).
    iters : int
        The number of iterations.
    nu : float, default 1e-6
        The smoothing: distances below it count as ``nu``.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` float64 iterate.
    """
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
    """Per column, the mean of the ``keep`` values closest to the median: MeaMed (docs/spec.md#rule-meamed).

    The median is that of docs/spec.md#rule-median (the mean of the two middle values for even
    ``n``). A window of ``keep`` consecutive sorted values slides up while the next value above
    it is strictly closer to the median than its lowest one, so ties keep the smaller values.
    Also Bulyan's second stage (docs/spec.md#rule-bulyan) on the selected messages.

    Parameters
    ----------
    S : numpy.ndarray
        The ``(n, d')`` values: float64 for the reference (the NumPy baseline of ``meamed``
        passes the input in its own dtype, in which the sort and the sums then run).
    keep : int
        How many values to average per column, ``1 <= keep <= n``.

    Returns
    -------
    numpy.ndarray
        The ``(d',)`` float64 means.
    """
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
    """Bulyan's selection stage in float64 (docs/spec.md#rule-bulyan).

    ``n - 2f`` messages chosen one at a time by Krum within the messages left: with ``r``
    left, the one of lowest score over ``max(1, r - f - 2)`` neighbours (at most ``r - 1``),
    ties to the lower index.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    list of int
        The indices of the selected messages, ascending.
    """
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
    """The ``keep`` messages of smallest ``dist``, order ``(dist, index)``.

    With the squared distances to message 0 it is MoNNA's selection (docs/spec.md#rule-monna);
    with the squared norms, CGE's (docs/spec.md#rule-cge).

    Parameters
    ----------
    dist : numpy.ndarray
        ``(n,)`` the key of each message (a squared distance or norm).
    keep : int
        How many to keep.

    Returns
    -------
    numpy.ndarray
        The kept indices, int64, ascending.
    """
    return np.sort(np.argsort(dist, kind="stable")[:keep])


def arc_threshold64(c: Case) -> float:
    """ARC's clipping radius in float64 (docs/spec.md#pre-arc).

    With ``k = floor(2 (f/n) (n - f))``, computed in integers, the norm of the largest message
    left after the ``k`` largest-norm ones, which are clipped to it.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    float
        The radius, ``+inf`` when ``k = 0`` (nothing is clipped).
    """
    nb = 2 * c.f * (c.n - c.f) // c.n
    return math.inf if nb == 0 else float(np.sort(np.sqrt(sqnorms64(c)))[c.n - nb - 1])


def diameter64(c: Case, S) -> float:
    """The squared diameter of a subset: MDA's objective (docs/spec.md#rule-mda).

    The largest squared distance within ``S``; it orders subsets as the diameter itself does.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    S : sequence of int
        The indices of the subset.

    Returns
    -------
    float
        ``max_(i, j in S) ||x_i - x_j||^2``.
    """
    D = sqdist64(c)
    return float(D[np.ix_(S, S)].max())


def scatter_eigenvalue64(c: Case, S) -> float:
    """The largest eigenvalue of a subset's scatter matrix: SMEA's objective (docs/spec.md#rule-smea).

    Computed from the centred Gram matrix ``-J D_S J / 2`` (``D_S`` the subset's squared
    distances, ``J`` the centring matrix), whose nonzero spectrum the ``d x d`` scatter matrix
    ``sum_(i in S) (x_i - mu_S)(x_i - mu_S)^T`` shares. The spec's covariance is this divided by
    ``|S|``, the same for every ``n - f`` subset, so both order subsets alike.

    Parameters
    ----------
    c : Case
        The benchmark cell.
    S : sequence of int
        The indices of the subset.

    Returns
    -------
    float
        The largest eigenvalue.
    """
    S = list(S)
    D = sqdist64(c)[np.ix_(S, S)]
    J = np.eye(len(S)) - 1.0 / len(S)
    return float(np.linalg.eigvalsh(-0.5 * J @ D @ J)[-1])


def centred_gram64(c: Case, w: np.ndarray) -> np.ndarray:
    """The Gram matrix of the messages centred on a weighted mean, for CAF (docs/spec.md#rule-caf).

    ``Y Y^T`` for ``Y = X - w X`` (the rows of ``X`` minus ``mu = sum_i w_i x_i``), accumulated in
    float64 over column chunks from the coordinates themselves (not from the distances).

    Parameters
    ----------
    c : Case
        The benchmark cell.
    w : numpy.ndarray
        ``(n,)`` weights summing to 1.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float64.
    """
    G = np.zeros((c.n, c.n))
    for a, b in _chunks(c):
        x = c.X[:, a:b].astype(np.float64)
        y = x - w @ x
        G += y @ y.T
    return G


def caf_weights64(c: Case) -> np.ndarray:
    """CAF's final weights in float64 (docs/spec.md#rule-caf).

    While the weights ``c_i`` sum to more than ``n - 2f``: normalise them, take the top
    eigenpair of the weighted covariance (exact, from the weighted ``n x n`` Gram matrix), and
    scale each positive weight by ``1 - tau_i / max tau`` (``tau_i`` the squared projection of
    ``x_i - mu`` on the eigenvector); stop early when the eigenvalue or ``max tau`` is not positive. The
    weights of the step whose eigenvalue was smallest are kept.

    Parameters
    ----------
    c : Case
        The benchmark cell.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 weights summing to 1; CAF's result is ``w @ X`` (uniform when ``f = 0``).
    """
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
    """The key of draw ``i`` under ``seed`` in byzcore's counter-based generator (docs/spec.md#helper-rand-k).

    Two SplitMix64 finaliser rounds over a Weyl sequence, in Python integers modulo 2**64, as
    ``csrc/include/byzcore/counter_rng.h`` computes it (the spec names the generator; the header
    holds the formula). ``dnc``'s round ``t`` draws its coordinates with the key
    ``counter_key(seed, t)``.

    Parameters
    ----------
    seed : int
        The seed, taken modulo 2**64.
    i : int
        The index of the draw, from 0.

    Returns
    -------
    int
        The key, in ``[0, 2**64)``.
    """
    z = _splitmix_finaliser((seed * 0xD1B54A32D192ED03 + (i + 1) * 0x9E3779B97F4A7C15) & _MASK)
    return _splitmix_finaliser((z + 0x9E3779B97F4A7C15) & _MASK)


def dnc_survivors64(c: Case, iters: int, sub_dim: int, cf: float, seed: int) -> np.ndarray:
    """The messages DnC keeps, in float64 (docs/spec.md#rule-dnc).

    Each round ``t`` takes ``min(sub_dim, d)`` coordinates,
    ``byzcore.rand_k_indices(d, min(sub_dim, d), seed=counter_key(seed, t))``, centres the
    messages restricted to them, scores each by its squared projection on the top right singular
    vector (a float64 SVD), and removes the ``floor(cf * f)`` highest scores (ties: the higher
    index first). Every message is finite here, so none is scored ``+inf``.

    Parameters
    ----------
    c : Case
        The benchmark cell (its ``f`` is the rule's).
    iters : int
        The number of rounds.
    sub_dim : int
        The coordinates drawn per round (at most ``d``).
    cf : float
        The rule's ``c``: each round removes ``floor(cf * f)`` messages.
    seed : int
        The rule's seed.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` bool, True for the messages never removed; ``dnc``'s result is their mean.

    Notes
    -----
    The key of round ``t`` is ``counter_key(seed, t)``, as in the core
    (``csrc/cpu/subset_rules_cpu.cpp``), ``byzcore.dnc``'s docstring and docs/rules.md; step 1
    of docs/spec.md#rule-dnc writes ``seed=(seed + t) mod 2**64`` instead.
    """
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
