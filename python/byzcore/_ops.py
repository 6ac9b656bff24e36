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


def mean(X: ArrayLike, weights: Sequence[float] | None = None) -> Any:
    """Plain coordinate-wise average of the messages (not robust: the baseline).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    weights : sequence of float, optional
        Per-message weights ``w_i`` (example counts, as FedAvg and Flower use them): the result
        is ``sum_i w_i x_i / sum_i w_i``. Finite, ``>= 0``, not all zero; a weight-0 message
        takes no part (even a non-finite one).

    Returns
    -------
    The average, shaped like one message, in the caller's array type.

    Raises
    ------
    ValueError
        On bad weights (wrong count, negative, non-finite, all zero).

    Notes
    -----
    NaN/Inf propagate, as in ``np.mean(X, axis=0)``. See ``docs/rules.md``.
    """
    if weights is None:
        return _reduce("mean", X, lambda b, out: core.mean(b.messages, out))
    w = _weights("mean", weights)
    return _reduce("mean", X, lambda b, out: core.weighted_mean(b.messages, w, out))


def median(X: ArrayLike) -> Any:
    """Coordinate-wise median; for even ``n`` the mean of the two middle values.

    Non-finite entries count as larger than every finite value, so with at most ``f``
    of them and ``n > 2f`` the result is finite.
    """
    return _reduce("median", X, lambda b, out: core.median(b.messages, out))


def trimmed_mean(X: ArrayLike, f: int | None = None, *, beta: float | None = None) -> Any:
    """Per coordinate, drop the ``f`` smallest and ``f`` largest values and average the rest.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int, optional
        How many values to drop at each end.
    beta : float, optional
        Instead of ``f``: the fraction trimmed at each end, as Flower's ``FedTrimmedAvg``
        (``proportiontocut``) uses it: ``f = int(beta * n)``, the product rounded down in
        float64 exactly as Flower and SciPy compute it. Needs ``0 <= beta < 0.5``.

    Raises
    ------
    TypeError
        Unless exactly one of ``f`` and ``beta`` is given.
    ValueError
        When ``n > 2f`` fails, or ``beta`` is outside ``[0, 0.5)``.

    Notes
    -----
    Non-finite entries count as larger than every finite value. See ``docs/rules.md``.
    """
    op = "trimmed_mean"
    if (f is None) == (beta is None):
        raise TypeError(f"[{op}] give exactly one of f (a count) and beta (a fraction in [0, 0.5))")
    if beta is not None:
        frac = as_number(op, "beta", beta)
        if not 0.0 <= frac < 0.5:
            raise ValueError(f"[{op}] beta must be in [0, 0.5) (the fraction trimmed at each end), got {frac}")
        return _reduce(op, X, lambda b, out: core.trimmed_mean(b.messages, int(frac * b.n), out))
    f = as_index(op, "f", f)
    return _reduce(op, X, lambda b, out: core.trimmed_mean(b.messages, f, out))


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


def krum(X: ArrayLike, f: int, *, variant: str = "original") -> Any:
    """The message with the lowest Krum score (ties: the lowest index). Needs ``n >= f + 3``.

    ``variant="byzfl"`` scores by the ``n - f - 1`` nearest neighbours and needs only
    ``n > 2f``, as ByzFL's ``Krum`` does (see :func:`multi_krum` and ``docs/rules.md``).
    """
    f = as_index("krum", "f", f)
    if _krum_variant("krum", variant):
        return _byzfl_krum("krum", X, f, 1)
    return _reduce("krum", X, lambda b, out: core.krum(b.messages, f, out))


def multi_krum(X: ArrayLike, f: int, m: int | None = None, *, variant: str = "original") -> Any:
    """Mean of the ``m`` messages with the lowest Krum scores (``m`` defaults to ``n - f``).

    Needs ``n >= f + 3`` and ``1 <= m <= n``.

    ``variant="byzfl"``: ByzFL's convention: score = the sum (ByzFL: mean, the same order) of
    the ``n - f - 1`` smallest squared distances to the others, bound ``n > 2f`` instead of
    ``n >= f + 3``. The distances are byzcore's exact kernel; only the ``n x n`` ranking runs in
    NumPy. ``variant="original"`` (the default) is Blanchard et al.'s ``n - f - 2``.
    """
    f = as_index("multi_krum", "f", f)
    if _krum_variant("multi_krum", variant):
        return _byzfl_krum("multi_krum", X, f, m)

    def call(b: Batch, out: int) -> None:
        # max(f, 0): a negative f is the core's error to report, not an m outside int64.
        mm = b.n - max(f, 0) if m is None else as_index("multi_krum", "m", m)
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
    w = [] if weights is None else _weights(op, weights)
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
    return _draw_indices(op, d, k, seed, like)


