"""Byzantine attacks of docs/spec.md#attacks.

An attack turns the round's context into the messages of the Byzantine clients. It is
*omniscient* (as in the papers): it sees the honest messages of the round. Every attack works
with every algorithm; ``shift-back`` needs the algorithm to say which message returns the
next iterate to ``x^0`` (Byz-VR-MARINA-PP, SGD, RESAM and Zeno do; Zeno++ does not).

=============  ====================================================================  =========
name           Byzantine message                                                     source
=============  ====================================================================  =========
none           the honest message (a control run)
shift-back     if Byzantines are >= half of the sampled clients: the message that    [MRHG23]
               steers the aggregate so the next iterate is ``x^0``; else honest
sign-flip      ``-s * mean(honest)`` (``s=1``)                                       [AKL20]
ipm            ``-eps * mean(honest)`` (``eps=0.1``)                                 [XKG20]
alie           ``mean - z * std`` per coordinate, ``z = PhiInverse((n - s) / n)``,   [BBG19]
               ``s = floor(n/2 + 1) - f`` (``n`` messages, ``f`` Byzantine)
gaussian       ``N(0, sigma^2 I)`` (``sigma = sqrt(200)``)                           [XKG19]
label-flip     the honest computation on flipped labels (``y -> -y``; classes        [AKL20]
               ``c -> C - 1 - c``)
nan / inf      a message full of NaN (``nan``) or +Inf (``inf``)
mimic          a copy of one honest client's message (``target=ID``, default the     [KHJ22]
               lowest-id honest client of the round)
=============  ====================================================================  =========

[MRHG23] Malinovsky, Richtarik, Horvath, Gorbunov. Byzantine robustness and partial
participation can be achieved at once: just clip gradient differences. arXiv 2311.14127.
[AKL20] Allen-Zhu, Ebrahimian, Li, Alistarh. Byzantine-resilient non-convex SGD, ICLR 2021
(sign flipping and label flipping as used throughout the literature).
[XKG20] Xie, Koyejo, Gupta. Fall of empires: breaking Byzantine-tolerant SGD by inner product
manipulation. UAI 2019.
[BBG19] Baruch, Baruch, Goldberg. A little is enough: circumventing defenses for distributed
learning. NeurIPS 2019.
[XKG19] Xie, Koyejo, Gupta. Zeno: distributed SGD with suspicion-based fault-tolerance.
ICML 2019.
[KHJ22] Karimireddy, He, Jaggi. Byzantine-robust learning on heterogeneous datasets via
bucketing. ICLR 2022.

Build one by name with :func:`make_attack` (``"alie"``, ``"alie:z=1.5"``, ``"sign-flip:s=4"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable

import numpy as np

__all__ = [
    "ALIE",
    "IPM",
    "Attack",
    "AttackContext",
    "Gaussian",
    "LabelFlip",
    "Mimic",
    "NoAttack",
    "NonFinite",
    "ShiftBack",
    "SignFlip",
    "alie_z",
    "available_attacks",
    "make_attack",
]


@dataclass
class AttackContext:
    """What the adversary sees in one round.

    ``honest``: ``(h, d)`` messages of the good clients of the round (ids ``honest_ids``);
    ``own``: ``(f, d)`` what the Byzantine clients would send if they were honest (for
    label-flip, computed on flipped labels); ``n``: messages the server receives; ``f``:
    Byzantine among them; ``rng``: the attack's random stream for this round; ``target``:
    for shift-back, a function returning the message that sends the next iterate to ``x^0``
    (``None`` where the algorithm does not define one).
    """

    honest: np.ndarray
    own: np.ndarray
    n: int
    f: int
    round: int
    rng: np.random.Generator
    honest_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    target: Callable[[], np.ndarray] | None = None

    def reference(self) -> np.ndarray:
        """The honest messages, or the Byzantines' own honest ones if no good client sent."""
        return self.honest if len(self.honest) else self.own


class Attack:
    """Base class: ``attack(ctx) -> (ctx.f, d)`` messages."""

    name = "attack"
    flips_labels = False  # the runner computes the Byzantines' own messages on flipped labels

    def __call__(self, ctx: AttackContext) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name

    def _tile(self, v: np.ndarray, ctx: AttackContext) -> np.ndarray:
        return np.repeat(np.asarray(v, dtype=np.float64).reshape(1, -1), ctx.f, axis=0)


class NoAttack(Attack):
    """Byzantine clients behave honestly (a control run)."""

    name = "none"

    def __call__(self, ctx):
        return ctx.own.copy()


class ShiftBack(Attack):
    """Shift-back (Malinovsky et al., arXiv 2311.14127, section 4): in a round where the
    Byzantine clients are at least half of the sampled set, each sends the message that makes
    the aggregate return the next iterate to ``x^0``; otherwise they behave honestly, staying
    hidden. It exploits partial participation: without clipping one such round undoes all
    progress."""

    name = "shift-back"

    def __call__(self, ctx):
        if ctx.target is None:
            raise ValueError("[shift-back] this algorithm defines no shift-back target; "
                             "use shift-back with byz_vr_marina_pp, sgd, resam or zeno")
        if ctx.f > 0 and 2 * ctx.f >= ctx.n:
            return self._tile(ctx.target(), ctx)
        return ctx.own.copy()


