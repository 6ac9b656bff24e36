"""Byzantine-robust training algorithms (docs/spec.md#algorithms) on the byzcore kernels.

Quick use::

    import byzcore.algorithms as A
    res = A.run(algorithm="byz_vr_marina_pp", attack="shift-back", rounds=500)
    res.final            # {'loss': ..., 'grad_norm': ..., 'accuracy': ...}
    res.save("runs/demo")   # metrics.jsonl, summary.json (byzcore.experiments.save_result adds curves.png)

Algorithms (classes, all subclasses of :class:`Algorithm`): :class:`ByzVRMarinaPP` (and
:func:`ByzVRMarina`, its special case), :class:`Zeno`, :class:`ZenoPP`, :class:`RESAM`,
:class:`RobustSGD`. :func:`run` builds one from a :class:`RunConfig` and simulates it.

Interface for a distributed runtime (``byzcore.distributed``)
-------------------------------------------------------------
The simulation (:func:`simulate`) is the one round loop (:class:`RoundLoop`, in
``loop.py``) driven by a *collect* callable that computes the clients' rows in-process; a
server drives the same loop with a collect that gathers its workers' rows. Its pieces, in the
order a server-worker runtime calls them (which reproduces the simulation exactly)::

    alg = make_algorithm(cfg, problem)             # same object on the server and on each worker
    byz = byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    state = alg.init_worker_state()                # on each worker (rows indexed by worker id)
    if (plan := alg.initial_plan()) is not None:   # server; then one round as below
        ...
    for k in range(1, cfg.rounds + 1):
        plan = alg.plan(k)                         # SERVER: draws clients, moves x; broadcast `plan`
        row = alg.worker_messages(problem, plan, [i], state)   # WORKER i in plan.clients -> (1, d)
        msgs = stack rows in plan.clients order    # SERVER gathers
        msgs = apply_attack(attack, alg, plan, msgs, byz_mask[plan.clients], cfg.seed)  # SERVER
        alg.server_step(plan, msgs)                # SERVER: aggregate (byzcore kernels), update

* ``worker_messages`` is separable: row ``r`` depends only on worker ``workers[r]``, the
  plan, the run seed and ``state`` rows of that worker; computing ``[i]`` alone gives the
  same bits as row ``i`` of the all-worker call. Worker draws (minibatches, ``rand_k``
  coordinates) are keyed by ``(seed, purpose, round, worker)`` (:mod:`byzcore._streams`).
* Byzantine workers compute their honest row too (on flipped labels if
  ``attack.flips_labels``: ``problem.with_flipped_labels(byz)``); the omniscient attack is
  applied by the server with :func:`apply_attack` (keyed ``(seed, ATTACK, round)``).
* The server alone draws clients/coins/validation batches (``server_rng`` keyed by round)
  and calls the aggregator once per round in round order (bucketing's shuffles depend on
  that count).
* Metrics: ``problem.evaluate(alg.model(), honest_ids)`` after each round.
"""

from __future__ import annotations

from .base import Algorithm, Plan, apply_attack, parse_compressor
from .byz_vr_marina_pp import ByzVRMarina, ByzVRMarinaPP
from .config import ALGORITHMS, RunConfig, algorithm_name, byzantine_ids, make_algorithm
from .loop import Round, RoundLoop, run, simulate, simulated_collect
from .resam import RESAM
from .results import Result, jsonable
from .sgd import RobustSGD
from .zeno import Zeno
from .zeno_pp import ZenoPP, run_concurrent

__all__ = [
    "ALGORITHMS",
    "RESAM",
    "Algorithm",
    "ByzVRMarina",
    "ByzVRMarinaPP",
    "Plan",
    "Result",
    "RobustSGD",
    "Round",
    "RoundLoop",
    "RunConfig",
    "Zeno",
    "ZenoPP",
    "algorithm_name",
    "apply_attack",
    "byzantine_ids",
    "jsonable",
    "make_algorithm",
    "parse_compressor",
    "run",
    "run_concurrent",
    "simulate",
    "simulated_collect",
]
