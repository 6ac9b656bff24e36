"""Byz-VR-MARINA-PP and its special case Byz-VR-MARINA.

Malinovsky, Richtarik, Horvath, Gorbunov. *Byzantine robustness and partial participation
can be achieved at once: just clip gradient differences.* arXiv 2311.14127 (NeurIPS 2024).
Gorbunov, Horvath, Richtarik, Gidel. *Variance reduction is an antidote to Byzantines:
better rates, weaker assumptions and communication compression as a cherry on the top.*
ICLR 2023 (Byz-VR-MARINA).

Update rule (one round ``k``)::

    c_k ~ Bernoulli(p);  S_k = C_hat clients if c_k = 1 else C clients (uniform, no replacement)
    x^{k+1} = x^k - gamma g^k;           lambda_{k+1} = alpha ||x^{k+1} - x^k||
    c_k = 1:  client i sends grad f_i(x^{k+1});              g^{k+1} = ARAgg(messages)
    c_k = 0:  client i sends Q(Delta_i) with Delta_i the minibatch estimate of
              grad f_i(x^{k+1}) - grad f_i(x^k) (same samples at both points);
              g^{k+1} = g^k + ARAgg(clip_{lambda_{k+1}}(messages))

with ``g^0 = ARAgg(grad f_i(x^0))`` from all clients. The server clips every received
difference (clipping is idempotent, so honest clients may clip too): a Byzantine message can
move ``g`` by at most about ``lambda``, even in a round where Byzantines are the majority of
the sampled clients. ``alpha = inf`` switches clipping off (the variant that the shift-back
attack breaks); Byz-VR-MARINA is ``C = C_hat = n`` without clipping.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _ops, _streams
from .base import Algorithm, Plan, ServerView

ATTACK_SPACES = ("difference", "estimator")


class ByzVRMarinaPP(Algorithm):
    """Byz-VR-MARINA-PP: variance-reduced Byzantine-robust SGD with partial participation.

    Update rule (round ``k``; ``g^0 = ARAgg(grad f_i(x^0))`` from all clients)::

        c_k ~ Bernoulli(p);  S_k = C_hat clients if c_k = 1 else C clients
        x^{k+1} = x^k - gamma g^k;           lambda_{k+1} = alpha ||x^{k+1} - x^k||
        c_k = 1:  g^{k+1} = ARAgg(grad f_i(x^{k+1}) for i in S_k)
        c_k = 0:  g^{k+1} = g^k + ARAgg(clip_{lambda_{k+1}}(Q(Delta_i)) for i in S_k)

    with ``Delta_i`` the minibatch estimate of ``grad f_i(x^{k+1}) - grad f_i(x^k)`` (the same
    samples at both points). Full gradients and differences are aggregated with separate
    aggregator states. With ``min(C, C_hat) < n`` the aggregator tolerates fewer than ``f``
    in a round too small for its bound on ``n`` (:meth:`Algorithm.allow_small_rounds`).

    Parameters
    ----------
    problem : Problem
        The problem (see :class:`~byzcore.algorithms.base.Algorithm`).
    p : float, default 0.1
        Probability of a full-gradient round, in ``(0, 1]``.
    alpha : float, default 1.0
        Clip multiplier, > 0; ``inf`` switches clipping off.
    clients_per_round : int or None, default None
        ``C``, clients sampled in a difference round, in ``1..n``; ``None``: all ``n``
        (:func:`~byzcore.algorithms.make_algorithm` and the command line default to
        ``ceil(n / 4)`` instead).
    c_hat : int or None, default None
        ``C_hat``, clients sampled in a full round, in ``1..n``; ``None``: all ``n``.
    attack_space : str, default "difference"
        ``"difference"``: the Byzantine workers replace ``Delta_i``; ``"estimator"``: they
        replace ``g^k + Delta_i``, as the authors' code lets them, and the server subtracts
        ``g^k`` before clipping.
    **kw
        ``lr``, ``aggregator``, ``f``, ``batch``, ``compressor``, ``seed`` of
        :class:`~byzcore.algorithms.base.Algorithm`.

    Raises
    ------
    ValueError
        A parameter out of range, or an unknown ``attack_space``.

    References
    ----------
    docs/spec.md#alg-byz-vr-marina-pp

    Malinovsky, Richtarik, Horvath, Gorbunov. *Byzantine robustness and partial participation
    can be achieved at once: just clip gradient differences.* arXiv 2311.14127 (NeurIPS 2024).
    """

    name = "byz_vr_marina_pp"

    def __init__(self, problem, *, p: float = 0.1, alpha: float = 1.0, clients_per_round: int | None = None,
                 c_hat: int | None = None, attack_space: str = "difference", **kw):
        super().__init__(problem, **kw)
        if attack_space not in ATTACK_SPACES:
            raise ValueError(f"[{self.name}] attack_space must be one of {', '.join(ATTACK_SPACES)}, "
                             f"got {attack_space!r}")
        self.attack_space = attack_space
        if not 0 < p <= 1:
            raise ValueError(f"[{self.name}] p must be in (0, 1], got {p}")
        if not alpha > 0:
            raise ValueError(f"[{self.name}] alpha must be > 0 (inf disables clipping), got {alpha}")
        self.p = float(p)
        self.alpha = float(alpha)
        self.C = self.n if clients_per_round is None else int(clients_per_round)
        self.C_hat = self.n if c_hat is None else int(c_hat)
        for label, v in (("clients_per_round", self.C), ("c_hat", self.C_hat)):
            if not 1 <= v <= self.n:
                raise ValueError(f"[{self.name}] {label} must be in 1..{self.n} (the number of workers), got {v}")
        self.allow_small_rounds(min(self.C, self.C_hat))
        self.g = np.zeros(self.d)
        self._full = 0

    def describe(self) -> dict:
        """The parameters (see :meth:`Algorithm.describe`), with ``p``, ``alpha``, ``clients_per_round``,
        ``c_hat`` and ``attack_space``.

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        return {**super().describe(), "p": self.p, "alpha": self.alpha, "clients_per_round": self.C,
                "c_hat": self.C_hat,
                "attack_space": self.attack_space}

    # ------------------------------------------------------------------ server
    def initial_plan(self) -> Plan:
        """The plan of the first round: a full gradient from every client.

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        return Plan(0, np.arange(self.n), self.x, kind="full")

    def plan(self, k: int) -> Plan:
        """Round ``k``'s plan: with probability ``p`` a full-gradient round on ``C_hat`` sampled
        clients, else a gradient-difference round on ``C`` (see :meth:`Algorithm.plan`).

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        rng = _streams.server_rng(self.seed, _streams.SAMPLING, k)
        full = bool(rng.random() < self.p)
        size = self.C_hat if full else self.C
        clients = np.arange(self.n) if size >= self.n else np.sort(rng.choice(self.n, size=size, replace=False))
        x_old = self.x
        x_new = x_old - self.lr * self.g
        self.x = x_new
        self.round = k
        lam = self.alpha * float(np.linalg.norm(x_new - x_old)) if math.isfinite(self.alpha) else math.inf
        return Plan(k, clients, x_new, kind="full" if full else "difference", x_old=x_old, info={"lambda": lam})

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:
        """Aggregate the round's messages into the estimator ``g`` and step the model (see
        :meth:`Algorithm.server_step`).

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        if plan.kind == "full":
            self.g = self.aggregate(messages, "full")
            self._full = 1
        else:
            lam = plan.info["lambda"]
            if math.isfinite(lam):
                messages = _ops.clip(np.ascontiguousarray(messages), lam)
            self.g = self.g + self.aggregate(messages, "difference")
            self._full = 0

    def server_view(self, plan: Plan) -> ServerView:
        """The full round's state, or the difference round's with its clipping radius, centred
        on ``g`` when the attack acts on the estimator (see :meth:`Algorithm.server_view`).

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        if plan.kind == "full":
            return ServerView(self.aggregator_for("full"))
        return ServerView(self.aggregator_for("difference"), centre=self.attack_offset(plan),
                          clip=plan.info["lambda"])

    def attack_offset(self, plan: Plan) -> np.ndarray | None:
        """The estimator ``g`` added to the Byzantines' messages in difference rounds with
        ``attack_space='estimator'``, else ``None``.

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        return self.g if plan.kind == "difference" and self.attack_space == "estimator" else None

    def oracle_calls(self, plan: Plan) -> int:
        """Gradient oracle calls of one worker in the round of ``plan``.

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        if plan.kind == "full" or self.batch <= 0:  # a difference costs two gradients per sample
            return self._local_total(plan) * (1 if plan.kind == "full" else 2)
        return 2 * len(plan.clients) * self.batch

    def shift_back_target(self, plan: Plan) -> np.ndarray:
        """The vector the shift-back attack pulls the aggregate to in the round of ``plan``.

        References
        ----------
        docs/spec.md#attack-shift-back
        """
        back = (plan.x - self.x0) / self.lr  # g^{k+1} that makes x^{k+2} = x^0
        return back if plan.kind == "full" else back - self.g

    def message_bytes(self, plan: Plan) -> int:
        """Bytes one worker sends in the round of ``plan``.

        References
        ----------
        docs/spec.md#metrics
        """
        if plan.kind == "full":
            return int(self.d * self.problem.itemsize)
        return super().message_bytes(plan)

    def round_stats(self) -> dict:
        """The last round's figures for the metrics: ``full_round`` (1 for a full-gradient round).

        References
        ----------
        docs/spec.md#metrics
        """
        return {"full_round": self._full}

    # ------------------------------------------------------------------ workers
    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        """Full gradients or gradient differences of ``workers`` (see
        :meth:`Algorithm.worker_messages`).

        References
        ----------
        docs/spec.md#alg-byz-vr-marina-pp
        """
        workers = np.asarray(workers, dtype=np.int64)
        if plan.kind == "full":
            return problem.full_gradients(plan.x, workers)
        delta = problem.minibatch_gradient_differences(plan.x, plan.x_old, workers, self.batch, self.seed, plan.round)
        return self.compress(delta, workers, plan.round)


