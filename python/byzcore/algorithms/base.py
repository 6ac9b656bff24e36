"""The shape every algorithm shares: a server side and a worker side, separated.

One round of a synchronous algorithm is::

    plan = alg.plan(k)                                   # server: who sends, at which model
    rows = alg.worker_messages(problem, plan, workers, state)   # workers (row r <-> workers[r])
    msgs = apply_attack(...)                             # Byzantine rows replaced
    alg.server_step(plan, msgs)                          # server: aggregate and step

:class:`Plan` is everything a worker needs (round number, model(s), kind of round, clip
level); it is what a server process broadcasts. ``worker_messages`` is separable: row ``r``
depends only on ``workers[r]``, the plan, the run seed and that worker's own state, and is
bit-for-bit the same whether one call computes all workers (the simulation) or each worker
process computes its own row (a distributed runtime). The worker's random draws come from the
keyed streams of :mod:`byzcore._streams` (``(seed, purpose, round, worker)``), never from
shared generator state. The server's draws (client sampling, coins, validation batches)
come from :func:`byzcore._streams.server_rng` keyed by the round, and the aggregator is the
one object the server calls once per round, so a server process that makes the same calls
in the same order reproduces the simulation exactly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _ops, _streams
from .._spec import option, parse_spec
from ..aggregators import Aggregator, make_aggregator
from ..problems.base import Problem, WorkerIds


@dataclass
class Plan:
    """What the server broadcasts for one round.

    Everything a worker needs to compute its message; a distributed server sends exactly this.

    Parameters
    ----------
    round : int
        The round number (keys the workers' random streams).
    clients : numpy.ndarray
        Ids of the clients that send a message this round, ascending; the rows of the
        round's messages follow this order.
    x : numpy.ndarray
        ``(d,)`` model the clients compute at (Zeno++ may give a stale one).
    kind : str, default "gradient"
        What to send: ``"gradient"``, ``"full"`` (a full local gradient) or
        ``"difference"`` (a gradient difference between ``x`` and ``x_old``).
    x_old : numpy.ndarray or None, default None
        The previous model, for gradient differences.
    info : dict, default {}
        Algorithm-specific values: ``"lambda"`` (Byz-VR-MARINA-PP's clip level),
        ``"staleness"`` (Zeno++).

    References
    ----------
    docs/spec.md#algorithms
    """

    round: int
    clients: np.ndarray
    x: np.ndarray
    kind: str = "gradient"
    x_old: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def parse_compressor(spec: str | None, d: int) -> int | None:
    """The ``K`` of a compressor spec, read by the one spec parser (:mod:`byzcore._spec`).

    Parameters
    ----------
    spec : str or None
        ``None``, ``"none"``, ``"identity"`` or ``""``: no compression; ``"rand_k:K"`` (also
        ``"rand_k:k=K"``, ``"randk:K"``): keep ``K`` random coordinates.
    d : int
        The message dimension ``K`` is checked against.

    Returns
    -------
    int or None
        ``K``, or ``None`` for no compression.

    Raises
    ------
    ValueError
        ``[compressor] ...`` for an unknown compressor, a missing or non-integer ``K``, an
        unknown option, or ``K`` outside ``1..d``.

    References
    ----------
    docs/spec.md#algorithms
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", "identity", "")):
        return None
    (part,) = parse_spec("compressor", spec, chain=False)
    if part.name not in ("rand_k", "randk"):
        raise ValueError(f"[compressor] unknown compressor {spec!r}; use 'none' or 'rand_k:K'")
    unknown = sorted(set(part.options) - {"k"})
    if unknown:
        raise ValueError(f"[compressor] unknown option(s) {unknown} in {spec!r}; rand_k takes only K ('rand_k:K')")
    if part.positional is not None and "k" in part.options:
        raise ValueError(f"[compressor] K given twice in {spec!r}; write 'rand_k:K'")
    text = part.options.get("k", part.positional)
    if text is None:
        raise ValueError(f"[compressor] rand_k needs K in {spec!r}; write 'rand_k:K'")
    k = option("compressor", part, "k", text, int)
    if not 1 <= k <= d:
        raise ValueError(f"[compressor] K must be in 1..d={d}, got {k}")
    return k



@dataclass
class ServerView:
    """What the server makes of a round's messages, for the attacks that query it: the
    aggregate of ``clip(X - centre, clip)`` plus ``centre``, with the aggregator state of the
    round's message kind. Deep-copied before each query (AttackContext.aggregate_with), so a
    query never advances the server's state.

    Attributes
    ----------
    aggregator : Aggregator
        The state object the server uses for this round's kind of message.
    centre : numpy.ndarray or None
        Subtracted before and added back after the aggregation: the estimator ``g`` when the
        attack sees ``g + Delta_i`` (MARINA's ``attack_space="estimator"``) or when the server
        aggregates ``m_i - g`` (the clipping heuristic of momentum SGD); ``None``: no centre.
    clip : float
        The server's clipping radius of the (centred) messages; ``inf``: none.

    References
    ----------
    docs/spec.md#attacks
    """

    aggregator: Any
    centre: np.ndarray | None = None
    clip: float = float("inf")

    def __call__(self, X: Any) -> np.ndarray:
        Y = np.asarray(X, dtype=np.float64)
        if self.centre is not None:
            Y = Y - self.centre
        if np.isfinite(self.clip):
            Y = _ops.clip(np.ascontiguousarray(Y), self.clip)
        out = np.asarray(self.aggregator(Y), dtype=np.float64)
        return out if self.centre is None else out + self.centre


class Algorithm:
    """Base class of the training algorithms: a server side and a worker side, separated.

    Subclasses implement :meth:`plan`, :meth:`worker_messages`, :meth:`server_step`, and
    optionally :meth:`initial_plan` and :meth:`shift_back_target`. The model starts at
    ``problem.x0()``. Each message kind (``"gradient"``, ``"full"``, ``"difference"``) is
    aggregated with its own aggregator state (:meth:`aggregate`).

    Parameters
    ----------
    problem : Problem
        The server's view of the problem (its ``n_workers``, ``d`` and ``x0``; Zeno and
        Zeno++ also use its validation set).
    lr : float, default 0.5
        The step ``gamma``; must be > 0.
    aggregator : str or Aggregator, default "bucketing:2+median"
        The robust rule ``ARAgg`` / ``F``: a spec string or an
        :class:`~byzcore.aggregators.Aggregator`, built with ``f`` and ``seed``
        (:func:`~byzcore.aggregators.make_aggregator`). Unused by algorithms with
        ``uses_aggregator = False`` (Zeno, Zeno++).
    f : int, default 0
        Byzantine workers the rule must tolerate (the declared ``f``).
    batch : int, default 32
        Minibatch size per worker; 0 = the full local gradient.
    compressor : str or None, default "none"
        ``"none"`` or ``"rand_k:K"`` (see :func:`parse_compressor`).
    seed : int, default 0
        The run's seed: keys every worker and server random stream, and the aggregator's.

    Raises
    ------
    ValueError
        ``lr <= 0``, ``batch < 0``, a bad compressor spec, or a bad aggregator spec.
    TypeError
        An aggregator that is neither a spec string nor an Aggregator.

    References
    ----------
    docs/spec.md#algorithms
    """

    name = "algorithm"
    uses_aggregator = True

    def __init__(self, problem: Problem, *, lr: float = 0.5, aggregator: str | Aggregator = "bucketing:2+median",
                 f: int = 0, batch: int = 32, compressor: str | None = "none", seed: int = 0):
        if not lr > 0:
            raise ValueError(f"[{self.name}] lr must be > 0, got {lr}")
        if batch < 0:
            raise ValueError(f"[{self.name}] batch must be >= 0 (0 = full local gradient), got {batch}")
        self.problem = problem
        self.n = problem.n_workers
        self.d = problem.d
        self.lr = float(lr)
        self.f = int(f)
        self.batch = int(batch)
        self.seed = int(seed)
        self.compress_k = parse_compressor(compressor, self.d)
        self.compressor = "none" if self.compress_k is None else f"rand_k:{self.compress_k}"
        self.aggregator = make_aggregator(aggregator, f=self.f, seed=self.seed) if self.uses_aggregator else None
        # One aggregator state per message kind (docs/spec.md#algorithms): a stateful rule such
        # as centered clipping must not carry a full gradient's centre into a difference round.
        self._aggregators: dict = {}
        self.last_accepted: np.ndarray | None = None  # Zeno/Zeno++: which rows the server kept
        self.x0 = np.asarray(problem.x0(), dtype=np.float64).copy()
        self.x = self.x0.copy()
        self.round = 0

    # ------------------------------------------------------------------ server side
    def initial_plan(self) -> Plan | None:
        """The round before the first step (e.g. ``g^0``), or ``None``."""
        return None

    def plan(self, k: int) -> Plan:  # pragma: no cover - abstract
        """The plan of round ``k``: who computes, at which point, with which randomness.

        Parameters
        ----------
        k : int
            The round index, from 1 (round 0 is :meth:`initial_plan`'s).

        Returns
        -------
        Plan
            The round's plan (clients, model point, extra information).

        References
        ----------
        docs/spec.md#algorithms
        """
        raise NotImplementedError

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:  # pragma: no cover - abstract
        """Apply the server's update to the model from the round's messages.

        Parameters
        ----------
        plan : Plan
            The plan the messages answer.
        messages : numpy.ndarray
            ``(len(plan.clients), d)`` worker messages, Byzantine ones included.

        References
        ----------
        docs/spec.md#algorithms
        """
        raise NotImplementedError

    def shift_back_target(self, plan: Plan) -> np.ndarray | None:
        """The message that, aggregated, makes the next iterate ``x^0``; ``None`` if undefined."""
        return None

    def model(self) -> np.ndarray:
        """The current iterate."""
        return self.x

    def message_bytes(self, plan: Plan) -> int:
        """Bytes one client sends in this round (values only: ``rand_k`` indices follow from the
        shared seed, so they are not sent)."""
        width = self.d if self.compress_k is None else self.compress_k
        return int(width * self.problem.itemsize)

    def round_stats(self) -> dict:
        """Algorithm-specific per-round values for the metrics (e.g. accepted messages)."""
        return {}

    def allow_small_rounds(self, clients: int) -> None:
        """Partial participation: a round of ``clients < n`` messages may be below the rule's bound
        on ``n``; the aggregator then tolerates fewer than ``f`` for that round (explicitly, see
        :meth:`~byzcore.aggregators.Aggregator.with_clamp`), counted in ``describe()``."""
        if self.aggregator is not None and clients < self.n:
            self.aggregator = self.aggregator.with_clamp()

    def aggregator_for(self, kind: str) -> Aggregator:
        """The aggregator state of message ``kind`` (``"gradient"``, ``"full"``,
        ``"difference"``): the first kind used gets ``self.aggregator``, each other kind a
        fresh copy of it (same spec and clamping, state reset) on its first use."""
        agg = self._aggregators.get(kind)
        if agg is None:
            if self.aggregator is None:
                raise ValueError(f"[{self.name}] aggregates no messages (uses_aggregator is False)")
            if self._aggregators:
                agg = copy.deepcopy(self.aggregator)
                agg.reset()
            else:
                agg = self.aggregator
            self._aggregators[kind] = agg
        return agg

    def aggregate(self, messages: np.ndarray, kind: str = "gradient") -> np.ndarray:
        """The robust aggregate of ``messages`` with the aggregator state of message ``kind``
        (see :meth:`aggregator_for`)."""
        return np.asarray(self.aggregator_for(kind)(messages), dtype=np.float64).reshape(self.d)

    def server_view(self, plan: Plan) -> ServerView | None:
        """What :meth:`server_step` aggregates from the messages of ``plan``, as the attack sees
        them (after :meth:`attack_offset`); ``None`` where the server aggregates otherwise.
        The line-searched attacks query it (docs/spec.md#attacks). Default: the ``"gradient"``
        state, nothing else."""
        return None if self.aggregator is None else ServerView(self.aggregator_for("gradient"))

    def attack_offset(self, plan: Plan) -> np.ndarray | None:
        """A vector the Byzantine workers' messages are attacked *around*: the attack sees and
        replaces ``message + offset`` and the server receives the result minus ``offset``
        (Byz-VR-MARINA's ``attack_space="estimator"``: ``g^k + Delta_i``). ``None``: none."""
        return None

    def oracle_calls(self, plan: Plan) -> int:
        """Sample gradients the clients of ``plan`` compute this round (the x-axis "epochs" is
        their running sum over the problem's sample count)."""
        return int(len(plan.clients) * self.batch) if self.batch > 0 else self._local_total(plan)

    def _local_total(self, plan: Plan) -> int:
        sizes = getattr(self.problem, "local_sizes", None)
        return int(np.sum(sizes(plan.clients))) if sizes is not None else 0

    def _sample_clients(self, k: int, size: int) -> np.ndarray:
        if size >= self.n:
            return np.arange(self.n)
        rng = _streams.server_rng(self.seed, _streams.SAMPLING, k)
        return np.sort(rng.choice(self.n, size=size, replace=False))

    # ------------------------------------------------------------------ worker side
    def init_worker_state(self) -> dict:
        """Per-worker state (rows indexed by worker id), e.g. RESAM's momentum."""
        return {}

    def worker_messages(  # pragma: no cover
        self, problem: Problem, plan: Plan, workers: WorkerIds, state: dict
    ) -> np.ndarray:
        """The messages honest ``workers`` send for ``plan``.

        Parameters
        ----------
        problem : Problem
            The problem the workers compute on (a label-flipped copy for label-flipping attackers).
        plan : Plan
            The round's plan.
        workers : WorkerIds
            The worker indices, in message order.
        state : dict
            Per-worker state, from :meth:`init_worker_state`, updated in place.

        Returns
        -------
        numpy.ndarray
            ``(len(workers), d)`` float64 messages.

        References
        ----------
        docs/spec.md#algorithms
        """
        raise NotImplementedError

    def compress(self, rows: np.ndarray, workers: WorkerIds, k: int) -> np.ndarray:
        """Each worker's ``rand_k`` with its own keyed seed (``COMPRESSOR``, round, worker)."""
        if self.compress_k is None:
            return rows
        seeds = _streams.worker_seeds(self.seed, _streams.COMPRESSOR, k, workers)
        out = np.empty_like(rows)
        for r, s in enumerate(seeds):
            out[r] = _ops.rand_k(np.ascontiguousarray(rows[r]), self.compress_k, seed=s)
        return out

    def describe(self) -> dict:
        """The algorithm's parameters, as recorded in a run's results.

        Returns
        -------
        dict
            Name, learning rate, aggregator, ``f`` and the algorithm's own parameters.

        References
        ----------
        docs/spec.md#metrics
        """
        return {"algorithm": self.name, "lr": self.lr, "batch": self.batch, "compressor": self.compressor,
                "aggregator": None if self.aggregator is None else self.aggregator.name, "f": self.f,
                "aggregator_clamped": None if self.aggregator is None else
                max(self.aggregator.clamped, sum(a.clamped for a in self._aggregators.values()))}


def apply_attack(attack: Any, alg: Algorithm, plan: Plan, messages: np.ndarray, byzantine_rows: np.ndarray,
                 seed: int) -> np.ndarray:
    """Replace the Byzantine rows of ``messages`` by the attack's messages.

    The attack's random stream is keyed by ``(seed, ATTACK, round)``; the attack may query
    ``alg.server_view(plan)`` (on a copy: the round's aggregator state, with the server's
    centring and clipping) and sees where the Byzantine rows sit. Where the algorithm
    gives an :meth:`Algorithm.attack_offset`, the attack acts on ``messages + offset`` (and
    the shift-back target is moved with it) and the offset is subtracted from its answer.
    Shared by the simulation and the distributed runtime's server.

    Parameters
    ----------
    attack : Attack
        The attack (any callable ``AttackContext -> (f, d)`` messages).
    alg : Algorithm
        The algorithm, for its :meth:`~Algorithm.shift_back_target`,
        :meth:`~Algorithm.attack_offset` and :meth:`~Algorithm.server_view`.
    plan : Plan
        The round's plan.
    messages : numpy.ndarray
        ``(len(plan.clients), d)``: the rows every client of ``plan.clients`` computed
        honestly (the Byzantine rows on flipped labels when the attack flips labels).
    byzantine_rows : numpy.ndarray
        Boolean mask over the rows of ``messages`` marking the Byzantine clients.
    seed : int
        The run's seed.

    Returns
    -------
    numpy.ndarray
        A copy of ``messages`` with the Byzantine rows replaced (the honest rows keep their
        bits); ``messages`` itself when no row is Byzantine.

    Raises
    ------
    ValueError
        From the attack, e.g. shift-back where ``alg`` defines no target.

    References
    ----------
    docs/spec.md#attacks
    """
    from ..attacks import AttackContext

    bad = np.asarray(byzantine_rows, dtype=bool)
    nb = int(bad.sum())
    if nb == 0:
        return messages
    target = alg.shift_back_target(plan)
    offset = alg.attack_offset(plan)
    sent = messages
    if offset is not None:  # attack the full estimator g^k + Delta_i, send back the difference
        messages = messages + offset
        target = None if target is None else target + offset
    ctx = AttackContext(honest=messages[~bad], own=messages[bad], n=len(messages), f=nb, round=plan.round,
                        rng=_streams.server_rng(seed, _streams.ATTACK, plan.round),
                        honest_ids=np.asarray(plan.clients)[~bad],
                        target=None if target is None else (lambda: target),
                        aggregator=alg.server_view(plan), byzantine_rows=bad)
    out = sent.copy()  # honest rows keep their exact bits
    bad_rows = np.asarray(attack(ctx), dtype=np.float64).reshape(nb, -1)
    out[bad] = bad_rows if offset is None else bad_rows - offset
    return out