class SignFlip(Attack):
    """Sign flipping: ``-s * mean(honest)`` (Allen-Zhu et al., ICLR 2021; Xie et al. 2019)."""

    name = "sign-flip"

    def __init__(self, s: float = 1.0):
        self.s = float(s)

    def __call__(self, ctx):
        return self._tile(-self.s * ctx.reference().mean(axis=0), ctx)


class IPM(Attack):
    """Inner product manipulation (Xie, Koyejo, Gupta, UAI 2019): ``-eps * mean(honest)``, so
    that the aggregate's inner product with the true gradient turns negative."""

    name = "ipm"

    def __init__(self, eps: float = 0.1):
        self.eps = float(eps)

    def __call__(self, ctx):
        return self._tile(-self.eps * ctx.reference().mean(axis=0), ctx)


def alie_z(n: int, f: int) -> float:
    """ALIE's ``z = PhiInverse((n - s) / n)`` with ``s = floor(n/2 + 1) - f`` (Baruch et al.)."""
    s = math.floor(n / 2 + 1) - f
    prob = min(max((n - s) / n, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(prob)


class ALIE(Attack):
    """A little is enough (Baruch, Baruch, Goldberg, NeurIPS 2019): per coordinate
    ``mean - z * std`` of the honest messages, small enough to pass every robust rule.
    ``z`` defaults to :func:`alie_z` for the round's ``n`` and ``f``."""

    name = "alie"

    def __init__(self, z: float | None = None):
        self.z = None if z is None else float(z)

    def __call__(self, ctx):
        ref = ctx.reference()
        z = alie_z(ctx.n, ctx.f) if self.z is None else self.z
        return self._tile(ref.mean(axis=0) - z * ref.std(axis=0), ctx)


class Gaussian(Attack):
    """Gaussian noise ``N(0, sigma^2 I)`` (Xie, Koyejo, Gupta, ICML 2019 use variance 200)."""

    name = "gaussian"

    def __init__(self, sigma: float = math.sqrt(200.0)):
        self.sigma = float(sigma)

    def __call__(self, ctx):
        return ctx.rng.normal(0.0, self.sigma, size=ctx.own.shape)


class LabelFlip(Attack):
    """Label flipping: the Byzantine clients run the honest computation on flipped labels
    (``y -> -y`` for binary problems, ``c -> C - 1 - c`` for ``C`` classes)."""

    name = "label-flip"
    flips_labels = True

    def __call__(self, ctx):
        return ctx.own.copy()


class NonFinite(Attack):
    """Messages full of NaN (``nan``) or +Inf (``inf``): every robust rule must ignore them
    (docs/spec.md#nonfinite)."""

    def __init__(self, value: float = float("nan")):
        self.value = float(value)
        self.name = "nan" if math.isnan(self.value) else "inf"

    def __call__(self, ctx):
        return np.full(ctx.own.shape, self.value)


class Mimic(Attack):
    """Mimic (Karimireddy, He, Jaggi, ICLR 2022): every Byzantine client copies one honest
    client, over-weighting it - harmful on heterogeneous data. ``target`` is that client's id;
    by default (or when ``target`` is not in the round) the lowest-id honest client of the
    round."""

    name = "mimic"

    def __init__(self, target: int | None = None):
        self.target = None if target is None else int(target)

    def __call__(self, ctx):
        if len(ctx.honest) == 0:
            return ctx.own.copy()
        ids = np.asarray(ctx.honest_ids)
        row = int(np.argmin(ids)) if len(ids) == len(ctx.honest) else 0
        if self.target is not None:
            hits = np.flatnonzero(ids == self.target)
            row = int(hits[0]) if len(hits) else row  # target absent this round: the default
        return self._tile(ctx.honest[row], ctx)


_ATTACKS: dict[str, Callable[..., Attack]] = {
    "none": NoAttack, "shift-back": ShiftBack, "sign-flip": SignFlip, "ipm": IPM, "alie": ALIE,
    "gaussian": Gaussian, "label-flip": LabelFlip, "nan": lambda: NonFinite(float("nan")),
    "inf": lambda: NonFinite(float("inf")), "mimic": Mimic,
}
_ALIASES = {"shiftback": "shift-back", "signflip": "sign-flip", "labelflip": "label-flip", "noise": "gaussian",
            "honest": "none", "nonfinite": "nan", "a-little-is-enough": "alie"}


def available_attacks() -> list[str]:
    """Attack names :func:`make_attack` knows."""
    return sorted(_ATTACKS)


def make_attack(spec: str | Attack | None) -> Attack:
    """Build an attack from ``name`` or ``name:key=value,...`` (e.g. ``"ipm:eps=0.5"``)."""
    if spec is None:
        return NoAttack()
    if isinstance(spec, Attack):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"[make_attack] spec must be a string like 'alie' or 'ipm:eps=0.5', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key.replace("-", ""), _ALIASES.get(key, key))
    if key not in _ATTACKS:
        raise ValueError(f"[make_attack] unknown attack {name!r}; known: {', '.join(available_attacks())}")
    opts = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError(f"[make_attack] cannot read option {item!r} in {spec!r}; write key=value")
        opts[k.strip()] = float(v) if k.strip() != "target" else int(v)
    try:
        return _ATTACKS[key](**opts)
    except TypeError as exc:
        raise ValueError(f"[make_attack] bad options for {key} in {spec!r}: {exc}") from None
