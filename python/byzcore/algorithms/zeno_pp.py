"""Zeno++: asynchronous robust SGD.

Xie, Koyejo, Gupta. *Zeno++: robust fully asynchronous SGD.* ICML 2020 (arXiv 1903.07020).

Workers compute gradients on stale models and arrive one at a time. The server keeps a
validation gradient ``v = grad f_r(x)`` on a fresh validation minibatch, refreshed every
``k_v`` arrivals. For an arriving candidate ``u``::

    u <- (||v|| / ||u||) u                       (rescaled to the validation gradient's norm)
    score = gamma <v, u> - rho ||u||^2
    if score >= -gamma eps:  x <- x - gamma u    (else the candidate is dropped)

Two modes:

* ``mode="simulated"`` (default, reproducible): arrival ``k`` comes from worker ``w_k``
  (uniform) and was computed on the model of ``tau_k`` accepted updates ago, ``tau_k``
  uniform in ``0..max_delay``, both drawn from the seeded stream ``(seed, ARRIVAL, k)``.
* ``mode="threads"`` (:func:`run_concurrent`): one thread per worker pulls the current model,
  computes (NumPy releases the GIL in its BLAS calls) and pushes; the server thread
  processes arrivals as they come. Staleness is then real and runs are not bit-reproducible.

An asynchronous round holds one message, so an attack's "honest messages" are the arriving
Byzantine worker's own honest gradient (ALIE then sends it unchanged: its spread is zero).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from .. import _streams
from .base import Algorithm, Plan


class ZenoPP(Algorithm):
    """Zeno++: asynchronous SGD that applies each arriving gradient that passes a descent test.

    One round is one arrival: a single worker's gradient ``u`` computed on a stale model.
    The server keeps ``v = grad f_r(x)`` on a fresh validation minibatch of ``n_r`` samples,
    refreshed every ``k_v`` arrivals, and for each candidate (rejected if ``||u||`` is 0 or
    not finite)::

        u <- (||v|| / ||u||) u;   score = gamma <v, u> - rho ||u||^2
        if score >= -gamma eps:   x <- x - gamma u

    In the simulated mode (:meth:`plan`) arrival ``k`` comes from a uniformly drawn worker and
    was computed on the model of ``tau_k`` accepted updates ago, ``tau_k`` uniform in
    ``0..max_delay`` (at most the updates so far); :func:`run_concurrent` runs real threads.
    The problem must offer ``validation_indices`` and ``validation_gradient``. Uses no
    aggregator, and defines no shift-back target.

    Defaults follow the authors' experiment scripts (``xcgoner/iclr2020_zeno_async``,
    ``experiment_script_1.sh``: ``--rho 0.001 --epsilon 0 --zeno-delay 10 --max-delay 10``
    with 10 workers, 6 Byzantine). ``n_r`` stays 32 (their ``--zeno-batchsize`` is 128 on
    CIFAR-10).

    Parameters
    ----------
    problem : Problem
        The problem, with a validation set.
    rho : float, default 1e-3
        Weight of ``||u||^2`` in the score.
    eps : float, default 0.0
        Acceptance slack ``epsilon``.
    k_v : int, default 10
        Arrivals between refreshes of the validation gradient, >= 1.
    n_r : int, default 32
        Validation minibatch size, >= 1.
    max_delay : int, default 10
        The largest staleness of the simulated mode, >= 0.
    **kw
        ``lr``, ``f``, ``batch``, ``compressor``, ``seed`` of
        :class:`~byzcore.algorithms.base.Algorithm` (``aggregator`` is accepted and unused).

    Raises
    ------
    ValueError
        ``k_v < 1``, ``n_r < 1`` or ``max_delay < 0``.

    References
    ----------
    docs/spec.md#alg-zeno-pp

    Xie, Koyejo, Gupta. *Zeno++: robust fully asynchronous SGD.* ICML 2020 (arXiv 1903.07020).
    """

    name = "zeno_pp"
    uses_aggregator = False
    problem: Any  # a problem with a validation set (validation_indices, validation_gradient)

    def __init__(self, problem, *, rho: float = 1e-3, eps: float = 0.0, k_v: int = 10, n_r: int = 32,
                 max_delay: int = 10, **kw):
        super().__init__(problem, **kw)
        if k_v < 1 or n_r < 1 or max_delay < 0:
            raise ValueError(f"[{self.name}] need k_v >= 1, n_r >= 1, max_delay >= 0; got {k_v}, {n_r}, {max_delay}")
        self.rho, self.eps = float(rho), float(eps)
        self.k_v, self.n_r, self.max_delay = int(k_v), int(n_r), int(max_delay)
        self.history = deque([self.x], maxlen=self.max_delay + 1)
        self.v: np.ndarray | None = None  # the validation gradient, from the first arrival on
        self._since_refresh = 0
        self.updates = 0
        self.accepted = 0
        self.staleness = 0

    def describe(self) -> dict:
        """The parameters (see :meth:`Algorithm.describe`), with ``rho``, ``eps``, ``k_v``,
        ``n_r`` and ``max_delay``.

        References
        ----------
        docs/spec.md#alg-zeno-pp
        """
        return {**super().describe(), "rho": self.rho, "eps": self.eps, "k_v": self.k_v, "n_r": self.n_r,
                "max_delay": self.max_delay}

    # ------------------------------------------------------------------ server
    def plan(self, k: int) -> Plan:
        """Arrival ``k``: which worker, and the (stale) model it computed on."""
        rng = _streams.server_rng(self.seed, _streams.ARRIVAL, k)
        w = int(rng.integers(self.n))
        tau = min(int(rng.integers(self.max_delay + 1)), len(self.history) - 1)
        self.round = k
        return Plan(k, np.array([w]), self.history[-1 - tau], info={"staleness": tau})

    def server_step(self, plan: Plan, messages: np.ndarray) -> None:
        """Test each arrival against the validation gradient and apply those that pass
        (see :meth:`Algorithm.server_step`).

        References
        ----------
        docs/spec.md#alg-zeno-pp
        """
        self.staleness = int(plan.info.get("staleness", 0))
        if self.v is None or self._since_refresh >= self.k_v:
            rng = _streams.server_rng(self.seed, _streams.VALIDATION, plan.round)
            idx = self.problem.validation_indices(rng, self.n_r)
            self.v = np.asarray(self.problem.validation_gradient(self.x, idx), dtype=np.float64)
            self._since_refresh = 0
        self._since_refresh += 1
        self.accepted = 0
        rows = np.asarray(messages, dtype=np.float64).reshape(-1, self.d)
        self.last_accepted = np.zeros(len(rows), dtype=bool)
        for r, u in enumerate(rows):
            if self.test(u):
                self.last_accepted[r] = True
                nv, nu = float(np.linalg.norm(self._v())), float(np.linalg.norm(u))
                self.x = self.x - self.lr * (nv / nu) * u
                self.history.append(self.x)
                self.updates += 1
                self.accepted += 1

    def test(self, u: np.ndarray) -> bool:
        """Zeno++'s test on a candidate (after rescaling it to ``||v||``)."""
        with np.errstate(all="ignore"):
            nu = float(np.linalg.norm(u))
            v = self._v()
            nv = float(np.linalg.norm(v))
            if not (math.isfinite(nu) and nu > 0 and math.isfinite(nv)):
                return False
            us = (nv / nu) * u
            score = self.lr * float(v @ us) - self.rho * float(us @ us)
        return bool(score >= -self.lr * self.eps)

    def _v(self) -> np.ndarray:
        if self.v is None:
            raise ValueError(f"[{self.name}] no validation gradient before the first server_step")
        return self.v

    def round_stats(self) -> dict:
        """The last arrival's figures for the metrics (staleness, accepted).

        References
        ----------
        docs/spec.md#metrics
        """
        return {"accepted": self.accepted, "staleness": self.staleness}

    # ------------------------------------------------------------------ workers
    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        """Minibatch gradients of ``workers`` at the plan's (stale) model (see
        :meth:`Algorithm.worker_messages`).

        References
        ----------
        docs/spec.md#alg-zeno-pp
        """
        workers = np.asarray(workers, dtype=np.int64)
        g = problem.stochastic_gradients(plan.x, workers, self.batch, self.seed, plan.round)
        return self.compress(g, workers, plan.round)


