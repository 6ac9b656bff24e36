"""Binary logistic regression (non-convex or l2 regulariser), split across workers.

The data of all workers is one ``(blocks, m, d)`` array (or its ELL layout for sparse data,
:mod:`byzcore.problems.sparse`), so the losses and gradients of all workers come from one
batched matrix product.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .. import _streams
from .base import Problem, WorkerIds, problem_error
from .data import split_indices
from .sparse import CSRMatrix, CSRRows, FeatureRows, as_csr, to_feature_rows

__all__ = ["LogisticRegression"]


def _log1pexp(t: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, t)


def _sigmoid_neg(t: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(t))`` without overflow."""
    return np.exp(-np.logaddexp(0.0, t))


def _loss_and_sigmoid(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(1 + exp(-t))`` and ``1 / (1 + exp(t))`` from one ``exp`` and one ``log1p``."""
    e = np.exp(-np.abs(t))
    loss = np.log1p(e) + np.maximum(-t, 0.0)
    inv = 1.0 / (1.0 + e)
    return loss, np.where(t >= 0, e * inv, inv)


REGULARISERS = ("nonconvex", "l2")


class LogisticRegression(Problem):
    """Binary logistic regression with a non-convex or l2 regulariser, split across workers.

    Worker ``i``'s loss is::

        f_i(x) = mean_{j in worker i} log(1 + exp(-y_j a_j^T x)) + lam * r(x)

    with labels ``y`` in ``{-1, +1}`` and ``reg="nonconvex"``:
    ``r(x) = sum_k x_k^2 / (1 + x_k^2)`` (default) or ``reg="l2"``: ``r(x) = ||x||^2`` (the
    Byz-VR-MARINA(-PP) experiments). The objective the algorithms minimise is ``f = mean_{i honest} f_i``.

    The data of all workers is one ``(blocks, rows, d)`` array (or, for sparse data such as
    a9a's one-hot features, the same in ELL layout), so every quantity for all workers comes
    from one batched product. Sparse ``features`` stay sparse: the rows are kept in CSR form
    and every product runs over the non-zeros (``self.layout == "csr"``), so millions of
    features cost memory in proportion to the non-zeros only.

    Parameters
    ----------
    features : array_like, CSRMatrix or scipy.sparse matrix
        ``(N, d)`` features ``a_j``: a dense array, a
        :class:`~byzcore.problems.sparse.CSRMatrix` or a SciPy sparse matrix (e.g. from
        :func:`~byzcore.problems.load_libsvm`).
    labels : array_like
        ``(N,)`` labels with exactly two distinct values: the smaller becomes -1, the larger +1.
    n_workers : int
        Workers to split the samples across.
    split : str, default "homogeneous"
        The split (:func:`~byzcore.problems.split_indices`); with ``"identical"`` every
        worker shares one block holding all samples.
    lam : float, default 0.01
        The regulariser's weight, finite and >= 0.
    seed : int, default 0
        Seeds the split (the minibatches are keyed by the caller's seed).
    name : str, default "logreg"
        The problem's name in results.
    layout : str or None, default None
        ``"dense"`` or ``"sparse"`` (ELL) for dense features; ``None``: ELL when rows have
        at most ``d // 4`` non-zeros (and ``d >= 16``). ``"dense"`` densifies sparse
        features; sparse features otherwise stay CSR.
    reg : str, default "nonconvex"
        ``"nonconvex"`` or ``"l2"``.

    Raises
    ------
    ValueError
        ``[LogisticRegression] ...`` for an unknown ``reg``, an unknown ``layout`` of dense
        features, a negative or non-finite ``lam``, mismatched or empty shapes, or not
        exactly two label values; ``[problem] ...`` for a bad split.

    References
    ----------
    docs/spec.md#problem-logreg
    """

    has_accuracy = True

    def __init__(self, features: Any, labels: Any, n_workers: int, *, split: str = "homogeneous",
                 lam: float = 0.01, seed: int = 0, name: str = "logreg", layout: str | None = None,
                 reg: str = "nonconvex"):
        if reg not in REGULARISERS:
            raise problem_error("LogisticRegression", f"reg must be one of {', '.join(REGULARISERS)}, got {reg!r}")
        if not (np.isfinite(lam) and lam >= 0):
            raise problem_error("LogisticRegression", f"lam must be finite and >= 0, got {lam}")
        self.reg = reg
        csr = as_csr(features)
        if csr is not None and layout == "dense":
            features = csr.toarray()
            csr = None
        A = csr if csr is not None else np.asarray(features, dtype=np.float64)
        y = np.asarray(labels).reshape(-1)
        if len(A.shape) != 2 or A.shape[0] != y.shape[0] or A.shape[0] == 0:
            raise problem_error("LogisticRegression",
                                f"features must be (N, d) and labels (N,), got {A.shape} and {y.shape}")
        values = np.unique(y)
        if len(values) != 2:
            raise problem_error("LogisticRegression", f"needs exactly two label values, got {len(values)}; "
                       "map a multiclass problem to two classes first")
        ypm = np.where(y == values[1], 1.0, -1.0)
        self.name, self.lam, self.seed, self.split = name, float(lam), int(seed), split
        self.n_workers, self.d = int(n_workers), A.shape[1]
        parts = split_indices(ypm, self.n_workers, split, seed)
        if split == "identical":
            blocks = [parts[0]]
            self.owner = np.zeros(self.n_workers, dtype=np.int64)
        else:
            blocks = parts
            self.owner = np.arange(self.n_workers, dtype=np.int64)
        m = max(len(p) for p in blocks)
        nb = len(blocks)
        if csr is not None:
            self._init_csr(csr, blocks, m, ypm)
            return
        dense, idx, val = to_feature_rows(np.asarray(A), layout)  # not CSR here: A is the dense array
        # Padding rows have weight zero (and zero features): they add exact zeros to every sum.
        self.y = np.zeros((nb, m))
        self.w = np.zeros((nb, m))
        self.sizes = np.zeros(nb, dtype=np.int64)
        self.rows: FeatureRows | CSRRows
        store: np.ndarray
        if dense is not None:
            store = np.zeros((nb, m, self.d))
            self.rows = FeatureRows(self.d, A=store)
        else:
            assert idx is not None  # to_feature_rows gives dense or idx
            store = np.full((idx.shape[1], nb, m), self.d, dtype=np.intp)
            vstore = None if val is None else np.zeros((idx.shape[1], nb, m))
            self.rows = FeatureRows(self.d, idx=store, val=vstore)
        for b, part in enumerate(blocks):
            k = len(part)
            if dense is not None:
                store[b, :k] = dense[part]
            else:
                assert idx is not None
                store[:, b, :k] = idx[part].T
                if vstore is not None and val is not None:
                    vstore[:, b, :k] = val[part].T
            self.y[b, :k] = ypm[part]
            self.w[b, :k] = 1.0 / k
            self.sizes[b] = k
        self.layout = "dense" if dense is not None else "sparse"
        self.sign = np.ones(self.n_workers)  # -1 for workers whose labels are flipped
        self.n_samples = int(self.sizes.sum())
        self._all = np.arange(self.n_workers)

    def _init_csr(self, csr: CSRMatrix, blocks: list, m: int, ypm: np.ndarray) -> None:
        """Sparse input: the rows stay in CSR form (never densified) on the ``(blocks, m)`` grid."""
        ids = np.full((len(blocks), m), -1, dtype=np.int64)   # -1: an empty padding row
        self.y = np.zeros((len(blocks), m))
        self.w = np.zeros((len(blocks), m))
        self.sizes = np.array([len(p) for p in blocks], dtype=np.int64)
        for b, part in enumerate(blocks):
            ids[b, :len(part)] = part
            self.y[b, :len(part)] = ypm[part]
            self.w[b, :len(part)] = 1.0 / len(part)
        binary = bool(np.all(csr.data == 1.0))                # binary data needs no values
        src = CSRRows(self.d, csr.indptr, csr.indices, None if binary else csr.data, (csr.shape[0],))
        self.rows = src.select(ids)
        self.layout = "csr"
        self.sign = np.ones(self.n_workers)
        self.n_samples = int(self.sizes.sum())
        self._all = np.arange(self.n_workers)

    def __repr__(self) -> str:
        return (f"LogisticRegression({self.name}: {self.n_samples} samples x {self.d} features ({self.layout}), "
                f"{self.n_workers} workers, {self.split}, {self.reg} regulariser, lam={self.lam})")

    # -- helpers
    def _reg(self, x: np.ndarray) -> np.ndarray:
        x2 = x * x
        if self.reg == "l2":
            return self.lam * np.sum(x2, axis=-1)
        return self.lam * np.sum(x2 / (1.0 + x2), axis=-1)

    def _reg_grad(self, x: np.ndarray) -> np.ndarray:
        if self.reg == "l2":
            return self.lam * 2.0 * x
        return self.lam * 2.0 * x / (1.0 + x * x) ** 2

    def local_sizes(self, workers: WorkerIds) -> np.ndarray:
        """Samples each of ``workers`` holds (a gradient-oracle call is one sample's gradient)."""
        return self.sizes[self.owner[self._workers(workers)]]

    @staticmethod
    def _workers(workers) -> np.ndarray:
        return np.asarray(workers, dtype=np.int64).reshape(-1)

    # -- gradients (row r <-> workers[r])
    def full_gradients(self, x: np.ndarray, workers: WorkerIds) -> np.ndarray:
        """Full local gradients ``grad f_i(x)``; ``x`` is ``(d,)`` or one model per worker ``(m, d)``."""
        wk = self._workers(workers)
        R = self.rows.block_view(self.owner[wk])
        ys = self.y[self.owner[wk]] * self.sign[wk, None]
        with np.errstate(all="ignore"):
            z = R.dot(x, per_row=x.ndim == 2)                         # (m, rows): one batched product
            coef = -ys * _sigmoid_neg(ys * z) * self.w[self.owner[wk]]
            return R.tdot(coef) + self._reg_grad(x)                   # and one more

    def _sample(self, wk: np.ndarray, batch: int, seed: int, round_: int):
        idx = _streams.integers(seed, _streams.MINIBATCH, round_, wk, batch, self.sizes[self.owner[wk]])
        blk = self.owner[wk][:, None]
        return self.rows.take(blk, idx), self.y[blk, idx] * self.sign[wk, None]

    def minibatch_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """Each worker's gradient on ``batch`` of its samples drawn with replacement from the
        keyed stream ``(seed, MINIBATCH, round_, worker)``."""
        wk = self._workers(workers)
        R, yb = self._sample(wk, batch, seed, round_)
        with np.errstate(all="ignore"):
            z = R.dot(x, per_row=x.ndim == 2)
            coef = -yb * _sigmoid_neg(yb * z) / batch
            return R.tdot(coef) + self._reg_grad(x)

    def minibatch_gradient_differences(self, x_new, x_old, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """``grad f_i(x_new) - grad f_i(x_old)`` on one minibatch per worker (the same samples at
        both points), or on all local data if ``batch <= 0``."""
        wk = self._workers(workers)
        if batch <= 0:
            return self.full_gradients(x_new, wk) - self.full_gradients(x_old, wk)
        R, yb = self._sample(wk, batch, seed, round_)
        X = np.stack([x_new, x_old], axis=-1)                         # (d, 2) or (m, d, 2)
        with np.errstate(all="ignore"):
            z = R.dot(X, per_row=X.ndim == 3)                          # (m, batch, 2)
            s = _sigmoid_neg(yb[:, :, None] * z)
            coef = -yb * (s[:, :, 0] - s[:, :, 1]) / batch
            return R.tdot(coef) + (self._reg_grad(x_new) - self._reg_grad(x_old))

    # -- objective
    def losses(self, x: np.ndarray, workers: WorkerIds | None = None) -> np.ndarray:
        """Local losses ``f_i(x)`` of ``workers`` (default all)."""
        wk = self._all if workers is None else self._workers(workers)
        R = self.rows.block_view(self.owner[wk])
        ys = self.y[self.owner[wk]] * self.sign[wk, None]
        with np.errstate(all="ignore"):
            return np.sum(_log1pexp(-ys * R.dot(x)) * self.w[self.owner[wk]], axis=1) + self._reg(x)

    def evaluate(self, x: np.ndarray, workers: WorkerIds | None = None) -> dict:
        """``loss`` = mean of ``f_i(x)``, ``grad_norm`` = ``||grad of that mean||``, ``accuracy``
        on the samples of ``workers`` (default all), with the true labels."""
        loss, grad, acc = self._objective(x, workers)
        return {"loss": loss, "grad_norm": float(np.linalg.norm(grad)), "accuracy": acc}

    def objective(self, x: np.ndarray, workers: WorkerIds | None = None) -> tuple[float, np.ndarray]:
        """``f(x) = mean of f_i(x)`` over ``workers`` (default all) and its gradient (true labels):
        what the optimality gap's solver minimises (:mod:`byzcore.problems.optimum`)."""
        loss, grad, _ = self._objective(np.asarray(x, dtype=np.float64), workers)
        return loss, grad

    def _objective(self, x: np.ndarray, workers: WorkerIds | None):
        wk = self._all if workers is None else self._workers(workers)
        # Weight of each block in the mean; blocks of other workers get weight zero (cheaper
        # than copying the used blocks out).
        c = np.bincount(self.owner[wk], minlength=len(self.y)).astype(np.float64) / len(wk)
        y, w = self.y, self.w
        csr = self._csr()
        with np.errstate(all="ignore"):
            z = self.rows.dot(x) if csr is None else (csr @ x).reshape(y.shape)   # (blocks, rows)
            cw = c[:, None] * w
            t = y * z
            ell, sig = _loss_and_sigmoid(t)
            loss = float(np.sum(cw * ell) + self._reg(x))
            coef = -y * sig * cw
            if csr is None:
                grad = self.rows.flat().tdot(coef.reshape(1, -1))[0]
            else:
                grad = csr.T @ coef.reshape(-1)
            grad = grad + self._reg_grad(x)
            acc = float(np.sum(cw * ((y > 0) == (z > 0))))               # predict +1 iff a^T x > 0
        return loss, grad, acc

    def _csr(self):
        """The sparse data as one SciPy CSR matrix, when SciPy is installed: the metrics pass
        over all data runs twice as fast with it. (Worker computations keep the NumPy layout
        so that their bits do not depend on SciPy.)"""
        if self.layout != "sparse":
            return None
        if not hasattr(self, "_csr_cache"):
            try:
                import scipy.sparse as sp
            except ImportError:
                self._csr_cache = None
            else:
                rows = self.rows
                assert isinstance(rows, FeatureRows)  # the ELL layout ("sparse")
                assert rows.idx is not None
                idx = rows.idx.reshape(rows.idx.shape[0], -1).T                  # (rows, nnz)
                vals = np.ones(idx.shape) if rows.val is None else rows.val.reshape(idx.shape[1], -1).T
                keep = idx < self.d
                counts = keep.sum(axis=1)
                indptr = np.concatenate([[0], np.cumsum(counts)])
                self._csr_cache = sp.csr_matrix((vals[keep], idx[keep], indptr), shape=(idx.shape[0], self.d))
        return self._csr_cache

    # -- server validation (Zeno, Zeno++): samples of the whole dataset
    def validation_indices(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """A validation minibatch of ``size`` samples of the whole dataset, drawn with ``rng``.

        Returns
        -------
        tuple of numpy.ndarray
            Block and row indices of the samples.

        References
        ----------
        docs/spec.md#alg-zeno
        """
        blocks = np.unique(self.owner)
        b = blocks[rng.integers(0, len(blocks), size=size)]
        r = np.floor(rng.random(size) * self.sizes[b]).astype(np.int64)
        return b, r

    def validation_losses(self, points: np.ndarray, idx) -> np.ndarray:
        """Loss of each row of ``points`` (``(p, d)``) on the validation samples ``idx``."""
        b, r = idx
        R, yv = self.rows.take(b[None], r[None]), self.y[b, r]
        with np.errstate(all="ignore"):
            z = R.dot(np.ascontiguousarray(points.T))[0]              # (size, p)
            return np.mean(_log1pexp(-yv[:, None] * z), axis=0) + self._reg(points)

    def validation_gradient(self, x: np.ndarray, idx) -> np.ndarray:
        """The gradient at ``x`` on the validation minibatch ``idx``.

        References
        ----------
        docs/spec.md#alg-zeno-pp
        """
        b, r = idx
        R, yv = self.rows.take(b[None], r[None]), self.y[b, r]
        with np.errstate(all="ignore"):
            coef = -yv * _sigmoid_neg(yv * R.dot(x)[0]) / len(yv)
            return R.tdot(coef[None])[0] + self._reg_grad(x)

    def with_flipped_labels(self, workers: WorkerIds) -> LogisticRegression:
        """A copy (sharing the data) where ``workers`` compute on flipped labels."""
        out = copy.copy(self)
        out.sign = self.sign.copy()
        out.sign[self._workers(workers)] = -1.0
        return out
