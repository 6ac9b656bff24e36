"""Problems by name: :func:`make_problem` and :func:`available_problems`."""

from __future__ import annotations

import os

from .base import Problem, problem_error
from .data import load_libsvm, sklearn_dataset, synthetic_a9a
from .logistic import LogisticRegression
from .torch_problem import mlp_digits

__all__ = ["available_problems", "make_problem"]


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
    raise problem_error("problem", f"unknown problem {name!r}; known: {', '.join(_PROBLEMS)}")
