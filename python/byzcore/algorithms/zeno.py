"""Zeno: suspicion-based fault tolerance.

Xie, Koyejo, Gupta. *Zeno: distributed stochastic gradient descent with suspicion-based
fault-tolerance.* ICML 2019.

Update rule (round ``k``): every sampled worker sends a stochastic gradient ``u_i``; the
server draws a fresh validation minibatch of size ``n_r`` and scores each candidate with the
estimated descent of the loss::

    score(u) = f_r(x) - f_r(x - gamma u) - rho ||u||^2

drops the ``b`` lowest scores (``b >= f``; a non-finite message scores ``-inf``), averages
the rest and steps ``x <- x - gamma * average``. Only one good candidate has to survive, so
Zeno tolerates a Byzantine majority. ``penalty="mean"`` uses ``rho ||u||^2 / d`` instead, as
the authors' code does (``rho * mean(u^2)``, with ``rho = gamma / rho_ratio``; their CIFAR-10
script: ``rho_ratio = 200``, ``b = 12`` of 20 workers with 8 Byzantine, ``n_r = 4``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _ops, _streams
from .base import Plan
from .sgd import RobustSGD

PENALTIES = ("sum", "mean")


class Zeno(RobustSGD):
    """Zeno: SGD that keeps the candidates of the best estimated descent.

    Update rule (round ``k``): every sampled worker sends a stochastic gradient ``u_i``; on a
    fresh validation minibatch of ``n_r`` samples (loss ``f_r``) the server scores::

        score(u) = f_r(x) - f_r(x - gamma u) - rho ||u||^2     (-inf if not finite)

    drops the ``b`` lowest scores (of equal scores, the later message is dropped) and steps
    ``x <- x - gamma * mean(kept)``. The problem must offer ``validation_indices`` and
    ``validation_losses``. Uses no aggregator.

    Parameters
    ----------
    problem : Problem
        The problem, with a validation set.
    rho : float, default 5e-4
        Weight of ``||u||^2`` in the score.
    b : int or None, default None
        Candidates dropped per round, in ``0..C-1``; ``None``: ``min(f, C - 1)``.
    n_r : int, default 32
        Validation minibatch size, >= 1.
    penalty : str, default "sum"
        ``"sum"``: ``rho ||u||^2`` as in the paper; ``"mean"``: ``rho ||u||^2 / d`` as in the
        authors' code.
    **kw
        ``clients_per_round`` and ``local_steps`` of :class:`~byzcore.algorithms.RobustSGD`,
        and ``lr``, ``f``, ``batch``, ``compressor``, ``seed`` of
        :class:`~byzcore.algorithms.base.Algorithm` (``aggregator`` is accepted and unused).

    Raises
    ------
    ValueError
        A parameter out of range or an unknown ``penalty``; ``clip_alpha`` (Zeno has no
        aggregator to clip for).

    References
    ----------
    docs/spec.md#alg-zeno

    Xie, Koyejo, Gupta. *Zeno: distributed stochastic gradient descent with suspicion-based
    fault-tolerance.* ICML 2019.
    """

    problem: Any  # a problem with a validation set (validation_indices, validation_losses)

    name = "zeno"
    uses_aggregator = False

    def __init__(self, problem, *, rho: float = 5e-4, b: int | None = None, n_r: int = 32, penalty: str = "sum",
                 **kw):
        super().__init__(problem, **kw)
        if penalty not in PENALTIES:
            raise ValueError(f"[{self.name}] penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
        self.penalty = penalty
        self.rho = float(rho)
        self.b = min(self.f, self.C - 1) if b is None else int(b)
        self.n_r = int(n_r)
        if not 0 <= self.b < self.C:
            raise ValueError(f"[{self.name}] b (messages dropped) must be in 0..{self.C - 1}, got {self.b}")
        if self.n_r < 1:
            raise ValueError(f"[{self.name}] n_r (validation batch) must be >= 1, got {self.n_r}")
        self.accepted = self.C

    def describe(self) -> dict:
        """The parameters (see :meth:`Algorithm.describe`), with ``rho``, ``b``, ``n_r``, ``penalty``.

        References
        ----------
        docs/spec.md#alg-zeno
        """
        return {**super().describe(), "rho": self.rho, "b": self.b, "n_r": self.n_r, "penalty": self.penalty}

    def scores(self, plan: Plan, messages: np.ndarray) -> np.ndarray:
        """``f_r(x) - f_r(x - gamma u) - rho ||u||^2`` (``/ d`` with ``penalty="mean"``) per
        message, ``-inf`` where not finite."""
        idx = self.problem.validation_indices(_streams.server_rng(self.seed, _streams.VALIDATION, plan.round), self.n_r)
        with np.errstate(all="ignore"):
            points = np.vstack([plan.x[None, :], plan.x[None, :] - self.lr * messages])
            losses = self.problem.validation_losses(points, idx)
            sq = np.sum(messages * messages, axis=1)
            s = losses[0] - losses[1:] - self.rho * (sq / self.d if self.penalty == "mean" else sq)
        return np.where(np.isfinite(s), s, -np.inf)

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:
        """Keep the messages of the highest scores and step with their mean (see
        :meth:`Algorithm.server_step`).

        References
        ----------
        docs/spec.md#alg-zeno
        """
        s = self.scores(plan, messages)
        keep = np.sort(np.argsort(-s, kind="stable")[: len(messages) - self.b])
        self.accepted = len(keep)
        self.last_accepted = np.isin(np.arange(len(messages)), keep)
        self.x = self.x - self.lr * np.asarray(_ops.mean(np.ascontiguousarray(messages[keep])), dtype=np.float64)

    def round_stats(self) -> dict:
        """The last round's figures for the metrics (messages accepted).

        References
        ----------
        docs/spec.md#metrics
        """
        return {"accepted": self.accepted}
