"""Datasets and how they are split across workers.

- :func:`synthetic_a9a`: a seeded synthetic dataset shaped like LIBSVM's a9a (the default);
- :func:`load_libsvm`: any LIBSVM file, kept sparse (scikit-learn's reader when installed,
  else a small built-in parser);
- :func:`sklearn_dataset`: a dataset bundled with scikit-learn;
- :func:`split_indices`: the ``homogeneous``, ``heterogeneous`` and ``identical`` splits.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import _streams
from .base import problem_error
from .sparse import CSRMatrix, as_csr

__all__ = ["load_libsvm", "sklearn_dataset", "split_indices", "synthetic_a9a"]


def split_indices(labels: np.ndarray, n_workers: int, split: str, seed: int) -> list[np.ndarray]:
    """Indices of the samples each worker holds, for one of the three splits."""
    n = len(labels)
    if n_workers < 1:
        raise problem_error("problem", f"need at least one worker, got {n_workers}")
    if split == "identical":
        return [np.arange(n)] * n_workers
    if n < n_workers:
        raise problem_error("problem", f"{n} samples cannot be split across {n_workers} workers; use fewer workers")
    if split in ("homogeneous", "iid"):
        order = np.random.default_rng([seed, _streams.SPLIT]).permutation(n)
    elif split in ("heterogeneous", "non-iid", "noniid"):
        order = np.argsort(labels, kind="stable")
    else:
        raise problem_error("problem", f"unknown split {split!r}; use 'homogeneous', 'heterogeneous' or 'identical'")
    return [np.sort(part) for part in np.array_split(order, n_workers)]


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
            raise problem_error("synthetic_a9a", f"n_features={n_features} is too small; use at least 14")
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


def _parse_libsvm(path: str, n_features: int | None) -> tuple[CSRMatrix, np.ndarray]:
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
                raise problem_error("load_libsvm", f"{path}:{lineno}: cannot read {line[:60]!r} ({exc}); "
                           "expected 'label index:value ...'") from None
            rows.append(entries)
    d = width if n_features is None else int(n_features)
    if width > d:
        raise problem_error("load_libsvm", f"{path} has feature index {width} > n_features={d}")
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    cols = np.array([j for r in rows for j, _ in r], dtype=np.int64)
    vals = np.array([v for r in rows for _, v in r], dtype=np.float64)
    return as_csr(CSRMatrix(indptr, cols, vals, (len(rows), d))), np.asarray(labels)


def load_libsvm(path: str, n_features: int | None = None) -> tuple[Any, np.ndarray]:
    """Read a LIBSVM/svmlight file into a sparse ``(N, d)`` matrix and labels.

    The features stay sparse (LIBSVM's large files, news20 or url, have millions of
    columns): a SciPy ``csr_matrix`` through ``sklearn.datasets.load_svmlight_file`` when
    scikit-learn is installed, else a :class:`~byzcore.problems.sparse.CSRMatrix` from a
    small built-in parser (``label index:value ...``, 1-based indices, ``#`` comments). Both
    have ``indptr``, ``indices``, ``data``, ``shape`` and ``toarray()``;
    :class:`~byzcore.problems.LogisticRegression` keeps them sparse.

    Parameters
    ----------
    path
        The file.
    n_features
        Width ``d`` (default: the largest index in the file).

    Returns
    -------
    (sparse matrix, ndarray)
        Features ``(N, d)`` float64 and labels ``(N,)``.

    Raises
    ------
    ValueError
        No such file, a line that does not parse, or an index above ``n_features``.
    """
    if not os.path.exists(path):
        raise problem_error("load_libsvm", f"no such file {path!r}; download it, e.g. a9a from "
                   "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html")
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError:
        return _parse_libsvm(path, n_features)
    X, y = load_svmlight_file(path, n_features=n_features, dtype=np.float64)
    return X.tocsr(), np.asarray(y, dtype=np.float64)


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
        raise problem_error("problem", f"unknown scikit-learn dataset {name!r}; use breast_cancer or digits")
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, np.asarray(y, dtype=np.float64)
