"""The server-worker runtime: ``byzcore run --backend torch-distributed``.

Rank 0 is the server, ranks ``1..P-1`` are worker processes; the run's ``N`` workers are dealt
to them round-robin (worker ``i`` lives in rank ``1 + i % (P-1)``). Every process builds the
whole problem (each computes only its own workers' rows). One round (transport: control on
the c10d Store, vectors on one gloo link per worker process, see
:mod:`byzcore.distributed.transport`)::

    server   plan = alg.plan(k); header -> the queues go/{rank} (Store) of the processes
             holding sampled clients; x, x_old in the header when small, else -> their links
    worker   honest clients: row = alg.worker_messages(problem, plan, [i], state) -> link
             Byzantine clients: the same, their honest row (on flipped labels for label-flip)
    server   receives until the deadline; absent / malformed messages are left out;
             the attack replaces the Byzantine rows that arrived (apply_attack, the
             omniscient adversary of the papers, simulated by the server as in the
             simulation); alg.server_step(plan restricted to the clients that answered, rows)

The algorithm objects, random streams and attacks are those of :mod:`byzcore.algorithms`,
and the server drives the simulation's own round loop
(:class:`~byzcore.algorithms.loop.RoundLoop`: attack, then ``server_step``); each worker
calls ``worker_messages`` on its own rows. So with no faults the run equals
``--backend simulation`` with the same seed.

Faults, per round: a worker that crashed or does not answer within ``timeout_s`` is absent
(partial participation) and its link dropped; it opens a fresh link when it comes back. A
message whose header names the wrong dtype, length, round or sender is dropped and its
sender counted as Byzantine for the round; if nobody answers the server keeps its model and
moves on. Metrics gain ``participants``, ``absent`` and ``malformed`` (worker ids) per
round. For tests and demonstrations ``faults`` injects failures, each ``{rank: plan seq}``:
``kill`` (the server SIGKILLs that worker process when the round starts), ``hang`` (the
process stops answering for good), ``malformed`` (it sends the other float dtype),
``truncated`` (one value too few), ``wrong_round`` (a header naming the previous round);
and ``stall``: ``{rank: [seq, resume]}`` (silent from plan ``seq`` until the server has
published plan ``resume``, then it rejoins).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any

import numpy as np

from .transport import ABSENT, MALFORMED, OK, ServerTransport, WorkerTransport, connect_store, decode_plan, wire_dtype

__all__ = ["rank_main", "run_distributed"]


def _setup(cfg_dict: dict, factory: Any = None) -> tuple[Any, Any, Any, Any, np.ndarray]:
    from ..algorithms.config import RunConfig, algorithm_name, byzantine_ids, make_algorithm
    from ..attacks import make_attack
    from ..problems import make_problem

    cfg = RunConfig.from_dict(cfg_dict)
    cfg.algorithm = algorithm_name(cfg.algorithm)
    if cfg.algorithm == "zeno_pp":
        raise ValueError("[run] zeno_pp is asynchronous; run it with --backend simulation (its 'threads' mode "
                         "has real concurrent workers); the torch-distributed runtime is synchronous")
    if factory is not None:  # every process builds its own copy (module-level callables pickle by name)
        problem = factory(cfg.workers, split=cfg.split, seed=cfg.seed)
        if problem.n_workers != cfg.workers:
            raise ValueError(f"[run] the problem factory made {problem.n_workers} workers, the config asks for "
                             f"{cfg.workers}")
        cfg.problem = problem.name
    else:
        problem = make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, lam=cfg.lam,
                               n_samples=cfg.n_samples, reg=cfg.reg)
    byz = byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    return cfg, problem, make_algorithm(cfg, problem), make_attack(cfg.attack), byz


def _workers_of(rank: int, nprocs: int, n: int) -> list[int]:
    return [i for i in range(n) if 1 + i % (nprocs - 1) == rank]


# ---------------------------------------------------------------------------- server
def serve(transport: ServerTransport, cfg_dict: dict, nprocs: int, *, timeout_s: float, startup_timeout_s: float,
          progress: bool = False, faults: dict | None = None, factory: Any = None):
    """Rank 0: drive the one round loop (:class:`~byzcore.algorithms.loop.RoundLoop`, as the
    simulation does) with a *collect* that publishes each plan and gathers the workers' rows;
    the loop applies the run's attack to the Byzantine rows that arrived, as in the simulation.

    Parameters
    ----------
    transport : ServerTransport
        The server's end of the links.
    cfg_dict : dict
        The run's :class:`~byzcore.algorithms.RunConfig` fields.
    nprocs : int
        Processes, the server included.
    timeout_s : float
        Per-round deadline for the workers' messages, in seconds.
    startup_timeout_s : float
        How long to wait for every worker process to open its link before the first round
        (late ones join later).
    progress : bool, optional
        Show a progress bar.
    faults : dict or None, optional
        Injected failures (see the module docstring); the server acts on ``kill``.
    factory : callable or None, optional
        ``factory(workers, split=, seed=) -> Problem``, instead of the problem by name.

    Returns
    -------
    Result
        The run, its configuration extended by ``backend``, ``nprocs`` and ``timeout``;
        the worker processes are told to stop when it ends.

    Raises
    ------
    ValueError
        ``[run] ...`` for ``zeno_pp`` (asynchronous), or a factory whose problem has
        another number of workers than the configuration.
    """
    from .._progress import Timer
    from ..algorithms.loop import Round, RoundLoop
    from ..algorithms.results import Result, jsonable

    wall = Timer(started=True)
    cfg, problem, alg, attack, byz = _setup(cfg_dict, factory)
    bad = np.zeros(problem.n_workers, dtype=bool)
    bad[byz] = True
    wire = wire_dtype(problem.itemsize)
    kill = {int(r): int(s) for r, s in (faults or {}).get("kill", {}).items()}
    store = transport.store

    # Wait for the worker processes to come up and open their links (the first round would
    # otherwise time out while they import and build the problem); late ones join later.
    ranks = list(range(1, nprocs))
    transport.accept(ranks, time.monotonic() + startup_timeout_s)
    seq = 0

    def collect(plan) -> Round:
        nonlocal seq
        for r, s in kill.items():
            if s == seq and store.check([f"pid/{r}"]):
                os.kill(int(store.get(f"pid/{r}")), signal.SIGKILL)
        transport.accept(ranks)
        clients = np.asarray(plan.clients, dtype=np.int64)
        rank_of = [1 + int(w) % (nprocs - 1) for w in clients]
        transport.publish(seq, plan, sorted(set(rank_of)))
        end = time.monotonic() + timeout_s
        rows, status = transport.gather(seq, list(zip(clients.tolist(), rank_of)), alg.d, wire, end)
        transport.end_round(max(end, time.monotonic() + 0.01))
        seq += 1
        ok = np.array([s == OK for s in status], dtype=bool)
        info = {"participants": int(ok.sum()),
                "absent": [int(w) for w, s in zip(clients, status) if s == ABSENT],
                "malformed": [int(w) for w, s in zip(clients, status) if s == MALFORMED]}
        return Round(dataclasses.replace(plan, clients=clients[ok]), rows[ok].astype(np.float64), info)

    loop = RoundLoop(alg, problem, np.flatnonzero(~bad), collect, attack=attack, eval_every=cfg.eval_every,
                     partial=True, progress=progress, desc=alg.name + " (torch-distributed)")
    try:
        metrics, diverged = loop.run(cfg.rounds)
    finally:
        transport.stop(ranks)
    x = alg.model()
    final = dict(metrics[-1]) if metrics else {}
    final = {k: final.get(k) for k in ("loss", "grad_norm", "accuracy") if k in final}
    config = {**cfg.to_dict(), "backend": "torch-distributed", "nprocs": nprocs, "timeout": timeout_s}
    return Result(config=config, metrics=metrics, final=final, x=np.array(x), byzantine=byz.tolist(),
                  diverged=diverged, seconds=wall.elapsed, algorithm=jsonable(alg.describe()))


# ---------------------------------------------------------------------------- worker
def _faulty(row: np.ndarray, wire: np.dtype, fault: str | None) -> tuple[np.ndarray, int]:
    """The message a faulty worker sends instead of ``row`` (tests): ``(values, seq offset)``."""
    if fault == "malformed":  # the other float dtype
        return row.astype(np.float32 if wire == np.float64 else np.float64), 0
    if fault == "truncated":
        return row[:-1], 0
    if fault == "wrong_round":
        return row, -1
    return row, 0


def _sleep_until_plan(transport: WorkerTransport, seq: int, limit_s: float) -> None:
    """A stalled worker (tests): silent until the server has published plan ``seq``."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end and transport.latest() < seq:
        time.sleep(0.01)