def run_concurrent(alg: ZenoPP, problem, attack, byzantine: np.ndarray, rounds: int, *,
                   on_arrival=None, timeout: float = 600.0) -> None:
    """Run Zeno++ with one real thread per worker for ``rounds`` arrivals.

    Each worker thread repeatedly reads the current model, computes its message and queues it;
    the calling thread is the server and processes arrivals in the order they come, with the
    real staleness (updates applied since the worker read the model). Each worker keys its
    random draws by its own arrival count; runs are not bit-reproducible. The whole run holds
    ``problem.compute_scope()``.

    Parameters
    ----------
    alg : ZenoPP
        The algorithm; its model is updated in place.
    problem : Problem
        What the honest workers compute on.
    attack : Attack
        The Byzantine workers' attack. A Byzantine worker computes its honest gradient (on
        flipped labels if ``attack.flips_labels``) and sends ``attack(ctx)`` with that
        gradient as ``ctx.own`` and no honest messages.
    byzantine : numpy.ndarray
        ``(n,)`` boolean mask of the Byzantine workers.
    rounds : int
        Arrivals to process.
    on_arrival : callable or None, default None
        ``on_arrival(k, plan)``, called by the server thread after arrival ``k`` (from 1) is
        processed, with the :class:`~byzcore.algorithms.base.Plan` it was processed under
        (e.g. to record metrics).
    timeout : float, default 600.0
        Seconds from the start after which waiting for an arrival fails.

    Raises
    ------
    TimeoutError
        No arrival came and ``timeout`` seconds have passed since the start.
    Exception
        The first exception raised in a worker thread, re-raised by the server.

    References
    ----------
    docs/spec.md#alg-zeno-pp
    """
    from ..attacks import AttackContext

    lock = threading.Lock()
    inbox: queue.Queue = queue.Queue(maxsize=max(2, alg.n))
    stop = threading.Event()
    flips = getattr(attack, "flips_labels", False)
    flipped = problem.with_flipped_labels(np.flatnonzero(byzantine)) if flips else problem
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        count = 0
        try:
            while not stop.is_set():
                with lock:
                    x, version = alg.x, alg.updates
                count += 1
                plan = Plan(count, np.array([w]), x)
                if byzantine[w]:
                    own = alg.worker_messages(flipped, plan, [w], {})
                    ctx = AttackContext(honest=own[:0], own=own, n=1, f=1, round=count,
                                        rng=_streams.server_rng(alg.seed, _streams.ATTACK, count * alg.n + w))
                    u = np.asarray(attack(ctx), dtype=np.float64).reshape(1, -1)
                else:
                    u = alg.worker_messages(problem, plan, [w], {})
                while not stop.is_set():
                    try:
                        inbox.put((w, version, u), timeout=0.05)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True, name=f"zeno-pp-worker-{w}")
               for w in range(alg.n)]
    # Process-wide settings of the problem (torch's thread count) are set here, once, by the
    # calling thread: worker threads setting and restoring them would race.
    with problem.compute_scope():
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        try:
            for k in range(1, rounds + 1):
                while True:
                    if errors:
                        raise errors[0]
                    try:
                        w, version, u = inbox.get(timeout=0.05)
                        break
                    except queue.Empty:
                        if time.monotonic() > deadline:
                            raise TimeoutError("[zeno_pp] concurrent run timed out") from None
                with lock:
                    plan = Plan(k, np.array([w]), alg.x, info={"staleness": alg.updates - version})
                    alg.round = k
                    alg.server_step(plan, u)
                if on_arrival is not None:
                    on_arrival(k, plan)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5.0)
