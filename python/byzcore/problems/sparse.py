"""Feature rows of a problem, dense, ELL or CSR, and the two products the losses need.

Every layout keeps every product separable over the rows' first axis, so one worker computed
alone gets the same bits as in the batched call (see :mod:`byzcore.problems.base`). Dense
and ELL rows come from a dense array; CSR rows (:class:`CSRRows`) come from a sparse matrix
(:class:`CSRMatrix`, or SciPy's) and are never densified, so LIBSVM files with millions of
features (news20, rcv1, url) fit in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import problem_error

__all__ = ["CSRMatrix", "CSRRows", "FeatureRows", "as_csr", "to_feature_rows"]


class FeatureRows:
    """Feature rows in one of two layouts, with the two products the problem needs.

    Both products (:meth:`dot`, :meth:`tdot`) are separable over the rows' first axis: row
    ``i`` of a result is computed by the same operations, in the same order, whatever the
    other rows are (so one worker alone gets the bits the batched call gives it). Give either
    ``A`` (dense) or ``idx`` (sparse, ELL).

    Parameters
    ----------
    d : int
        The number of features.
    A : numpy.ndarray or None, default None
        Dense rows, of shape ``(..., d)``.
    idx : numpy.ndarray or None, default None
        Sparse rows (ELL, column-major): shape ``(nnz, ...)``, the column of each row's
        ``k``-th non-zero, ``d`` marking padding (it reads an appended zero); the leading
        ``nnz`` axis makes the row sums plain vector additions.
    val : numpy.ndarray or None, default None
        The values matching ``idx``; ``None`` for binary data (every value 1).
    """

    def __init__(self, d: int, A: np.ndarray | None = None, idx: np.ndarray | None = None,
                 val: np.ndarray | None = None):
        self.d, self.A, self.idx, self.val = d, A, idx, val

    def _ell_idx(self) -> np.ndarray:
        assert self.idx is not None, "FeatureRows holds A (dense) or idx (sparse)"
        return self.idx

    def _map(self, fn) -> FeatureRows:
        if self.A is not None:
            return FeatureRows(self.d, A=fn(self.A, 0))
        return FeatureRows(self.d, idx=fn(self.idx, 1), val=None if self.val is None else fn(self.val, 1))

    def take(self, *key) -> FeatureRows:
        """Rows selected by NumPy indexing on the leading (row) axes."""
        return self._map(lambda a, lead: a[key] if lead == 0 else a[(slice(None),) + key])  # noqa: RUF005 -- mypy reads (x, *key) in [] as 3.11 syntax

    def flat(self) -> FeatureRows:
        """All rows as one ``(1, N, .)`` set."""
        return self._map(
            lambda a, lead: a.reshape((1, -1, a.shape[-1])) if lead == 0 else a.reshape((a.shape[0], 1, -1))
        )

    def block_view(self, b: np.ndarray) -> FeatureRows:
        """Blocks ``b`` as an ``(len(b), rows, .)`` set: a view for a contiguous range or one
        repeated block, a copy otherwise."""
        def pick(a: np.ndarray, lead: int) -> np.ndarray:
            a = np.moveaxis(a, 0, -1) if lead else a         # blocks first
            if len(b) and np.all(np.diff(b) == 1):
                out = a[b[0]: b[-1] + 1]
            elif len(b) and np.all(b == b[0]):
                out = np.broadcast_to(a[b[0]], (len(b), *a.shape[1:]))
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
        idx = self._ell_idx()
        out: Any = None
        for k in range(idx.shape[0]):             # a fixed order of additions: separable bits
            g = Xe[lead, idx[k]] if per_row else Xe[idx[k]]
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
        idx = self._ell_idx()
        for k in range(idx.shape[0]):             # per non-zero slot: no (nnz, m, r) temporaries
            cols = idx[k] if offsets is None else idx[k] + offsets
            w = coef if self.val is None else coef * self.val[k]
            out += np.bincount(cols.reshape(-1), weights=w.reshape(-1), minlength=m * d1)
        return out.reshape(m, d1)[:, : self.d]


def to_feature_rows(
    A: np.ndarray, layout: str | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Dense features in the layout :class:`FeatureRows` is built from.

    Parameters
    ----------
    A : numpy.ndarray
        ``(N, d)`` dense features.
    layout : str or None
        ``"dense"``, ``"sparse"`` (ELL) or ``None``: ELL when ``d >= 16`` and every row has at
        most ``d // 4`` non-zeros, else dense.

    Returns
    -------
    dense, idx, val : numpy.ndarray or None
        ``(A, None, None)``, or ``(None, idx, val)`` in ELL layout, row-major here: ``idx``
        ``(N, k)`` the columns of each row's non-zeros (``k`` the most in a row, at least 1;
        ``d`` marks padding) and ``val`` their values, ``None`` when every non-zero is 1.

    Raises
    ------
    ValueError
        ``[LogisticRegression] layout must be ...`` for another ``layout``.
    """
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


