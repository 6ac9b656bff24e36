"""The interface every problem implements (what the algorithms call).

A problem works on *sets of workers at once* and is separable: row ``r`` of every result
depends only on worker ``workers[r]``, its data and the keyed random stream of
:mod:`byzcore._streams`, and is bit-for-bit the same whether computed for all workers or for
that worker alone (this is what lets a worker process of a distributed runtime reproduce the
simulation):

``full_gradients(x, workers)``, ``minibatch_gradients(x, workers, batch, seed, round)``,
``minibatch_gradient_differences(x_new, x_old, workers, batch, seed, round)``,
``evaluate(x, workers) -> {loss, grad_norm, accuracy}``, and, for the server's validation
(Zeno, Zeno++), ``validation_indices(rng, size)``, ``validation_losses(points, idx)``,
``validation_gradient(x, idx)``. ``with_flipped_labels(workers)`` gives the problem the
label-flipping attack computes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

__all__ = ["Problem", "problem_error"]


def problem_error(op: str, msg: str) -> ValueError:
    """The ``ValueError`` of bad problem input: ``"[op] msg"``."""
    return ValueError(f"[{op}] {msg}")


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

    def compute_scope(self) -> contextlib.AbstractContextManager:
        """A context to hold around a run whose computations happen on several threads (a
        problem with process-wide settings, such as torch's thread count, sets them once
        here instead of in each thread); a no-op by default."""
        return contextlib.nullcontext()

    def stochastic_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """``batch = 0`` means the full local gradient."""
        if batch <= 0:
            return self.full_gradients(x, workers)
        return self.minibatch_gradients(x, workers, batch, seed, round_)
