"""What a user would write without byzcore: the NumPy and PyTorch equivalents each kernel
is timed against (``np.median(X, axis=0)``, a sort-based trimmed mean, ``X @ X.T``-based
distances, a plain Weiszfeld loop, ``torch.cdist``, ...). Each cites the docs/spec.md anchor
of the rule it is timed against; where a baseline breaks ties or draws coordinates otherwise
than byzcore, it says so (the timing compares the same work, not the same tie-breaking).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "np_arc",
    "np_cge",
    "np_clip",
    "np_gram_dist2",
    "np_krum",
    "np_krum_scores",
    "np_monna",
    "np_multi_krum",
    "np_nnm",
    "np_rand_k",
    "np_trimmed",
    "np_weiszfeld",
    "torch_clip",
    "torch_krum",
    "torch_krum_scores",
    "torch_multi_krum",
    "torch_nnm",
    "torch_rand_k",
    "torch_trimmed",
    "torch_weiszfeld",
]


def np_gram_dist2(X: np.ndarray) -> np.ndarray:
    """Squared distances as NumPy users write them: the squared norms and the BLAS Gram ``X @ X.T``.

    Its square root is the plain NumPy baseline that ``byzcore bench`` times byzcore's
    ``pairwise_distances`` against; the Krum and NNM baselines build on it.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` in ``X``'s dtype, clamped at zero, with a zero diagonal.

    References
    ----------
    docs/spec.md#rule-pairwise-distances
    """
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None, :] - 2 * (X @ X.T)
    np.maximum(D, 0, out=D)
    np.fill_diagonal(D, 0)
    return D


def np_krum_scores(X: np.ndarray, f: int) -> np.ndarray:
    """Krum scores in NumPy: per row, the ``n - f - 2`` smallest squared distances to the others, summed.

    The building block of the plain NumPy baselines of ``krum`` and ``multi_krum``.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` scores in ``X``'s dtype.

    References
    ----------
    docs/spec.md#rule-krum-scores
    """
    D = np_gram_dist2(X)
    np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, : X.shape[0] - f - 2].sum(axis=1)


def np_weiszfeld(X: np.ndarray, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
    """A plain smoothed Weiszfeld loop in NumPy: ``iters`` iterations from ``z``, no tolerance test.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``geometric_median`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    z : numpy.ndarray
        The ``(d,)`` start (byzcore's median, computed before the timing).
    iters : int
        The number of iterations.
    nu : float, default 1e-6
        The smoothing: distances below it count as ``nu``.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` iterate.

    References
    ----------
    docs/spec.md#rule-geometric-median
    """
    for _ in range(iters):
        diff = X - z
        w = 1.0 / np.maximum(nu, np.sqrt(np.einsum("ij,ij->i", diff, diff)))
        z = (w @ X) / w.sum()
    return z


def np_clip(X: np.ndarray, thr: float) -> np.ndarray:
    """Each row scaled by ``min(1, thr / ||x_i||)`` in NumPy.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``clip`` against; its row
    mean is the baseline of ``centered_clipping`` (one iteration from zero).

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    thr : float
        The threshold.

    Returns
    -------
    numpy.ndarray
        The ``(n, d)`` clipped rows, in ``X``'s dtype.

    References
    ----------
    docs/spec.md#helper-clip
    """
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    with np.errstate(divide="ignore"):
        scale = np.minimum(1, thr / norms).astype(X.dtype)
    return X * scale[:, None]


def np_rand_k(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Random-k sparsification in NumPy: ``k`` columns kept, scaled by ``d / k``, zero elsewhere.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``rand_k`` against.

    The columns are drawn by ``Generator.choice``, not byzcore's generator: the same work,
    not the same coordinates.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    k : int
        The number of coordinates kept.
    seed : int
        The seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        ``(n, d)`` in ``X``'s dtype.

    References
    ----------
    docs/spec.md#helper-rand-k
    """
    d = X.shape[1]
    idx = np.random.default_rng(seed).choice(d, k, replace=False)
    out = np.zeros_like(X)
    out[:, idx] = X[:, idx] * X.dtype.type(d / k)
    return out


