"""The server-worker runtime: ``byzcore run --backend torch-distributed``.

Rank 0 is the server, ranks ``1..P-1`` are worker processes; the run's ``N`` workers are dealt
to them round-robin (worker ``i`` lives in rank ``1 + i % (P-1)``; with ``P = N + 1`` each
process is one worker holding its own data shard). One round::

    server   plan = alg.plan(k)  ->  publish plan/{seq}          (model, clients, kind, clip level)
    worker   honest clients: row = alg.worker_messages(problem, plan, [i], state) -> msg/{seq}/{i}
             Byzantine clients: their honest row (on flipped labels for label-flip) -> own/{seq}/{i};
             read the round's honest messages and the colluders' rows (the omniscient adversary),
             run the attack in this process, send the result -> msg/{seq}/{i}
    server   gather msg/{seq}/* until the deadline; absent / malformed messages are left out;
             alg.server_step(plan restricted to the clients that answered, their messages)

The algorithm objects, random streams and attacks are those of :mod:`byzcore.algorithms`
(the server calls ``plan`` / ``server_step``, each worker ``worker_messages`` on its own
rows), so with no faults the run equals ``--backend simulation`` with the same seed. The
transport and its fault model are described in :mod:`byzcore.distributed.transport`.

Faults, per round: a worker that crashed or does not answer within ``timeout_s`` is absent
(partial participation); a message of the wrong size or dtype is dropped and its sender
counted as Byzantine for the round; if nobody answers the server keeps its model and moves
on. Metrics gain ``participants``, ``absent`` and ``malformed`` (worker ids) per round.
For tests and demonstrations ``faults`` injects failures: ``{"kill": {rank: seq}}`` (the
server SIGKILLs that worker process when round ``seq`` starts), ``{"hang": {rank: seq}}``
(the process stops answering), ``{"malformed": {rank: seq}}`` (it sends float32 values),
``{"truncated": {rank: seq}}`` (it sends one value too few).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import types
from typing import Any

import numpy as np

from .transport import MALFORMED, OK, StoreChannel, connect_store, decode_plan, decode_vector, encode_plan

__all__ = ["run_distributed", "rank_main"]

BYZ_WAIT_FRACTION = 0.5  # Byzantine workers wait this share of the round's deadline for honest messages


def _setup(cfg_dict: dict) -> tuple[Any, Any, Any, Any, np.ndarray]:
    from ..algorithms.config import RunConfig, algorithm_name, byzantine_ids, make_algorithm
    from ..attacks import make_attack
    from ..problems import make_problem

    cfg = RunConfig.from_dict(cfg_dict)
    cfg.algorithm = algorithm_name(cfg.algorithm)
    if cfg.algorithm == "zeno_pp":
        raise ValueError("[run] zeno_pp is asynchronous; run it with --backend simulation (its 'threads' mode "
                         "has real concurrent workers); the torch-distributed runtime is synchronous")
    problem = make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, lam=cfg.lam,
                           n_samples=cfg.n_samples)
    byz = byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    return cfg, problem, make_algorithm(cfg, problem), make_attack(cfg.attack), byz


def _workers_of(rank: int, nprocs: int, n: int) -> list[int]:
    return [i for i in range(n) if 1 + i % (nprocs - 1) == rank]


# ---------------------------------------------------------------------------- server
def serve(chan: StoreChannel, cfg_dict: dict, nprocs: int, *, timeout_s: float, startup_timeout_s: float,
          progress: bool = False, faults: dict | None = None):
    from .._progress import Progress
    from ..algorithms.results import Result
    from ..algorithms.results import jsonable as _jsonable

    t_start = time.perf_counter()
    cfg, problem, alg, attack, byz = _setup(cfg_dict)
    n = problem.n_workers
    bad = np.zeros(n, dtype=bool)
    bad[byz] = True
    honest = np.flatnonzero(~bad)
    kill = {int(r): int(s) for r, s in (faults or {}).get("kill", {}).items()}

    # Wait for the worker processes to come up (the first round would otherwise time out
    # while they import and load their shards); late ones just miss rounds.
    ranks = list(range(1, nprocs))
    chan.collect({r: f"ready/{r}" for r in ranks}, time.monotonic() + startup_timeout_s)

    metrics: list = []
    totals = {"bytes": 0, "time": 0.0}
    bar = Progress(cfg.rounds, alg.name + " (torch-distributed)", unit="round", enabled=progress)
    seq = 0

    def one_round(plan) -> dict:
        nonlocal seq
        for r, s in kill.items():
            if s == seq and chan.has(f"pid/{r}"):
                os.kill(int(chan.get(f"pid/{r}")), signal.SIGKILL)
        t0 = time.perf_counter()
        clients = np.asarray(plan.clients, dtype=np.int64)
        target = alg.shift_back_target(plan) if bad[clients].any() else None
        chan.publish(seq, encode_plan(seq, plan, target))
        rows, status = chan.gather(seq, clients, alg.d, time.monotonic() + timeout_s)
        ok = np.array([s == OK for s in status], dtype=bool)
        info = {"participants": int(ok.sum()),
                "absent": [int(w) for w, s in zip(clients, status) if s not in (OK, MALFORMED)],
                "malformed": [int(w) for w, s in zip(clients, status) if s == MALFORMED]}
        if ok.any():
            try:
                alg.server_step(dataclasses.replace(plan, clients=clients[ok]), np.ascontiguousarray(rows[ok]))
            except ValueError as exc:  # e.g. too few messages for the rule: keep the model, report it
                info["skipped"] = str(exc)
        else:
            info["skipped"] = "no message arrived"
        totals["time"] += time.perf_counter() - t0
        totals["bytes"] += int(ok.sum()) * alg.message_bytes(plan)
        chan.forget_round(seq, clients)
        if seq >= 16:  # late workers jump to the latest plan; keep a margin for slow ones
            chan.delete([f"plan/{seq - 16}"])
        seq += 1
        return info

    def record(k: int, info: dict) -> bool:
        x = alg.model()
        finite = bool(np.all(np.isfinite(x)))
        ev = problem.evaluate(x, honest) if finite else {"loss": None, "grad_norm": None}
        row = {"round": k, **{key: _jsonable(v) for key, v in ev.items()}, "bytes_sent": totals["bytes"],
               "time": round(totals["time"], 6), **alg.round_stats(), **info}
        metrics.append(row)
        bar.update_to(k)
        return finite

    try:
        first = alg.initial_plan()
        info0 = one_round(first) if first is not None else {}
        diverged = not record(0, info0)
        for k in range(1, cfg.rounds + 1):
            if diverged:
                break
            info = one_round(alg.plan(k))
            if k % cfg.eval_every == 0 or k == cfg.rounds or not np.all(np.isfinite(alg.model())):
                diverged = not record(k, info)
    finally:
        chan.stop()
        bar.close()
    x = alg.model()
    final = dict(metrics[-1]) if metrics else {}
    final = {k: final.get(k) for k in ("loss", "grad_norm", "accuracy") if k in final}
    config = {**cfg.to_dict(), "backend": "torch-distributed", "nprocs": nprocs, "timeout": timeout_s}
    return Result(config=config, metrics=metrics, final=final, x=np.array(x), byzantine=byz.tolist(),
                  diverged=diverged, seconds=time.perf_counter() - t_start, algorithm=_jsonable(alg.describe()))


# ---------------------------------------------------------------------------- worker
def work(chan: StoreChannel, rank: int, cfg_dict: dict, nprocs: int, *, timeout_s: float,
         idle_timeout_s: float, faults: dict | None = None) -> int:
    """Serve rounds until the server says stop; returns the number of rounds answered."""
    from ..algorithms.base import apply_attack

    cfg, problem, alg, attack, byz = _setup(cfg_dict)
    mine = set(_workers_of(rank, nprocs, problem.n_workers))
    byz_set = {int(b) for b in byz}
    flipped = problem.with_flipped_labels(sorted(byz_set)) if attack.flips_labels and byz_set else problem
    state = alg.init_worker_state()
    hang = {int(r): int(s) for r, s in (faults or {}).get("hang", {}).items()}.get(rank)
    malformed = {int(r): int(s) for r, s in (faults or {}).get("malformed", {}).items()}.get(rank)
    truncated = {int(r): int(s) for r, s in (faults or {}).get("truncated", {}).items()}.get(rank)
    chan.store.set(f"pid/{rank}", str(os.getpid()))
    chan.store.set(f"ready/{rank}", "1")
    seq, answered = 0, 0
    while True:
        raw = chan.next_plan(seq, idle_timeout_s)
        if raw is None:
            return answered
        seq, plan, target = decode_plan(raw)
        if hang is not None and seq >= hang:
            time.sleep(idle_timeout_s)  # a stalled process: alive, silent
            return answered
        deadline = time.monotonic() + BYZ_WAIT_FRACTION * timeout_s
        clients = [int(c) for c in plan.clients]
        good = np.array([c for c in clients if c in mine and c not in byz_set], dtype=np.int64)
        evil = np.array([c for c in clients if c in mine and c in byz_set], dtype=np.int64)
        if good.size:
            rows = alg.worker_messages(problem, plan, good, state)
            for w, row in zip(good, rows):
                if malformed is not None and seq == malformed:
                    chan.send(seq, w, row.astype(np.float32))
                elif truncated is not None and seq == truncated:
                    chan.send(seq, w, row[:-1])
                else:
                    chan.send(seq, w, row)
        if evil.size:
            own = alg.worker_messages(flipped, plan, evil, state)
            for w, row in zip(evil, own):
                chan.send(seq, w, row, kind="own")
            msgs = _adversary_view(chan, seq, clients, byz_set, alg.d, deadline)
            present = np.array([c for c in clients if c in msgs], dtype=np.int64)
            mat = np.array([msgs[c] for c in present]).reshape(len(present), alg.d)
            mask = np.array([c in byz_set for c in present], dtype=bool)
            oracle = types.SimpleNamespace(shift_back_target=lambda _plan: target)
            sent = apply_attack(attack, oracle, dataclasses.replace(plan, clients=present), mat, mask, cfg.seed)
            for w in evil:
                chan.send(seq, w, sent[int(np.flatnonzero(present == w)[0])])
        answered += 1
        seq += 1


def _adversary_view(chan: StoreChannel, seq: int, clients: list[int], byz_set: set[int], d: int,
                    deadline: float) -> dict[int, np.ndarray]:
    """The round's honest messages and the colluders' honest rows, as far as they arrive by
    ``deadline``: the omniscient adversary of the papers reads the wire."""
    keys = {c: (f"own/{seq}/{c}" if c in byz_set else f"msg/{seq}/{c}") for c in clients}
    out = {}
    for c, raw in chan.collect(keys, deadline).items():
        vec = decode_vector(raw, seq, c, d)
        if vec is not None:
            out[c] = vec
    return out


# ---------------------------------------------------------------------------- entry points
def rank_main(rank: int, world: int, cfg_dict: dict, options: dict) -> Any:
    """What every process runs (under :func:`spawn` or torchrun): the server's
    :class:`~byzcore.algorithms.Result` on rank 0, the number of rounds answered elsewhere."""
    store, r, w = connect_store(options.get("store_timeout_s", 300.0))
    if (r, w) != (rank, world):  # pragma: no cover - a launcher bug
        raise RuntimeError(f"[run] rank/world mismatch: launcher says {rank}/{world}, environment {r}/{w}")
    chan = StoreChannel(store)
    timeout_s = float(options.get("timeout_s", 30.0))
    if world < 2:
        raise ValueError("[run] the torch-distributed backend needs --nprocs >= 2 (one server, one worker process)")
    if rank == 0:
        return serve(chan, cfg_dict, world, timeout_s=timeout_s,
                     startup_timeout_s=float(options.get("startup_timeout_s", 120.0)),
                     progress=bool(options.get("progress", False)), faults=options.get("faults"))
    return work(chan, rank, cfg_dict, world, timeout_s=timeout_s,
                idle_timeout_s=float(options.get("idle_timeout_s", max(60.0, 4 * timeout_s))),
                faults=options.get("faults"))


def run_distributed(config: Any = None, *, nprocs: int | None = None, timeout_s: float = 30.0,
                    faults: dict | None = None, progress: bool = False, run_timeout_s: float | None = None,
                    **overrides: Any):
    """Run an experiment on ``nprocs`` processes on this machine (rank 0 the server, default one
    process per worker plus the server) and return the server's
    :class:`~byzcore.algorithms.Result`, like :func:`byzcore.algorithms.run`.

    ``timeout_s`` is the per-round deadline for workers' messages; ``run_timeout_s`` bounds
    the whole run (default: generous for the number of rounds); ``faults`` injects failures
    (see the module docstring). Every process is gone when this returns.
    """
    from ..algorithms.config import RunConfig
    from .launch import spawn

    cfg = RunConfig.from_dict(config)
    if overrides:
        cfg = RunConfig.from_dict({**dataclasses.asdict(cfg), **overrides})
    nprocs = cfg.workers + 1 if nprocs is None else int(nprocs)
    if nprocs < 2:
        raise ValueError(f"[run] --nprocs must be >= 2 (one server, at least one worker process), got {nprocs}")
    options = {"timeout_s": timeout_s, "faults": faults or {}, "progress": progress}
    if run_timeout_s is None:
        run_timeout_s = 300.0 + cfg.rounds * (timeout_s + 1.0)
    res = spawn(rank_main, nprocs, (cfg.to_dict(), options), timeout_s=run_timeout_s, backend=None, wait_for=[0],
                env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if 0 not in res.results:
        why = res.errors.get(0) or f"the server did not finish within {run_timeout_s:.0f} s (exit codes {res.exitcodes})"
        raise RuntimeError(f"[run] torch-distributed run failed on the server (rank 0):\n{why}")
    return res.results[0]
