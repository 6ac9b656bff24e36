"""What defines a run: :class:`RunConfig`, the algorithm registry and the Byzantine set."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import _streams
from ..problems import Problem
from .base import Algorithm
from .byz_vr_marina_pp import ByzVRMarina, ByzVRMarinaPP
from .resam import RESAM
from .results import jsonable
from .sgd import RobustSGD
from .zeno import Zeno
from .zeno_pp import ZenoPP

__all__ = ["ALGORITHMS", "RunConfig", "algorithm_name", "byzantine_ids", "make_algorithm"]


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
    """The registry key of an algorithm name or alias (``"zeno++"`` -> ``"zeno_pp"``).

    Parameters
    ----------
    name : str
        A key of :data:`ALGORITHMS` or an alias (``marina_pp``, ``zeno++``, ``robust_sgd``,
        ...), in any case; ``-`` is read as ``_``.

    Returns
    -------
    str
        The key of :data:`ALGORITHMS`.

    Raises
    ------
    ValueError
        ``[run] unknown algorithm ...`` with the known names.
    """
    key = _ALIASES.get(name.lower(), name.lower().replace("-", "_"))
    if key not in ALGORITHMS:
        raise ValueError(f"[run] unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return key


@dataclass
class RunConfig:
    """Everything that defines a run.

    Each field is the ``byzcore run`` option of its name (``clients_per_round``:
    ``--clients-per-round``). :func:`~byzcore.algorithms.run` reads it;
    :func:`make_algorithm` builds the algorithm from it. An algorithm-specific field is
    ignored by the other algorithms, except ``attack_space``, ``local_steps``,
    ``clip_alpha`` and ``mode``, which must keep their defaults elsewhere (``ValueError``).
    The algorithms' parameters are defined in docs/spec.md#algorithms.

    Parameters
    ----------
    algorithm : str, default "byz_vr_marina_pp"
        A name or alias of :data:`ALGORITHMS` (:func:`algorithm_name`).
    problem : str, default "a9a-synthetic"
        A name of :func:`~byzcore.problems.available_problems` (docs/spec.md#problems).
    split : str, default "homogeneous"
        How the data is split across the workers (docs/spec.md#problem-splits).
    workers : int, default 15
        The number of workers ``n``.
    byzantine : int, default 3
        The number of Byzantine workers, in ``0..workers-1``, chosen by the seed
        (:func:`byzantine_ids`).
    attack : str, default "shift-back"
        The attack's spec string (:func:`~byzcore.attacks.make_attack`, docs/spec.md#attacks).
    aggregator : str, default "bucketing:2+median"
        The robust rule's spec string (docs/spec.md#spec-strings); unused by ``zeno`` and
        ``zeno_pp``.
    clients_per_round : int or None, default None
        Clients sampled per round; ``None``: all workers, except for ``byz_vr_marina_pp``
        where it means ``ceil(workers / 4)`` (partial participation is the point of that
        method). Unused by ``byz_vr_marina`` and ``zeno_pp``.
    rounds : int, default 500
        Rounds, >= 0 (for ``zeno_pp``: arrivals).
    lr : float, default 0.5
        The step size ``gamma``.
    alpha : float, default 1.0
        ``byz_vr_marina_pp``'s clip multiplier; ``inf`` runs it without clipping.
    p : float, default 0.1
        ``byz_vr_marina(_pp)``: the probability of a full-gradient round.
    compressor : str, default "none"
        ``"none"`` or ``"rand_k:K"``.
    batch : int, default 32
        Minibatch size per worker; 0 = the full local gradient.
    seed : int, default 0
        Seeds every random draw: data, split, Byzantine set, sampling, attacks.
    lam : float, default 0.01
        Logistic regression's regulariser weight (docs/spec.md#problem-logreg).
    reg : str, default "nonconvex"
        Logistic regression's regulariser: ``"nonconvex"`` or ``"l2"``.
    n_samples : int or None, default None
        Rows of the synthetic dataset (``None``: 32,561) or images of ``cnn_mnist``
        (``None``: all 5,000), for quick runs; ignored by the other problems.
    eval_every : int, default 1
        Record metrics every this many rounds (>= 1), and at the last round.
    declared_f : int or None, default None
        The ``f`` the rule (and Zeno's default ``b``) is told, in ``0..workers-1``;
        ``None``: ``byzantine``.
    optimality_gap : bool, default False
        Record ``gap = loss - f*`` (logistic regression only; docs/spec.md#metrics).
    c_hat : int or None, default None
        ``byz_vr_marina_pp``: clients in full rounds; ``None``: all workers.
    attack_space : str, default "difference"
        ``byz_vr_marina(_pp)``: ``"difference"`` or ``"estimator"`` (what the Byzantine
        workers replace).
    clip_alpha : float or None, default None
        ``sgd`` / ``resam``: the clipping heuristic's multiplier; ``None``: no clipping.
    local_steps : int, default 1
        ``sgd`` / ``resam``: FedAvg-style local steps per round.
    beta : float, default 0.9
        ``resam``: the worker momentum.
    rho : float or None, default None
        ``zeno`` / ``zeno_pp``: weight of ``||u||^2`` in the score; ``None``: ``5e-4`` for
        ``zeno``, ``1e-3`` for ``zeno_pp``.
    zeno_b : int or None, default None
        ``zeno``: candidates dropped per round; ``None``: ``min(f, C - 1)`` with ``f`` the
        declared ``f``.
    n_r : int, default 32
        ``zeno`` / ``zeno_pp``: the validation minibatch size.
    zeno_penalty : str, default "sum"
        ``zeno``: ``"sum"`` (``rho ||u||^2``, the paper) or ``"mean"`` (``rho ||u||^2 / d``,
        the authors' code).
    eps : float, default 0.0
        ``zeno_pp``: the acceptance slack ``epsilon``.
    k_v : int, default 10
        ``zeno_pp``: arrivals between validation-gradient refreshes.
    max_delay : int, default 10
        ``zeno_pp``: the largest staleness of the simulated mode.
    mode : str, default "simulated"
        ``zeno_pp``: ``"simulated"`` (seeded staleness, reproducible) or ``"threads"`` (real
        concurrent worker threads, :func:`~byzcore.algorithms.run_concurrent`); the other
        algorithms need ``"simulated"``.
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
    reg: str = "nonconvex"
    n_samples: int | None = None
    eval_every: int = 1
    declared_f: int | None = None
    optimality_gap: bool = False
    # algorithm-specific
    c_hat: int | None = None
    attack_space: str = "difference"
    clip_alpha: float | None = None
    local_steps: int = 1
    beta: float = 0.9
    rho: float | None = None
    zeno_b: int | None = None
    n_r: int = 32
    zeno_penalty: str = "sum"
    eps: float = 0.0
    k_v: int = 10
    max_delay: int = 10
    mode: str = "simulated"

    @classmethod
    def from_dict(cls, d: dict | RunConfig | None) -> RunConfig:
        """A configuration from a dict of fields (or a copy of one; ``None``: the defaults).

        Raises
        ------
        ValueError
            ``[run] unknown configuration keys ...`` for a key that is not a field.
        """
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
        """The fields as a strict-JSON dict (``inf`` becomes ``None``)."""
        return {k: jsonable(v) for k, v in dataclasses.asdict(self).items()}


def byzantine_ids(workers: int, byzantine: int, seed: int) -> np.ndarray:
    """The Byzantine workers of a run: a seeded uniform choice, without replacement.

    Parameters
    ----------
    workers : int
        The number of workers ``n``.
    byzantine : int
        How many are Byzantine, in ``0..workers-1``.
    seed : int
        The run's seed (stream ``(seed, BYZANTINE_SET)``).

    Returns
    -------
    numpy.ndarray
        ``(byzantine,)`` int64 worker ids, ascending.

    Raises
    ------
    ValueError
        ``[run] byzantine must be in 0..workers-1 ...``.
    """
    if not 0 <= byzantine < workers:
        raise ValueError(f"[run] byzantine must be in 0..workers-1={workers - 1}, got {byzantine}")
    rng = _streams.server_rng(seed, _streams.BYZANTINE_SET)
    return np.sort(rng.choice(workers, size=byzantine, replace=False)).astype(np.int64)


def make_algorithm(config: RunConfig, problem: Problem) -> Algorithm:
    """The algorithm object a configuration describes, on ``problem``.

    Parameters
    ----------
    config : RunConfig
        The run's configuration (its algorithm fields, ``workers``, ``byzantine`` and
        ``seed`` are read).
    problem : Problem
        The problem the algorithm runs on.

    Returns
    -------
    Algorithm
        A fresh algorithm of the configured class, at ``problem.x0()``.

    Raises
    ------
    ValueError
        An unknown algorithm; ``declared_f`` (or ``byzantine``) outside ``0..workers-1``;
        ``local_steps`` / ``clip_alpha`` set for an algorithm other than ``sgd`` / ``resam``;
        ``attack_space`` set for one other than ``byz_vr_marina(_pp)``; or a parameter the
        algorithm refuses.

    References
    ----------
    docs/spec.md#algorithms
    """
    name = algorithm_name(config.algorithm)
    f = config.byzantine if config.declared_f is None else int(config.declared_f)
    if not 0 <= f < config.workers:
        raise ValueError(f"[run] declared_f must be in 0..workers-1={config.workers - 1}, got {f}")
    common: dict[str, Any] = dict(lr=config.lr, aggregator=config.aggregator, f=f, batch=config.batch,
                  compressor=config.compressor, seed=config.seed)
    C = config.clients_per_round
    sgd_only: dict[str, Any] = dict(local_steps=config.local_steps, clip_alpha=config.clip_alpha)
    if name not in ("sgd", "resam") and (config.local_steps != 1 or config.clip_alpha is not None):
        raise ValueError("[run] local_steps and clip_alpha (the clipping heuristic) exist for sgd and resam only")
    if name not in ("byz_vr_marina_pp", "byz_vr_marina") and config.attack_space != "difference":
        raise ValueError("[run] attack_space exists for byz_vr_marina(_pp) only")
    if name == "byz_vr_marina_pp":
        if C is None:
            C = math.ceil(config.workers / 4)
        return ByzVRMarinaPP(problem, p=config.p, alpha=config.alpha, clients_per_round=C, c_hat=config.c_hat,
                             attack_space=config.attack_space, **common)
    if name == "byz_vr_marina":
        return ByzVRMarina(problem, p=config.p, attack_space=config.attack_space, **common)
    if name == "sgd":
        return RobustSGD(problem, clients_per_round=C, **sgd_only, **common)
    if name == "resam":
        return RESAM(problem, beta=config.beta, clients_per_round=C, **sgd_only, **common)
    if name == "zeno":
        return Zeno(problem, rho=5e-4 if config.rho is None else config.rho, b=config.zeno_b, n_r=config.n_r,
                    penalty=config.zeno_penalty, clients_per_round=C, **common)
    return ZenoPP(problem, rho=1e-3 if config.rho is None else config.rho, eps=config.eps, k_v=config.k_v,
                  n_r=config.n_r, max_delay=config.max_delay, **common)