def np_nnm(X: np.ndarray, f: int) -> np.ndarray:
    """Nearest-neighbour mixing in NumPy: each row the mean of its ``n - f`` nearest (``argpartition``).

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``nnm`` against.

    ``argpartition`` breaks ties in distance arbitrarily, byzcore by index.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(n, d)`` mixed rows.

    References
    ----------
    docs/spec.md#pre-nnm
    """
    n = X.shape[0]
    near = np.argpartition(np_gram_dist2(X), n - f - 1, axis=1)[:, : n - f]
    W = np.zeros((n, n), dtype=X.dtype)
    np.put_along_axis(W, near, 1.0 / (n - f), axis=1)
    return W @ X


def _torch():
    import torch

    return torch


def torch_krum_scores(T: Any, f: int) -> Any:
    """Krum scores in PyTorch: ``torch.cdist`` squared, the ``n - f - 2`` smallest per row (``topk``) summed.

    The building block of the plain PyTorch baselines of ``krum`` and ``multi_krum``.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    torch.Tensor
        ``(n,)`` scores.

    References
    ----------
    docs/spec.md#rule-krum-scores
    """
    torch = _torch()
    D = torch.cdist(T, T).square_()
    D.fill_diagonal_(math.inf)
    return torch.topk(D, T.shape[0] - f - 2, dim=1, largest=False).values.sum(1)


def torch_weiszfeld(T: Any, z: Any, iters: int, nu: float = 1e-6) -> Any:
    """A plain smoothed Weiszfeld loop in PyTorch: ``iters`` iterations from ``z``, no tolerance test.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``geometric_median`` against.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    z : torch.Tensor
        The ``(d,)`` start (byzcore's median, on ``T``'s device).
    iters : int
        The number of iterations.
    nu : float, default 1e-6
        The smoothing: distances below it count as ``nu``.

    Returns
    -------
    torch.Tensor
        The ``(d,)`` iterate.

    References
    ----------
    docs/spec.md#rule-geometric-median
    """
    torch = _torch()
    for _ in range(iters):
        w = 1.0 / torch.linalg.vector_norm(T - z, dim=1).clamp_min(nu)
        z = (w @ T) / w.sum()
    return z


def torch_clip(T: Any, thr: float) -> Any:
    """Each row scaled by ``min(1, thr / ||x_i||)`` in PyTorch.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``clip`` against; its row
    mean is the baseline of ``centered_clipping`` (one iteration from zero).

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    thr : float
        The threshold.

    Returns
    -------
    torch.Tensor
        The ``(n, d)`` clipped rows.

    References
    ----------
    docs/spec.md#helper-clip
    """
    torch = _torch()
    return T * torch.clamp(thr / torch.linalg.vector_norm(T, dim=1), max=1)[:, None]


def torch_rand_k(T: Any, k: int) -> Any:
    """Random-k sparsification in PyTorch: ``k`` columns of a ``torch.randperm`` kept, scaled by ``d / k``.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``rand_k`` against.

    Drawn from torch's global generator (unseeded here): the same work as byzcore's, not the
    same coordinates.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    k : int
        The number of coordinates kept.

    Returns
    -------
    torch.Tensor
        ``(n, d)``, zero off the kept columns.

    References
    ----------
    docs/spec.md#helper-rand-k
    """
    torch = _torch()
    d = T.shape[1]
    idx = torch.randperm(d, device=T.device)[:k]
    out = torch.zeros_like(T)
    out[:, idx] = T[:, idx] * (d / k)
    return out


def torch_nnm(T: Any, f: int) -> Any:
    """Nearest-neighbour mixing in PyTorch: ``torch.cdist``, ``topk`` of the ``n - f`` nearest, a mixing matmul.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``nnm`` against.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    torch.Tensor
        The ``(n, d)`` mixed rows.

    References
    ----------
    docs/spec.md#pre-nnm
    """
    torch = _torch()
    n = T.shape[0]
    near = torch.topk(torch.cdist(T, T), n - f, dim=1, largest=False).indices
    W = torch.zeros((n, n), dtype=T.dtype, device=T.device).scatter_(1, near, 1.0 / (n - f))
    return W @ T


