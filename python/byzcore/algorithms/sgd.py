"""Robust SGD: the baseline.

Each round the sampled clients (all by default) send a stochastic gradient at ``x^k`` and the
server steps with a robust aggregator ``F`` (any rule of :mod:`byzcore.aggregators`)::

    x^{k+1} = x^k - gamma F(g_1, ..., g_C),   g_i = minibatch gradient of f_i at x^k

(e.g. Blanchard et al., NeurIPS 2017 with Krum; Yin et al., ICML 2018 with the median and
trimmed mean; Karimireddy, He, Jaggi, ICLR 2022 with bucketing).
"""

from __future__ import annotations

import numpy as np

from .base import Algorithm, Plan


class RobustSGD(Algorithm):
    """Robust SGD with any aggregator; ``clients_per_round`` (default all) sampled per round."""

    name = "sgd"

    def __init__(self, problem, *, clients_per_round: int | None = None, **kw):
        super().__init__(problem, **kw)
        self.C = self.n if clients_per_round is None else int(clients_per_round)
        if not 1 <= self.C <= self.n:
            raise ValueError(f"[{self.name}] clients_per_round must be in 1..{self.n}, got {self.C}")
        self.allow_small_rounds(self.C)

    def describe(self) -> dict:
        return {**super().describe(), "clients_per_round": self.C}

    def plan(self, k: int) -> Plan:
        self.round = k
        return Plan(k, self._sample_clients(k, self.C), self.x)

    def gradients(self, problem, plan: Plan, workers) -> np.ndarray:
        return problem.stochastic_gradients(plan.x, workers, self.batch, self.seed, plan.round)

    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        workers = np.asarray(workers, dtype=np.int64)
        return self.compress(self.gradients(problem, plan, workers), workers, plan.round)

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:
        self.x = self.x - self.lr * self.aggregate(messages)

    def shift_back_target(self, plan: Plan) -> np.ndarray:
        return (plan.x - self.x0) / self.lr
