"""The aggregation functions of docs/spec.md#rules.

Every function takes ``X`` as an ``(n, d)`` array (or ``(n, *shape)``) or as a sequence of
``n`` arrays of one shape, from NumPy, PyTorch, CuPy or any ``__dlpack__`` producer; runs
the compiled kernel on the input's own device; never modifies the input; and returns the
caller's array type on the caller's device, with the shape of one message.

Non-finite messages (a Byzantine worker may send NaN or Inf): every robust rule treats a
non-finite entry as larger than any finite value (median, trimmed mean) or a message that
holds one as infinitely far from the others (distances, Krum, geometric median, NNM,
clipping). So whenever at most ``f`` messages hold non-finite entries and the rule's bound on
``n`` holds, the result is finite. :func:`mean` propagates them, as NumPy does.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ._arrays import Batch, as_index, as_number, as_seed
from ._native import core

ArrayLike = Any


def _reduce(op: str, X: ArrayLike, call: Callable[[Batch, int], Any]) -> Any:
    """Runs a kernel that reduces the n messages to one message-shaped result."""
    b = Batch(op, X)
    out, ptr = b.empty((b.d,))
    call(b, ptr)
    return b.result(out, b.item_shape)


def mean(X: ArrayLike) -> Any:
    """Plain coordinate-wise average of the messages (not robust: the baseline).

    NaN/Inf propagate, as in ``np.mean(X, axis=0)``.
    """
    return _reduce("mean", X, lambda b, out: core.mean(b.messages, out))


def median(X: ArrayLike) -> Any:
    """Coordinate-wise median; for even ``n`` the mean of the two middle values.

    Non-finite entries count as larger than every finite value, so with at most ``f``
    of them and ``n > 2f`` the result is finite.
    """
    return _reduce("median", X, lambda b, out: core.median(b.messages, out))


def trimmed_mean(X: ArrayLike, f: int) -> Any:
    """Per coordinate, drop the ``f`` smallest and ``f`` largest values and average the rest.

    Needs ``n > 2f``. Non-finite entries count as larger than every finite value.
    """
    f = as_index("trimmed_mean", "f", f)
    return _reduce("trimmed_mean", X, lambda b, out: core.trimmed_mean(b.messages, f, out))


def pairwise_distances(X: ArrayLike, squared: bool = True) -> Any:
    """``n x n`` matrix of (squared) Euclidean distances: zero diagonal, symmetric, never negative.

    A message holding a non-finite entry is at distance ``inf`` from every other message.
    """
    b = Batch("pairwise_distances", X)
    out, ptr = b.empty((b.n, b.n))
    core.pairwise_distances(b.messages, bool(squared), ptr)
    return b.result(out)


def krum_scores(X: ArrayLike, f: int) -> Any:
    """Krum score of each message: the sum of its ``n - f - 2`` smallest squared distances
    to the other messages (Blanchard et al., NeurIPS 2017). Needs ``n >= f + 3``."""
    f = as_index("krum_scores", "f", f)
    b = Batch("krum_scores", X)
    out, ptr = b.empty((b.n,))
    core.krum_scores(b.messages, f, ptr)
    return b.result(out)


def krum(X: ArrayLike, f: int) -> Any:
    """The message with the lowest Krum score (ties: the lowest index). Needs ``n >= f + 3``."""
    f = as_index("krum", "f", f)
    return _reduce("krum", X, lambda b, out: core.krum(b.messages, f, out))


def multi_krum(X: ArrayLike, f: int, m: int | None = None) -> Any:
    """Mean of the ``m`` messages with the lowest Krum scores (``m`` defaults to ``n - f``).

    Needs ``n >= f + 3`` and ``1 <= m <= n``.
    """
    f = as_index("multi_krum", "f", f)

    def call(b: Batch, out: int) -> None:
        mm = b.n - f if m is None else as_index("multi_krum", "m", m)
        core.multi_krum(b.messages, f, mm, out)

    return _reduce("multi_krum", X, call)


def geometric_median(X: ArrayLike, *, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7,
                     weights: Sequence[float] | None = None) -> Any:
    """Smoothed Weiszfeld geometric median (RFA, Pillutla et al. 2022).

    Starts at the coordinate-wise median and repeats ``w_i = a_i / max(nu, ||x_i - z||)``,
    ``z = sum_i w_i x_i / sum_i w_i`` until the relative change of ``z`` is below ``tol`` or
    ``max_iter`` iterations ran. ``weights`` are the ``a_i`` (default all one). A message
    holding a non-finite entry gets weight zero (it is infinitely far away).
    """
    op = "geometric_median"
    nu = as_number(op, "nu", nu)
    tol = as_number(op, "tol", tol)
    max_iter = as_index(op, "max_iter", max_iter)
    w = [] if weights is None else [as_number(op, "weights", v) for v in np.asarray(
        weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=object).reshape(-1)]
    return _reduce(op, X, lambda b, out: core.geometric_median(b.messages, w, nu, max_iter, tol, out))


def clip(x: ArrayLike, threshold: float) -> Any:
    """``min(1, threshold / ||x||) * x`` (zero stays zero); a 2-D input clips each row.

    A message holding a non-finite entry is infinitely far from zero and clips to zero.
    A sequence of messages gives an ``(n, *shape)`` array.
    """
    op = "clip"
    threshold = as_number(op, "threshold", threshold)
    single = not isinstance(x, (list, tuple)) and getattr(x, "ndim", 2) == 1
    b = Batch(op, x.reshape(1, -1) if single else x)
    out, ptr = b.empty((b.n, b.d))
    core.clip(b.messages, threshold, ptr)
    return b.result(out, b.item_shape if single else (b.n, *b.item_shape))


def rand_k_indices(d: int, k: int, *, seed: int, like: ArrayLike | None = None) -> Any:
    """The ``k`` coordinates of ``0..d-1`` that :func:`rand_k` keeps for ``seed``, ascending.

    A uniform draw without replacement from a counter-based generator, identical on CPU and
    CUDA. Returns int64 NumPy, or the array type and device of ``like``.
    """
    op = "rand_k_indices"
    d, k, seed = as_index(op, "d", d), as_index(op, "k", k), as_seed(op, seed)
    if like is None:
        out = np.empty((max(k, 0),), dtype=np.int64)
        core.rand_k_indices(d, k, seed, "cpu", 0, 0, out.__array_interface__["data"][0])
        return out
    b = Batch(op, like.reshape(1, -1) if getattr(like, "ndim", 2) == 1 else like)
    out, ptr = b.empty((max(k, 0),), "int64")
    core.rand_k_indices(d, k, seed, b.device, b.device_index, b.stream, ptr)
    return out


def rand_k(x: ArrayLike, k: int, *, seed: int) -> Any:
    """Unbiased random-k sparsification: keep ``k`` coordinates drawn uniformly without
    replacement (see :func:`rand_k_indices`), scaled by ``d / k``; zero elsewhere.

    Its variance parameter is ``omega = d / k - 1``. On a 2-D input every row keeps the same
    coordinates (one draw per call, as one worker's compressor would).
    """
    op = "rand_k"
    k, seed = as_index(op, "k", k), as_seed(op, seed)
    single = not isinstance(x, (list, tuple)) and getattr(x, "ndim", 2) == 1
    b = Batch(op, x.reshape(1, -1) if single else x)
    out, ptr = b.empty((b.n, b.d))
    core.rand_k(b.messages, k, seed, ptr)
    return b.result(out, b.item_shape if single else (b.n, *b.item_shape))


def rand_k_sparse(x: ArrayLike, k: int, *, seed: int) -> tuple[Any, Any]:
    """The sparse form of :func:`rand_k` for sending: ``(indices, values)``, where ``values``
    are ``x.reshape(-1)[indices] * d / k``. :func:`rand_k_dense` rebuilds the dense vector."""
    op = "rand_k_sparse"
    flat = x.reshape(-1)
    d = flat.shape[0]
    idx = rand_k_indices(d, k, seed=seed, like=flat)
    values = flat[idx] * (d / k)
    return idx, values


def rand_k_dense(indices: ArrayLike, values: ArrayLike, d: int) -> Any:
    """Inverse of :func:`rand_k_sparse`: a length-``d`` vector, ``values`` at ``indices``."""
    d = as_index("rand_k_dense", "d", d)
    if hasattr(values, "new_zeros"):
        out = values.new_zeros((d,))
    elif type(values).__module__.startswith("cupy"):
        import cupy

        out = cupy.zeros((d,), dtype=values.dtype)
    else:
        out = np.zeros((d,), dtype=np.asarray(values).dtype)
    out[indices] = values
    return out


def centered_clipping(X: ArrayLike, tau: float, *, center: ArrayLike | None = None, iters: int = 1) -> Any:
    """Centered clipping (Karimireddy et al., ICML 2021): ``v <- v + mean_i clip(x_i - v, tau)``,
    ``iters`` times, from ``center`` (default zero). A non-finite message contributes zero."""
    op = "centered_clipping"
    tau = as_number(op, "tau", tau)
    iters = as_index(op, "iters", iters)

    def call(b: Batch, out: int) -> None:
        cptr = 0 if center is None else b.like(center, "center")[1]
        core.centered_clipping(b.messages, tau, cptr, iters, out)

    return _reduce(op, X, call)


def bucketing(X: ArrayLike, s: int, aggregator: Callable[[Any], Any], *, seed: int) -> Any:
    """Bucketing (Karimireddy, He, Jaggi, ICLR 2022): shuffle the messages with ``seed``,
    average consecutive buckets of ``s`` messages (the last may be smaller), and apply
    ``aggregator`` (a function or an aggregator object) to the ``ceil(n/s)`` bucket means."""
    op = "bucketing"
    s, seed = as_index(op, "s", s), as_seed(op, seed)
    if not callable(aggregator):
        raise TypeError(f"[{op}] aggregator must be callable (e.g. byzcore.median or byzcore.Median()), got {type(aggregator).__name__}")
    b = Batch(op, X)
    if s < 1:
        raise ValueError(f"[{op}] bucket size s must be >= 1, got {s}")
    nb = -(-b.n // s)
    perm = core.random_permutation(b.n, seed)
    means, ptr = b.empty((nb, b.d))
    core.bucket_means(b.messages, perm, s, ptr)
    # The means as (nb, *shape) messages: a rule returns one message, a pre-aggregator
    # (Bucketing without a rule) the nb means themselves.
    return b.result(aggregator(means.reshape((nb, *b.item_shape))))


def nnm(X: ArrayLike, f: int) -> Any:
    """Nearest-neighbour mixing (Allouah et al., AISTATS 2023): replace each ``x_i`` by the
    mean of its ``n - f`` nearest messages (itself included). Returns ``(n, *shape)``.
    Needs ``n > f``."""
    f = as_index("nnm", "f", f)
    b = Batch("nnm", X)
    out, ptr = b.empty((b.n, b.d))
    core.nnm(b.messages, f, ptr)
    return b.result(out, (b.n, *b.item_shape))


def permutation(n: int, *, seed: int) -> np.ndarray:
    """The seeded permutation of ``0..n-1`` that :func:`bucketing` uses."""
    n, seed = as_index("permutation", "n", n), as_seed("permutation", seed)
    if n < 0:
        raise ValueError(f"[permutation] n must be >= 0, got {n}")
    return np.asarray(core.random_permutation(n, seed), dtype=np.int64)


# ---- subset rules: MDA, SMEA, CAF, DnC (docs/rules-subset.md) ------------------------------


def mda(X: ArrayLike, f: int) -> Any:
    """Minimum-diameter averaging: the mean of the ``n - f`` messages whose largest pairwise
    distance (the diameter) is smallest.

    Exact: the optimum diameter is found by binary search over the sorted pairwise distances,
    each step a bounded vertex-cover search on the "too far apart" graph (see docs/spec.md).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages, ``(n, d)`` or ``(n, *shape)``.
    f : int
        Byzantine messages tolerated.

    Returns
    -------
    array
        One message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[mda]`` if ``n <= 2f``, ``f < 0`` or the input is empty.
    TypeError
        ``[mda]`` for a non-integer ``f`` or an unsupported input.

    Notes
    -----
    Ties go to the lexicographically first subset (sorted indices), as enumerating
    ``itertools.combinations`` in order finds it. A message holding a non-finite entry is
    infinitely far from all others, so it is never chosen while ``n - f`` finite ones exist.

    References
    ----------
    El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault. Genuinely distributed Byzantine machine
    learning. PODC 2020.
    """
    f = as_index("mda", "f", f)
    return _reduce("mda", X, lambda b, out: core.mda(b.messages, f, out))


def smea(X: ArrayLike, f: int) -> Any:
    """Smallest maximum eigenvalue averaging: the mean of the ``n - f`` messages whose
    empirical covariance has the smallest largest eigenvalue.

    The eigenvalue is computed exactly from the subset's centred ``n x n`` Gram matrix (derived
    from the pairwise distances: one ``O(n^2 d)`` pass), and the subsets are searched by
    branch and bound (a subset's largest eigenvalue bounds every superset's; see docs/spec.md).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Byzantine messages tolerated.

    Returns
    -------
    array
        One message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[smea]`` if ``n <= 2f``, ``f < 0`` or the input is empty.
    TypeError
        ``[smea]`` for a non-integer ``f`` or an unsupported input.

    Notes
    -----
    Deterministic; ties (equal computed eigenvalues) go to the lexicographically first subset.
    Subsets holding a message with a non-finite entry have an infinite eigenvalue.

    References
    ----------
    Allouah, Guerraoui, Gupta, Pinot, Stephan. Fixing by mixing: a recipe for optimal Byzantine
    ML under heterogeneity. AISTATS 2023.
    """
    f = as_index("smea", "f", f)
    return _reduce("smea", X, lambda b, out: core.smea(b.messages, f, out))


def caf(X: ArrayLike, f: int) -> Any:
    """Covariance-bound agnostic filter: iteratively down-weight the messages along the top
    principal direction of the weighted covariance, and return the weighted mean of the
    iteration whose covariance had the smallest largest eigenvalue.

    Starting from ``c_i = 1``, while ``sum c > n - 2f``: ``mu`` = the ``c``-weighted mean,
    ``(lambda, v)`` the top eigenpair of the weighted covariance, ``tau_i = ((x_i - mu) . v)^2``
    and ``c_i <- c_i (1 - tau_i / max tau)`` (the max over the messages still weighted). The
    eigenpair is exact (Jacobi on the weighted ``n x n`` Gram matrix), not a random power step.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Byzantine messages tolerated.

    Returns
    -------
    array
        One message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[caf]`` if ``n <= 2f``, ``f < 0`` or the input is empty.
    TypeError
        ``[caf]`` for a non-integer ``f`` or an unsupported input.

    Notes
    -----
    A message holding a non-finite entry starts with weight zero (its projection would be
    infinite, so the first step would zero it). With ``f = 0`` the loop never runs and the
    result is the mean of the finite messages.

    References
    ----------
    Allouah, Guerraoui, Stephan. Towards trustworthy federated learning with untrusted
    participants. ICML 2025.
    """
    f = as_index("caf", "f", f)
    return _reduce("caf", X, lambda b, out: core.caf(b.messages, f, out))


def dnc(X: ArrayLike, f: int, *, iters: int = 1, sub_dim: int = 10000, c: float = 1.0, seed: int = 0) -> Any:
    """Divide-and-conquer: per round, on ``sub_dim`` coordinates drawn uniformly without
    replacement, drop the ``floor(c f)`` messages with the largest squared projection on the
    top principal direction of the centred subsample; the mean of the messages kept by every
    one of the ``iters`` rounds.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Byzantine messages tolerated.
    iters : int
        Filtering rounds (each draws new coordinates), ``>= 1``.
    sub_dim : int
        Coordinates per round (all of them if ``>= d``), ``>= 1``.
    c : float
        Filtering fraction: ``floor(c f)`` messages removed per round, ``>= 0``.
    seed : int
        Seed of the coordinate draws (round ``t`` uses the key ``counter_key(seed, t)``, the
        same generator as :func:`rand_k_indices`: identical on CPU and CUDA).

    Returns
    -------
    array
        One message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[dnc]`` if ``n <= 2f``, ``n <= iters * floor(c f)`` (no message could survive),
        or an argument is out of range.
    TypeError
        ``[dnc]`` for a non-integer ``f``, ``iters``, ``sub_dim`` or ``seed``.

    Notes
    -----
    The top direction is exact (Jacobi on the ``n x n`` Gram matrix of the centred
    subsample). Messages holding a non-finite entry are scored ``+inf`` (removed first) and left
    out of the centring; ties in the score remove the higher index first.

    References
    ----------
    Shejwalkar, Houmansadr. Manipulating the Byzantine: optimizing model poisoning attacks and
    defenses for federated learning. NDSS 2021.
    """
    op = "dnc"
    f, iters, sub_dim = as_index(op, "f", f), as_index(op, "iters", iters), as_index(op, "sub_dim", sub_dim)
    c, seed = as_number(op, "c", c), as_seed(op, seed)
    return _reduce(op, X, lambda b, out: core.dnc(b.messages, f, iters, sub_dim, c, seed, out))