def np_trimmed(X: np.ndarray, f: int) -> np.ndarray:
    """The sort-based trimmed mean in NumPy: sort each column, drop ``f`` at each end, average.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``trimmed_mean`` against.

    With ``f = int(beta n)`` it is also the baseline of ``trimmed_mean(X, beta=beta)``.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of values dropped at each end.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` trimmed mean.

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    return np.sort(X, axis=0)[f: X.shape[0] - f].mean(axis=0)


def torch_trimmed(T: Any, f: int) -> Any:
    """The sort-based trimmed mean in PyTorch: ``torch.sort`` each column, drop ``f`` at each end, average.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``trimmed_mean`` against.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    f : int
        The number of values dropped at each end.

    Returns
    -------
    torch.Tensor
        The ``(d,)`` trimmed mean.

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    return _torch().sort(T, dim=0).values[f: T.shape[0] - f].mean(0)


def np_krum(X: np.ndarray, f: int) -> np.ndarray:
    """Krum in NumPy: a copy of the row of lowest :func:`np_krum_scores`.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``krum`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` selected message.

    References
    ----------
    docs/spec.md#rule-krum
    """
    return X[int(np.argmin(np_krum_scores(X, f)))].copy()


def np_multi_krum(X: np.ndarray, f: int) -> np.ndarray:
    """Multi-Krum in NumPy: the mean of the ``n - f`` rows of lowest :func:`np_krum_scores` (``argsort``).

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``multi_krum`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` mean.

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    return X[np.argsort(np_krum_scores(X, f))[: X.shape[0] - f]].mean(axis=0)


def torch_krum(T: Any, f: int) -> Any:
    """Krum in PyTorch: a clone of the row of lowest :func:`torch_krum_scores`.

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``krum`` against.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    torch.Tensor
        The ``(d,)`` selected message.

    References
    ----------
    docs/spec.md#rule-krum
    """
    return T[torch_krum_scores(T, f).argmin()].clone()


def torch_multi_krum(T: Any, f: int) -> Any:
    """Multi-Krum in PyTorch: the mean of the ``n - f`` rows of lowest :func:`torch_krum_scores` (``argsort``).

    The plain PyTorch baseline that ``byzcore bench`` times byzcore's ``multi_krum`` against.

    Parameters
    ----------
    T : torch.Tensor
        The ``(n, d)`` messages, on the bench device.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    torch.Tensor
        The ``(d,)`` mean.

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    return T[torch_krum_scores(T, f).argsort()[: T.shape[0] - f]].mean(0)


def _mean_of_nearest(X: np.ndarray, dist2: np.ndarray, keep: int) -> np.ndarray:
    return X[np.argsort(dist2, kind="stable")[:keep]].mean(axis=0)


def np_monna(X: np.ndarray, f: int) -> np.ndarray:
    """MoNNA in NumPy: the mean of the ``n - f`` messages nearest to message 0 (stable ``argsort``).

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``monna`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` mean.

    References
    ----------
    docs/spec.md#rule-monna
    """
    Y = X - X[0]
    return _mean_of_nearest(X, np.einsum("ij,ij->i", Y, Y), len(X) - f)


def np_cge(X: np.ndarray, f: int) -> np.ndarray:
    """CGE in NumPy: the mean of the ``n - f`` messages of smallest norm (stable ``argsort``).

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``cge`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(d,)`` mean.

    References
    ----------
    docs/spec.md#rule-cge
    """
    return _mean_of_nearest(X, np.einsum("ij,ij->i", X, X), len(X) - f)


def np_arc(X: np.ndarray, f: int) -> np.ndarray:
    """ARC in NumPy: the ``floor(2 (f/n) (n - f))`` largest-norm messages clipped to the next largest norm.

    The plain NumPy baseline that ``byzcore bench`` times byzcore's ``arc`` against.

    Parameters
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages.
    f : int
        The number of Byzantine messages.

    Returns
    -------
    numpy.ndarray
        The ``(n, d)`` messages (a copy when none is clipped).

    References
    ----------
    docs/spec.md#pre-arc
    """
    n = len(X)
    nb = 2 * f * (n - f) // n
    if nb == 0:
        return X.copy()
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return np_clip(X, float(np.sort(norms)[n - nb - 1]))
