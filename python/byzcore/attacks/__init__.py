"""Byzantine attacks (docs/spec.md#attacks): one implementation for the simulation, the
distributed runtime and the DDP hook.

An attack turns the round's :class:`AttackContext` into the messages of the Byzantine
clients. It is *omniscient* (as in the papers): it sees the honest messages of the round.
Attacks are written against a small array adapter (:class:`~byzcore.attacks.base.ArrayOps`),
so they answer NumPy arrays with NumPy arrays and torch tensors with torch tensors on the
same device; random draws come from the context's NumPy generator in both cases.

=============  ====================================================================  =========
name           Byzantine message (defaults in brackets)                              source
=============  ====================================================================  =========
none           the honest message (a control run)
shift-back     if Byzantines are a strict majority of the sampled clients: the       [MRHG23]
               message that steers the aggregate so that the next iterate is
               ``x^0``; else honest (``when=half``: at least half, a stronger
               variant)
sign-flip      ``-s * mean(honest)`` [``s=1``]                                       [AEL21]
ipm            ``-eps * mean(honest)`` [``eps=0.1``, the paper's value vs. Krum]     [XKG20]
alie           ``mean - z * std`` per coordinate (population std), ``z =             [BBG19]
               PhiInverse((n - s)/n)``, ``s = floor(n/2 + 1) - f``; not clamped
               where finite; ``s`` is kept in ``1..n-1`` (see :func:`alie_z`)
gaussian       ``N(0, sigma^2 I)`` [``sigma=200``, the standard deviation of the     [XKG18]
               Gaussian attack]
label-flip     the honest computation on flipped labels (``y -> -y``; classes        [AEL21]
               ``c -> C - 1 - c``)
nan / inf      a message full of NaN / +Inf
zero           the zero message
scale          ``factor * own`` [``factor=-100``] (tests and demonstrations)
mimic          a copy of one honest client [``target=ID``; default the lowest-id     [KHJ22]
               honest client of the round]
opt-alie       ALIE with ``z`` chosen by a line search that maximises the distance   [ByzFL]
               between the server's aggregate and the honest mean
opt-ipm        IPM with ``eps`` chosen by the same search                            [ByzFL]
minmax         ``mean + gamma * p`` [``direction=std``; ``unit``, ``sign``], the     [SH21]
               largest ``gamma`` with
               ``max_i ||m - h_i||^2 <= max_ij ||h_i - h_j||^2``
minsum         the same with ``sum_i ||m - h_i||^2 <= max_i sum_j ||h_i - h_j||^2``  [SH21]
=============  ====================================================================  =========

The line search (:func:`~byzcore.attacks.search.line_search`) calls the server's aggregator
(the byzcore kernel) at most ``points + 1 + refine`` times (29 by default: a geometric grid
up to ``hi=1024`` with the fixed attack's default scale among its points, then a
golden-section refinement), on copies so that stateful rules are not advanced.

[MRHG23] Malinovsky, Richtarik, Horvath, Gorbunov. Byzantine robustness and partial
participation can be achieved at once: just clip gradient differences. arXiv 2311.14127.
[AEL21] Allen-Zhu, Ebrahimian, Li, Alistarh. Byzantine-resilient non-convex stochastic
gradient descent. ICLR 2021 (sign and label flipping as used throughout the literature).
[XKG20] Xie, Koyejo, Gupta. Fall of empires: breaking Byzantine-tolerant SGD by inner product
manipulation. UAI 2019, PMLR 115 (2020).
[BBG19] Baruch, Baruch, Goldberg. A little is enough: circumventing defenses for distributed
learning. NeurIPS 2019.
[XKG18] Xie, Koyejo, Gupta. Generalized Byzantine-tolerant SGD. arXiv 1802.10116 (and Zeno,
ICML 2019): Gaussian vectors of standard deviation 200.
[KHJ22] Karimireddy, He, Jaggi. Byzantine-robust learning on heterogeneous datasets via
bucketing. ICLR 2022.
[SH21] Shejwalkar, Houmansadr. Manipulating the Byzantine: optimizing model poisoning attacks
and defenses for federated learning. NDSS 2021.
[ByzFL] The ByzFL library's Optimal_ALittleIsEnough / Optimal_InnerProductManipulation
(Allouah et al., AISTATS 2023); byzcore's search differs (see ``line_search``).

Build one by name with :func:`make_attack` (``"alie"``, ``"alie:z=1.5"``, ``"ipm:0.5"``,
``"minmax:direction=sign"``).
"""

from __future__ import annotations

from typing import Any, Callable

from .._spec import option, parse_spec
from .base import ArrayOps, Attack, AttackContext
from .classic import (
    ALIE,
    IPM,
    Gaussian,
    LabelFlip,
    Mimic,
    NoAttack,
    NonFinite,
    Scale,
    ShiftBack,
    SignFlip,
    Zero,
    alie_z,
)
from .search import MinMax, MinSum, OptimalALIE, OptimalIPM, line_search

