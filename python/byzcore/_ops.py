"""The aggregation functions of docs/spec.md#rules, with its pre-aggregators and helpers.

Every function takes ``X`` as an ``(n, d)`` array (or ``(n, *shape)``) or as a sequence of
``n`` arrays of one shape, from NumPy, PyTorch, CuPy or any ``__dlpack__`` producer; runs
the compiled kernel on the input's own device; never modifies the input; and returns the
caller's array type on the caller's device, with the shape of one message
(docs/spec.md#inputs). The result has the input's floating dtype: float16 and bfloat16 are
computed in float32, and a list that mixes float dtypes is promoted as NumPy promotes
(docs/spec.md#dtypes).

Errors (docs/spec.md#errors) are ``ValueError`` or ``TypeError`` with a message that starts
with ``[op]``. Every function raises ``ValueError`` for an empty input (``n = 0`` or
``d = 0``), messages of different shapes or on different devices, and an integer argument
outside the 64-bit range, and ``TypeError`` for a non-floating dtype, a non-array input, and
an integer argument given as a float or a bool; the Raises section of each function lists
what it adds (its bound on ``n``, the ranges of its options).

Non-finite messages (a Byzantine worker may send NaN or Inf; docs/spec.md#nonfinite): every
robust rule treats a non-finite entry as larger than any finite value (median, trimmed mean)
or a message that holds one as infinitely far from the others (distances, Krum, geometric
median, NNM, clipping). So whenever at most ``f`` messages hold non-finite entries and the
rule's bound on ``n`` holds, the result is finite. :func:`mean` propagates them, as NumPy does.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from ._arrays import Batch, _check_float, _dtype_name, _framework, as_index, as_number, as_seed
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

    ``sum_i x_i / n``; with ``weights``, ``sum_i w_i x_i / sum_i w_i``. Needs ``n >= 1``.
    Definition: docs/spec.md#rule-mean.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    weights : sequence of float, optional
        Per-message weights ``w_i`` (example counts, as FedAvg and Flower use them), one per
        message, as a list, a NumPy array or a tensor on any device. Finite, ``>= 0``, not all
        zero; a weight-0 message takes no part (even a non-finite one). Default: unweighted.
        They are scaled by a power of two (exact) so that the largest is about 1: subnormal
        weights give the weighted mean too.

    Returns
    -------
    array
        The average, shaped like one message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        On bad weights (not one per message, negative, non-finite, all zero).
    TypeError
        When a weight is not a real number.

    Notes
    -----
    NaN/Inf propagate, as in ``np.mean(X, axis=0)``. Further reading (the peers' conventions):
    docs/rules.md.
    """
    if weights is None:
        return _reduce("mean", X, lambda b, out: core.mean(b.messages, out))
    w = _scaled(_weights("mean", weights))
    return _reduce("mean", X, lambda b, out: core.weighted_mean(b.messages, w, out))


def median(X: ArrayLike) -> Any:
    """Coordinate-wise median; for even ``n`` the mean of the two middle values.

    Per coordinate, the middle value of the ``n`` sorted values. Needs ``n >= 1``.
    Definition: docs/spec.md#rule-median.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Notes
    -----
    Non-finite entries (NaN, ``+inf`` and ``-inf``) rank above every finite value, so with at
    most ``f`` of them per coordinate and ``n > 2f`` the result is finite.
    """
    return _reduce("median", X, lambda b, out: core.median(b.messages, out))


