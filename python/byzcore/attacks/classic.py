"""The fixed attacks of docs/spec.md#attacks (sources and defaults in :mod:`byzcore.attacks`)."""

from __future__ import annotations

import math
from statistics import NormalDist

from .base import Attack, AttackContext

__all__ = ["ALIE", "IPM", "Gaussian", "LabelFlip", "Mimic", "NoAttack", "NonFinite", "Scale", "ShiftBack",
           "SignFlip", "Zero", "alie_z"]


def _finite(op: str, name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"[{op}] {name} must be a finite number, got {value}")
    return value


def _scaled_mean(ctx: AttackContext, scale: float):
    ops = ctx.ops()
    return ops.tile(scale * ops.mean(ctx.reference()), ctx.f)


class NoAttack(Attack):
    """Byzantine clients behave honestly (a control run).

    References
    ----------
    docs/spec.md#attack-none
    """

    name = "none"

    def __call__(self, ctx: AttackContext):
        return ctx.ops().copy(ctx.own)


class ShiftBack(Attack):
    """Shift-back (Malinovsky, Richtarik, Horvath, Gorbunov, arXiv 2311.14127).

    In a round where the Byzantine clients are a strict majority of the sampled set (the
    paper's rule), each sends the message that makes the aggregate return the next iterate to
    ``x^0``; otherwise they behave honestly and stay hidden. ``when="half"`` attacks as soon
    as they are at least half, a stronger variant.

    Parameters
    ----------
    when : str, default "majority"
        ``"majority"`` (attack when ``2f > n``) or ``"half"`` (when ``2f >= n``).

    Raises
    ------
    ValueError
        Another ``when``; when called, an algorithm that defines no shift-back target
        (Zeno++).

    References
    ----------
    docs/spec.md#attack-shift-back
    """

    name = "shift-back"
    needs_target = True

    def __init__(self, when: str = "majority"):
        if when not in ("majority", "half"):
            raise ValueError(f"[shift-back] when must be 'majority' or 'half', got {when!r}")
        self.when = when

    def __call__(self, ctx: AttackContext):
        if ctx.target is None:
            raise ValueError("[shift-back] this algorithm defines no shift-back target; "
                             "use shift-back with byz_vr_marina_pp, sgd, resam or zeno")
        strong = 2 * ctx.f >= ctx.n if self.when == "half" else 2 * ctx.f > ctx.n
        ops = ctx.ops()
        if ctx.f > 0 and strong:
            return ops.tile(ops.asarray(ctx.target()), ctx.f)
        return ops.copy(ctx.own)


class SignFlip(Attack):
    """Sign flipping: ``-s * mean(honest)``.

    Parameters
    ----------
    s : float, default 1.0
        The scale; must be finite (else ``ValueError``).

    References
    ----------
    docs/spec.md#attack-sign-flip
    """

    name = "sign-flip"

    def __init__(self, s: float = 1.0):
        self.s = _finite(self.name, "s", s)

    def __call__(self, ctx: AttackContext):
        return _scaled_mean(ctx, -self.s)


class IPM(Attack):
    """Inner product manipulation (Xie, Koyejo, Gupta, UAI 2019): ``-eps * mean(honest)``,
    so that the aggregate's inner product with the true gradient turns negative.

    Parameters
    ----------
    eps : float, default 0.1
        The scale (the value the paper uses against Krum); must be finite (else
        ``ValueError``).

    References
    ----------
    docs/spec.md#attack-ipm
    """

    name = "ipm"

    def __init__(self, eps: float = 0.1):
        self.eps = _finite(self.name, "eps", eps)

    def __call__(self, ctx: AttackContext):
        return _scaled_mean(ctx, -self.eps)


