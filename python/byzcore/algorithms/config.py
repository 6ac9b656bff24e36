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