def trimmed_mean(X: ArrayLike, f: int | None = None, *, beta: float | None = None) -> Any:
    """Coordinate-wise trimmed mean: drop the ``f`` smallest and ``f`` largest values, average the rest.

    Per coordinate, sort the ``n`` values, drop ``f`` at each end and average the remaining
    ``n - 2f`` (Yin et al., ICML 2018). Needs ``n > 2f``. Definition:
    docs/spec.md#rule-trimmed-mean.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int, optional
        How many values to drop at each end; needs ``n > 2f``.
    beta : float, optional
        Instead of ``f``: the fraction trimmed at each end, as Flower's ``FedTrimmedAvg`` and
        SciPy's ``trim_mean`` (``proportiontocut``) use it: ``f = int(beta * n)``, the product
        rounded down in float64 exactly as they compute it (``beta = 0.29``, ``n = 100`` trims
        28). Needs ``0 <= beta < 0.5``; the bound ``n > 2f`` then always holds.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    TypeError
        Unless exactly one of ``f`` and ``beta`` is given.
    ValueError
        When ``n > 2f`` fails, ``f < 0``, or ``beta`` is outside ``[0, 0.5)`` (NaN included).

    Notes
    -----
    Non-finite entries rank above every finite value: with at most ``f`` of them per coordinate
    the result is finite. Further reading (the peers' conventions): docs/rules.md.
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
    """The ``n x n`` matrix of squared (or plain) Euclidean distances between the messages.

    ``D[i, j] = ||x_i - x_j||^2`` (``||x_i - x_j||`` with ``squared=False``): zero diagonal,
    symmetric, never negative (rounding in the Gram product is clamped at zero), accumulated in
    float64. Needs ``n >= 1``. Not an aggregator. Definition:
    docs/spec.md#rule-pairwise-distances.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    squared : bool
        Squared distances (the default) or, if false, distances.

    Returns
    -------
    array
        ``(n, n)``, in the input's floating dtype, the caller's array type and device.

    Notes
    -----
    A message holding a non-finite entry is at distance ``+inf`` from every other message; the
    diagonal stays 0.
    """
    b = Batch("pairwise_distances", X)
    out, ptr = b.empty((b.n, b.n))
    core.pairwise_distances(b.messages, bool(squared), ptr)
    return b.result(out)


def krum_scores(X: ArrayLike, f: int) -> Any:
    """Krum score of each message: the sum of its ``n - f - 2`` smallest squared distances to the others.

    Blanchard et al., NeurIPS 2017. Needs ``n >= f + 3`` (so at least one neighbour).
    Definition: docs/spec.md#rule-krum-scores.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n >= f + 3``.

    Returns
    -------
    array
        ``(n,)`` scores, in the input's floating dtype, the caller's array type and device.

    Raises
    ------
    ValueError
        When ``n >= f + 3`` fails or ``f < 0``.

    Notes
    -----
    A message holding a non-finite entry scores ``+inf``; with at most ``f`` such messages every
    finite message has a finite score (its ``n - f - 2`` nearest are finite).
    """
    f = as_index("krum_scores", "f", f)
    b = Batch("krum_scores", X)
    out, ptr = b.empty((b.n,))
    core.krum_scores(b.messages, f, ptr)
    return b.result(out)


def krum(X: ArrayLike, f: int, *, variant: str = "original") -> Any:
    """Krum: the message with the lowest Krum score (ties: the lowest index).

    Scores as :func:`krum_scores`: the sum of the ``n - f - 2`` smallest squared distances to the
    other messages (Blanchard et al., NeurIPS 2017). Needs ``n >= f + 3``. Definition:
    docs/spec.md#rule-krum.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n >= f + 3`` (``n > 2f`` with
        ``variant="byzfl"``).
    variant : {"original", "byzfl"}
        ``"original"`` (the default): Blanchard et al.'s ``n - f - 2`` neighbours. ``"byzfl"``:
        ByzFL's ``Krum``, scored by the ``n - f - 1`` nearest neighbours, bound ``n > 2f``; the
        distances are byzcore's kernel, only the ``n x n`` ranking runs in NumPy.

    Returns
    -------
    array
        A copy of the selected message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When the variant's bound fails, ``f < 0``, or ``variant`` is neither ``"original"`` nor
        ``"byzfl"``.

    Notes
    -----
    A message holding a non-finite entry scores ``+inf``: while at most ``f`` messages hold one,
    none of them is selected. Flower's and ByzFL's conventions: docs/rules.md.

    See Also
    --------
    krum_scores, multi_krum
    """
    f = as_index("krum", "f", f)
    if _krum_variant("krum", variant):
        return _byzfl_krum("krum", X, f, 1)
    return _reduce("krum", X, lambda b, out: core.krum(b.messages, f, out))


def multi_krum(X: ArrayLike, f: int, m: int | None = None, *, variant: str = "original",
               weights: Sequence[float] | None = None) -> Any:
    """Multi-Krum: the mean of the ``m`` messages with the lowest Krum scores.

    The selection follows the order ``(score, index)``, scores as :func:`krum_scores`; ``m``
    defaults to ``n - f``. Needs ``n >= f + 3`` and ``1 <= m <= n``. With ``weights`` the
    selection is the same (it ignores the weights) and the selected messages are averaged
    with their weights, ``sum_{i in S} w_i x_i / sum_{i in S} w_i``, as Flower's Multi-Krum
    weights by example counts. Definition: docs/spec.md#rule-multi-krum.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n >= f + 3`` (``n > 2f`` with
        ``variant="byzfl"``).
    m : int, optional
        How many messages to average, ``1 <= m <= n``; default ``n - f``.
    variant : {"original", "byzfl"}
        ``"original"`` (the default): Blanchard et al.'s ``n - f - 2`` neighbours. ``"byzfl"``:
        ByzFL's convention, the sum (ByzFL: the mean, the same order) of the ``n - f - 1``
        smallest squared distances to the others, bound ``n > 2f``; the distances are byzcore's
        exact kernel, only the ``n x n`` ranking runs in NumPy.
    weights : sequence of float, optional
        Per-message weights ``w_i`` (example counts), one per message, as a list, a NumPy array
        or a tensor on any device; checked as :func:`mean` checks them (finite, ``>= 0``, not
        all zero), and the selected messages' weights must not all be zero. Default:
        unweighted (the plain mean of the selection).

    Returns
    -------
    array
        The (weighted) mean of the selected messages, shaped like one message, in the caller's
        array type, dtype and device.

    Raises
    ------
    ValueError
        When the variant's bound fails, ``f < 0``, ``m`` is outside ``1..n``, ``variant`` is
        unknown, or on bad weights (not one per message, negative, non-finite, all zero, or
        all zero on the selected messages).
    TypeError
        When a weight is not a real number.

    Notes
    -----
    A message holding a non-finite entry scores ``+inf``: with at most ``f`` such messages and
    ``m <= n - f`` (the default) none of them is selected. With ``weights`` the selection ranks
    the scores :func:`krum_scores` returns, in the input's precision (the unweighted kernel
    ranks them in double; float16 and bfloat16 are scored in float32): for float32 input the
    two can differ only where two scores are equal after rounding to float32, which then go
    to the lower index. The weighted mean is
    the kernel of ``mean(weights=)``, with weight 0 for the messages not selected. Further
    reading: docs/rules.md.

    See Also
    --------
    krum_scores, krum
    """
    f = as_index("multi_krum", "f", f)
    byzfl = _krum_variant("multi_krum", variant)
    if weights is not None:
        return _weighted_multi_krum(X, f, m, byzfl, weights)
    if byzfl:
        return _byzfl_krum("multi_krum", X, f, m)

    def call(b: Batch, out: int) -> None:
        # max(f, 0): a negative f is the core's error to report, not an m outside int64.
        mm = b.n - max(f, 0) if m is None else as_index("multi_krum", "m", m)
        core.multi_krum(b.messages, f, mm, out)

    return _reduce("multi_krum", X, call)


def geometric_median(X: ArrayLike, *, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7,
                     weights: Sequence[float] | None = None) -> Any:
    """Geometric median by the smoothed Weiszfeld iteration (RFA; Pillutla, Kakade, Harchaoui 2022).

    Starts at the coordinate-wise median ``z_0`` and repeats
    ``beta_i = a_i / max(nu, ||x_i - z_t||)``, ``z_{t+1} = sum_i beta_i x_i / sum_i beta_i``
    until ``||z_{t+1} - z_t|| <= tol * ||z_{t+1}||`` or ``max_iter`` iterations ran. Needs
    ``n >= 1``. Definition: docs/spec.md#rule-geometric-median.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    nu : float
        Smoothing: the smallest distance a weight divides by; positive and finite.
    max_iter : int
        Most iterations, ``0..10**6`` (``0`` returns the coordinate-wise median).
    tol : float
        Relative tolerance of the stopping test, ``>= 0``.
    weights : sequence of float, optional
        The ``a_i``, one per message: finite, ``>= 0``, not all zero. Default: all one.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``nu`` is not positive and finite, ``max_iter`` is outside ``0..10**6``, ``tol`` is
        negative or NaN, or on bad weights (not one per message, negative, non-finite, all zero).
    TypeError
        When ``nu``, ``tol`` or a weight is not a real number.

    Notes
    -----
    A message holding a non-finite entry gets ``beta_i = 0`` (it is infinitely far away), so the
    result is finite while at least one finite message has a positive weight. ByzFL starts at
    zero with ``nu = 0.1`` and 3 iterations (docs/rules.md).
    """
    op = "geometric_median"
    nu = as_number(op, "nu", nu)
    tol = as_number(op, "tol", tol)
    max_iter = as_index(op, "max_iter", max_iter)
    w = [] if weights is None else _scaled(_weights(op, weights))
    return _reduce(op, X, lambda b, out: core.geometric_median(b.messages, w, nu, max_iter, tol, out))


def clip(x: ArrayLike, threshold: float) -> Any:
    """Norm clipping: ``min(1, threshold / ||x||) * x`` for one message, or for each of ``n``.

    Zero stays zero. A 1-D array or tensor is one message; an ``(n, *shape)`` array or a
    sequence of ``n`` arrays clips each message separately. Needs ``threshold >= 0``.
    Definition: docs/spec.md#helper-clip (as a pre-aggregator: docs/spec.md#pre-clipping).

    Parameters
    ----------
    x : array or sequence of arrays
        One message (1-D) or ``n`` messages.
    threshold : float
        The largest norm kept, ``>= 0`` (``inf`` disables clipping).

    Returns
    -------
    array
        The clipped message(s): a 1-D input's shape, else ``(n, *shape)``; in the caller's array
        type, dtype and device.

    Raises
    ------
    ValueError
        When ``threshold`` is negative or NaN.

    Notes
    -----
    A message holding a non-finite entry has norm ``+inf`` and clips to zero.
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

    A uniform draw without replacement from a counter-based generator keyed by ``seed``,
    identical on CPU and CUDA. Needs ``1 <= k <= d <= 2**32``. Definition:
    docs/spec.md#helper-rand-k.

    Parameters
    ----------
    d : int
        Number of coordinates of the message, ``1..2**32``.
    k : int
        Number of coordinates kept, ``1..d``.
    seed : int
        Key of the draw, ``0..2**64-1``; required.
    like : array, optional
        A floating array or tensor (e.g. the message) whose array type and device the result
        takes. Default: NumPy.

    Returns
    -------
    array
        ``(k,)`` int64 indices, ascending: a NumPy array, or ``like``'s array type on its device.

    Raises
    ------
    ValueError
        When ``d`` is outside ``1..2**32`` (the draw scans every coordinate), ``k`` outside
        ``1..d``, ``seed`` outside ``0..2**64-1``, or the ``k`` indices do not fit in memory.
    TypeError
        When ``seed`` is ``None``, or ``like`` is not a floating array.
    """
    op = "rand_k_indices"
    d, k, seed = as_index(op, "d", d), as_index(op, "k", k), as_seed(op, seed)
    return _draw_indices(op, d, k, seed, like)


# The draw scans all d keys (about 8.7 s per 2**30 on one core of the development machine), so d
# is capped at 2**32 coordinates (16 GiB of float32): a call takes at most about half a minute.
# csrc/ops/rand_k.cpp's kMaxCoordinates; checked here too so that no call starts a longer scan.
_MAX_COORDINATES = 2**32


def _check_coordinates(op: str, d: int) -> None:
    if not 1 <= d <= _MAX_COORDINATES:
        raise ValueError(f"[{op}] d must be in 1..2**32 (the draw scans every coordinate), got {d}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _draw_indices(op: str, d: int, k: int, seed: int, like: ArrayLike | None) -> Any:
    _check_coordinates(op, d)
    if not 1 <= k <= d:
        raise ValueError(f"[{op}] k must be in 1..d (d = {d}), got {k}")
    too_big = ValueError(f"[{op}] the k = {k} indices ({8 * k} bytes of int64) do not fit in memory; lower k")
    try:
        if like is None:
            memory = _physical_memory()
            if memory is not None and 8 * k > memory:  # a lazily committed array would fail in the kernel
                raise too_big
            out = np.empty((k,), dtype=np.int64)
            core.rand_k_indices(d, k, seed, "cpu", 0, 0, out.__array_interface__["data"][0])
            return out
        b = Batch(op, like.reshape(1, -1) if getattr(like, "ndim", 2) == 1 else like)
        out, ptr = b.empty((k,), "int64")
    except MemoryError:  # NumPy's and CuPy's (its OutOfMemoryError is a MemoryError)
        raise too_big from None
    except RuntimeError as exc:  # torch's OutOfMemoryError
        if "out of memory" not in str(exc).lower():
            raise
        raise too_big from None
    core.rand_k_indices(d, k, seed, b.device, b.device_index, b.stream, ptr)
    return out


def rand_k(x: ArrayLike, k: int, *, seed: int) -> Any:
    """Unbiased random-k sparsification: keep ``k`` coordinates, scaled by ``d / k``; zero elsewhere.

    The kept coordinates are ``rand_k_indices(d, k, seed=seed)``, ``d`` the size of one message,
    so ``E[rand_k(x)] = x`` and ``E||rand_k(x) - x||^2 = omega ||x||^2`` with
    ``omega = d / k - 1``. A 1-D array or tensor is one message; on an ``(n, *shape)`` array or a
    sequence every message keeps the same coordinates (one draw per call, as one worker's
    compressor would). Needs ``1 <= k <= d``. Definition: docs/spec.md#helper-rand-k.

    Parameters
    ----------
    x : array or sequence of arrays
        One message (1-D) or ``n`` messages.
    k : int
        Number of coordinates kept, ``1..d``.
    seed : int
        Key of the draw, ``0..2**64-1``; required.

    Returns
    -------
    array
        The sparsified message(s), dense: a 1-D input's shape, else ``(n, *shape)``; in the
        caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``k`` is outside ``1..d``, ``d > 2**32``, or ``seed`` outside ``0..2**64-1``.
    TypeError
        When ``seed`` is ``None``.

    See Also
    --------
    rand_k_indices, rand_k_sparse
    """
    op = "rand_k"
    k, seed = as_index(op, "k", k), as_seed(op, seed)
    single = not isinstance(x, (list, tuple)) and getattr(x, "ndim", 2) == 1
    b = Batch(op, x.reshape(1, -1) if single else x)
    _check_coordinates(op, b.d)
    out, ptr = b.empty((b.n, b.d))
    core.rand_k(b.messages, k, seed, ptr)
    return b.result(out, b.item_shape if single else (b.n, *b.item_shape))


def rand_k_sparse(x: ArrayLike, k: int, *, seed: int) -> tuple[Any, Any]:
    """The sparse form of :func:`rand_k` for sending: ``(indices, values)``.

    ``indices = rand_k_indices(d, k, seed=seed)`` over the ``d`` entries of ``x.reshape(-1)``,
    and ``values = x.reshape(-1)[indices] * d / k``; :func:`rand_k_dense` rebuilds the dense
    vector. Needs ``1 <= k <= d``. Definition: docs/spec.md#helper-rand-k.

    Parameters
    ----------
    x : array
        One message, an array or tensor of any shape (flattened in C order).
    k : int
        Number of coordinates kept, ``1..d``.
    seed : int
        Key of the draw, ``0..2**64-1``; required.

    Returns
    -------
    indices : array
        ``(k,)`` int64, ascending, in ``x``'s array type and device.
    values : array
        ``(k,)``, in ``x``'s array type, dtype and device.

    Raises
    ------
    ValueError
        When ``k`` is outside ``1..d``, ``d > 2**32``, or ``seed`` outside ``0..2**64-1``.
    TypeError
        When ``x`` is a list or tuple or has no ``reshape``, or ``seed`` is ``None``.
    """
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
    # A value beyond the dtype's range after scaling becomes inf, as in rand_k's kernel: silently
    # (NumPy would warn, and a caller running with warnings as errors would get an exception).
    with np.errstate(over="ignore"):
        values = flat[idx] * (d / k)
    return idx, values


def rand_k_dense(indices: ArrayLike, values: ArrayLike, d: int) -> Any:
    """Inverse of :func:`rand_k_sparse`: a length-``d`` vector with ``values`` at ``indices``.

    Zero elsewhere. Definition: docs/spec.md#helper-rand-k.

    Parameters
    ----------
    indices : array
        The indices :func:`rand_k_sparse` returned: integers in ``0..d-1``, no two equal.
    values : array
        The values it returned, floating point, one per index (a tensor, a CuPy array, or
        anything NumPy reads).
    d : int
        Length of the dense message, ``1..2**32``.

    Returns
    -------
    array
        ``(d,)``, in ``values``' array type, dtype and device (NumPy for a list).

    Raises
    ------
    ValueError
        When ``d`` is outside ``1..2**32``, the vector does not fit in memory, or the values
        cannot be placed at the indices (an index outside ``0..d-1``, a repeated index, counts
        that differ, indices that are not one-dimensional).
    TypeError
        When ``indices`` are not integers or ``values`` not floating point.
    """
    op = "rand_k_dense"
    d = as_index(op, "d", d)
    if not 1 <= d <= _MAX_COORDINATES:
        raise ValueError(f"[{op}] d must be in 1..2**32 (the length of the dense message, the cap of the "
                         f"random-k draw), got {d}")
    fw = _framework(values)
    _check_float(op, _dtype_name(values, fw) if fw in ("torch", "cupy") else np.asarray(values).dtype.name)
    idx = _host(indices)
    if idx.size == 0:
        idx = idx.astype(np.int64)  # [] reads as float64
    if idx.dtype.kind not in "iu":
        raise TypeError(f"[{op}] indices must be integers, got {idx.dtype.name}; pass the indices rand_k_sparse "
                        "returned")
    if idx.ndim != 1:
        raise ValueError(f"[{op}] indices must be one-dimensional, got shape {idx.shape}")
    count = math.prod(tuple(getattr(values, "shape", None) or np.shape(values)))
    if count != idx.size:
        raise ValueError(f"[{op}] got {idx.size} indices and {count} values; pass the (indices, values) pair "
                         "rand_k_sparse returned")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= d:
            raise ValueError(f"[{op}] indices must be in 0..d-1 (d = {d}), got {lo if lo < 0 else hi}; pass the "
                             "(indices, values) pair rand_k_sparse returned for this d")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"[{op}] indices must not repeat (a coordinate would take only one of its values); "
                             "pass the (indices, values) pair rand_k_sparse returned")
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
    """Centered clipping (Karimireddy, He, Jaggi, ICML 2021): ``iters`` clipped steps from ``center``.

    From ``v_0 = center`` (default the zero vector),
    ``v_{l+1} = v_l + (1/n) sum_i clip_tau(x_i - v_l)`` for ``l = 0..iters-1``; returns
    ``v_iters``. Needs ``n >= 1``, ``tau >= 0`` and ``1 <= iters <= 10**6``. Definition:
    docs/spec.md#rule-centered-clipping.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    tau : float
        Clipping radius, ``>= 0``.
    center : array, optional
        The starting point ``v_0``, shaped like one message (or with as many entries), floating,
        on the messages' device and of their array type (a NumPy centre is also accepted with
        tensor or CuPy messages). Default: zero. The object ``CenteredClipping`` passes its
        previous aggregate.
    iters : int
        Number of steps, ``1..10**6``.

    Returns
    -------
    array
        ``v_iters``, shaped like one message, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``tau`` is negative or NaN, ``iters`` is outside ``1..10**6``, or ``center`` has
        another number of entries or lies on another device.
    TypeError
        When ``center`` is of another array type or not floating.

    Notes
    -----
    A message holding a non-finite entry contributes zero (its difference clips to zero).
    """
    op = "centered_clipping"
    tau = as_number(op, "tau", tau)
    iters = as_index(op, "iters", iters)

    def call(b: Batch, out: int) -> None:
        cptr = 0 if center is None else b.like(center, "center")[1]
        core.centered_clipping(b.messages, tau, cptr, iters, out)

    return _reduce(op, X, call)


def bucketing(X: ArrayLike, s: int, aggregator: Callable[[Any], Any], *, seed: int) -> Any:
    """Bucketing (Karimireddy, He, Jaggi, ICLR 2022): shuffle, average buckets of ``s``, aggregate the means.

    Permutes the messages with ``permutation(n, seed=seed)``, splits the permuted list
    into consecutive buckets of ``s`` (the last holds ``n mod s`` if that is not zero; ``s >= n``
    is one bucket), averages each bucket and applies ``aggregator`` to the ``ceil(n / s)``
    bucket means. Needs ``s >= 1``. Definition: docs/spec.md#pre-bucketing.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    s : int
        Bucket size, ``>= 1``.
    aggregator : callable
        A rule applied to the ``(ceil(n / s), *shape)`` bucket means (a function such as
        :func:`median` or an aggregator object), given in the caller's array type and device
        (in float32 for float16 and bfloat16 inputs).
    seed : int
        Key of the permutation, ``0..2**64-1``; required.

    Returns
    -------
    array
        What ``aggregator`` returns on the bucket means (one message for a rule, messages for a
        pre-aggregator), cast back to the caller's dtype for float16 and bfloat16 inputs.

    Raises
    ------
    ValueError
        When ``s < 1`` or ``seed`` is outside ``0..2**64-1``.
    TypeError
        When ``aggregator`` is not callable or ``seed`` is ``None``.

    Notes
    -----
    A bucket holding a non-finite message has a non-finite mean: ``aggregator`` must tolerate
    that many non-finite means (with at most ``f`` non-finite messages, at most ``f`` buckets).
    """
    op = "bucketing"
    s, seed = as_index(op, "s", s), as_seed(op, seed)
    if not callable(aggregator):
        raise TypeError(f"[{op}] aggregator must be callable (e.g. byzcore.median or byzcore.Median()), "
                        f"got {type(aggregator).__name__}")
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
    """Nearest-neighbour mixing (Allouah et al., AISTATS 2023), a pre-aggregator.

    Each ``x_i`` is replaced by the mean of its ``n - f`` nearest messages, itself included, in
    the order ``(distance, index)``. Needs ``n > f``. Definition: docs/spec.md#pre-nnm.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > f``.

    Returns
    -------
    array
        The ``n`` mixed messages, ``(n, *shape)``, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``n > f`` fails or ``f < 0``.

    Notes
    -----
    A message holding a non-finite entry is infinitely far from every message, itself included:
    its neighbours are the finite messages, lowest indices first. So with at most ``f``
    non-finite messages every output message is finite.
    """
    f = as_index("nnm", "f", f)
    b = Batch("nnm", X)
    out, ptr = b.empty((b.n, b.d))
    core.nnm(b.messages, f, ptr)
    return b.result(out, (b.n, *b.item_shape))


def permutation(n: int, *, seed: int) -> np.ndarray:
    """The seeded permutation of ``0..n-1`` that :func:`bucketing` uses.

    ``0..n-1`` sorted by counter-based keys of ``seed``: the same permutation on every platform.
    Definition: docs/spec.md#helper-permutation.

    Parameters
    ----------
    n : int
        Length, ``0..2**31-1``.
    seed : int
        Key of the permutation, ``0..2**64-1``; required.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64, on the host whatever the messages' device.

    Raises
    ------
    ValueError
        When ``n`` is outside ``0..2**31-1`` or ``seed`` outside ``0..2**64-1``.
    TypeError
        When ``seed`` is ``None``.
    """
    n, seed = as_index("permutation", "n", n), as_seed("permutation", seed)
    if n < 0:
        raise ValueError(f"[permutation] n must be >= 0, got {n}")
    return np.asarray(core.random_permutation(n, seed), dtype=np.int64)


# ---------------------------------------------------------------- helpers of the catalogue rules
def _weights(op: str, weights: Any, n: int | None = None) -> list[float]:
    """Per-message weights as a list of floats (from a list, NumPy or torch, any device).

    With ``n``, also checks them here as the core's ``check_weights`` (csrc/ops/checks.h)
    does, with the same messages under ``[op]``: one per message, finite, ``>= 0``, a finite
    positive sum. For callers that pass the weights on to a kernel whose own check would name
    another op (``weighted_mean`` names ``mean``).
    """
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu()
    elif type(weights).__module__.split(".", 1)[0] == "cupy":
        weights = weights.get()
    w = [as_number(op, "weights", v) for v in np.asarray(weights, dtype=object).reshape(-1)]
    if n is not None:
        if len(w) != n:
            raise ValueError(f"[{op}] weights must have one entry per message (n = {n}), got {len(w)}")
        if not all(v >= 0 and math.isfinite(v) for v in w):
            raise ValueError(f"[{op}] weights must be finite and >= 0")
        total = sum(w)  # in order, as the core adds them (math.fsum would raise on overflow)
        if not (total > 0 and math.isfinite(total)):
            raise ValueError(f"[{op}] weights must not all be zero and must sum to a finite number")
    return w


_MAX_ITERATIONS = 10**6  # kMaxIterations of csrc/ops/checks.h: the cap of every iteration count


def _check_iterations(op: str, name: str, v: int, lowest: int) -> None:
    """The core's ``check_iterations`` (csrc/ops/checks.h), with its message: ``lowest..10**6``."""
    if not lowest <= v <= _MAX_ITERATIONS:
        raise ValueError(f"[{op}] {name} must be in {lowest}..{_MAX_ITERATIONS}, got {v}")


