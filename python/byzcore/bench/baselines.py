"""What a user would write without byzcore: the NumPy and PyTorch equivalents each kernel
is timed against (``np.median(X, axis=0)``, a sort-based trimmed mean, ``X @ X.T``-based
distances, a plain Weiszfeld loop, ``torch.cdist``, ...)."""

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
    """Squared distances as NumPy users write them: norms + the BLAS Gram X @ X.T."""
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None, :] - 2 * (X @ X.T)
    np.maximum(D, 0, out=D)
    np.fill_diagonal(D, 0)
    return D


def np_krum_scores(X: np.ndarray, f: int) -> np.ndarray:
    """The plain NumPy baseline of ``krum_scores`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-krum-scores
    """
    D = np_gram_dist2(X)
    np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, : X.shape[0] - f - 2].sum(axis=1)


def np_weiszfeld(X: np.ndarray, z: np.ndarray, iters: int, nu: float = 1e-6) -> np.ndarray:
    """The plain NumPy baseline of ``weiszfeld`` that ``byzcore bench`` times byzcore against.

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
    """The plain NumPy baseline of ``clip`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#helper-clip
    """
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    with np.errstate(divide="ignore"):
        scale = np.minimum(1, thr / norms).astype(X.dtype)
    return X * scale[:, None]


def np_rand_k(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The plain NumPy baseline of ``rand_k`` that ``byzcore bench`` times byzcore against.

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
    """The plain NumPy baseline of ``nnm`` that ``byzcore bench`` times byzcore against.

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
    """The plain PyTorch baseline of ``krum_scores`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-krum-scores
    """
    torch = _torch()
    D = torch.cdist(T, T).square_()
    D.fill_diagonal_(math.inf)
    return torch.topk(D, T.shape[0] - f - 2, dim=1, largest=False).values.sum(1)


def torch_weiszfeld(T: Any, z: Any, iters: int, nu: float = 1e-6) -> Any:
    """The plain PyTorch baseline of ``weiszfeld`` that ``byzcore bench`` times byzcore against.

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
    """The plain PyTorch baseline of ``clip`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#helper-clip
    """
    torch = _torch()
    return T * torch.clamp(thr / torch.linalg.vector_norm(T, dim=1), max=1)[:, None]


def torch_rand_k(T: Any, k: int) -> Any:
    """The plain PyTorch baseline of ``rand_k`` that ``byzcore bench`` times byzcore against.

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
    """The plain PyTorch baseline of ``nnm`` that ``byzcore bench`` times byzcore against.

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
    """The plain NumPy baseline of ``trimmed`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    return np.sort(X, axis=0)[f: X.shape[0] - f].mean(axis=0)


def torch_trimmed(T: Any, f: int) -> Any:
    """The plain PyTorch baseline of ``trimmed`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-trimmed-mean
    """
    return _torch().sort(T, dim=0).values[f: T.shape[0] - f].mean(0)


def np_krum(X: np.ndarray, f: int) -> np.ndarray:
    """The plain NumPy baseline of ``krum`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-krum
    """
    return X[int(np.argmin(np_krum_scores(X, f)))].copy()


def np_multi_krum(X: np.ndarray, f: int) -> np.ndarray:
    """The plain NumPy baseline of ``multi_krum`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    return X[np.argsort(np_krum_scores(X, f))[: X.shape[0] - f]].mean(axis=0)


def torch_krum(T: Any, f: int) -> Any:
    """The plain PyTorch baseline of ``krum`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-krum
    """
    return T[torch_krum_scores(T, f).argmin()].clone()


def torch_multi_krum(T: Any, f: int) -> Any:
    """The plain PyTorch baseline of ``multi_krum`` that ``byzcore bench`` times byzcore against.

    References
    ----------
    docs/spec.md#rule-multi-krum
    """
    return T[torch_krum_scores(T, f).argsort()[: T.shape[0] - f]].mean(0)


def _mean_of_nearest(X: np.ndarray, dist2: np.ndarray, keep: int) -> np.ndarray:
    return X[np.argsort(dist2, kind="stable")[:keep]].mean(axis=0)


def np_monna(X: np.ndarray, f: int) -> np.ndarray:
    """The mean of the n - f messages nearest to message 0."""
    Y = X - X[0]
    return _mean_of_nearest(X, np.einsum("ij,ij->i", Y, Y), len(X) - f)


def np_cge(X: np.ndarray, f: int) -> np.ndarray:
    """The mean of the n - f messages of smallest norm."""
    return _mean_of_nearest(X, np.einsum("ij,ij->i", X, X), len(X) - f)


def np_arc(X: np.ndarray, f: int) -> np.ndarray:
    """Clip the floor(2 (f/n)(n - f)) largest-norm messages to the next largest norm."""
    n = len(X)
    nb = 2 * f * (n - f) // n
    if nb == 0:
        return X.copy()
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return np_clip(X, float(np.sort(norms)[n - nb - 1]))
