"""Robust SGD: the baseline.

Each round the sampled clients (all by default) send a stochastic gradient at ``x^k`` and the
server steps with a robust aggregator ``F`` (any rule of :mod:`byzcore.aggregators`)::

    x^{k+1} = x^k - gamma F(g_1, ..., g_C),   g_i = minibatch gradient of f_i at x^k

(e.g. Blanchard et al., NeurIPS 2017 with Krum; Yin et al., ICML 2018 with the median and
trimmed mean; Karimireddy, He, Jaggi, ICLR 2022 with bucketing).

Options (docs/spec.md#alg-sgd):

* ``local_steps = L > 1`` (FedAvg-style): each worker takes ``L`` local SGD steps of size
  ``gamma`` from ``x^k`` (minibatch ``s`` keyed by round ``k L + s``) and sends
  ``(x^k - x_i^{k,L}) / gamma``, the sum of its local gradients; ``L = 1`` is plain SGD.
* ``clip_alpha`` (the clipping heuristic for partial participation of Malinovsky et al.,
  arXiv 2311.14127, eq. 10): the server keeps ``g^{k-1}`` and steps with
  ``g^k = g^{k-1} + F({clip_lambda_k(m_i^k - g^{k-1})})``, ``x^{k+1} = x^k - gamma g^k``,
  ``lambda_k = clip_alpha * ||x^k - x^{k-1}||`` (the schedule of Byz-VR-MARINA-PP); in round 1
  (no ``g^0``) ``g^1 = F(m_i^1)``. A round whose sampled clients are all Byzantine then moves
  ``g`` by at most ``lambda_k``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _ops
from .base import Algorithm, Plan, ServerView


class RobustSGD(Algorithm):
    """Robust SGD: ``x^{k+1} = x^k - gamma F(g_1, ..., g_C)`` with any aggregator ``F``.

    ``g_i`` is client ``i``'s minibatch gradient at ``x^k``, for the ``C`` clients sampled
    this round. With ``local_steps = L > 1`` each client instead takes ``L`` local steps from
    ``x^k`` and sends ``(x^k - x_i^{k,L}) / gamma``. With ``clip_alpha`` the server keeps
    ``g^{k-1}`` and steps with ``g^k = g^{k-1} + F(clip_{lambda_k}(m_i^k - g^{k-1}))``,
    ``lambda_k = clip_alpha ||x^k - x^{k-1}||`` (round 1: ``g^1 = F(m_i^1)``), see the
    module docstring.

    Parameters
    ----------
    problem : Problem
        The problem (see :class:`~byzcore.algorithms.base.Algorithm`).
    clients_per_round : int or None, default None
        ``C``, clients sampled (uniformly, without replacement) per round, in ``1..n``;
        ``None``: all ``n``. With ``C < n`` the aggregator tolerates fewer than ``f`` in a
        round too small for its bound on ``n`` (:meth:`Algorithm.allow_small_rounds`).
    local_steps : int, default 1
        ``L``, local SGD steps per round (FedAvg-style), in ``1..10000``.
    clip_alpha : float or None, default None
        Multiplier of the clipping heuristic's ``lambda_k``, > 0; ``None``: no clipping.
    **kw
        ``lr``, ``aggregator``, ``f``, ``batch``, ``compressor``, ``seed`` of
        :class:`~byzcore.algorithms.base.Algorithm`.

    Raises
    ------
    ValueError
        A parameter out of range, or ``clip_alpha`` on an algorithm without an aggregator.

    References
    ----------
    docs/spec.md#alg-sgd
    """

    name = "sgd"

    def __init__(self, problem, *, clients_per_round: int | None = None, local_steps: int = 1,
                 clip_alpha: float | None = None, **kw):
        super().__init__(problem, **kw)
        self.C = self.n if clients_per_round is None else int(clients_per_round)
        if not 1 <= self.C <= self.n:
            raise ValueError(f"[{self.name}] clients_per_round must be in 1..{self.n}, got {self.C}")
        if not 1 <= int(local_steps) <= 10_000:
            raise ValueError(f"[{self.name}] local_steps must be in 1..10000, got {local_steps}")
        if clip_alpha is not None and not (clip_alpha > 0):
            raise ValueError(f"[{self.name}] clip_alpha must be > 0 (or None: no clipping heuristic), got {clip_alpha}")
        if clip_alpha is not None and not self.uses_aggregator:
            raise ValueError(f"[{self.name}] the clipping heuristic (clip_alpha) needs an aggregator; use sgd or resam")
        self.local_steps = int(local_steps)
        self.clip_alpha = None if clip_alpha is None else float(clip_alpha)
        self.g: np.ndarray | None = None       # g^{k-1} of the clipping heuristic
        self.x_prev: np.ndarray | None = None
        self.allow_small_rounds(self.C)

    def describe(self) -> dict:
        """The parameters (see :meth:`Algorithm.describe`), with ``clients_per_round``,
        ``local_steps`` and ``clip_alpha``.

        References
        ----------
        docs/spec.md#alg-sgd
        """
        return {**super().describe(), "clients_per_round": self.C, "local_steps": self.local_steps,
                "clip_alpha": self.clip_alpha}

    def plan(self, k: int) -> Plan:
        """Round ``k``'s plan: ``clients_per_round`` sampled clients at the current model
        (see :meth:`Algorithm.plan`).

        References
        ----------
        docs/spec.md#alg-sgd
        """
        self.round = k
        return Plan(k, self._sample_clients(k, self.C), self.x)

    def gradients(self, problem, plan: Plan, workers) -> np.ndarray:
        """Each worker's stochastic gradient at ``plan.x``, or with ``local_steps = L > 1`` the
        sum of its ``L`` local gradients along its own local trajectory."""
        L = self.local_steps
        if L == 1:
            return problem.stochastic_gradients(plan.x, workers, self.batch, self.seed, plan.round)
        x = np.repeat(plan.x[None, :], len(workers), axis=0)
        total = np.zeros_like(x)
        for s in range(L):
            g = problem.stochastic_gradients(x, workers, self.batch, self.seed, plan.round * L + s)
            total += g
            x = x - self.lr * g
        return total

    def oracle_calls(self, plan: Plan) -> int:
        """Gradient oracle calls of one worker in the round of ``plan``.

        References
        ----------
        docs/spec.md#alg-sgd
        """
        return self.local_steps * super().oracle_calls(plan)

    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        """Minibatch gradients of ``workers`` (see :meth:`Algorithm.worker_messages`).

        References
        ----------
        docs/spec.md#alg-sgd
        """
        workers = np.asarray(workers, dtype=np.int64)
        return self.compress(self.gradients(problem, plan, workers), workers, plan.round)

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:
        """Aggregate the messages and take the step (see :meth:`Algorithm.server_step`).

        References
        ----------
        docs/spec.md#alg-sgd
        """
        if self.clip_alpha is None:
            self.x = self.x - self.lr * self.aggregate(messages)
            return
        if self.g is None:
            self.g = self.aggregate(messages, "gradient")
        else:
            lam = self.clip_alpha * float(np.linalg.norm(self.x - self.x_prev))
            diffs = np.ascontiguousarray(messages - self.g)
            if math.isfinite(lam):
                diffs = _ops.clip(diffs, lam)
            self.g = self.g + self.aggregate(diffs, "difference")
        self.x_prev = self.x
        self.x = self.x - self.lr * self.g

    def server_view(self, plan: Plan) -> ServerView | None:
        """With the clipping heuristic, after its first round: ``g`` plus the difference state's
        aggregate of the clipped ``m_i - g``; else the plain aggregation (see
        :meth:`Algorithm.server_view`).

        References
        ----------
        docs/spec.md#alg-sgd
        """
        if self.clip_alpha is None or self.g is None:
            return super().server_view(plan)
        lam = self.clip_alpha * float(np.linalg.norm(self.x - self.x_prev))
        return ServerView(self.aggregator_for("difference"), centre=self.g, clip=lam)

    def shift_back_target(self, plan: Plan) -> np.ndarray:
        """The aggregate that would step the model back to ``x0`` in one step.

        References
        ----------
        docs/spec.md#attack-shift-back
        """
        return (plan.x - self.x0) / self.lr
