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

import numpy as np

from .. import _streams
from .base import Algorithm, Plan


class ZenoPP(Algorithm):
    """Zeno++. ``rho``, ``eps``, ``k_v`` (arrivals between validation refreshes), ``n_r``
    (validation batch), ``max_delay`` (staleness drawn uniformly in ``0..max_delay``).

    Defaults follow the authors' experiment scripts (``xcgoner/iclr2020_zeno_async``,
    ``experiment_script_1.sh``: ``--rho 0.001 --epsilon 0 --zeno-delay 10 --max-delay 10``
    with 10 workers, 6 Byzantine): ``rho = 1e-3``, ``eps = 0``, ``k_v = 10``,
    ``max_delay = 10``. ``n_r`` stays 32 (their ``--zeno-batchsize`` is 128 on CIFAR-10).
    """

    name = "zeno_pp"
    uses_aggregator = False

    def __init__(self, problem, *, rho: float = 1e-3, eps: float = 0.0, k_v: int = 10, n_r: int = 32,
                 max_delay: int = 10, **kw):
        super().__init__(problem, **kw)
        if k_v < 1 or n_r < 1 or max_delay < 0:
            raise ValueError(f"[{self.name}] need k_v >= 1, n_r >= 1, max_delay >= 0; got {k_v}, {n_r}, {max_delay}")
        self.rho, self.eps = float(rho), float(eps)
        self.k_v, self.n_r, self.max_delay = int(k_v), int(n_r), int(max_delay)
        self.history = deque([self.x], maxlen=self.max_delay + 1)
        self.v = None
        self._since_refresh = 0
        self.updates = 0
        self.accepted = 0
        self.staleness = 0

    def describe(self) -> dict:
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
        self.staleness = int(plan.info.get("staleness", 0))
        if self.v is None or self._since_refresh >= self.k_v:
            idx = self.problem.validation_indices(_streams.server_rng(self.seed, _streams.VALIDATION, plan.round), self.n_r)
            self.v = np.asarray(self.problem.validation_gradient(self.x, idx), dtype=np.float64)
            self._since_refresh = 0
        self._since_refresh += 1
        self.accepted = 0
        rows = np.asarray(messages, dtype=np.float64).reshape(-1, self.d)
        self.last_accepted = np.zeros(len(rows), dtype=bool)
        for r, u in enumerate(rows):
            if self.test(u):
                self.last_accepted[r] = True
                nv, nu = float(np.linalg.norm(self.v)), float(np.linalg.norm(u))
                self.x = self.x - self.lr * (nv / nu) * u
                self.history.append(self.x)
                self.updates += 1
                self.accepted += 1

    def test(self, u: np.ndarray) -> bool:
        """Zeno++'s test on a candidate (after rescaling it to ``||v||``)."""
        with np.errstate(all="ignore"):
            nu = float(np.linalg.norm(u))
            nv = float(np.linalg.norm(self.v))
            if not (math.isfinite(nu) and nu > 0 and math.isfinite(nv)):
                return False
            us = (nv / nu) * u
            score = self.lr * float(self.v @ us) - self.rho * float(us @ us)
        return bool(score >= -self.lr * self.eps)

    def round_stats(self) -> dict:
        return {"accepted": self.accepted, "staleness": self.staleness}

    # ------------------------------------------------------------------ workers
    def worker_messages(self, problem, plan: Plan, workers, state: dict) -> np.ndarray:
        workers = np.asarray(workers, dtype=np.int64)
        g = problem.stochastic_gradients(plan.x, workers, self.batch, self.seed, plan.round)
        return self.compress(g, workers, plan.round)


def run_concurrent(alg: ZenoPP, problem, attack, byzantine: np.ndarray, rounds: int, *,
                   on_arrival=None, timeout: float = 600.0) -> None:
    """Run Zeno++ with one real thread per worker for ``rounds`` arrivals.

    ``problem`` is what honest workers compute on, ``byzantine`` the boolean mask of Byzantine
    workers (they compute on flipped labels if the attack flips labels, and send
    ``attack(...)`` with their own honest gradient as the reference). Each worker keys its
    random draws by its own arrival count. ``on_arrival(k)`` is called by the server thread
    after arrival ``k`` is processed (metrics).
    """
    from ..attacks import AttackContext

    lock = threading.Lock()
    inbox: queue.Queue = queue.Queue(maxsize=max(2, alg.n))
    stop = threading.Event()
    flipped = problem.with_flipped_labels(np.flatnonzero(byzantine)) if getattr(attack, "flips_labels", False) else problem
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
        except BaseException as exc:  # noqa: BLE001 - re-raised by the server thread
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
