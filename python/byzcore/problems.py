"""Training problems of docs/spec.md#problems, split across ``n`` workers.

* :class:`LogisticRegression`: binary logistic regression with the non-convex regulariser
  ``lam * sum_j x_j^2 / (1 + x_j^2)`` (the setting of the Byz-VR-MARINA papers), on

  - :func:`synthetic_a9a`: a seeded synthetic dataset shaped like LIBSVM's a9a (32,561 rows,
    123 binary one-hot features, about 24% positives) - the default, needs nothing;
  - :func:`load_libsvm`: any LIBSVM file (e.g. the real a9a), through
    ``sklearn.datasets.load_svmlight_file`` when scikit-learn is installed, else a small
    built-in parser;
  - :func:`sklearn_dataset`: a dataset bundled with scikit-learn (``breast_cancer``,
    ``digits`` as "digit < 5").

* :class:`TorchProblem`: any ``torch.nn.Module`` with a loss and a dataset; :func:`mlp_digits`
  is an MLP on scikit-learn's digits.

Splits (``split=``): ``"homogeneous"`` (shuffled, equal shares), ``"heterogeneous"`` (sorted
by label, then equal contiguous shares: most workers see one class), ``"identical"`` (every
worker holds the whole dataset, so honest gradients agree: no heterogeneity at all).

A problem's interface (what the algorithms call) works on *sets of workers at once* and is
separable: row ``r`` of every result depends only on worker ``workers[r]``, its data and the
keyed random stream of :mod:`byzcore._streams`, and is bit-for-bit the same whether computed
for all workers or for that worker alone (this is what lets a worker process of a
distributed runtime reproduce the simulation):

``full_gradients(x, workers)``, ``minibatch_gradients(x, workers, batch, seed, round)``,
``minibatch_gradient_differences(x_new, x_old, workers, batch, seed, round)``,
``evaluate(x, workers) -> {loss, grad_norm, accuracy}``, and, for the server's validation
(Zeno, Zeno++), ``validation_indices(rng, size)``, ``validation_losses(points, idx)``,
``validation_gradient(x, idx)``. ``with_flipped_labels(workers)`` gives the problem the
label-flipping attack computes on.

The logistic-regression data of all workers is one ``(blocks, m, d)`` array, so the losses
and gradients of all workers come from one batched matrix product.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _streams

__all__ = [
    "LogisticRegression",
    "Problem",
    "TorchProblem",
    "available_problems",
    "load_libsvm",
    "make_problem",
    "mlp_digits",
    "sklearn_dataset",
    "synthetic_a9a",
]


def _bad(op: str, msg: str) -> ValueError:
    return ValueError(f"[{op}] {msg}")


def split_indices(labels: np.ndarray, n_workers: int, split: str, seed: int) -> list[np.ndarray]:
    """Indices of the samples each worker holds, for one of the three splits."""
    n = len(labels)
    if n_workers < 1:
        raise _bad("problem", f"need at least one worker, got {n_workers}")
    if split == "identical":
        return [np.arange(n)] * n_workers
    if n < n_workers:
        raise _bad("problem", f"{n} samples cannot be split across {n_workers} workers; use fewer workers")
    if split in ("homogeneous", "iid"):
        order = np.random.default_rng([seed, _streams.SPLIT]).permutation(n)
    elif split in ("heterogeneous", "non-iid", "noniid"):
        order = np.argsort(labels, kind="stable")
    else:
        raise _bad("problem", f"unknown split {split!r}; use 'homogeneous', 'heterogeneous' or 'identical'")
    return [np.sort(part) for part in np.array_split(order, n_workers)]


class Problem:
    """Interface of a problem split across workers (see the module docstring)."""

    name = "problem"
    d = 0
    n_workers = 0
    has_accuracy = False
    itemsize = 8  # bytes per value of a message

    def x0(self) -> np.ndarray:
        return np.zeros(self.d)

    def full_gradients(self, x: np.ndarray, workers: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def minibatch_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        raise NotImplementedError

    def minibatch_gradient_differences(self, x_new, x_old, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, x: np.ndarray, workers: Sequence[int] | None = None) -> dict:
        raise NotImplementedError

    def with_flipped_labels(self, workers: Sequence[int]) -> Problem:
        raise NotImplementedError

    def stochastic_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """``batch = 0`` means the full local gradient."""
        if batch <= 0:
            return self.full_gradients(x, workers)
        return self.minibatch_gradients(x, workers, batch, seed, round_)


# ---------------------------------------------------------------------------- logistic regression
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


class _Rows:
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

    def _map(self, fn) -> _Rows:
        if self.A is not None:
            return _Rows(self.d, A=fn(self.A, 0))
        return _Rows(self.d, idx=fn(self.idx, 1), val=None if self.val is None else fn(self.val, 1))

    def take(self, *key) -> _Rows:
        """Rows selected by NumPy indexing on the leading (row) axes."""
        return self._map(lambda a, lead: a[key] if lead == 0 else a[(slice(None),) + key])

    def flat(self) -> _Rows:
        """All rows as one ``(1, N, .)`` set."""
        return self._map(lambda a, lead: a.reshape((1, -1, a.shape[-1])) if lead == 0 else a.reshape((a.shape[0], 1, -1)))

    def block_view(self, b: np.ndarray) -> _Rows:
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


def _to_rows(A: np.ndarray, layout: str | None) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(dense, None, None)`` or ``(None, idx, val)`` (ELL, row-major here). Without a
    ``layout``, ELL when rows are sparse (at most a quarter of ``d`` non-zeros)."""
    if layout not in (None, "dense", "sparse"):
        raise _bad("LogisticRegression", f"layout must be 'dense' or 'sparse', got {layout!r}")
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


