"""RESAM: robust distributed SGD with worker momentum.

Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan. *Byzantine machine learning made easy
by resilient averaging of momentums.* ICML 2022. (Also Karimireddy, He, Jaggi, *Learning from
history for Byzantine robust optimization*, ICML 2021.)

Update rule::

    m_i^k = beta m_i^{k-1} + (1 - beta) g_i^k         (honest worker i, g_i^k a minibatch gradient at x^k)
    x^{k+1} = x^k - gamma F(m_1^k, ..., m_n^k)

with ``F`` any resilient averaging rule (median, trimmed mean, Krum, geometric median,
centered clipping, each optionally after NNM or bucketing). Momentum shrinks the honest
messages' spread, which leaves attacks such as ALIE, that hide inside that spread, little room.
"""

from __future__ import annotations

import numpy as np

from .base import Plan
from .sgd import RobustSGD


class RESAM(RobustSGD):
    """RESAM: robust SGD on worker momentums ``m_i = beta m_i + (1 - beta) g_i``.

    Update rule (round ``k``; ``m_i^0 = 0``)::

        m_i^k = beta m_i^{k-1} + (1 - beta) g_i^k      (g_i^k a minibatch gradient at x^k)
        x^{k+1} = x^k - gamma F(m_i^k for the sampled i)

    With ``local_steps = L > 1`` the momentum runs on the sum of the ``L`` local gradients;
    with ``clip_alpha`` the server applies :class:`~byzcore.algorithms.RobustSGD`'s clipping
    heuristic to the momentums. ``beta = 0`` is robust SGD.

    Parameters
    ----------
    problem : Problem
        The problem (see :class:`~byzcore.algorithms.base.Algorithm`).
    beta : float, default 0.9
        The momentum, in ``[0, 1)``.
    **kw
        ``clients_per_round``, ``local_steps``, ``clip_alpha`` of
        :class:`~byzcore.algorithms.RobustSGD`, and ``lr``, ``aggregator``, ``f``,
        ``batch``, ``compressor``, ``seed`` of :class:`~byzcore.algorithms.base.Algorithm`.

    Raises
    ------
    ValueError
        ``beta`` outside ``[0, 1)``, or a parameter of :class:`~byzcore.algorithms.RobustSGD`
        out of range.

    References
    ----------
    docs/spec.md#alg-resam

    Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan. *Byzantine machine learning made
    easy by resilient averaging of momentums.* ICML 2022.
    """

    name = "resam"

    def __init__(self, problem, *, beta: float = 0.9, **kw):
        super().__init__(problem, **kw)
        if not 0 <= beta < 1:
            raise ValueError(f"[{self.name}] beta must be in [0, 1), got {beta}")
        self.beta = float(beta)

    def describe(self) -> dict:
        """The parameters (see :meth:`Algorithm.describe`), with the momentum ``beta``.

        References
        ----------
        docs/spec.md#alg-resam
        """
        return {**super().describe(), "beta": self.beta}

    def init_worker_state(self) -> dict:
        """Each worker's momentum, zeros at the start.

        References
        ----------
        docs/spec.md#alg-resam
        """
        return {"momentum": np.zeros((self.n, self.d))}

    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        """The workers' momentum vectors after this round's minibatch gradients (see
        :meth:`Algorithm.worker_messages`).

        References
        ----------
        docs/spec.md#alg-resam
        """
        workers = np.asarray(workers, dtype=np.int64)
        g = self.gradients(problem, plan, workers)
        m = state.setdefault("momentum", np.zeros((self.n, self.d)))
        m[workers] = self.beta * m[workers] + (1.0 - self.beta) * g
        return self.compress(m[workers].copy(), workers, plan.round)