def _draw_indices(op: str, d: int, k: int, seed: int, like: ArrayLike | None) -> Any:
    size = max(0, min(k, d))  # k > d is the core's error to report, not a huge allocation
    if like is None:
        out = np.empty((size,), dtype=np.int64)
        core.rand_k_indices(d, k, seed, "cpu", 0, 0, out.__array_interface__["data"][0])
        return out
    b = Batch(op, like.reshape(1, -1) if getattr(like, "ndim", 2) == 1 else like)
    out, ptr = b.empty((size,), "int64")
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
    k, seed = as_index(op, "k", k), as_seed(op, seed)
    if isinstance(x, (list, tuple)) or not hasattr(x, "reshape"):
        raise TypeError(f"[{op}] x must be one message as an array or tensor, got {type(x).__name__}; "
                        "e.g. np.asarray(x, dtype=np.float32)")
    flat = x.reshape(-1)
    d = flat.shape[0]
    if not 1 <= k <= d:  # checked here too so that the error names this function
        raise ValueError(f"[{op}] k must be in 1..d (d = {d}), got {k}")
    idx = _draw_indices(op, d, k, seed, flat)
    values = flat[idx] * (d / k)
    return idx, values


def rand_k_dense(indices: ArrayLike, values: ArrayLike, d: int) -> Any:
    """Inverse of :func:`rand_k_sparse`: a length-``d`` vector, ``values`` at ``indices``."""
    op = "rand_k_dense"
    d = as_index(op, "d", d)
    if not 1 <= d <= 2**40:
        raise ValueError(f"[{op}] d must be in 1..2**40 (the length of the dense message), got {d}")
    try:
        if hasattr(values, "new_zeros"):
            out = values.new_zeros((d,))
        elif type(values).__module__.startswith("cupy"):
            import cupy

            out = cupy.zeros((d,), dtype=values.dtype)
        else:
            out = np.zeros((d,), dtype=np.asarray(values).dtype)
        out[indices] = values
    except MemoryError:
        raise ValueError(f"[{op}] a dense vector of d = {d} coordinates does not fit in memory") from None
    except (IndexError, ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"[{op}] cannot place values at indices in a vector of length {d} ({exc}); pass the "
                         "(indices, values) pair rand_k_sparse returned for this d") from None
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


# ---------------------------------------------------------------- helpers of the catalogue rules
def _weights(op: str, weights: Any) -> list[float]:
    """Per-message weights as a list of floats (from a list, NumPy or torch, any device)."""
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu()
    elif type(weights).__module__.split(".", 1)[0] == "cupy":
        weights = weights.get()
    return [as_number(op, "weights", v) for v in np.asarray(weights, dtype=object).reshape(-1)]


def _host(a: Any) -> np.ndarray:
    """A small result (an n x n matrix) as a NumPy array on the host."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    if type(a).__module__.split(".", 1)[0] == "cupy":
        return a.get()
    return np.asarray(a)


def _krum_variant(op: str, variant: Any) -> bool:
    if variant not in ("original", "byzfl"):
        raise ValueError(f"[{op}] variant must be 'original' (Blanchard et al.: n - f - 2 neighbours) "
                         f"or 'byzfl' (n - f - 1 neighbours, n > 2f), got {variant!r}")
    return variant == "byzfl"


def _byzfl_krum(op: str, X: ArrayLike, f: int, m: int | None) -> Any:
    """ByzFL's Krum / Multi-Krum: scores over the n - f - 1 nearest, bound n > 2f."""
    n = Batch(op, X).n
    if f < 0:
        raise ValueError(f"[{op}] f must be >= 0 (the number of Byzantine messages tolerated), got {f}")
    if f > (n - 1) // 2:
        raise ValueError(f"[{op}] variant='byzfl' needs n > 2f, got n = {n}, f = {f}; lower f or aggregate more messages")
    m = n - f if m is None else as_index(op, "m", m)
    if not 1 <= m <= n:
        raise ValueError(f"[{op}] m must be in 1..n (n = {n}), got {m}")
    D = _host(pairwise_distances(X))
    k = n - f - 1
    scores = [float(sum(sorted(np.delete(D[i], i))[:k])) for i in range(n)]
    chosen = sorted(sorted(range(n), key=lambda i: (scores[i], i))[:m])
    return mean([X[i] for i in chosen])