class LogisticRegression(Problem):
    """``f_i(x) = mean_{j in worker i} log(1 + exp(-y_j a_j^T x)) + lam * sum_k x_k^2 / (1 + x_k^2)``,
    labels ``y`` in ``{-1, +1}`` (any two label values are mapped: the smaller to -1).

    The objective the algorithms minimise is ``f = mean_{i honest} f_i``. The data of all
    workers is one ``(blocks, rows, d)`` array (or, for sparse data such as a9a's one-hot
    features, the same in ELL layout), so every quantity for all workers comes from one
    batched product. ``layout`` forces ``"dense"`` or ``"sparse"`` (default: chosen from
    the data).
    """

    has_accuracy = True

    def __init__(self, features: Any, labels: Any, n_workers: int, *, split: str = "homogeneous",
                 lam: float = 0.01, seed: int = 0, name: str = "logreg", layout: str | None = None):
        A = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels).reshape(-1)
        if A.ndim != 2 or A.shape[0] != y.shape[0] or A.shape[0] == 0:
            raise _bad("LogisticRegression", f"features must be (N, d) and labels (N,), got {A.shape} and {y.shape}")
        values = np.unique(y)
        if len(values) != 2:
            raise _bad("LogisticRegression", f"needs exactly two label values, got {len(values)}; "
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
        dense, idx, val = _to_rows(A, layout)
        # Padding rows have weight zero (and zero features): they add exact zeros to every sum.
        self.y = np.zeros((nb, m))
        self.w = np.zeros((nb, m))
        self.sizes = np.zeros(nb, dtype=np.int64)
        if dense is not None:
            store = np.zeros((nb, m, self.d))
            self.rows = _Rows(self.d, A=store)
        else:
            store = np.full((idx.shape[1], nb, m), self.d, dtype=np.intp)
            vstore = None if val is None else np.zeros((idx.shape[1], nb, m))
            self.rows = _Rows(self.d, idx=store, val=vstore)
        for b, part in enumerate(blocks):
            k = len(part)
            if dense is not None:
                store[b, :k] = dense[part]
            else:
                store[:, b, :k] = idx[part].T
                if vstore is not None:
                    vstore[:, b, :k] = val[part].T
            self.y[b, :k] = ypm[part]
            self.w[b, :k] = 1.0 / k
            self.sizes[b] = k
        self.layout = "dense" if dense is not None else "sparse"
        self.sign = np.ones(self.n_workers)  # -1 for workers whose labels are flipped
        self.n_samples = int(self.sizes.sum())
        self._all = np.arange(self.n_workers)

    def __repr__(self) -> str:
        return (f"LogisticRegression({self.name}: {self.n_samples} samples x {self.d} features ({self.layout}), "
                f"{self.n_workers} workers, {self.split}, lam={self.lam})")

    # -- helpers
    def _reg(self, x: np.ndarray) -> np.ndarray:
        x2 = x * x
        return self.lam * np.sum(x2 / (1.0 + x2), axis=-1)

    def _reg_grad(self, x: np.ndarray) -> np.ndarray:
        return self.lam * 2.0 * x / (1.0 + x * x) ** 2

    @staticmethod
    def _workers(workers) -> np.ndarray:
        return np.asarray(workers, dtype=np.int64).reshape(-1)

    # -- gradients (row r <-> workers[r])
    def full_gradients(self, x: np.ndarray, workers: Sequence[int]) -> np.ndarray:
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
    def losses(self, x: np.ndarray, workers: Sequence[int] | None = None) -> np.ndarray:
        """Local losses ``f_i(x)`` of ``workers`` (default all)."""
        wk = self._all if workers is None else self._workers(workers)
        R = self.rows.block_view(self.owner[wk])
        ys = self.y[self.owner[wk]] * self.sign[wk, None]
        with np.errstate(all="ignore"):
            return np.sum(_log1pexp(-ys * R.dot(x)) * self.w[self.owner[wk]], axis=1) + self._reg(x)

    def evaluate(self, x: np.ndarray, workers: Sequence[int] | None = None) -> dict:
        """``loss`` = mean of ``f_i(x)``, ``grad_norm`` = ``||grad of that mean||``, ``accuracy``
        on the samples of ``workers`` (default all), with the true labels."""
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
        return {"loss": loss, "grad_norm": float(np.linalg.norm(grad)), "accuracy": acc}

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
                idx = self.rows.idx.reshape(self.rows.idx.shape[0], -1).T        # (rows, nnz)
                vals = np.ones(idx.shape) if self.rows.val is None else self.rows.val.reshape(idx.shape[1], -1).T
                keep = idx < self.d
                counts = keep.sum(axis=1)
                indptr = np.concatenate([[0], np.cumsum(counts)])
                self._csr_cache = sp.csr_matrix((vals[keep], idx[keep], indptr), shape=(idx.shape[0], self.d))
        return self._csr_cache

    # -- server validation (Zeno, Zeno++): samples of the whole dataset
    def validation_indices(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
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
        b, r = idx
        R, yv = self.rows.take(b[None], r[None]), self.y[b, r]
        with np.errstate(all="ignore"):
            coef = -yv * _sigmoid_neg(yv * R.dot(x)[0]) / len(yv)
            return R.tdot(coef[None])[0] + self._reg_grad(x)

    def with_flipped_labels(self, workers: Sequence[int]) -> LogisticRegression:
        """A copy (sharing the data) where ``workers`` compute on flipped labels."""
        out = copy.copy(self)
        out.sign = self.sign.copy()
        out.sign[self._workers(workers)] = -1.0
        return out


# ---------------------------------------------------------------------------- datasets
# a9a: 123 binary features one-hot encoding 14 attributes of the UCI Adult data.
_A9A_GROUPS = (5, 8, 5, 16, 5, 7, 14, 6, 5, 2, 2, 3, 5, 40)


def synthetic_a9a(n_samples: int = 32561, n_features: int = 123, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded synthetic dataset shaped like a9a: ``n_samples`` rows of ``n_features`` binary
    features, each row one-hot in 14 attribute groups (so about 14 ones a row, as in a9a),
    labels in ``{-1, +1}`` from a planted logistic model, about 24% positive."""
    rng = np.random.default_rng([seed, 0xA9A])
    groups = list(_A9A_GROUPS)
    total = sum(groups)
    if n_features != total:  # rescale the group sizes to the requested width
        groups = [max(1, round(g * n_features / total)) for g in groups]
        groups[-1] += n_features - sum(groups)
        if groups[-1] < 1:
            raise _bad("synthetic_a9a", f"n_features={n_features} is too small; use at least 14")
    X = np.zeros((n_samples, n_features))
    rows = np.arange(n_samples)
    start = 0
    for g in groups:
        p = rng.dirichlet(np.full(g, 0.8))
        X[rows, start + rng.choice(g, size=n_samples, p=p)] = 1.0
        start += g
    w = rng.normal(0.0, 1.0, n_features)
    score = X @ w
    score = (score - score.mean()) / score.std() * 2.0
    noise = rng.logistic(size=n_samples)
    threshold = np.quantile(score + noise, 0.76)
    y = np.where(score + noise > threshold, 1.0, -1.0)
    return X, y


def _parse_libsvm(path: str, n_features: int | None) -> tuple[np.ndarray, np.ndarray]:
    labels, rows = [], []
    width = 0
    with open(path, "r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                labels.append(float(parts[0]))
                entries = []
                for item in parts[1:]:
                    key, value = item.split(":", 1)
                    if key == "qid":
                        continue
                    j = int(key)
                    if j < 1:
                        raise ValueError("feature indices start at 1")
                    entries.append((j - 1, float(value)))
                    width = max(width, j)
            except ValueError as exc:
                raise _bad("load_libsvm", f"{path}:{lineno}: cannot read {line[:60]!r} ({exc}); "
                           "expected 'label index:value ...'") from None
            rows.append(entries)
    d = width if n_features is None else int(n_features)
    if width > d:
        raise _bad("load_libsvm", f"{path} has feature index {width} > n_features={d}")
    X = np.zeros((len(rows), d))
    for i, entries in enumerate(rows):
        for j, v in entries:
            X[i, j] = v
    return X, np.asarray(labels)


def load_libsvm(path: str, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a LIBSVM/svmlight file into a dense ``(N, d)`` float64 array and labels.

    Uses ``sklearn.datasets.load_svmlight_file`` when scikit-learn is installed, else a
    small built-in parser (``label index:value ...``, 1-based indices, ``#`` comments)."""
    if not os.path.exists(path):
        raise _bad("load_libsvm", f"no such file {path!r}; download it, e.g. a9a from "
                   "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html")
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError:
        return _parse_libsvm(path, n_features)
    X, y = load_svmlight_file(path, n_features=n_features)
    return np.asarray(X.toarray(), dtype=np.float64), np.asarray(y, dtype=np.float64)


def sklearn_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A binary dataset bundled with scikit-learn, standardised: ``breast_cancer`` (569 x 30)
    or ``digits`` (1,797 x 64, label "digit >= 5")."""
    try:
        import sklearn.datasets as ds
    except ImportError:
        raise ImportError(f"[problem] dataset {name!r} needs scikit-learn: pip install scikit-learn "
                          "(or use the synthetic a9a-shaped problem)") from None
    if name == "breast_cancer":
        X, y = ds.load_breast_cancer(return_X_y=True)
    elif name == "digits":
        X, y = ds.load_digits(return_X_y=True)
        y = (y >= 5).astype(np.float64)
    else:
        raise _bad("problem", f"unknown scikit-learn dataset {name!r}; use breast_cancer or digits")
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, np.asarray(y, dtype=np.float64)


# ---------------------------------------------------------------------------- torch problems
class TorchProblem(Problem):
    """Any ``torch.nn.Module`` with a loss and a dataset, split across workers.

    The model's parameters are one flat float64 vector ``x`` (the algorithms' view);
    gradients come from ``torch.func.functional_call`` + autograd. ``classification=True``
    records accuracy (argmax) and makes label flipping map class ``c`` to ``C - 1 - c``.
    ``threads``: PyTorch intra-op threads during this problem's computations (restored
    after each call; ``None`` leaves torch's setting). One thread is fastest for small models
    and avoids oversubscription when the machine is shared.
    """

    def __init__(self, module: Any, loss_fn: Any, features: Any, labels: Any, n_workers: int, *,
                 split: str = "homogeneous", seed: int = 0, classification: bool = True,
                 n_classes: int | None = None, name: str = "torch", threads: int | None = 1):
        import torch

        self.torch = torch
        self.threads = threads
        self.module = module.double()
        self.loss_fn = loss_fn
        self.name, self.split, self.seed = name, split, int(seed)
        self.n_workers = int(n_workers)
        X = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        y = torch.as_tensor(np.asarray(labels))
        self.classification = self.has_accuracy = bool(classification)
        self.n_classes = int(n_classes if n_classes is not None else (int(y.max()) + 1 if classification else 0))
        parts = split_indices(np.asarray(labels), self.n_workers, split, seed)
        self.X = [X[torch.as_tensor(p)] for p in parts]
        self.Y = [y[torch.as_tensor(p)] for p in parts]
        self.sizes = np.array([len(p) for p in parts])
        self.flipped = np.zeros(self.n_workers, dtype=bool)
        self._names = [n for n, _ in self.module.named_parameters()]
        self._shapes = [p.shape for _, p in self.module.named_parameters()]
        self._numels = [p.numel() for _, p in self.module.named_parameters()]
        self.d = int(sum(self._numels))
        self._x0 = torch.nn.utils.parameters_to_vector(self.module.parameters()).detach().numpy().copy()
        self._Xall = X
        self._Yall = y
        self.n_samples = int(X.shape[0])

    def __repr__(self) -> str:
        return f"TorchProblem({self.name}: d={self.d}, {self.n_workers} workers, {self.split})"

    def x0(self) -> np.ndarray:
        return self._x0.copy()

    def _params(self, x: np.ndarray) -> dict:
        t = self.torch.as_tensor(np.ascontiguousarray(x), dtype=self.torch.float64)
        out, start = {}, 0
        for name, shape, k in zip(self._names, self._shapes, self._numels):
            out[name] = t[start: start + k].view(shape).requires_grad_(True)
            start += k
        return out

    def _labels(self, y, worker: int):
        if self.flipped[worker] and self.classification:
            return self.n_classes - 1 - y
        return y

    def _loss_grad(self, x: np.ndarray, X, y, need_grad: bool = True):
        if self.threads is None:
            return self._loss_grad_impl(x, X, y, need_grad)
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(self.threads)
        try:
            return self._loss_grad_impl(x, X, y, need_grad)
        finally:
            self.torch.set_num_threads(before)

    def _loss_grad_impl(self, x: np.ndarray, X, y, need_grad: bool):
        params = self._params(x)
        out = self.torch.func.functional_call(self.module, params, (X,))
        loss = self.loss_fn(out, y)
        if not need_grad:
            return float(loss.detach()), None, out.detach()
        grads = self.torch.autograd.grad(loss, list(params.values()))
        return float(loss.detach()), self.torch.cat([g.reshape(-1) for g in grads]).numpy(), out.detach()

    def _rows(self, x, r):
        return x if x.ndim == 1 else x[r]

    def full_gradients(self, x, workers):
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        return np.stack([self._loss_grad(self._rows(x, r), self.X[w], self._labels(self.Y[w], w))[1]
                         for r, w in enumerate(wk)]) if len(wk) else np.zeros((0, self.d))

    def _batch(self, w: int, batch: int, seed: int, round_: int):
        idx = _streams.integers(seed, _streams.MINIBATCH, round_, [w], batch, self.sizes[w])[0]
        t = self.torch.as_tensor(idx)
        return self.X[w][t], self._labels(self.Y[w][t], w)

    def minibatch_gradients(self, x, workers, batch, seed, round_):
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        rows = []
        for r, w in enumerate(wk):
            Xb, yb = self._batch(int(w), batch, seed, round_)
            rows.append(self._loss_grad(self._rows(x, r), Xb, yb)[1])
        return np.stack(rows) if rows else np.zeros((0, self.d))

    def minibatch_gradient_differences(self, x_new, x_old, workers, batch, seed, round_):
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        if batch <= 0:
            return self.full_gradients(x_new, wk) - self.full_gradients(x_old, wk)
        rows = []
        for r, w in enumerate(wk):
            Xb, yb = self._batch(int(w), batch, seed, round_)
            rows.append(self._loss_grad(self._rows(x_new, r), Xb, yb)[1] - self._loss_grad(self._rows(x_old, r), Xb, yb)[1])
        return np.stack(rows) if rows else np.zeros((0, self.d))

    def evaluate(self, x, workers=None):
        wk = np.arange(self.n_workers) if workers is None else np.asarray(workers, dtype=np.int64).reshape(-1)
        loss, grad, correct = 0.0, np.zeros(self.d), 0.0
        for w in wk:
            lw, gw, out = self._loss_grad(x, self.X[w], self.Y[w])
            loss += lw / len(wk)
            grad += gw / len(wk)
            if self.classification:
                correct += float((out.argmax(dim=1) == self.Y[w]).double().mean()) / len(wk)
        res = {"loss": loss, "grad_norm": float(np.linalg.norm(grad))}
        if self.classification:
            res["accuracy"] = correct
        return res

    def validation_indices(self, rng, size):
        return rng.integers(0, self.n_samples, size=size)

    def validation_losses(self, points, idx):
        t = self.torch.as_tensor(idx)
        X, y = self._Xall[t], self._Yall[t]
        with self.torch.no_grad():
            return np.array([self._loss_grad(p, X, y, need_grad=False)[0] for p in points])

    def validation_gradient(self, x, idx):
        t = self.torch.as_tensor(idx)
        return self._loss_grad(x, self._Xall[t], self._Yall[t])[1]

    def with_flipped_labels(self, workers):
        out = copy.copy(self)
        out.flipped = self.flipped.copy()
        out.flipped[np.asarray(workers, dtype=np.int64)] = True
        return out


def mlp_digits(n_workers: int, *, split: str = "homogeneous", seed: int = 0, hidden: int = 32) -> TorchProblem:
    """A one-hidden-layer MLP (64 -> ``hidden`` -> 10, tanh) with cross-entropy on
    scikit-learn's digits (1,797 images of 8x8), inputs scaled to ``[0, 1]``."""
    try:
        import torch
    except ImportError:
        raise ImportError("[problem] mlp_digits needs PyTorch: pip install torch") from None
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("[problem] mlp_digits needs scikit-learn: pip install scikit-learn") from None
    X, y = load_digits(return_X_y=True)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(int(seed) % 2**63)
        module = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10))
    return TorchProblem(module, torch.nn.functional.cross_entropy, X / 16.0, y.astype(np.int64), n_workers,
                        split=split, seed=seed, classification=True, n_classes=10, name="mlp_digits")


