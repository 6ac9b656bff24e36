"""Feature rows of a problem, dense or sparse (ELL), and the two products the losses need.

Both layouts keep every product separable over the rows' first axis, so one worker computed
alone gets the same bits as in the batched call (see :mod:`byzcore.problems.base`).
"""

from __future__ import annotations

import numpy as np

from .base import problem_error

__all__ = ["FeatureRows", "to_feature_rows"]


class FeatureRows:
    """Feature rows in one of two layouts, with the two products the problem needs.

    Dense: ``A`` of shape ``(..., d)``. Sparse (ELL, column-major): ``idx`` of shape
    ``(nnz, ...)`` holding the column of each row's ``k``-th non-zero, ``d`` marking padding
    (it reads an appended zero), and ``val`` the values (``None`` for binary data); the
    leading ``nnz`` axis makes the row sums plain vector additions. Both products are
    separable over the rows' first axis: row ``i`` of a result is computed by the same
    operations, in the same order, whatever the other rows are (so one worker alone gets the
    bits the batched call gives it).
    """

    def __init__(self, d: int, A: np.ndarray | None = None, idx: np.ndarray | None = None,
                 val: np.ndarray | None = None):
        self.d, self.A, self.idx, self.val = d, A, idx, val

    def _map(self, fn) -> FeatureRows:
        if self.A is not None:
            return FeatureRows(self.d, A=fn(self.A, 0))
        return FeatureRows(self.d, idx=fn(self.idx, 1), val=None if self.val is None else fn(self.val, 1))

    def take(self, *key) -> FeatureRows:
        """Rows selected by NumPy indexing on the leading (row) axes."""
        return self._map(lambda a, lead: a[key] if lead == 0 else a[(slice(None),) + key])

    def flat(self) -> FeatureRows:
        """All rows as one ``(1, N, .)`` set."""
        return self._map(lambda a, lead: a.reshape((1, -1, a.shape[-1])) if lead == 0 else a.reshape((a.shape[0], 1, -1)))

    def block_view(self, b: np.ndarray) -> FeatureRows:
        """Blocks ``b`` as an ``(len(b), rows, .)`` set: a view for a contiguous range or one
        repeated block, a copy otherwise."""
        def pick(a: np.ndarray, lead: int) -> np.ndarray:
            a = np.moveaxis(a, 0, -1) if lead else a         # blocks first
            if len(b) and np.all(np.diff(b) == 1):
                out = a[b[0]: b[-1] + 1]
            elif len(b) and np.all(b == b[0]):
                out = np.broadcast_to(a[b[0]], (len(b),) + a.shape[1:])
            else:
                out = a[b]
            return np.moveaxis(out, -1, 0) if lead else out
        return self._map(pick)

    def dot(self, X: np.ndarray, per_row: bool = False) -> np.ndarray:
        """Rows ``(m, r, .)`` times ``X``: ``(d,)`` -> ``(m, r)``; ``(d, p)`` -> ``(m, r, p)``;
        with ``per_row`` a model per leading index, ``(m, d)`` -> ``(m, r)`` and
        ``(m, d, p)`` -> ``(m, r, p)``."""
        if self.A is not None:
            if per_row and X.ndim == 2:
                return np.matmul(self.A, X[:, :, None])[:, :, 0]
            return np.matmul(self.A, X)
        pad = [(0, 0)] * X.ndim
        pad[1 if per_row else 0] = (0, 1)
        Xe = np.pad(X, pad)                       # an appended zero coordinate for padding
        lead = np.arange(X.shape[0]).reshape(-1, 1) if per_row else None
        out = None
        for k in range(self.idx.shape[0]):        # a fixed order of additions: separable bits
            g = Xe[lead, self.idx[k]] if per_row else Xe[self.idx[k]]
            if self.val is not None:
                g = g * (self.val[k][..., None] if g.ndim > self.val[k].ndim else self.val[k])
            out = g if out is None else out + g
        return out

    def tdot(self, coef: np.ndarray) -> np.ndarray:
        """``out[i] = sum_r coef[i, r] * row[i, r]`` for rows ``(m, r, .)``: ``(m, d)``."""
        if self.A is not None:
            return np.matmul(coef[:, None, :], self.A)[:, 0, :]
        m, d1 = coef.shape[0], self.d + 1
        offsets = None if m == 1 else (np.arange(m) * d1).reshape((-1,) + (1,) * (coef.ndim - 1))
        out = np.zeros(m * d1)
        for k in range(self.idx.shape[0]):        # per non-zero slot: no (nnz, m, r) temporaries
            cols = self.idx[k] if offsets is None else self.idx[k] + offsets
            w = coef if self.val is None else coef * self.val[k]
            out += np.bincount(cols.reshape(-1), weights=w.reshape(-1), minlength=m * d1)
        return out.reshape(m, d1)[:, : self.d]


def to_feature_rows(A: np.ndarray, layout: str | None) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(dense, None, None)`` or ``(None, idx, val)`` (ELL, row-major here). Without a
    ``layout``, ELL when rows are sparse (at most a quarter of ``d`` non-zeros)."""
    if layout not in (None, "dense", "sparse"):
        raise problem_error("LogisticRegression", f"layout must be 'dense' or 'sparse', got {layout!r}")
    N, d = A.shape
    if layout == "dense":
        return A, None, None
    nz = A != 0
    per_row = nz.sum(axis=1)
    k = int(per_row.max()) if N else 0
    if layout is None and (d < 16 or k > d // 4):
        return A, None, None
    idx = np.full((N, max(k, 1)), d, dtype=np.intp)
    rows, cols = np.nonzero(nz)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    idx[rows, pos] = cols
    val = None
    if not np.all(A[rows, cols] == 1.0):  # binary data needs no values
        val = np.zeros(idx.shape)
        val[rows, pos] = A[rows, cols]
    return None, idx, val