def work(transport: WorkerTransport, rank: int, cfg_dict: dict, nprocs: int, *, timeout_s: float,
         idle_timeout_s: float, faults: dict | None = None, factory: Any = None) -> int:
    """A worker process: serve rounds until the server says stop or goes quiet.

    For every plan that samples clients of this process it sends their rows; Byzantine
    clients send their honest row (on flipped labels for label-flip attacks), which the
    server replaces by the attack (see the module docstring).

    Parameters
    ----------
    transport : WorkerTransport
        This process's end of its link.
    rank : int
        This process's rank (``1..nprocs-1``); it holds workers ``i`` with
        ``1 + i % (nprocs - 1) == rank``.
    cfg_dict : dict
        The run's :class:`~byzcore.algorithms.RunConfig` fields.
    nprocs : int
        Processes, the server included.
    timeout_s : float
        Per-round deadline of each transfer, in seconds.
    idle_timeout_s : float
        Return when the server published no plan for this long (it is gone).
    faults : dict or None, optional
        Injected failures (see the module docstring); this process acts on its own
        ``hang``, ``malformed``, ``truncated``, ``wrong_round`` and ``stall``.
    factory : callable or None, optional
        ``factory(workers, split=, seed=) -> Problem``, instead of the problem by name.

    Returns
    -------
    int
        The number of rounds this process answered.
    """
    _cfg, problem, alg, attack, byz = _setup(cfg_dict, factory)
    mine = set(_workers_of(rank, nprocs, problem.n_workers))
    byz_set = {int(b) for b in byz}
    flipped = problem.with_flipped_labels(sorted(byz_set)) if attack.flips_labels and byz_set else problem
    state = alg.init_worker_state()
    wire = wire_dtype(problem.itemsize)
    at = {kind: {int(r): int(s) for r, s in (faults or {}).get(kind, {}).items()}.get(rank)
          for kind in ("hang", "malformed", "truncated", "wrong_round")}
    stall = (faults or {}).get("stall", {}).get(rank) or (faults or {}).get("stall", {}).get(str(rank))
    d = alg.d
    transport.store.set(f"pid/{rank}", str(os.getpid()))
    answered = 0
    while True:
        if transport.link is None:
            transport.join()  # a send or receive failed: ask for a fresh link before the next round
        head = transport.next_plan(idle_timeout_s)
        if head is None:
            return answered
        seq = head["seq"]
        if at["hang"] is not None and seq >= at["hang"]:
            time.sleep(idle_timeout_s)  # a stalled process: alive, silent
            return answered
        if stall is not None and seq == stall[0]:
            _sleep_until_plan(transport, stall[1], idle_timeout_s)  # then wakes and rejoins
            continue
        clients = [int(c) for c in head["clients"]]
        good = np.array([c for c in clients if c in mine and c not in byz_set], dtype=np.int64)
        evil = np.array([c for c in clients if c in mine and c in byz_set], dtype=np.int64)
        if not transport.linked(head):
            if transport.needs_join(head):
                transport.join()  # the server dropped this link (or never had it): a fresh one for the next rounds
            continue
        if not (good.size or evil.size):
            continue
        arrays = transport.recv_plan(head, timeout_s)
        if arrays is None:
            continue
        _, plan = decode_plan(head, arrays)
        fault = next((k for k in ("malformed", "truncated", "wrong_round") if at[k] == seq), None)
        sent = True
        for ids, data in ((good, problem), (evil, flipped)):
            if ids.size and sent:
                for w, row in zip(ids, alg.worker_messages(data, plan, ids, state)):
                    vec, shift = _faulty(row.astype(wire, copy=False), wire, fault)
                    sent = sent and transport.send(seq + shift, w, vec, d, wire, timeout_s)
        answered += 1