# ---------------------------------------------------------------------------- registry
_PROBLEMS = {
    "a9a-synthetic": "synthetic logistic regression shaped like a9a (32,561 x 123, binary features)",
    "breast_cancer": "logistic regression on scikit-learn's breast cancer data (569 x 30)",
    "digits": "logistic regression on scikit-learn's digits, 'digit >= 5' (1,797 x 64)",
    "libsvm:PATH": "logistic regression on a LIBSVM file, e.g. libsvm:a9a",
    "mlp_digits": "an MLP on scikit-learn's digits (needs PyTorch)",
}
_ALIASES = {"synthetic": "a9a-synthetic", "a9a_synthetic": "a9a-synthetic", "synthetic-a9a": "a9a-synthetic",
            "mlp-digits": "mlp_digits", "breast-cancer": "breast_cancer"}


def available_problems() -> dict:
    """Problem names for :func:`make_problem` and the command line, with a description."""
    return dict(_PROBLEMS)


def make_problem(name: str, n_workers: int, *, split: str = "heterogeneous", seed: int = 0,
                 lam: float = 0.01, n_samples: int | None = None) -> Problem:
    """Build a problem by name (see :func:`available_problems`).

    ``n_samples`` shrinks the synthetic dataset (for quick tests)."""
    if isinstance(name, Problem):
        return name
    key = _ALIASES.get(name, name)
    if key == "a9a-synthetic":
        X, y = synthetic_a9a(n_samples or 32561, seed=seed)
        return LogisticRegression(X, y, n_workers, split=split, lam=lam, seed=seed, name="a9a-synthetic")
    if key in ("breast_cancer", "digits"):
        X, y = sklearn_dataset(key)
        return LogisticRegression(X, y, n_workers, split=split, lam=lam, seed=seed, name=key)
    if key.startswith("libsvm:"):
        path = key.split(":", 1)[1]
        X, y = load_libsvm(path)
        return LogisticRegression(X, y, n_workers, split=split, lam=lam, seed=seed, name=os.path.basename(path))
    if key == "mlp_digits":
        return mlp_digits(n_workers, split=split, seed=seed)
    raise _bad("problem", f"unknown problem {name!r}; known: {', '.join(_PROBLEMS)}")
