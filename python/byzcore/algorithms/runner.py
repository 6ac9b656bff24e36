"""Running an experiment: configuration, the simulation loop, results and their files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import _streams
from ..attacks import Attack, make_attack
from ..problems import Problem, make_problem
from .base import Algorithm, Plan, apply_attack
from .byz_vr_marina_pp import ByzVRMarina, ByzVRMarinaPP
from .resam import RESAM
from .sgd import RobustSGD
from .zeno import Zeno
from .zeno_pp import ZenoPP, run_concurrent

ALGORITHMS: dict[str, Callable[..., Algorithm]] = {
    "byz_vr_marina_pp": ByzVRMarinaPP,
    "byz_vr_marina": ByzVRMarina,
    "zeno": Zeno,
    "zeno_pp": ZenoPP,
    "resam": RESAM,
    "sgd": RobustSGD,
}
_ALIASES = {"marina_pp": "byz_vr_marina_pp", "byz-vr-marina-pp": "byz_vr_marina_pp", "marina": "byz_vr_marina",
            "byz-vr-marina": "byz_vr_marina", "zeno++": "zeno_pp", "zenopp": "zeno_pp", "zeno-pp": "zeno_pp",
            "robust_sgd": "sgd", "dsgd": "sgd"}


def algorithm_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower().replace("-", "_"))
    if key not in ALGORITHMS:
        raise ValueError(f"[run] unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return key


@dataclass
class RunConfig:
    """Everything that defines a run (the command line's options, one to one).

    ``clients_per_round=None`` means all workers, except for ``byz_vr_marina_pp`` where it
    means ``ceil(workers / 4)`` (partial participation is the point of that method).
    ``alpha=inf`` runs Byz-VR-MARINA-PP without clipping.
    """

    algorithm: str = "byz_vr_marina_pp"
    problem: str = "a9a-synthetic"
    split: str = "homogeneous"
    workers: int = 15
    byzantine: int = 3
    attack: str = "shift-back"
    aggregator: str = "bucketing:2+median"
    clients_per_round: int | None = None
    rounds: int = 500
    lr: float = 0.5
    alpha: float = 1.0
    p: float = 0.1
    compressor: str = "none"
    batch: int = 32
    seed: int = 0
    lam: float = 0.01
    n_samples: int | None = None
    eval_every: int = 1
    # algorithm-specific
    c_hat: int | None = None
    beta: float = 0.9
    rho: float | None = None
    zeno_b: int | None = None
    n_r: int = 32
    eps: float = 0.0
    k_v: int = 1
    max_delay: int = 4
    mode: str = "simulated"

    @classmethod
    def from_dict(cls, d: dict | RunConfig | None) -> RunConfig:
        if d is None:
            return cls()
        if isinstance(d, RunConfig):
            return dataclasses.replace(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"[run] unknown configuration keys {unknown}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class Result:
    """A finished run: ``metrics`` (one dict per recorded round), ``final`` (``loss``,
    ``grad_norm``, ``accuracy`` at the last iterate), ``x`` (the last iterate)."""

    config: dict
    metrics: list
    final: dict
    x: np.ndarray
    byzantine: list
    diverged: bool = False
    seconds: float = 0.0
    algorithm: dict = field(default_factory=dict)

    def column(self, key: str) -> np.ndarray:
        """One metric over the recorded rounds (``nan`` where missing)."""
        return np.array([np.nan if m.get(key) is None else m[key] for m in self.metrics], dtype=np.float64)

    def summary(self) -> dict:
        return {"config": self.config, "algorithm": self.algorithm, "byzantine": self.byzantine,
                "final": {k: _jsonable(v) for k, v in self.final.items()}, "diverged": self.diverged,
                "rounds_recorded": len(self.metrics), "seconds": round(self.seconds, 3)}

    def save(self, out: str, *, plot: bool = True) -> list[str]:
        """Write ``out/metrics.jsonl``, ``out/summary.json`` and, when matplotlib is installed
        (and ``plot``), ``out/curves.png``. Returns the paths written."""
        os.makedirs(out, exist_ok=True)
        paths = [os.path.join(out, "metrics.jsonl"), os.path.join(out, "summary.json")]
        with open(paths[0], "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({k: _jsonable(v) for k, v in m.items()}, allow_nan=False) + "\n" for m in self.metrics)
        with open(paths[1], "w", encoding="utf-8") as fh:
            json.dump(self.summary(), fh, indent=2, allow_nan=False)
            fh.write("\n")
        if plot:
            png = os.path.join(out, "curves.png")
            if plot_curves([(self.label(), self)], png):
                paths.append(png)
        return paths

    def label(self) -> str:
        c = self.config
        extra = ""
        if c.get("algorithm") == "byz_vr_marina_pp":
            extra = ", no clipping" if c.get("alpha") is None else f", alpha={c['alpha']}"
        return f"{c.get('algorithm')} ({c.get('aggregator')}, {c.get('attack')}{extra})"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def plot_curves(runs: list, path: str, title: str | None = None) -> bool:
    """Loss and gradient norm against rounds and against bytes sent, one line per
    ``(label, Result)``. Returns ``False`` (and writes nothing) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for label, res in runs:
        r, b = res.column("round"), res.column("bytes_sent")
        for row, key in enumerate(("loss", "grad_norm")):
            y = res.column(key)
            axes[row, 0].plot(r, y, label=label)
            axes[row, 1].plot(b / 2**20, y, label=label)
    for row, key in enumerate(("loss", "gradient norm")):
        axes[row, 0].set_ylabel(key)
        for col in range(2):
            axes[row, col].set_yscale("log")
            axes[row, col].grid(True, alpha=0.3)
    axes[1, 0].set_xlabel("round")
    axes[1, 1].set_xlabel("MiB sent by clients")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def byzantine_ids(workers: int, byzantine: int, seed: int) -> np.ndarray:
    """The Byzantine workers of a run: a seeded uniform choice (ascending)."""
    if not 0 <= byzantine < workers:
        raise ValueError(f"[run] byzantine must be in 0..workers-1={workers - 1}, got {byzantine}")
    rng = _streams.server_rng(seed, _streams.BYZANTINE_SET)
    return np.sort(rng.choice(workers, size=byzantine, replace=False)).astype(np.int64)


def make_algorithm(config: RunConfig, problem: Problem) -> Algorithm:
    """The algorithm object a configuration describes, on ``problem``."""
    name = algorithm_name(config.algorithm)
    common = dict(lr=config.lr, aggregator=config.aggregator, f=config.byzantine, batch=config.batch,
                  compressor=config.compressor, seed=config.seed)
    C = config.clients_per_round
    if name == "byz_vr_marina_pp":
        if C is None:
            C = math.ceil(config.workers / 4)
        return ByzVRMarinaPP(problem, p=config.p, alpha=config.alpha, clients_per_round=C, c_hat=config.c_hat, **common)
    if name == "byz_vr_marina":
        return ByzVRMarina(problem, p=config.p, **common)
    if name == "sgd":
        return RobustSGD(problem, clients_per_round=C, **common)
    if name == "resam":
        return RESAM(problem, beta=config.beta, clients_per_round=C, **common)
    if name == "zeno":
        return Zeno(problem, rho=5e-4 if config.rho is None else config.rho, b=config.zeno_b, n_r=config.n_r,
                    clients_per_round=C, **common)
    return ZenoPP(problem, rho=1e-3 if config.rho is None else config.rho, eps=config.eps, k_v=config.k_v,
                  n_r=config.n_r, max_delay=config.max_delay, **common)


class _Progress:
    """tqdm when installed, else a line every 10%."""

    def __init__(self, total: int, enabled: bool, desc: str):
        self.total, self.enabled, self.done, self.bar = total, enabled, 0, None
        self.next_print = 0.1
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="round", leave=False, dynamic_ncols=True)
            except ImportError:
                print(f"{desc}: {total} rounds", file=sys.stderr)

    def update(self, k: int, loss: float | None) -> None:
        if not self.enabled:
            return
        step, self.done = k - self.done, k
        if self.bar is not None:
            self.bar.update(step)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        elif self.total and self.done / self.total >= self.next_print:
            print(f"  round {self.done}/{self.total}  loss {loss}", file=sys.stderr)
            self.next_print += 0.1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def simulate(alg: Algorithm, problem: Problem, attack: Attack, byzantine: np.ndarray, rounds: int, *,
             eval_every: int = 1, progress: bool = False) -> tuple[list, bool]:
    """The reference single-process run: ``rounds`` rounds of ``alg`` with the Byzantine
    workers ``byzantine`` replaced by ``attack``. Returns ``(metrics, diverged)``."""
    n = problem.n_workers
    bad = np.zeros(n, dtype=bool)
    bad[np.asarray(byzantine, dtype=np.int64)] = True
    honest = np.flatnonzero(~bad)
    flipped = problem.with_flipped_labels(np.flatnonzero(bad)) if attack.flips_labels and bad.any() else problem
    state = alg.init_worker_state()
    metrics: list = []
    totals = {"bytes": 0, "time": 0.0}
    bar = _Progress(rounds, progress, alg.name)

    def one_round(plan: Plan) -> None:
        t0 = time.perf_counter()
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
        msgs = apply_attack(attack, alg, plan, msgs, rows_bad, alg.seed)
        alg.server_step(plan, msgs)
        totals["time"] += time.perf_counter() - t0
        totals["bytes"] += len(clients) * alg.message_bytes(plan)

    def record(k: int) -> bool:
        x = alg.model()
        finite = bool(np.all(np.isfinite(x)))
        ev = problem.evaluate(x, honest) if finite else {"loss": None, "grad_norm": None}
        row = {"round": k, **{key: _jsonable(v) for key, v in ev.items()}, "bytes_sent": totals["bytes"],
               "time": round(totals["time"], 6), **alg.round_stats()}
        metrics.append(row)
        bar.update(k, row.get("loss"))
        return finite

    first = alg.initial_plan()
    if first is not None:
        one_round(first)
    diverged = not record(0)
    try:
        for k in range(1, rounds + 1):
            if diverged:
                break
            one_round(alg.plan(k))
            if k % eval_every == 0 or k == rounds or not np.all(np.isfinite(alg.model())):
                diverged = not record(k)
    finally:
        bar.close()
    return metrics, diverged