def ByzVRMarina(problem, **kw) -> ByzVRMarinaPP:
    """Byz-VR-MARINA (Gorbunov et al., ICLR 2023): Byz-VR-MARINA-PP without partial participation.

    All clients in every round (``C = C_hat = n``) and no clipping (``alpha = inf``); the
    update rule is otherwise :class:`ByzVRMarinaPP`'s.

    Parameters
    ----------
    problem : Problem
        The problem (see :class:`~byzcore.algorithms.base.Algorithm`).
    **kw
        ``p``, ``attack_space`` and the common parameters (``lr``, ``aggregator``, ``f``,
        ``batch``, ``compressor``, ``seed``) of :class:`ByzVRMarinaPP`; ``clients_per_round``,
        ``c_hat`` and ``alpha`` are ignored.

    Returns
    -------
    ByzVRMarinaPP
        The configured object, with ``name = "byz_vr_marina"``.

    References
    ----------
    docs/spec.md#alg-byz-vr-marina

    Gorbunov, Horvath, Richtarik, Gidel. *Variance reduction is an antidote to Byzantines:
    better rates, weaker assumptions and communication compression as a cherry on the top.*
    ICLR 2023.
    """
    kw.pop("clients_per_round", None)
    kw.pop("c_hat", None)
    kw["alpha"] = math.inf
    alg = ByzVRMarinaPP(problem, clients_per_round=None, c_hat=None, **kw)
    alg.name = "byz_vr_marina"
    return alg