# ---------------------------------------------------------------------------- entry points
def rank_main(rank: int, world: int, cfg_dict: dict, options: dict) -> Any:
    """What every process runs (under :func:`spawn` or torchrun): :func:`serve` on rank 0,
    :func:`work` on the others.

    Parameters
    ----------
    rank, world : int
        This process's rank and the number of processes, as the launcher says (they must
        match the torchrun environment).
    cfg_dict : dict
        The run's :class:`~byzcore.algorithms.RunConfig` fields.
    options : dict
        ``timeout_s`` (per-round deadline, default 30), ``store_timeout_s`` (300),
        ``startup_timeout_s`` (the server's wait for the workers' links, 120),
        ``idle_timeout_s`` (a worker's wait for a plan, default ``max(60, 4 * timeout_s)``),
        ``progress``, ``faults`` and ``problem_factory`` (as :func:`run_distributed`).

    Returns
    -------
    Result or int
        The server's :class:`~byzcore.algorithms.Result` on rank 0, the number of rounds
        answered elsewhere.

    Raises
    ------
    ValueError
        ``world < 2``, or a configuration the run refuses.
    RuntimeError
        The launcher's rank or world size differs from the environment's.
    """
    store, r, w = connect_store(options.get("store_timeout_s", 300.0))
    if (r, w) != (rank, world):  # pragma: no cover - a launcher bug
        raise RuntimeError(f"[run] rank/world mismatch: launcher says {rank}/{world}, environment {r}/{w}")
    timeout_s = float(options.get("timeout_s", 30.0))
    store_timeout_s = float(options.get("store_timeout_s", 300.0))
    if world < 2:
        raise ValueError("[run] the torch-distributed backend needs --nprocs >= 2 (one server, one worker process)")
    if rank == 0:
        return serve(ServerTransport(store, link_timeout_s=min(timeout_s, 10.0), store_timeout_s=store_timeout_s),
                     cfg_dict, world, timeout_s=timeout_s,
                     startup_timeout_s=float(options.get("startup_timeout_s", 120.0)),
                     progress=bool(options.get("progress", False)), faults=options.get("faults"),
                     factory=options.get("problem_factory"))
    transport = WorkerTransport(store, rank, link_timeout_s=max(60.0, 4 * timeout_s), store_timeout_s=store_timeout_s)
    return work(transport, rank, cfg_dict, world, timeout_s=timeout_s,
                idle_timeout_s=float(options.get("idle_timeout_s", max(60.0, 4 * timeout_s))),
                faults=options.get("faults"), factory=options.get("problem_factory"))