def _scaled(w: list[float]) -> list[float]:
    """Valid weights scaled by a power of two so that the largest is in ``[0.5, 1)``.

    The weighted mean ``sum w_i x_i / sum w_i`` does not change mathematically, and a scaling
    by a power of two is exact, so normal weights give bit for bit the result they gave
    unscaled; subnormal ones (``[1e-320] * n``, whose sum's reciprocal is inf) no longer give
    Inf or NaN. A positive weight too small to survive the scaling (below ``2**-1074`` of the
    largest) keeps the smallest positive double, so it still takes part. Weights the checks
    refuse (negative, non-finite, all zero, an overflowing sum) are returned as they are, for
    the check to report.
    """
    if not w or not all(v >= 0 and math.isfinite(v) for v in w):
        return w
    total = sum(w)  # in order, as the checks add them
    if not (total > 0 and math.isfinite(total)):
        return w
    shift = -math.frexp(max(w))[1]
    return [math.ldexp(v, shift) or (5e-324 if v > 0 else 0.0) for v in w]


def _host(a: Any) -> np.ndarray:
    """A small result (an n x n matrix) as a NumPy array on the host."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
        return (a.float() if a.dtype is sys.modules["torch"].bfloat16 else a).numpy()  # NumPy has no bfloat16
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
    return mean([X[i] for i in _byzfl_selection(op, X, f, m)])


def _byzfl_selection(op: str, X: ArrayLike, f: int, m: int | None) -> list[int]:
    """The indices ByzFL's (Multi-)Krum averages, ascending (checks the variant's bound and m)."""
    n = Batch(op, X).n
    if f < 0:
        raise ValueError(f"[{op}] f must be >= 0 (the number of Byzantine messages tolerated), got {f}")
    if f > (n - 1) // 2:
        raise ValueError(f"[{op}] variant='byzfl' needs n > 2f, got n = {n}, f = {f}; "
                         "lower f or aggregate more messages")
    m = n - f if m is None else as_index(op, "m", m)
    if not 1 <= m <= n:
        raise ValueError(f"[{op}] m must be in 1..n (n = {n}), got {m}")
    D = _host(pairwise_distances(X))
    k = n - f - 1
    scores = [float(sum(sorted(np.delete(D[i], i))[:k])) for i in range(n)]
    return sorted(sorted(range(n), key=lambda i: (scores[i], i))[:m])


def _weighted_multi_krum(X: ArrayLike, f: int, m: int | None, byzfl: bool, weights: Any) -> Any:
    """Multi-Krum's selection (unweighted, as defined), then the weighted mean of the selection
    by the kernel of ``mean(weights=)``: weight 0 for the messages left out, which that kernel
    skips (a left-out message takes no part, even a non-finite one)."""
    op = "multi_krum"
    b = Batch(op, X)
    n = b.n
    w = _weights(op, weights, n)
    if byzfl:
        chosen = _byzfl_selection(op, X, f, m)
    else:
        # The core's checks (csrc/ops/krum.cpp), here under [multi_krum]: krum_scores would
        # name itself.
        if f < 0:
            raise ValueError(f"[{op}] f must be >= 0 (the number of Byzantine messages tolerated), got {f}")
        if not (n >= 3 and f <= n - 3):
            raise ValueError(f"[{op}] needs n >= f + 3, got n = {n}, f = {f}; lower f or aggregate more messages")
        m = n - f if m is None else as_index(op, "m", m)
        if not 1 <= m <= n:
            raise ValueError(f"[{op}] m must be in 1..n (n = {n}), got {m}")
        # In the compute dtype (float32 for float16/bfloat16 input), not rounded to the input's.
        scores_out, ptr = b.empty((n,))
        core.krum_scores(b.messages, f, ptr)
        scores = _host(scores_out).astype(np.float64)
        chosen = sorted(sorted(range(n), key=lambda i: (scores[i], i))[:m])
    keep = set(chosen)
    w_sel = [w[i] if i in keep else 0.0 for i in range(n)]
    if not sum(w_sel) > 0:
        raise ValueError(f"[{op}] the weights of the {len(chosen)} selected messages are all zero "
                         f"(selected: {chosen}); give them a positive weight")
    out, ptr = b.empty((b.d,))
    core.weighted_mean(b.messages, _scaled(w_sel), ptr)
    return b.result(out, b.item_shape)


# ---------------------------------------------------------------- the catalogue rules (issue 9)
def meamed(X: ArrayLike, f: int) -> Any:
    """Mean around the median (MeaMed; Xie, Koyejo, Gupta 2018).

    Per coordinate, the mean of the ``n - f`` values closest to the coordinate-wise median
    (for even ``n`` the mean of the two middle values). Ties in distance go to the smaller
    value, so the result is deterministic. Needs ``n > 2f``. Definition: docs/spec.md#rule-meamed.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    Notes
    -----
    Non-finite entries rank above every finite value (as in :func:`median`) and are at distance
    ``+inf`` from the median: with at most ``f`` of them per coordinate the result is finite.
    Further reading (the peers' conventions): docs/rules.md.

    References
    ----------
    C. Xie, O. Koyejo, I. Gupta, "Generalized Byzantine-tolerant SGD", arXiv:1802.10116, 2018.
    """
    f = as_index("meamed", "f", f)
    return _reduce("meamed", X, lambda b, out: core.meamed(b.messages, f, out))


def bulyan(X: ArrayLike, f: int) -> Any:
    """Bulyan (El Mhamdi, Guerraoui, Rouault, ICML 2018): iterated Krum, then a mean around the median.

    Selects ``theta = n - 2f`` messages by iterated Krum: each round scores the messages not
    chosen yet by Krum *on that remaining set* (recomputed every round, as in the paper; with
    ``r`` left, the sum of the ``max(1, r - f - 2)`` smallest squared distances, as Flower
    counts them) and takes the lowest (ties: lower index). Then per coordinate averages the
    ``beta = theta - 2f`` values of the selection closest to its coordinate-wise median
    (:func:`meamed` of the selection with ``2f`` left out). Needs ``n >= 4f + 3``.
    Definition: docs/spec.md#rule-bulyan.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n >= 4f + 3``.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``n >= 4f + 3`` fails or ``f < 0``.

    Notes
    -----
    A message holding NaN/Inf is infinitely far from the others, so it is never selected while
    at most ``f`` such messages are present. Further reading (Flower's Bulyan): docs/rules.md.

    References
    ----------
    E. M. El Mhamdi, R. Guerraoui, S. Rouault, "The hidden vulnerability of distributed learning
    in Byzantium", ICML 2018.
    """
    f = as_index("bulyan", "f", f)
    return _reduce("bulyan", X, lambda b, out: core.bulyan(b.messages, f, out))


def monna(X: ArrayLike, f: int, pivot: int = 0) -> Any:
    """MoNNA (Farhadkhani et al., ICML 2023): the mean of the ``n - f`` messages nearest to the pivot.

    The pivot message ``x_pivot`` (the aggregating node's own, trusted message) is itself
    included, at distance 0; nearest by exact Euclidean distance, in the order
    ``(distance, index)``. Needs ``n > 2f`` and ``0 <= pivot < n``. Definition:
    docs/spec.md#rule-monna.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.
    pivot : int
        Index of the trusted message (the server's own or an honest worker's), ``0..n-1``.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails, ``f < 0``, ``pivot`` is not in ``0..n-1``, or the pivot holds
        NaN/Inf (the rule's premise is broken, not a result to return).

    Notes
    -----
    Any other message holding a non-finite entry is infinitely far from the pivot, so it is left
    out while at most ``f`` messages hold one.

    References
    ----------
    S. Farhadkhani, R. Guerraoui, N. Gupta, L.-N. Hoang, R. Pinot, J. Stephan, "Robust
    collaborative learning with linear gradient overhead", ICML 2023.
    """
    f = as_index("monna", "f", f)
    pivot = as_index("monna", "pivot", pivot)
    return _reduce("monna", X, lambda b, out: core.monna(b.messages, f, pivot, out))


def cge(X: ArrayLike, f: int) -> Any:
    """Comparative gradient elimination (Gupta, Liu, Vaidya 2021): the mean of the ``n - f`` smallest messages.

    Smallest by Euclidean norm, in the order ``(norm, index)``. Needs ``n > 2f``. Definition:
    docs/spec.md#rule-cge.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    Notes
    -----
    A message holding NaN/Inf has norm ``+inf`` and is dropped first: with at most ``f`` of them
    the result is finite.

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
    the largest remaining one (``k`` computed as ``(2 f (n - f)) // n`` in integers, so no
    rounding); the others pass unchanged, and ``k = 0`` returns the messages unchanged. Needs
    ``n > 2f``. Definition: docs/spec.md#pre-arc.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    array
        The ``n`` clipped messages, ``(n, *shape)``, in the caller's array type, dtype and device
        (new arrays: the input is not modified, unlike ByzFL's ``ARC``).

    Raises
    ------
    ValueError
        When ``n > 2f`` fails or ``f < 0``.

    Notes
    -----
    A message holding NaN/Inf has infinite norm: while there are at most ``k`` of them, they are
    among the clipped ones and become zero, as in :func:`clip`. Further reading (the peers'
    float ``k``): docs/rules.md.

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


# ---- subset rules: MDA, SMEA, CAF, DnC (docs/spec.md#rule-mda to #rule-dnc; peers: docs/rules.md) -----------------


def _message_count(op: str, n: Any) -> int:
    n = as_index(op, "n", n)
    if n < 0:
        raise ValueError(f"[{op}] n must be >= 0 (the number of messages), got {n}")
    return n


def mda_default_budget(n: int) -> int:
    """MDA's default search budget for ``n`` messages, in branch steps.

    3,000,000 branch steps up to n = 88, scaled down as ``(88/n)^2`` above (a step costs
    ~n^2/64 word operations), at least 10,000: about 10 s at worst on one loaded core of the
    development machine (docs/spec.md#rule-mda).

    Parameters
    ----------
    n : int
        Number of messages.

    Returns
    -------
    int
        The default ``max_steps`` of :func:`mda`.

    Raises
    ------
    ValueError
        ``[mda_default_budget]`` if ``n < 0`` or outside int64.
    TypeError
        ``[mda_default_budget]`` if ``n`` is not an integer (a bool, a float, ``None``).
    """
    n = _message_count("mda_default_budget", n)
    return max(10_000, int(3_000_000 * min(1.0, (88 / max(n, 1)) ** 2)))


def mda(X: ArrayLike, f: int, *, max_steps: int | None = None) -> Any:
    """Minimum-diameter averaging: the mean of the ``n - f`` messages that span the smallest diameter.

    Among all subsets of ``n - f`` messages, one whose largest pairwise distance (the diameter)
    is smallest; returns its mean. Exact: the optimum diameter is found by binary search over
    the sorted pairwise distances, each step a bounded vertex-cover search on the "too far
    apart" graph. Needs ``n > 2f``. Definition: docs/spec.md#rule-mda.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages, ``(n, d)`` or ``(n, *shape)``.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.
    max_steps : int, optional
        The budget of the vertex-cover searches (branch steps, each ``O(n^2 / 64)`` word
        operations), ``>= 1``. The search takes microseconds to milliseconds on the inputs
        measured (n = 200, f = 99 included) but is exponential in ``f`` at worst: a conflict
        graph of disjoint triangles (n = 88, f = 43) takes ~20 s without this bound. Default
        :func:`mda_default_budget` ``(n)``, about 10 s at worst.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[mda]`` if ``n <= 2f``, ``f < 0``, ``max_steps < 1`` or the input is empty, and when
        the search needs more than ``max_steps`` steps: never an unbounded run.
    TypeError
        ``[mda]`` for a non-integer ``f`` or ``max_steps``, or an unsupported input.

    Notes
    -----
    Ties go to the lexicographically first subset (sorted indices), as enumerating
    ``itertools.combinations`` in order finds it. A message holding a non-finite entry is
    infinitely far from all others, so it is never chosen while ``n - f`` finite ones exist.
    Further reading (the search, the peers): docs/rules.md.

    References
    ----------
    El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault. Genuinely distributed Byzantine machine
    learning. PODC 2020.
    """
    f = as_index("mda", "f", f)
    steps = None if max_steps is None else as_index("mda", "max_steps", max_steps)
    return _reduce("mda", X, lambda b, out: core.mda(
        b.messages, f, mda_default_budget(b.n) if steps is None else steps, out))


def smea_default_budget(n: int) -> int:
    """SMEA's default search budget for ``n`` messages, in subset evaluations.

    500,000 subset evaluations up to n = 30 (n = 30, f = 7 on pure noise needs
    200,000-400,000), fewer above as ``(30/n)^3``, since one evaluation (an eigenproblem of the
    subset's size) costs ~n^3, at least 1,000: about 10-20 s at worst on one loaded core of the
    development machine, for any n (docs/spec.md#rule-smea).

    Parameters
    ----------
    n : int
        Number of messages.

    Returns
    -------
    int
        The default ``max_subsets`` of :func:`smea`.

    Raises
    ------
    ValueError
        ``[smea_default_budget]`` if ``n < 0`` or outside int64.
    TypeError
        ``[smea_default_budget]`` if ``n`` is not an integer (a bool, a float, ``None``).
    """
    n = _message_count("smea_default_budget", n)
    return max(1000, int(500_000 * min(1.0, (30 / max(n, 1)) ** 3)))


def smea(X: ArrayLike, f: int, *, max_subsets: int | None = None) -> Any:
    """Smallest maximum eigenvalue averaging: the mean of the ``n - f`` messages of least spread.

    Among all subsets of ``n - f`` messages, one whose empirical covariance has the smallest
    largest eigenvalue; returns its mean. The eigenvalue is computed exactly from the subset's
    centred Gram matrix (derived from the pairwise distances: one ``O(n^2 d)`` pass), and the
    subsets are searched by branch and bound (a subset's largest eigenvalue bounds every
    superset's). Needs ``n > 2f``. Definition: docs/spec.md#rule-smea.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.
    max_subsets : int, optional
        The budget of the search, ``>= 1``: the most subset eigenvalues it may evaluate (each a
        small dense eigenproblem). The search is exponential in the worst case (pure noise,
        where every subset nearly ties). Default :func:`smea_default_budget` ``(n)``: 500,000 up
        to n = 30 (enough for n = 30, f = 7 on pure noise), scaled down as ``(30/n)^3`` above,
        so that the worst case stays at about 10-20 s on one loaded core.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[smea]`` if ``n <= 2f``, ``f < 0``, ``max_subsets < 1`` or the input is empty, and
        when the exact search needs more than ``max_subsets`` evaluations (raise it, or use
        fewer messages): never an unbounded run.
    TypeError
        ``[smea]`` for a non-integer ``f`` or ``max_subsets``, or an unsupported input.

    Notes
    -----
    Deterministic; ties (equal computed eigenvalues) go to the lexicographically first subset.
    A subset holding a message with a non-finite entry has an infinite eigenvalue, so such a
    message is never chosen while ``n - f`` finite ones exist. ByzFL estimates the eigenvalue
    by a randomly started power step (docs/rules.md).

    References
    ----------
    Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan. Fixing by mixing: a recipe for
    optimal Byzantine ML under heterogeneity. AISTATS 2023.
    """
    f = as_index("smea", "f", f)
    budget = None if max_subsets is None else as_index("smea", "max_subsets", max_subsets)
    return _reduce("smea", X, lambda b, out: core.smea(
        b.messages, f, smea_default_budget(b.n) if budget is None else budget, out))


def caf(X: ArrayLike, f: int) -> Any:
    """Covariance-bound agnostic filter: down-weight the messages along the top principal direction.

    Starting from ``c_i = 1``, while ``sum c > n - 2f``: ``mu`` = the ``c``-weighted mean,
    ``(lambda, v)`` the top eigenpair of the weighted covariance, ``tau_i = ((x_i - mu) . v)^2``
    and ``c_i <- c_i (1 - tau_i / max tau)`` (the max over the messages still weighted; the
    loop stops if it is 0). Returns the weighted mean ``mu`` of the iteration whose covariance
    had the smallest largest eigenvalue. The eigenpair is exact (Jacobi on the weighted
    ``n x n`` Gram matrix), not a random power step. Needs ``n > 2f``. Definition:
    docs/spec.md#rule-caf.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

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
    result is the mean of the finite messages. Each step zeroes at least one positive weight, so
    the loop ends within ``n`` steps.

    References
    ----------
    Allouah, Guerraoui, Stephan. Towards trustworthy federated learning with untrusted
    participants. ICML 2025.
    """
    f = as_index("caf", "f", f)
    return _reduce("caf", X, lambda b, out: core.caf(b.messages, f, out))


def dnc(X: ArrayLike, f: int, *, iters: int = 1, sub_dim: int = 10000, c: float = 1.0, seed: int = 0) -> Any:
    """Divide-and-conquer (Shejwalkar, Houmansadr, NDSS 2021): drop the outliers along the top direction.

    With ``r = floor(c f)``: per round, on ``min(sub_dim, d)`` coordinates drawn uniformly
    without replacement, centre the finite messages on their mean, take the top principal
    direction ``v`` of the centred subsample and mark as removed the ``r`` messages of largest
    squared projection on ``v``; return the mean of the messages kept by every one of the
    ``iters`` rounds. Needs ``n > 2f`` and ``n > iters * r``. Definition: docs/spec.md#rule-dnc.

    Parameters
    ----------
    X : array or sequence of arrays
        The ``n`` messages.
    f : int
        Number of Byzantine messages tolerated; needs ``n > 2f``.
    iters : int
        Filtering rounds (each draws new coordinates), ``1..10**6``. When ``floor(c f) = 0``
        no round removes anything, so one round runs (the mean of all the messages).
    sub_dim : int
        Coordinates per round (all of them if ``>= d``), ``>= 1``.
    c : float
        Filtering fraction: ``floor(c f)`` messages removed per round; finite, ``>= 0``.
    seed : int
        Seed of the coordinate draws, ``0..2**64-1`` (round ``t`` uses the key
        ``counter_key(seed, t)`` with the generator of :func:`rand_k_indices`: identical on CPU
        and CUDA).

    Returns
    -------
    array
        One message-shaped array, in the caller's array type, dtype and device.

    Raises
    ------
    ValueError
        ``[dnc]`` if ``n <= 2f``, ``n <= iters * floor(c f)`` (no message could survive), ``f < 0``,
        ``iters`` outside ``1..10**6``, ``sub_dim < 1``, ``c`` negative or not finite, or ``seed`` outside
        ``0..2**64-1``.
    TypeError
        ``[dnc]`` for a non-integer ``f``, ``iters``, ``sub_dim`` or ``seed``, or a ``c`` that is
        not a real number.

    Notes
    -----
    The top direction is exact (Jacobi on the ``n x n`` Gram matrix of the centred
    subsample). Messages holding a non-finite entry are scored ``+inf`` (removed first) and left
    out of the centring; ties in the score remove the higher index first. So with at most ``r``
    non-finite messages (all ``f`` of them when ``c >= 1``) the result is finite.

    References
    ----------
    Shejwalkar, Houmansadr. Manipulating the Byzantine: optimizing model poisoning attacks and
    defenses for federated learning. NDSS 2021.
    """
    op = "dnc"
    f, iters, sub_dim = as_index(op, "f", f), as_index(op, "iters", iters), as_index(op, "sub_dim", sub_dim)
    c, seed = as_number(op, "c", c), as_seed(op, seed)
    _check_iterations(op, "iters", iters, 1)
    if f >= 0 and 0 <= c < math.inf and c * f < 1:  # floor(c f) = 0
        # Nothing is removed in any round: every round keeps all messages, so one round gives
        # the same result (the mean of all) as iters of them, without iters useless passes.
        iters = 1
    return _reduce(op, X, lambda b, out: core.dnc(b.messages, f, iters, sub_dim, c, seed, out))
