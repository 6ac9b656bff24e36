"""Float64 references of a benchmark cell, computed in column chunks to bound memory and
cached on the :class:`~byzcore.bench.inputs.Case` (the installed ``byzcore bench`` checks
every cell against them, so they live in the package, not in tests/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .inputs import Case

__all__ = ["checked_columns", "columns64", "krum_scores64", "sqdist64", "sqnorms64", "weiszfeld64"]


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