__all__ = [
    "ALIE", "IPM", "ArrayOps", "Attack", "AttackContext", "Gaussian", "LabelFlip", "Mimic", "MinMax", "MinSum",
    "NoAttack", "NonFinite", "OptimalALIE", "OptimalIPM", "Scale", "ShiftBack", "SignFlip", "Zero", "alie_z",
    "available_attacks", "line_search", "make_attack",
]


def _searched(cls: type) -> tuple[Callable[..., Attack], str | None, dict[str, Callable[[str], Any]]]:
    return cls, "agg", {"agg": str, "hi": float, "points": int, "refine": int}


# name: (factory, positional option, {option: converter})
_ATTACKS: dict[str, tuple[Callable[..., Attack], str | None, dict[str, Callable[[str], Any]]]] = {
    "none": (NoAttack, None, {}),
    "shift-back": (ShiftBack, "when", {"when": str}),
    "sign-flip": (SignFlip, "s", {"s": float}),
    "ipm": (IPM, "eps", {"eps": float}),
    "alie": (ALIE, "z", {"z": float}),
    "gaussian": (Gaussian, "sigma", {"sigma": float}),
    "label-flip": (LabelFlip, None, {}),
    "nan": (lambda: NonFinite(float("nan")), None, {}),
    "inf": (lambda: NonFinite(float("inf")), None, {}),
    "zero": (Zero, None, {}),
    "scale": (Scale, "factor", {"factor": float}),
    "mimic": (Mimic, "target", {"target": int}),
    "opt-alie": _searched(OptimalALIE),
    "opt-ipm": _searched(OptimalIPM),
    "minmax": (MinMax, "direction", {"direction": str}),
    "minsum": (MinSum, "direction", {"direction": str}),
}
_KEYS = {name.replace("-", "_"): name for name in _ATTACKS}  # _spec's normalised names
_ALIASES = {"shiftback": "shift-back", "signflip": "sign-flip", "labelflip": "label-flip", "noise": "gaussian",
            "honest": "none", "nonfinite": "nan", "a_little_is_enough": "alie", "optimal_alie": "opt-alie",
            "optimal_ipm": "opt-ipm", "min_max": "minmax", "min_sum": "minsum"}


def available_attacks() -> list[str]:
    """Attack names :func:`make_attack` knows.

    Returns
    -------
    list of str
        Sorted names (aliases such as ``signflip`` are accepted too).

    References
    ----------
    docs/spec.md#attacks
    """
    return sorted(_ATTACKS)


def make_attack(spec: str | Attack | None, *, op: str = "make_attack") -> Attack:
    """Build an attack from ``name``, ``name:value`` or ``name:key=value,...``.

    Parameters
    ----------
    spec : str, Attack or None
        A spec string (``"ipm:eps=0.5"``, ``"ipm:0.5"``, ``"opt-alie:agg=median"``), an
        :class:`Attack` (returned as it is) or ``None`` (no attack).
    op : str, default "make_attack"
        The name errors start with (the caller's, e.g. ``robust_hook``).

    Returns
    -------
    Attack
        The attack; a :class:`NoAttack` for ``None``.

    Raises
    ------
    TypeError
        ``spec`` is neither a string, an :class:`Attack` nor ``None``.
    ValueError
        Unknown name, option or value; the message starts with ``[op]``.

    References
    ----------
    docs/spec.md#attacks
    """
    if spec is None:
        return NoAttack()
    if isinstance(spec, Attack):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"[{op}] an attack must be a spec string like 'alie' or 'ipm:eps=0.5' or an Attack, "
                        f"got {type(spec).__name__}")
    (part,) = parse_spec(op, spec, chain=False)
    key = _ALIASES.get(part.name.replace("_", ""), _ALIASES.get(part.name, _KEYS.get(part.name)))
    if key is None:
        raise ValueError(f"[{op}] unknown attack {part.name!r}; known: {', '.join(available_attacks())}")
    factory, positional, converters = _ATTACKS[key]
    raw = dict(part.options)
    if part.positional is not None:
        if positional is None:
            raise ValueError(f"[{op}] {key} takes no positional option (in {part.text!r})")
        if positional in raw:
            raise ValueError(f"[{op}] option {positional!r} given twice in {part.text!r}")
        raw[positional] = part.positional
    unknown = sorted(set(raw) - set(converters))
    if unknown:
        known = ", ".join(sorted(converters)) or "none"
        raise ValueError(f"[{op}] unknown option {unknown[0]!r} for {key} in {part.text!r}; its options: {known}")
    opts = {k: option(op, part, k, v, converters[k]) for k, v in raw.items()}
    try:
        return factory(**opts)
    except ValueError as exc:
        raise ValueError(f"[{op}] {key} in {part.text!r}: {exc}") from None