def run_distributed(config: Any = None, *, nprocs: int | None = None, timeout_s: float = 30.0,
                    faults: dict | None = None, progress: bool = False, run_timeout_s: float | None = None,
                    problem_factory: Any = None, **overrides: Any):
    """Run an experiment on ``nprocs`` processes on this machine (rank 0 the server, default one
    process per worker plus the server) and return the server's
    :class:`~byzcore.algorithms.Result`, like :func:`byzcore.algorithms.run`.

    With no faults the run equals ``--backend simulation`` with the same seed (the
    algorithms of docs/spec.md#algorithms); docs/distributed.md describes the runtime.

    Parameters
    ----------
    config : RunConfig, dict or None, optional
        A :class:`~byzcore.algorithms.RunConfig` or dict of its fields (``None``: the defaults).
    nprocs : int or None, optional
        Processes, the server included (default ``workers + 1``); workers are dealt
        round-robin to the ``nprocs - 1`` worker processes.
    timeout_s : float, optional
        Per-round deadline for the workers' messages, in seconds (default 30).
    faults : dict or None, optional
        Injected failures (see the module docstring).
    progress : bool, optional
        Show the server's progress bar.
    run_timeout_s : float or None, optional
        Bound on the whole run, in seconds (default ``300 + rounds * (timeout_s + 1)``).
    problem_factory : callable or None, optional
        A module-level callable ``factory(workers, split=, seed=) -> Problem`` that every
        process calls to build its copy of the problem (instead of ``config.problem`` by
        name), for problems the registry does not name, e.g. a custom ``torch.nn.Module``.
    **overrides
        Fields of the configuration to replace.

    Returns
    -------
    Result
        The server's result; every process is gone when this returns.

    Raises
    ------
    ValueError
        ``nprocs < 2``, or a configuration key that is not a field.
    RuntimeError
        The server failed (its traceback in the message: e.g. ``zeno_pp``, which is
        asynchronous, or a configuration the algorithm refuses) or did not finish within
        ``run_timeout_s``.
    """
    from ..algorithms.config import RunConfig
    from .launch import spawn

    cfg = RunConfig.from_dict(config)
    if overrides:
        cfg = RunConfig.from_dict({**dataclasses.asdict(cfg), **overrides})
    nprocs = cfg.workers + 1 if nprocs is None else int(nprocs)
    if nprocs < 2:
        raise ValueError(f"[run] --nprocs must be >= 2 (one server, at least one worker process), got {nprocs}")
    options = {"timeout_s": timeout_s, "faults": faults or {}, "progress": progress,
               "problem_factory": problem_factory}
    if run_timeout_s is None:
        run_timeout_s = 300.0 + cfg.rounds * (timeout_s + 1.0)
    res = spawn(rank_main, nprocs, (cfg.to_dict(), options), timeout_s=run_timeout_s, backend=None, wait_for=[0],
                env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if 0 not in res.results:
        why = res.errors.get(0) or (f"the server did not finish within {run_timeout_s:.0f} s "
                                    f"(exit codes {res.exitcodes})")
        raise RuntimeError(f"[run] torch-distributed run failed on the server (rank 0):\n{why}")
    return res.results[0]
