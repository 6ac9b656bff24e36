"""What defines a run: :class:`RunConfig`, the algorithm registry and the Byzantine set."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

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
    """Everything that defines a run (the command line's options, one to one).

    ``clients_per_round=None`` means all workers, except for ``byz_vr_marina_pp`` where it
    means ``ceil(workers / 4)`` (partial participation is the point of that method).
    ``alpha=inf`` runs Byz-VR-MARINA-PP without clipping. ``declared_f`` is the ``f`` the rule
    (and Zeno's ``b``) is told, ``None``: the real number ``byzantine``; ``reg`` is logistic
    regression's regulariser (``nonconvex`` or ``l2``); ``optimality_gap`` records
    ``gap = f(x^k) - f*``; ``attack_space`` (Byz-VR-MARINA(-PP)), ``clip_alpha`` and
    ``local_steps`` (sgd/resam) and ``zeno_penalty`` are described in docs/spec.md#algorithms.
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
    """The Byzantine workers of a run: a seeded uniform choice (ascending)."""
    if not 0 <= byzantine < workers:
        raise ValueError(f"[run] byzantine must be in 0..workers-1={workers - 1}, got {byzantine}")
    rng = _streams.server_rng(seed, _streams.BYZANTINE_SET)
    return np.sort(rng.choice(workers, size=byzantine, replace=False)).astype(np.int64)


def make_algorithm(config: RunConfig, problem: Problem) -> Algorithm:
    """The algorithm object a configuration describes, on ``problem``."""
    name = algorithm_name(config.algorithm)
    f = config.byzantine if config.declared_f is None else int(config.declared_f)
    if not 0 <= f < config.workers:
        raise ValueError(f"[run] declared_f must be in 0..workers-1={config.workers - 1}, got {f}")
    common = dict(lr=config.lr, aggregator=config.aggregator, f=f, batch=config.batch,
                  compressor=config.compressor, seed=config.seed)
    C = config.clients_per_round
    sgd_only = dict(local_steps=config.local_steps, clip_alpha=config.clip_alpha)
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