def run(config: RunConfig | dict | None = None, *, progress: bool = False, **overrides: Any) -> Result:
    """Run one experiment and return its :class:`Result`.

    ``config`` is a :class:`RunConfig` or a dict of its fields; keyword ``overrides`` replace
    fields (``run(algorithm="zeno", attack="sign-flip")``). ``problem`` may also be a ready
    :class:`~byzcore.problems.Problem` object (its ``n_workers`` then sets ``workers``).
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
    t0 = time.perf_counter()
    if problem is None:
        problem = make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, lam=cfg.lam,
                               n_samples=cfg.n_samples)
    byz = byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    attack = make_attack(cfg.attack)
    alg = make_algorithm(cfg, problem)
    if cfg.mode == "threads":
        metrics, diverged = _run_threads(alg, problem, attack, byz, cfg, progress)
    else:
        metrics, diverged = simulate(alg, problem, attack, byz, cfg.rounds, eval_every=cfg.eval_every,
                                     progress=progress)
    x = alg.model()
    final = dict(metrics[-1]) if metrics else {}
    final = {k: final.get(k) for k in ("loss", "grad_norm", "accuracy") if k in final}
    return Result(config=cfg.to_dict(), metrics=metrics, final=final, x=np.array(x), byzantine=byz.tolist(),
                  diverged=diverged, seconds=time.perf_counter() - t0, algorithm=_jsonable(alg.describe()))


def _run_threads(alg: ZenoPP, problem: Problem, attack: Attack, byz: np.ndarray, cfg: RunConfig,
                 progress: bool) -> tuple[list, bool]:
    bad = np.zeros(problem.n_workers, dtype=bool)
    bad[byz] = True
    honest = np.flatnonzero(~bad)
    metrics: list = []
    bar = _Progress(cfg.rounds, progress, alg.name + " (threads)")
    t0 = time.perf_counter()
    eval_time = [0.0]

    def record(k: int, plan: Plan | None) -> None:
        t1 = time.perf_counter()
        ev = problem.evaluate(alg.model(), honest)
        stats = alg.round_stats() if plan is not None else {"accepted": 0, "staleness": 0}
        metrics.append({"round": k, **{key: _jsonable(v) for key, v in ev.items()},
                        "bytes_sent": k * alg.message_bytes(plan) if plan is not None else 0,
                        "time": round(t1 - t0 - eval_time[0], 6), **stats})
        eval_time[0] += time.perf_counter() - t1
        bar.update(k, metrics[-1].get("loss"))

    record(0, None)
    try:
        run_concurrent(alg, problem, attack, bad, cfg.rounds,
                       on_arrival=lambda k, plan: record(k, plan) if (k % cfg.eval_every == 0 or k == cfg.rounds) else None)
    finally:
        bar.close()
    return metrics, not bool(np.all(np.isfinite(alg.model())))
