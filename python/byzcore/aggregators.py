"""Composable aggregator objects and the name registry.

An aggregator maps ``n`` messages to one vector: ``agg(X) -> vector``, has a ``name`` and the
number ``f`` of Byzantine messages it tolerates. Pre-aggregators (:class:`NNM`,
:class:`Bucketing` without an inner rule) map ``n`` messages to ``m`` messages and compose
with ``>>``::

    Bucketing(Median(), s=2)       # bucket means, then the median of the buckets
    NNM(f) >> Krum(f)              # nearest-neighbour mixing, then Krum
    make_aggregator("bucketing:2+median", f=3, seed=0)   # the same from a string

The string grammar (used by the command line) is ``part+part+...+rule``: every part but the
last is a pre-aggregator (``nnm``, ``bucketing:S``), the last a rule, each ``name`` or
``name:arg`` or ``name:key=value,key=value``.
"""

from __future__ import annotations

from typing import Any, Callable

from . import _ops


class Aggregator:
    """Base class: subclasses set ``name`` and ``f`` and implement ``__call__``."""

    name = "aggregator"
    f = 0
    reduces = True  # False for pre-aggregators, which return n' messages

    def __call__(self, X: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __rshift__(self, other: "Aggregator") -> "Chain":
        return Chain(self, other)

    def __repr__(self) -> str:
        return self.name


class Chain(Aggregator):
    """``pre >> rule``: apply a pre-aggregator, then the next stage."""

    def __init__(self, first: Aggregator, second: Aggregator):
        if first.reduces:
            raise ValueError(f"[aggregator] {first.name} reduces to one vector and cannot be followed by {second.name}; "
                             "only pre-aggregators (nnm, bucketing without a rule) may come first")
        self.first, self.second = first, second
        self.name = f"{first.name}+{second.name}"
        self.f = max(first.f, second.f)
        self.reduces = second.reduces

    def __call__(self, X: Any) -> Any:
        return self.second(self.first(X))


class Mean(Aggregator):
    name = "mean"

    def __call__(self, X: Any) -> Any:
        return _ops.mean(X)


class Median(Aggregator):
    name = "median"

    def __init__(self, f: int = 0):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.median(X)


class TrimmedMean(Aggregator):
    name = "trimmed_mean"

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.trimmed_mean(X, min(self.f, (_count(X) - 1) // 2))


class Krum(Aggregator):
    name = "krum"

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.krum(X, min(self.f, _count(X) - 3))


class MultiKrum(Aggregator):
    name = "multi_krum"

    def __init__(self, f: int, m: int | None = None):
        self.f, self.m = f, m

    def __call__(self, X: Any) -> Any:
        f = min(self.f, _count(X) - 3)
        return _ops.multi_krum(X, f, self.m)


class GeometricMedian(Aggregator):
    name = "geometric_median"

    def __init__(self, f: int = 0, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7):
        self.f, self.nu, self.max_iter, self.tol = f, nu, max_iter, tol

    def __call__(self, X: Any) -> Any:
        return _ops.geometric_median(X, nu=self.nu, max_iter=self.max_iter, tol=self.tol)


class CenteredClipping(Aggregator):
    """Centered clipping; by default centred at the previous aggregate, as Karimireddy et al. do."""

    name = "centered_clipping"

    def __init__(self, f: int = 0, tau: float = 1.0, iters: int = 1, use_previous: bool = True):
        self.f, self.tau, self.iters, self.use_previous = f, tau, iters, use_previous
        self._previous = None

    def __call__(self, X: Any) -> Any:
        out = _ops.centered_clipping(X, self.tau, center=self._previous, iters=self.iters)
        if self.use_previous:
            self._previous = out
        return out


class NNM(Aggregator):
    """Nearest-neighbour mixing, a pre-aggregator: ``NNM(f) >> rule``."""

    name = "nnm"
    reduces = False

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.nnm(X, min(self.f, _count(X) - 1))


class Bucketing(Aggregator):
    """Bucketing with bucket size ``s``: ``Bucketing(Median(), s=2)`` is a rule; with no inner
    rule it is a pre-aggregator returning the bucket means. Each call draws a new shuffle
    from ``seed`` (call ``t`` uses ``seed + t``), so runs are reproducible."""

    name = "bucketing"

    def __init__(self, inner: Aggregator | None = None, s: int = 2, seed: int = 0):
        self.inner, self.s, self.seed = inner, s, seed
        self.f = inner.f if inner is not None else 0
        self.reduces = inner is not None
        self.name = f"bucketing:{s}" + (f"+{inner.name}" if inner is not None else "")
        self._calls = 0

    def __call__(self, X: Any) -> Any:
        seed = (self.seed + self._calls) % 2**64
        self._calls += 1
        if self.inner is not None:
            return _ops.bucketing(X, self.s, self.inner, seed=seed)
        return _ops.bucketing(X, self.s, _identity_stack, seed=seed)


def _identity_stack(means: Any) -> Any:
    return means


def _count(X: Any) -> int:
    return len(X) if isinstance(X, (list, tuple)) else int(X.shape[0])


# ---------------------------------------------------------------- registry
_RULES: dict[str, Callable[..., Aggregator]] = {}


def register(*names: str) -> Callable[[Callable[..., Aggregator]], Callable[..., Aggregator]]:
    """Register a factory ``factory(f=..., seed=..., **options) -> Aggregator`` under names."""

    def deco(factory: Callable[..., Aggregator]) -> Callable[..., Aggregator]:
        for n in names:
            _RULES[n] = factory
        return factory

    return deco


register("mean", "average")(lambda f, seed: Mean())
register("median", "cwmed")(lambda f, seed: Median(f))
register("trimmed_mean", "tm", "cwtm")(lambda f, seed, f_=None: TrimmedMean(f if f_ is None else int(f_)))
register("krum")(lambda f, seed: Krum(f))
register("multi_krum", "mkrum")(lambda f, seed, m=None: MultiKrum(f, None if m is None else int(m)))
register("geometric_median", "gm", "rfa")(
    lambda f, seed, nu=1e-6, max_iter=100, tol=1e-7: GeometricMedian(f, float(nu), int(max_iter), float(tol)))
register("centered_clipping", "cc")(
    lambda f, seed, tau=1.0, iters=1: CenteredClipping(f, float(tau), int(iters)))
register("nnm")(lambda f, seed: NNM(f))
register("bucketing")(lambda f, seed, s=2: Bucketing(None, int(s), seed))


def available() -> list[str]:
    """Names the registry knows."""
    return sorted(_RULES)


def _parse_part(part: str) -> tuple[str, dict[str, str]]:
    name, _, rest = part.strip().partition(":")
    opts: dict[str, str] = {}
    if rest:
        for i, item in enumerate(rest.split(",")):
            key, eq, value = item.partition("=")
            if eq:
                opts[key.strip()] = value.strip()
            elif i == 0:
                opts["_positional"] = key.strip()
            else:
                raise ValueError(f"[make_aggregator] cannot read option {item!r} in {part!r}; write key=value")
    return name.strip().lower(), opts


_POSITIONAL = {"bucketing": "s", "trimmed_mean": "f_", "tm": "f_", "cwtm": "f_", "centered_clipping": "tau",
               "cc": "tau", "multi_krum": "m", "mkrum": "m"}


def make_aggregator(spec: str | Aggregator, f: int = 0, seed: int = 0) -> Aggregator:
    """Build an aggregator from a string such as ``"bucketing:2+median"`` or ``"nnm+krum"``.

    ``f`` is the number of Byzantine messages each rule tolerates, ``seed`` seeds bucketing.
    An :class:`Aggregator` is returned as it is.
    """
    if isinstance(spec, Aggregator):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"[make_aggregator] spec must be a non-empty string like 'bucketing:2+median', got {spec!r}")
    stages = []
    for part in spec.split("+"):
        name, opts = _parse_part(part)
        if name not in _RULES:
            raise ValueError(f"[make_aggregator] unknown aggregator {name!r} in {spec!r}; known: {', '.join(available())}")
        if "_positional" in opts:
            key = _POSITIONAL.get(name)
            if key is None:
                raise ValueError(f"[make_aggregator] {name} takes no positional option (in {spec!r})")
            opts[key] = opts.pop("_positional")
        try:
            stages.append(_RULES[name](f, seed, **opts))
        except TypeError as exc:
            raise ValueError(f"[make_aggregator] bad options for {name} in {spec!r}: {exc}") from None
    agg = stages[-1]
    for i in range(len(stages) - 2, -1, -1):
        stage = stages[i]
        if isinstance(stage, Bucketing) and stage.inner is None and agg.reduces:
            b = Bucketing(agg, stage.s, stage.seed)  # bucketing:S+rule is Bucketing(rule, s=S)
            agg = b
        else:
            agg = Chain(stage, agg)
    if not agg.reduces:
        raise ValueError(f"[make_aggregator] {spec!r} ends with a pre-aggregator; add a rule, e.g. '{spec}+median'")
    return agg


# ---------------------------------------------------------------- catalogue rules (issue 9)
# These objects never lower f on their own: below a rule's bound on n the call raises, so a
# user who asked for f Byzantine messages never silently gets less protection.
class MeaMed(Aggregator):
    """Mean around the median, :func:`byzcore.meamed`; needs ``n > 2f``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated.

    Raises
    ------
    ValueError
        On a call with ``n <= 2f``.

    References
    ----------
    Xie, Koyejo, Gupta 2018; see ``docs/rules.md``.
    """

    name = "meamed"

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.meamed(X, self.f)


class Bulyan(Aggregator):
    """Bulyan, :func:`byzcore.bulyan`; needs ``n >= 4f + 3``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated.

    Raises
    ------
    ValueError
        On a call with ``n < 4f + 3``.

    References
    ----------
    El Mhamdi, Guerraoui, Rouault, ICML 2018; see ``docs/rules.md``.
    """

    name = "bulyan"

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.bulyan(X, self.f)


class MoNNA(Aggregator):
    """MoNNA, :func:`byzcore.monna`: mean of the ``n - f`` messages nearest to ``pivot``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated; calls need ``n > 2f``.
    pivot : int
        Index of the trusted message (default 0).

    Raises
    ------
    ValueError
        On a call with ``n <= 2f`` or a pivot outside ``0..n-1``.

    References
    ----------
    Farhadkhani et al., ICML 2023; see ``docs/rules.md``.
    """

    name = "monna"

    def __init__(self, f: int, pivot: int = 0):
        self.f, self.pivot = f, pivot

    def __call__(self, X: Any) -> Any:
        return _ops.monna(X, self.f, self.pivot)


class CGE(Aggregator):
    """Comparative gradient elimination, :func:`byzcore.cge`; needs ``n > 2f``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated (the ``f`` largest norms are dropped).

    Raises
    ------
    ValueError
        On a call with ``n <= 2f``.

    References
    ----------
    Gupta, Liu, Vaidya 2021; see ``docs/rules.md``.
    """

    name = "cge"

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.cge(X, self.f)


class FedTrimmedAvg(Aggregator):
    """Trimmed mean by fraction, as Flower's ``FedTrimmedAvg``: ``trimmed_mean(X, beta=beta)``,
    which trims ``int(beta * n)`` values at each end.

    Parameters
    ----------
    beta : float
        Fraction trimmed at each end, in ``[0, 0.5)``.

    Raises
    ------
    ValueError
        On a ``beta`` outside ``[0, 0.5)`` (at construction).
    """

    name = "fed_trimmed_avg"

    def __init__(self, beta: float):
        if not 0.0 <= float(beta) < 0.5:
            raise ValueError(f"[fed_trimmed_avg] beta must be in [0, 0.5), got {beta}")
        self.beta = float(beta)

    def __call__(self, X: Any) -> Any:
        return _ops.trimmed_mean(X, beta=self.beta)


class Clipping(Aggregator):
    """Static norm clipping of every message, a pre-aggregator: ``Clipping(tau) >> rule``.

    Parameters
    ----------
    tau : float
        Clipping radius: each ``x_i`` becomes ``min(1, tau / ||x_i||) x_i`` (:func:`byzcore.clip`).

    Raises
    ------
    ValueError
        On a negative ``tau`` (at the call, from the kernel).
    """

    name = "clipping"
    reduces = False

    def __init__(self, tau: float, f: int = 0):
        self.tau, self.f = float(tau), f

    def __call__(self, X: Any) -> Any:
        return _ops.clip(X, self.tau)


class ARC(Aggregator):
    """Adaptive robust clipping, a pre-aggregator: ``ARC(f) >> rule`` (:func:`byzcore.arc`).

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated; calls need ``n > 2f``.

    Raises
    ------
    ValueError
        On a call with ``n <= 2f``.

    References
    ----------
    Allouah et al., NeurIPS 2024; see ``docs/rules.md``.
    """

    name = "arc"
    reduces = False

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return _ops.arc(X, self.f)


register("meamed")(lambda f, seed: MeaMed(f))
register("bulyan")(lambda f, seed: Bulyan(f))
register("monna")(lambda f, seed, pivot=0: MoNNA(f, int(pivot)))
register("cge")(lambda f, seed: CGE(f))
register("fed_trimmed_avg", "trimmed_mean_fraction")(lambda f, seed, beta=0.2: FedTrimmedAvg(float(beta)))
register("clipping", "clip")(lambda f, seed, tau=1.0: Clipping(float(tau), f))
register("arc")(lambda f, seed: ARC(f))
_POSITIONAL.update({"monna": "pivot", "fed_trimmed_avg": "beta", "trimmed_mean_fraction": "beta",
                    "clipping": "tau", "clip": "tau"})


# ---------------------------------------------------------------- subset rules (docs/rules.md#subset-rules-mda-smea-caf-dnc)
# f is passed as given: the rule raises below its bound (n > 2f), never tolerating fewer silently.


class _RuleOfF(Aggregator):
    """A rule whose only parameter is ``f``: calls ``rule(X, f)`` with ``f`` as given."""

    rule: Callable[[Any, int], Any]

    def __init__(self, f: int):
        self.f = f

    def __call__(self, X: Any) -> Any:
        return type(self).rule(X, self.f)


class MDA(_RuleOfF):
    """Minimum-diameter averaging (:func:`byzcore.mda`) with ``f`` Byzantine messages.

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call on ``n <= 2f`` messages raises ``ValueError``.
    """

    name = "mda"
    rule = staticmethod(_ops.mda)


class SMEA(Aggregator):
    """Smallest maximum eigenvalue averaging (:func:`byzcore.smea`).

    Parameters
    ----------
    f : int
        As in :class:`MDA`.
    max_subsets : int, optional
        The search budget of :func:`byzcore.smea` (past it the call raises ``ValueError``);
        default :func:`byzcore.smea_default_budget` of the number of messages.
    """

    name = "smea"

    def __init__(self, f: int, max_subsets: int | None = None):
        self.f, self.max_subsets = f, max_subsets

    def __call__(self, X: Any) -> Any:
        return _ops.smea(X, self.f, max_subsets=self.max_subsets)


class CAF(_RuleOfF):
    """Covariance-bound agnostic filter (:func:`byzcore.caf`); ``f`` as in :class:`MDA`."""

    name = "caf"
    rule = staticmethod(_ops.caf)


class DnC(Aggregator):
    """Divide-and-conquer (:func:`byzcore.dnc`). Call ``t`` draws its coordinates from
    ``seed + t``, so each round of training samples new coordinates and runs are reproducible.

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call on ``n <= 2f`` messages raises ``ValueError``.
    iters, sub_dim, c, seed
        As in :func:`byzcore.dnc`.
    """

    name = "dnc"

    def __init__(self, f: int, iters: int = 1, sub_dim: int = 10000, c: float = 1.0, seed: int = 0):
        self.f, self.iters, self.sub_dim, self.c, self.seed = f, iters, sub_dim, c, seed
        self._calls = 0

    def __call__(self, X: Any) -> Any:
        seed = (self.seed + self._calls) % 2**64
        self._calls += 1
        return _ops.dnc(X, self.f, iters=self.iters, sub_dim=self.sub_dim, c=self.c, seed=seed)


register("mda")(lambda f, seed: MDA(f))
register("smea")(lambda f, seed, max_subsets=None: SMEA(f, None if max_subsets is None else int(max_subsets)))
register("caf")(lambda f, seed: CAF(f))
register("dnc")(lambda f, seed, iters=1, sub_dim=10000, c=1.0: DnC(f, int(iters), int(sub_dim), float(c), seed))