class CSRMatrix:
    """A sparse ``(N, d)`` matrix in compressed sparse row form, with NumPy only (what
    :func:`~byzcore.problems.load_libsvm` returns without SciPy; SciPy's ``csr_matrix`` has
    the same attributes).

    Parameters
    ----------
    indptr, indices : numpy.ndarray
        Row ``i`` holds columns ``indices[indptr[i]:indptr[i+1]]`` (stored as int64).
    data : numpy.ndarray
        The values matching ``indices`` (stored as float64).
    shape : tuple of int
        ``(N, d)``.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, shape: tuple[int, int]):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.data = np.asarray(data, dtype=np.float64)
        self.shape = (int(shape[0]), int(shape[1]))

    @classmethod
    def from_dense(cls, A: np.ndarray) -> CSRMatrix:
        """The non-zeros of a dense ``(N, d)`` array."""
        A = np.asarray(A, dtype=np.float64)
        rows, cols = np.nonzero(A)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=A.shape[0]))])
        return cls(indptr, cols, A[rows, cols], A.shape)

    def toarray(self) -> np.ndarray:
        """The dense ``(N, d)`` float64 array (small matrices only: it allocates ``N * d``)."""
        out = np.zeros(self.shape)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices), self.data)
        return out


def as_csr(features: object) -> CSRMatrix | None:
    """``features`` as a :class:`CSRMatrix` if it is sparse, else ``None``.

    Parameters
    ----------
    features : object
        A :class:`CSRMatrix`, any SciPy sparse matrix (anything with ``tocsr``), or anything
        else (dense input).

    Returns
    -------
    CSRMatrix or None
        The matrix with duplicates summed and columns sorted in each row (a
        :class:`CSRMatrix` that already is so is returned as is); ``None`` for dense input.
    """
    if isinstance(features, CSRMatrix):
        m = features
    elif hasattr(features, "tocsr"):
        c = features.tocsr(copy=True)
        c.sum_duplicates()
        c.sort_indices()
        return CSRMatrix(c.indptr, c.indices, c.data, c.shape)
    else:
        return None
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    if len(rows) and np.any(np.diff(rows * m.shape[1] + m.indices) <= 0):  # unsorted or repeated columns
        key, inv = np.unique(rows * m.shape[1] + m.indices, return_inverse=True)
        data = np.bincount(inv, weights=m.data, minlength=len(key))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(key // m.shape[1], minlength=m.shape[0]))])
        return CSRMatrix(indptr, key % m.shape[1], data, m.shape)
    return m


class CSRRows:
    """Feature rows in compressed sparse row form, on a grid of leading axes.

    The :class:`FeatureRows` interface: ``take``, ``flat``, ``block_view``, ``dot``,
    ``tdot``. Empty rows (padding) hold nothing. Products are separable: a row's sum runs
    over its own entries in their stored order, and each output of :meth:`tdot` adds its
    contributions in row order, whatever the other rows are.

    Parameters
    ----------
    d : int
        The number of features.
    indptr : numpy.ndarray
        Row offsets, one more than the rows; they need not start at 0: row ``i`` of the
        flattened grid holds the entries ``indptr[i] - indptr[0]`` to
        ``indptr[i+1] - indptr[0]`` of ``indices`` and ``data``.
    indices : numpy.ndarray
        The column of each entry.
    data : numpy.ndarray or None
        The value of each entry; ``None``: binary data (every value 1).
    shape : tuple of int
        The rows' leading shape (``(blocks, rows)`` for a problem's data, ``(m, batch)`` for
        minibatches).
    """

    def __init__(self, d: int, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray | None,
                 shape: tuple[int, ...]):
        self.d, self.indptr, self.indices, self.data = int(d), indptr, indices, data
        self.shape = tuple(int(s) for s in shape)

    def select(self, ids: np.ndarray) -> CSRRows:
        """Rows ``ids`` (integers of any shape; ``-1`` is an empty row) on a grid of
        ``ids.shape``: views for a contiguous range, a copy otherwise."""
        ids = np.asarray(ids, dtype=np.int64)
        flat = ids.reshape(-1)
        n = flat.size
        if n and flat[0] >= 0 and np.array_equal(flat, np.arange(flat[0], flat[0] + n)):
            lo, hi = self.indptr[flat[0]] - self.indptr[0], self.indptr[flat[0] + n] - self.indptr[0]
            return CSRRows(self.d, self.indptr[flat[0]: flat[0] + n + 1], self.indices[lo:hi],
                           None if self.data is None else self.data[lo:hi], ids.shape)
        safe = np.where(flat >= 0, flat, 0)
        starts = self.indptr[safe] - self.indptr[0]
        lens = np.where(flat >= 0, self.indptr[safe + 1] - self.indptr[safe], 0)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        return CSRRows(self.d, indptr, self.indices[pos], None if self.data is None else self.data[pos], ids.shape)

    def _grid(self) -> np.ndarray:
        return np.arange(int(np.prod(self.shape))).reshape(self.shape)

    def take(self, *key) -> CSRRows:
        """Rows selected by NumPy indexing on the leading (row) axes."""
        return self.select(self._grid()[key])

    def flat(self) -> CSRRows:
        """All rows as one ``(1, N)`` set."""
        return CSRRows(self.d, self.indptr, self.indices, self.data, (1, int(np.prod(self.shape))))

    def block_view(self, b: np.ndarray) -> CSRRows:
        """Blocks ``b`` (first leading axis) as a ``(len(b), rows)`` set."""
        return self.select(self._grid()[np.asarray(b, dtype=np.int64)])

    def _lens(self) -> np.ndarray:
        return np.diff(self.indptr)

    def _lead_of_entries(self) -> np.ndarray:
        per_lead = int(np.prod(self.shape[1:]))
        return np.repeat(np.arange(int(np.prod(self.shape))) // per_lead, self._lens())

    def _row_sums(self, g: np.ndarray) -> np.ndarray:
        lens = self._lens()
        out = np.zeros((lens.size, *g.shape[1:]))
        nz = lens > 0
        if nz.any():  # reduceat over the non-empty rows only (it misreads empty segments)
            out[nz] = np.add.reduceat(g, (self.indptr[:-1] - self.indptr[0])[nz], axis=0)
        return out

    def dot(self, X: np.ndarray, per_row: bool = False) -> np.ndarray:
        """As :meth:`FeatureRows.dot`: rows ``(m, r)`` times ``X`` ``(d,)`` / ``(d, p)``, or
        with ``per_row`` a model per leading index ``(m, d)`` / ``(m, d, p)``."""
        g = X[self._lead_of_entries(), self.indices] if per_row else X[self.indices]
        if self.data is not None:
            g = g * (self.data[:, None] if g.ndim > 1 else self.data)
        return self._row_sums(g).reshape(self.shape + X.shape[2 if per_row else 1:])

    def tdot(self, coef: np.ndarray) -> np.ndarray:
        """``out[i] = sum_r coef[i, r] * row[i, r]`` for rows ``(m, r)``: ``(m, d)``."""
        m = self.shape[0]
        w = np.repeat(np.asarray(coef, dtype=np.float64).reshape(-1), self._lens())
        if self.data is not None:
            w = w * self.data
        cols = self.indices if m == 1 else self.indices + self._lead_of_entries() * self.d
        return np.bincount(cols, weights=w, minlength=m * self.d).reshape(m, self.d)
