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
from typing import Union

import numpy as np

__all__ = ["Problem", "WorkerIds", "problem_error"]

#: Worker indices: a sequence of ints or an integer NumPy array.
WorkerIds = Union[Sequence[int], np.ndarray]


def problem_error(op: str, msg: str) -> ValueError:
    """The ``ValueError`` of bad problem input: ``"[op] msg"``.

    Parameters
    ----------
    op : str
        The operation the message names (``"problem"``, ``"LogisticRegression"``, ...).
    msg : str
        What is wrong, and the fix where there is one.

    Returns
    -------
    ValueError
        The exception, for the caller to raise.

    References
    ----------
    docs/spec.md#errors
    """
    return ValueError(f"[{op}] {msg}")


class Problem:
    """Interface of a problem split across workers (see the module docstring).

    References
    ----------
    docs/spec.md#problems
    """

    name = "problem"
    d = 0
    n_workers = 0
    has_accuracy = False
    itemsize = 8  # bytes per value of a message

    def x0(self) -> np.ndarray:
        """The starting model: zeros of length ``d``.

        Returns
        -------
        numpy.ndarray
            ``(d,)`` float64.

        References
        ----------
        docs/spec.md#problems
        """
        return np.zeros(self.d)

    def full_gradients(self, x: np.ndarray, workers: WorkerIds) -> np.ndarray:
        """Each worker's full local gradient at ``x``.

        Parameters
        ----------
        x : numpy.ndarray
            ``(d,)`` model, or ``(len(workers), d)``: one model per worker.
        workers : WorkerIds
            Worker indices.

        Returns
        -------
        numpy.ndarray
            ``(len(workers), d)`` float64 gradients.

        References
        ----------
        docs/spec.md#problems
        """
        raise NotImplementedError

    def minibatch_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """Each worker's gradient on a minibatch drawn from ``(seed, round_, worker)``.

        Parameters
        ----------
        x : numpy.ndarray
            ``(d,)`` model, or one per worker.
        workers : WorkerIds
            Worker indices.
        batch : int
            Minibatch size.
        seed, round_ : int
            The run's seed and the round: the minibatch is a function of them and the worker.

        Returns
        -------
        numpy.ndarray
            ``(len(workers), d)`` float64 gradients.

        References
        ----------
        docs/spec.md#problems
        """
        raise NotImplementedError

    def minibatch_gradient_differences(self, x_new, x_old, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """``grad(x_new) - grad(x_old)`` of each worker on one shared minibatch.

        Parameters
        ----------
        x_new, x_old : numpy.ndarray
            ``(d,)`` models, or one per worker.
        workers : WorkerIds
            Worker indices.
        batch : int
            Minibatch size.
        seed, round_ : int
            The run's seed and the round (the minibatch is drawn from them).

        Returns
        -------
        numpy.ndarray
            ``(len(workers), d)`` float64 differences.

        References
        ----------
        docs/spec.md#problems
        """
        raise NotImplementedError

    def evaluate(self, x: np.ndarray, workers: WorkerIds | None = None) -> dict:
        """The metrics of ``x`` over the data of ``workers`` (all by default).

        Parameters
        ----------
        x : numpy.ndarray
            ``(d,)`` model.
        workers : WorkerIds, optional
            Worker indices; all workers if ``None``.

        Returns
        -------
        dict
            ``loss``, ``grad_norm`` and, where the problem has labels (``has_accuracy``), ``accuracy``.

        References
        ----------
        docs/spec.md#metrics
        """
        raise NotImplementedError

    def with_flipped_labels(self, workers: WorkerIds) -> Problem:
        """A copy of the problem in which ``workers`` see flipped labels (label-flipping attackers).

        Parameters
        ----------
        workers : WorkerIds
            Worker indices.

        Returns
        -------
        Problem
            The copy; ``self`` is unchanged.

        References
        ----------
        docs/spec.md#attack-label-flip
        """
        raise NotImplementedError

    def compute_scope(self) -> contextlib.AbstractContextManager:
        """A context to hold around a run whose computations happen on several threads (a
        problem with process-wide settings, such as torch's thread count, sets them once
        here instead of in each thread); a no-op by default."""
        return contextlib.nullcontext()

    def stochastic_gradients(self, x, workers, batch: int, seed: int, round_: int) -> np.ndarray:
        """Each worker's stochastic gradient: the full local gradient for ``batch <= 0``.

        :meth:`minibatch_gradients` for ``batch > 0``, else :meth:`full_gradients`.

        Parameters
        ----------
        x : numpy.ndarray
            ``(d,)`` model, or one per worker.
        workers : WorkerIds
            Worker indices.
        batch : int
            Minibatch size; ``<= 0``: the full local gradient.
        seed, round_ : int
            The run's seed and the round (the minibatch is drawn from them).

        Returns
        -------
        numpy.ndarray
            ``(len(workers), d)`` float64 gradients.
        """
        if batch <= 0:
            return self.full_gradients(x, workers)
        return self.minibatch_gradients(x, workers, batch, seed, round_)