# ---------------------------------------------------------------- the catalogue rules (issue 9)
def meamed(X: ArrayLike, f: int) -> Any:
    """Mean around the median (MeaMed; Xie, Koyejo, Gupta 2018).

    Per coordinate, the mean of the ``n - f`` values closest to the coordinate-wise median
    (for even ``n`` the mean of the two middle values). Ties in distance go to the smaller
    value, so the result is deterministic.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    One message-shaped array in the caller's type and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    Notes
    -----
    Non-finite entries rank above every finite value (as in :func:`median`): with at most ``f``
    of them per coordinate the result is finite. See ``docs/rules.md``.

    References
    ----------
    C. Xie, O. Koyejo, I. Gupta, "Generalized Byzantine-tolerant SGD", arXiv:1802.10116, 2018.
    """
    f = as_index("meamed", "f", f)
    return _reduce("meamed", X, lambda b, out: core.meamed(b.messages, f, out))


def bulyan(X: ArrayLike, f: int) -> Any:
    """Bulyan (El Mhamdi, Guerraoui, Rouault, ICML 2018).

    Selects ``theta = n - 2f`` messages by iterated Krum: each round scores the messages not
    chosen yet by Krum *on that remaining set* (recomputed every round, as in the paper; with
    ``r`` left, the sum of the ``max(1, r - f - 2)`` smallest squared distances, as Flower
    counts them) and takes the lowest (ties: lower index). Then per coordinate averages the
    ``beta = theta - 2f`` values of the selection closest to its coordinate-wise median
    (:func:`meamed` of the selection with ``2f`` left out).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n >= 4f + 3``.

    Returns
    -------
    One message-shaped array in the caller's type and device.

    Raises
    ------
    ValueError
        When ``n >= 4f + 3`` fails or ``f < 0``.

    Notes
    -----
    A message holding NaN/Inf is infinitely far from the others, so it is never selected while
    at most ``f`` such messages are present. See ``docs/rules.md``.

    References
    ----------
    E. M. El Mhamdi, R. Guerraoui, S. Rouault, "The hidden vulnerability of distributed learning
    in Byzantium", ICML 2018.
    """
    f = as_index("bulyan", "f", f)
    return _reduce("bulyan", X, lambda b, out: core.bulyan(b.messages, f, out))


def monna(X: ArrayLike, f: int, pivot: int = 0) -> Any:
    """MoNNA (Farhadkhani et al., ICML 2023): the mean of the ``n - f`` messages nearest to the
    pivot message (itself included; nearest by exact Euclidean distance, ties: lower index).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.
    pivot : int
        Index of the trusted message (the server's own or an honest worker's), default 0.

    Returns
    -------
    One message-shaped array in the caller's type and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails, ``pivot`` is not in ``0..n-1``, or the pivot holds NaN/Inf.

    References
    ----------
    S. Farhadkhani, R. Guerraoui, N. Gupta, L.-N. Hoang, R. Pinot, J. Stephan, "Robust
    collaborative learning with linear gradient overhead", ICML 2023.
    """
    f = as_index("monna", "f", f)
    pivot = as_index("monna", "pivot", pivot)
    return _reduce("monna", X, lambda b, out: core.monna(b.messages, f, pivot, out))


def cge(X: ArrayLike, f: int) -> Any:
    """Comparative gradient elimination (Gupta, Liu, Vaidya 2021): the mean of the ``n - f``
    messages of smallest Euclidean norm (ties: lower index; NaN/Inf: infinite norm).

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    One message-shaped array in the caller's type and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    References
    ----------
    N. Gupta, S. Liu, N. H. Vaidya, "Byzantine fault-tolerant distributed machine learning
    using stochastic gradient descent (SGD) and norm-based comparative gradient elimination
    (CGE)", DSN Workshops 2021.
    """
    f = as_index("cge", "f", f)
    return _reduce("cge", X, lambda b, out: core.cge(b.messages, f, out))


def arc(X: ArrayLike, f: int) -> Any:
    """Adaptive robust clipping (Allouah et al., NeurIPS 2024), a pre-aggregator.

    The ``k = floor(2 (f / n) (n - f))`` messages of largest norm are clipped to the norm of
    the largest remaining one (computed as ``floor(2 f (n - f) / n)`` in integers, so no
    rounding); the others pass unchanged.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    The ``n`` clipped messages, ``(n, *shape)``, in the caller's type and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    Notes
    -----
    A message holding NaN/Inf has infinite norm: it is among the clipped ones and becomes zero,
    as in :func:`clip`. See ``docs/rules.md``.

    References
    ----------
    Y. Allouah, R. Guerraoui, N. Gupta, A. Jellouli, G. Rizk, J. Stephan, "Boosting robustness
    by clipping gradients in distributed learning", NeurIPS 2024.
    """
    f = as_index("arc", "f", f)
    b = Batch("arc", X)
    out, ptr = b.empty((b.n, b.d))
    core.arc(b.messages, f, ptr)
    return b.result(out, (b.n, *b.item_shape))


# ---- subset rules: MDA, SMEA, CAF, DnC (docs/rules.md#subset-rules-mda-smea-caf-dnc) ------------------------------


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