def alie_z(n: int, f: int) -> float:
    """ALIE's ``z = PhiInverse((n - s) / n)`` with ``s = floor(n/2 + 1) - f`` (Baruch et al.).

    Parameters
    ----------
    n, f : int
        Messages the server receives and Byzantine messages among them.

    Returns
    -------
    float
        The paper's ``z_max``. The formula is finite only for ``1 <= s <= n - 1``; ``s`` is
        clamped to that range: a Byzantine majority (``s <= 0``, where the paper's formula
        is ``+inf``) gets the largest finite value ``PhiInverse((n - 1)/n)``, and ``n < 2``
        (nothing to hide among) gets ``0``.

    References
    ----------
    docs/spec.md#attack-alie
    """
    n, f = int(n), int(f)
    if n < 2:
        return 0.0
    s = min(max(n // 2 + 1 - f, 1), n - 1)
    return -NormalDist().inv_cdf(s / n)  # = PhiInverse((n - s)/n), without rounding (n - s)/n to 1


class ALIE(Attack):
    """A little is enough (Baruch, Baruch, Goldberg, NeurIPS 2019): per coordinate
    ``mean - z * std`` of the honest messages (population std), small enough to pass every
    robust rule.

    Parameters
    ----------
    z : float or None, default None
        The scale, finite (else ``ValueError``); ``None``: :func:`alie_z` of the round's
        ``n`` and ``f``.

    References
    ----------
    docs/spec.md#attack-alie
    """

    name = "alie"

    def __init__(self, z: float | None = None):
        self.z = None if z is None else _finite(self.name, "z", z)

    def __call__(self, ctx: AttackContext):
        ops, ref = ctx.ops(), ctx.reference()
        z = alie_z(ctx.n, ctx.f) if self.z is None else self.z
        return ops.tile(ops.mean(ref) - z * ops.std(ref), ctx.f)


class Gaussian(Attack):
    """Gaussian noise ``N(0, sigma^2 I)``, independent of the honest messages.

    Parameters
    ----------
    sigma : float, default 200.0
        The standard deviation (Xie, Koyejo, Gupta's Gaussian attack); finite and >= 0
        (else ``ValueError``).

    References
    ----------
    docs/spec.md#attack-gaussian
    """

    name = "gaussian"

    def __init__(self, sigma: float = 200.0):
        self.sigma = _finite(self.name, "sigma", sigma)
        if self.sigma < 0:
            raise ValueError(f"[gaussian] sigma must be >= 0, got {self.sigma}")

    def __call__(self, ctx: AttackContext):
        return ctx.ops().asarray(ctx.rng.normal(0.0, self.sigma, size=tuple(ctx.own.shape)))


class LabelFlip(Attack):
    """Label flipping: the Byzantine clients run the honest computation on flipped labels
    (``y -> -y`` for binary problems, ``c -> C - 1 - c`` for ``C`` classes); the runner
    flips them, so the messages are the context's ``own``.

    References
    ----------
    docs/spec.md#attack-label-flip
    """

    name = "label-flip"
    flips_labels = True

    def __call__(self, ctx: AttackContext):
        return ctx.ops().copy(ctx.own)


class NonFinite(Attack):
    """Messages full of NaN (``nan``) or +Inf (``inf``): every robust rule must neutralise them.

    Parameters
    ----------
    value : float, default nan
        The value of every coordinate: NaN (the attack's name is then ``nan``) or +Inf. Any
        float is accepted; every value other than NaN is named ``inf``.

    References
    ----------
    docs/spec.md#attack-nonfinite, docs/spec.md#nonfinite
    """

    def __init__(self, value: float = float("nan")):
        self.value = float(value)
        self.name = "nan" if math.isnan(self.value) else "inf"

    def __call__(self, ctx: AttackContext):
        return ctx.ops().full(tuple(ctx.own.shape), self.value)


class Zero(Attack):
    """The zero message: a client that contributes nothing (a crash or a free rider).

    References
    ----------
    docs/spec.md#attack-zero
    """

    name = "zero"

    def __call__(self, ctx: AttackContext):
        return ctx.ops().full(tuple(ctx.own.shape), 0.0)


class Scale(Attack):
    """``factor * own``: the Byzantine clients' honest message, scaled (a crude large-norm
    attack for tests and demonstrations; no paper).

    Parameters
    ----------
    factor : float, default -100.0
        The scale; must be finite (else ``ValueError``).

    References
    ----------
    docs/spec.md#attack-scale
    """

    name = "scale"

    def __init__(self, factor: float = -100.0):
        self.factor = _finite(self.name, "factor", factor)

    def __call__(self, ctx: AttackContext):
        return self.factor * ctx.own


class Mimic(Attack):
    """Mimic (Karimireddy, He, Jaggi, ICLR 2022): every Byzantine client copies one honest
    client, over-weighting it, which hurts on heterogeneous data.

    Parameters
    ----------
    target : int or None, default None
        The id of the client to copy; by default, or when ``target`` is not in the round, the
        lowest-id honest client of the round (the paper chooses the target by a warm-up
        estimate of the direction of largest variance; a fixed target is the simple form).

    References
    ----------
    docs/spec.md#attack-mimic
    """

    name = "mimic"

    def __init__(self, target: int | None = None):
        self.target = None if target is None else int(target)

    def __call__(self, ctx: AttackContext):
        ops = ctx.ops()
        if len(ctx.honest) == 0:
            return ops.copy(ctx.own)
        ids = [int(i) for i in ctx.honest_ids]
        row = ids.index(min(ids)) if len(ids) == len(ctx.honest) else 0
        if self.target is not None and self.target in ids:
            row = ids.index(self.target)
        return ops.tile(ctx.honest[row], ctx.f)
