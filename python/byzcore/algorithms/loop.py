"""The one round loop (:class:`RoundLoop`), and :func:`run` / :func:`simulate` on top of it.

One round: the server draws a ``plan``, a *collect* callable turns the plan into the round's
messages as the clients computed them (the Byzantine clients' honest rows, on flipped labels
for label-flip attacks), the server replaces the Byzantine rows by the attack
(:func:`~byzcore.algorithms.base.apply_attack`), steps, and metrics are recorded. The
single-process simulation collects by computing every client's row in this process
(:func:`simulated_collect`); a distributed server collects by publishing the plan and
gathering its workers' rows, and drives the same :class:`RoundLoop`, so both apply the same
attack and record the same metrics in the same order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np

from .._progress import Progress, Timer
from ..attacks import Attack, make_attack
from ..problems import Problem, make_problem, optimal_value
from .base import Algorithm, Plan, apply_attack
from .config import RunConfig, algorithm_name, byzantine_ids, make_algorithm
from .results import Result, jsonable
from .zeno_pp import ZenoPP, run_concurrent

__all__ = ["Round", "RoundLoop", "detection_rates", "run", "simulate", "simulated_collect"]


@dataclass
class Round:
    """What a *collect* callable returns for one plan.

    Parameters
    ----------
    plan : Plan
        The plan restricted to the clients whose messages arrived (the plan itself in a
        simulation).
    messages : numpy.ndarray
        ``(len(plan.clients), d)``: one row per client of ``plan``, in its order, as the
        clients computed them (the loop's attack replaces the Byzantine rows).
    info : dict, default {}
        Extra metrics of the round, recorded with it (e.g. ``participants``, ``absent``).

    References
    ----------
    docs/spec.md#algorithms
    """

    plan: Plan
    messages: np.ndarray
    info: dict = field(default_factory=dict)


def simulated_collect(alg: Algorithm, problem: Problem, attack: Attack,
                      byzantine: np.ndarray) -> Callable[[Plan], Round]:
    """The simulation's *collect*: every client's row computed in this process, the
    Byzantine rows on flipped labels when the attack flips labels (the attack itself is
    applied by :class:`RoundLoop`, as on a distributed server).

    Parameters
    ----------
    alg : Algorithm
        The run's algorithm.
    problem : Problem
        What the honest workers compute on.
    attack : Attack
        The run's attack (for ``attack.flips_labels``).
    byzantine : numpy.ndarray
        The Byzantine worker ids.

    Returns
    -------
    callable
        ``plan -> Round``; it holds the workers' state (``alg.init_worker_state()``).
    """
    bad = np.zeros(problem.n_workers, dtype=bool)
    bad[np.asarray(byzantine, dtype=np.int64)] = True
    flipped = problem.with_flipped_labels(np.flatnonzero(bad)) if attack.flips_labels and bad.any() else problem
    state = alg.init_worker_state()

    def collect(plan: Plan) -> Round:
        clients = np.asarray(plan.clients, dtype=np.int64)
        rows_bad = bad[clients]
        if flipped is problem:
            msgs = alg.worker_messages(problem, plan, clients, state)
        else:
            msgs = np.empty((len(clients), alg.d))
            if (~rows_bad).any():
                msgs[~rows_bad] = alg.worker_messages(problem, plan, clients[~rows_bad], state)
            if rows_bad.any():
                msgs[rows_bad] = alg.worker_messages(flipped, plan, clients[rows_bad], state)
        return Round(plan, msgs)

    return collect


class RoundLoop:
    """``rounds`` rounds of ``alg``: plan, collect, attack, server step, record.

    Parameters
    ----------
    alg : Algorithm
        The algorithm (the server's side: ``initial_plan``, ``plan``, ``server_step``).
    problem : Problem
        Where metrics are evaluated: ``problem.evaluate(alg.model(), honest)``.
    honest : numpy.ndarray
        The honest worker ids.
    collect : callable
        ``plan -> Round``: the round's messages (see :class:`Round`).
    attack : Attack or None, default None
        The run's attack: the server replaces the Byzantine rows of each round's messages
        (those of clients not in ``honest``) with
        ``apply_attack(attack, alg, round.plan, round.messages, mask, alg.seed)`` before
        :meth:`~byzcore.algorithms.base.Algorithm.server_step`. ``None``: the collected
        rows are stepped on as they are.
    eval_every : int, default 1
        Record metrics every this many rounds (and at the last round, and when the model
        stops being finite).
    partial : bool, default False
        ``True`` (a distributed server): a round where no message arrived, or whose
        messages the rule or the attack refuses (``ValueError``, e.g. too few for the rule),
        keeps the model and is recorded with ``skipped``. ``False`` (the simulation): such
        errors propagate.
    progress : bool, default False
        Show a progress bar.
    desc : str or None, default None
        The progress bar's name; ``None``: ``alg.name``.
    f_star : float or None, default None
        With a value, each recorded row also holds ``gap = loss - f_star``.

    Notes
    -----
    A recorded row holds ``round``, the evaluation (``loss``, ``grad_norm``, ``accuracy``;
    ``None`` once the model is not finite), ``gap`` (``loss - f_star``, when ``f_star`` is
    given), ``bytes_sent`` (the clients' messages so far), ``oracle_calls`` (sample gradients
    computed by the clients so far) and ``epochs`` (``oracle_calls`` / the problem's samples),
    ``time`` (seconds spent collecting and stepping, evaluation excluded),
    ``alg.round_stats()`` and the round's ``info`` (for Zeno/Zeno++ the round's
    ``accept_rate``, ``false_positive_rate``, ``false_negative_rate``; totals in
    ``self.detection``). The run stops at the first record of a
    non-finite model (``diverged``).

    References
    ----------
    docs/spec.md#metrics
    """

    def __init__(self, alg: Algorithm, problem: Problem, honest: np.ndarray, collect: Callable[[Plan], Round], *,
                 attack: Attack | None = None, eval_every: int = 1, partial: bool = False, progress: bool = False,
                 desc: str | None = None, f_star: float | None = None):
        self.alg, self.problem, self.honest, self.collect = alg, problem, np.asarray(honest), collect
        self.attack = attack
        self.eval_every, self.partial = int(eval_every), bool(partial)
        self.progress, self.desc = progress, desc or alg.name
        self.f_star = f_star
        self.metrics: list = []
        self.bytes_sent = 0
        self.oracle_calls = 0
        self.detection = {"honest": 0, "byzantine": 0, "accepted": 0, "honest_rejected": 0, "byzantine_accepted": 0}
        self.timer = Timer()

    def _detect(self, plan: Plan) -> dict:
        """Zeno/Zeno++'s filter against the truth: rates of this round, and the run's totals.
        A false positive is an honest message rejected, a false negative a Byzantine one kept."""
        kept = self.alg.last_accepted
        if kept is None or len(kept) != len(plan.clients):
            return {}
        honest = np.isin(np.asarray(plan.clients), self.honest)
        counts = {"honest": int(honest.sum()), "byzantine": int((~honest).sum()), "accepted": int(kept.sum()),
                  "honest_rejected": int((honest & ~kept).sum()), "byzantine_accepted": int((~honest & kept).sum())}
        for k, v in counts.items():
            self.detection[k] += v
        return detection_rates(counts)

    def one_round(self, plan: Plan) -> dict:
        """Collect ``plan``'s messages and step the server; returns the round's ``info``."""
        with self.timer:
            r = self.collect(plan)
            info = dict(r.info)
            if self.partial and len(r.plan.clients) == 0:
                info["skipped"] = "no message arrived"
            else:
                try:
                    messages = r.messages
                    if self.attack is not None:  # the server's omniscient adversary, keyed (seed, ATTACK, round)
                        bad = ~np.isin(np.asarray(r.plan.clients), self.honest)
                        messages = apply_attack(self.attack, self.alg, r.plan, messages, bad, self.alg.seed)
                    self.alg.server_step(r.plan, messages)
                except ValueError as exc:  # a distributed round the rule or attack refuses: keep the model
                    if not self.partial:
                        raise
                    info["skipped"] = str(exc)
            if "skipped" not in info:
                info.update(self._detect(r.plan))
        self.bytes_sent += len(r.plan.clients) * self.alg.message_bytes(r.plan)
        self.oracle_calls += self.alg.oracle_calls(r.plan)
        return info

    def record(self, k: int, info: dict, bar: Progress) -> bool:
        """Record the metrics after round ``k``; returns whether the model is finite."""
        x = self.alg.model()
        finite = bool(np.all(np.isfinite(x)))
        ev = self.problem.evaluate(x, self.honest) if finite else {"loss": None, "grad_norm": None}
        row = {"round": k, **{key: jsonable(v) for key, v in ev.items()}}
        if self.f_star is not None:
            row["gap"] = None if row.get("loss") is None else row["loss"] - self.f_star
        n_samples = getattr(self.problem, "n_samples", 0)
        row.update({"bytes_sent": self.bytes_sent, "oracle_calls": self.oracle_calls,
                    "epochs": self.oracle_calls / n_samples if n_samples else None,
                    "time": round(self.timer.seconds, 6), **self.alg.round_stats(), **info})
        self.metrics.append(row)
        if row.get("loss") is not None:
            bar.show(loss=f"{row['loss']:.4g}")
        bar.update_to(k)
        return finite

    def run(self, rounds: int) -> tuple[list, bool]:
        """Run the initial plan (if any) and rounds ``1..rounds``.

        Returns
        -------
        (list of dict, bool)
            The recorded rows and whether the run diverged.
        """
        alg = self.alg
        with Progress(rounds, self.desc, unit="round", enabled=self.progress) as bar:
            first = alg.initial_plan()
            info = self.one_round(first) if first is not None else {}
            diverged = not self.record(0, info, bar)
            for k in range(1, rounds + 1):
                if diverged:
                    break
                info = self.one_round(alg.plan(k))
                if k % self.eval_every == 0 or k == rounds or not np.all(np.isfinite(alg.model())):
                    diverged = not self.record(k, info, bar)
        return self.metrics, diverged


def detection_rates(counts: dict) -> dict:
    """Zeno/Zeno++'s detection rates from the counts of accepted and rejected messages.

    Parameters
    ----------
    counts : dict
        ``honest`` and ``byzantine`` (messages received), ``accepted``, ``honest_rejected``
        and ``byzantine_accepted`` (ints).

    Returns
    -------
    dict
        ``accept_rate`` (accepted / received), ``false_positive_rate`` (honest messages
        rejected / honest messages) and ``false_negative_rate`` (Byzantine messages accepted
        / Byzantine messages); ``None`` where there was nothing to count.

    References
    ----------
    docs/spec.md#metrics
    """
    def ratio(a, b):
        return a / b if b else None
    return {"accept_rate": ratio(counts["accepted"], counts["honest"] + counts["byzantine"]),
            "false_positive_rate": ratio(counts["honest_rejected"], counts["honest"]),
            "false_negative_rate": ratio(counts["byzantine_accepted"], counts["byzantine"])}


def simulate(alg: Algorithm, problem: Problem, attack: Attack, byzantine: np.ndarray, rounds: int, *,
             eval_every: int = 1, progress: bool = False, f_star: float | None = None,
             totals: dict | None = None) -> tuple[list, bool]:
    """The reference single-process run: ``rounds`` rounds of ``alg`` under ``attack``.

    Every client's row is computed in this process (:func:`simulated_collect`) and the
    :class:`RoundLoop` applies the attack, steps and records the metrics; errors of the rule
    propagate.

    Parameters
    ----------
    alg : Algorithm
        The algorithm, at its starting point; it is stepped in place.
    problem : Problem
        What the honest workers compute on, and where the metrics are evaluated (over the
        honest workers).
    attack : Attack
        What replaces the Byzantine workers' messages.
    byzantine : numpy.ndarray
        The Byzantine worker ids.
    rounds : int
        Rounds after the initial plan (for Zeno++: arrivals).
    eval_every : int, default 1
        Record metrics every this many rounds (and at the last one).
    progress : bool, default False
        Show a progress bar.
    f_star : float or None, default None
        With a value, each row also records ``gap = loss - f_star``.
    totals : dict or None, default None
        A dict that receives the run's totals (``oracle_calls``, and for Zeno/Zeno++
        ``detection``: counts and rates over every round).

    Returns
    -------
    (list of dict, bool)
        ``(metrics, diverged)``, see :class:`RoundLoop`.
    """
    bad = np.zeros(problem.n_workers, dtype=bool)
    bad[np.asarray(byzantine, dtype=np.int64)] = True
    loop = RoundLoop(alg, problem, np.flatnonzero(~bad), simulated_collect(alg, problem, attack, byzantine),
                     attack=attack, eval_every=eval_every, progress=progress, f_star=f_star)
    out = loop.run(rounds)
    if totals is not None:
        totals["oracle_calls"] = loop.oracle_calls
        if loop.detection["honest"] + loop.detection["byzantine"]:
            totals["detection"] = {**loop.detection, **detection_rates(loop.detection)}
    return out


def run(config: RunConfig | dict | None = None, *, progress: bool = False, **overrides: Any) -> Result:
    """Run one experiment and return its :class:`Result`.

    Builds the problem, the Byzantine set, the attack and the algorithm from the
    configuration and simulates it (:func:`simulate`), or, with ``mode="threads"``, runs
    Zeno++ with real worker threads (:func:`~byzcore.algorithms.run_concurrent`).

    Parameters
    ----------
    config : RunConfig, dict or None, default None
        A :class:`RunConfig` or a dict of its fields; ``None``: the defaults.
    progress : bool, default False
        Show a progress bar.
    **overrides
        Fields that replace those of ``config`` (``run(algorithm="zeno", attack="sign-flip")``).
        ``problem`` may also be a ready :class:`~byzcore.problems.Problem` object (its
        ``name`` and ``n_workers`` then set ``problem`` and ``workers``).

    Returns
    -------
    Result
        The configuration, the recorded metrics, the final metrics and iterate, the
        Byzantine workers and the algorithm's description.

    Raises
    ------
    ValueError
        An unknown configuration key or algorithm, ``rounds < 0``, ``eval_every < 1``, a bad
        ``mode`` (``"threads"`` is for ``zeno_pp`` only), or an invalid problem, attack or
        algorithm parameter.

    References
    ----------
    docs/spec.md#algorithms
    """
    problem = None
    if isinstance(overrides.get("problem"), Problem):
        problem = overrides.pop("problem")
        overrides["problem"], overrides["workers"] = problem.name, problem.n_workers
    cfg = RunConfig.from_dict(config)
    if overrides:
        cfg = RunConfig.from_dict({**dataclasses.asdict(cfg), **overrides})
    cfg.algorithm = algorithm_name(cfg.algorithm)
    if cfg.rounds < 0 or cfg.eval_every < 1:
        raise ValueError(f"[run] need rounds >= 0 and eval_every >= 1, got {cfg.rounds}, {cfg.eval_every}")
    if cfg.mode not in ("simulated", "threads"):
        raise ValueError(f"[run] mode must be 'simulated' or 'threads', got {cfg.mode!r}")
    if cfg.mode == "threads" and cfg.algorithm != "zeno_pp":
        raise ValueError("[run] mode='threads' (real concurrent workers) exists for zeno_pp only")
    wall = Timer(started=True)
    if problem is None:
        problem = make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, lam=cfg.lam,
                               n_samples=cfg.n_samples, reg=cfg.reg)
    byz = byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    attack = make_attack(cfg.attack)
    alg = make_algorithm(cfg, problem)
    f_star = None
    if cfg.optimality_gap:
        f_star = optimal_value(problem, np.setdiff1d(np.arange(problem.n_workers), byz))
    totals: dict = {}
    if cfg.mode == "threads":
        metrics, diverged = _run_threads(cast(ZenoPP, alg), problem, attack, byz, cfg, progress)  # checked above
    else:
        metrics, diverged = simulate(alg, problem, attack, byz, cfg.rounds, eval_every=cfg.eval_every,
                                     progress=progress, f_star=f_star, totals=totals)
    if f_star is not None:
        totals["f_star"] = f_star
    x = alg.model()
    final = dict(metrics[-1]) if metrics else {}
    final = {k: final.get(k) for k in ("loss", "grad_norm", "accuracy", "gap") if k in final}
    return Result(config=cfg.to_dict(), metrics=metrics, final=final, x=np.array(x), byzantine=byz.tolist(),
                  diverged=diverged, seconds=wall.elapsed, algorithm=jsonable(alg.describe()), totals=totals)


def _run_threads(alg: ZenoPP, problem: Problem, attack: Attack, byz: np.ndarray, cfg: RunConfig,
                 progress: bool) -> tuple[list, bool]:
    """Zeno++ with real concurrent worker threads (``mode="threads"``): metrics are recorded
    on arrivals, ``time`` is the wall clock without the evaluations."""
    bad = np.zeros(problem.n_workers, dtype=bool)
    bad[byz] = True
    honest = np.flatnonzero(~bad)
    metrics: list = []
    clock, evaluating = Timer(started=True), Timer()

    def record(k: int, plan: Plan | None, bar: Progress) -> None:
        seconds = clock.elapsed - evaluating.seconds
        with evaluating:
            ev = problem.evaluate(alg.model(), honest)
        stats = alg.round_stats() if plan is not None else {"accepted": 0, "staleness": 0}
        metrics.append({"round": k, **{key: jsonable(v) for key, v in ev.items()},
                        "bytes_sent": k * alg.message_bytes(plan) if plan is not None else 0,
                        "time": round(seconds, 6), **stats})
        if metrics[-1].get("loss") is not None:
            bar.show(loss=f"{metrics[-1]['loss']:.4g}")
        bar.update_to(k)

    with Progress(cfg.rounds, alg.name + " (threads)", unit="round", enabled=progress) as bar:
        record(0, None, bar)
        run_concurrent(alg, problem, attack, bad, cfg.rounds,
                       on_arrival=lambda k, plan: record(k, plan, bar)
                       if (k % cfg.eval_every == 0 or k == cfg.rounds) else None)
    return metrics, not bool(np.all(np.isfinite(alg.model())))
