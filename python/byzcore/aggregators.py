"""Composable aggregator objects and the name registry.

An aggregator maps ``n`` messages to one vector: ``agg(X) -> vector``, has a ``name`` and the
number ``f`` of Byzantine messages it tolerates. Pre-aggregators (:class:`NNM`,
:class:`Bucketing` without an inner rule) map ``n`` messages to ``m`` messages and compose
with ``>>``::

    Bucketing(Median(3), s=2)      # bucket means, then the median of the buckets
    NNM(f) >> Krum(f)              # nearest-neighbour mixing, then Krum
    make_aggregator("bucketing:2+median", f=3, seed=0)   # the first one, from a string

The string grammar (used by the command line) is the one of :mod:`byzcore._spec`
(docs/spec.md#spec-strings): ``part+part+...+rule``, every part but the last a pre-aggregator
(``nnm``, ``bucketing:S``, ...), the last a rule, each ``name``, ``name:arg`` or
``name:key=value,key=value``; each rule declares its options and their types (see
:func:`make_aggregator`). Composition: docs/spec.md#composition.

**Fewer messages than the bound.** A rule built for ``f`` raises when a call brings too few
messages for its bound on ``n`` (``Krum(5)`` on 4 messages: ``[krum] needs n >= f + 3``), since
it could not tolerate the ``f`` Byzantine messages asked for. A caller that knows the input
may be small (partial participation draws few clients) asks for clamping explicitly with
:meth:`Aggregator.with_clamp`: ``f`` is then lowered to the largest value the bound allows for
that call, and each such call is counted in :attr:`Aggregator.clamped`.

**State.** :class:`CenteredClipping` (its centre, the previous aggregate) and
:class:`Bucketing` (its call count, which picks the shuffle) change between calls; everything
that does is in :attr:`Aggregator.state`, and :meth:`Aggregator.reset` returns an object to
the state it was built in, so a reset object gives the results of a fresh one. The objects'
contract (bounds, clamping, state): docs/spec.md#objects; each rule's definition and bound:
its section of the spec (anchor ``rule-...`` or ``pre-...``), cited on its class.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _ops
from ._arrays import as_index, as_number, as_seed
from ._spec import SpecPart, option, parse_spec

# The largest f a bound allows for n messages (negative: none does).
_MAX_F: dict[str, Callable[[int], int]] = {
    "n > f": lambda n: n - 1,
    "n > 2f": lambda n: (n - 1) // 2,
    "n >= f + 3": lambda n: n - 3,
    "n >= 4f + 3": lambda n: (n - 3) // 4 if n >= 3 else -1,
}
_PROBE = np.zeros((1, 1))  # a 1 x 1 input: the ops check their own options on it at construction


def _count(X: Any) -> int | None:
    """The number of messages in X, or None when X is not messages (the op then says why)."""
    if isinstance(X, (list, tuple)):
        return len(X)
    shape = getattr(X, "shape", None)
    try:
        return int(shape[0]) if shape is not None and len(shape) >= 2 else None
    except (TypeError, ValueError):
        return None


def _copy(x: Any) -> Any:
    """A copy of a result array, in its own type and on its device (torch's clone, else copy)."""
    return x.clone() if hasattr(x, "clone") else x.copy()


def _check_f(op: str, f: Any) -> int:
    f = as_index(op, "f", f)
    if f < 0:
        raise ValueError(f"[{op}] f must be >= 0 (the number of Byzantine messages tolerated), got {f}")
    return f


class Aggregator:
    """Base class of the aggregator objects: ``agg(X)`` maps ``n`` messages to one (a rule) or to ``n'``.

    ``X`` is what the aggregation functions take (docs/spec.md#inputs): an ``(n, d)`` or
    ``(n, *shape)`` array or a sequence of ``n`` messages, NumPy, PyTorch or CuPy; the result is
    of the caller's array type. ``a >> b`` composes a pre-aggregator with the next stage into a
    :class:`Chain` (docs/spec.md#composition). The objects' contract: docs/spec.md#objects.

    A subclass sets ``name``, ``f`` and ``bound`` and implements ``__call__``, which takes the
    ``f`` of the call from ``self._tolerated(X)`` (``f`` if the bound holds for ``X``'s ``n``;
    else a ``ValueError``, or the clamped ``f`` with :meth:`with_clamp`). A subclass with state
    overrides ``_own_state`` and ``_reset_own`` (see :attr:`state`, :meth:`reset`); one that
    calls other aggregators returns them from :meth:`stages`.

    Attributes
    ----------
    name : str
        The rule's name as :func:`make_aggregator` writes it.
    f : int
        The number of Byzantine messages the rule tolerates.
    bound : str or None
        Its bound on ``n`` (``"n > 2f"``, ``"n >= f + 3"``, ``"n >= 4f + 3"``, ``"n > f"``), or
        None (no bound checked by the object).
    reduces : bool
        False for pre-aggregators, which return ``n'`` messages.
    on_small : str
        ``"raise"`` (default) or ``"clamp"`` (see :meth:`with_clamp`).
    """

    name = "aggregator"
    f = 0
    bound: str | None = None
    reduces = True
    on_small = "raise"
    _clamped = 0

    def __call__(self, X: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __rshift__(self, other: Aggregator) -> Chain:
        return Chain(self, other)

    def __repr__(self) -> str:
        return self.name

    def stages(self) -> tuple[Aggregator, ...]:
        """The aggregators this one calls (a chain's stages, bucketing's inner rule)."""
        return ()

    @property
    def clamped(self) -> int:
        """Calls in which a stage tolerated fewer than its ``f`` (only with :meth:`with_clamp`),
        summed over the stages."""
        return self._clamped + sum(s.clamped for s in self.stages())

    @property
    def state(self) -> dict:
        """Everything that changes between calls: ``clamped``, the rule's own state (e.g.
        ``center``, ``calls``) and, for composites, ``stages`` (their states in order)."""
        out = {"clamped": self._clamped, **self._own_state()}
        if self.stages():
            out["stages"] = [s.state for s in self.stages()]
        return out

    def reset(self) -> None:
        """Return to the state just after construction (clamp counter included), recursively."""
        self._clamped = 0
        self._reset_own()
        for s in self.stages():
            s.reset()

    def with_clamp(self) -> Aggregator:
        """A fresh copy (state reset) that lowers ``f`` to what each call's ``n`` allows instead of
        raising, counting every such call in :attr:`clamped`. This object is left unchanged.

        Returns
        -------
        Aggregator
            The clamping copy; its stages clamp too.
        """
        agg = copy.deepcopy(self)
        agg.reset()
        agg._set_on_small("clamp")
        return agg

    # ------------------------------------------------------------ for subclasses
    def _own_state(self) -> dict:
        return {}

    def _reset_own(self) -> None:
        pass

    def _set_on_small(self, mode: str) -> None:
        self.on_small = mode
        for s in self.stages():
            s._set_on_small(mode)

    def _tolerated(self, X: Any) -> int:
        """The f this call uses: ``self.f`` if the bound holds for X's n, else raise or clamp."""
        n = _count(X)
        if self.bound is None or n is None or n < 1:
            return self.f  # no bound, or not messages: the op reports it
        top = _MAX_F[self.bound](n)
        if self.f <= top:
            return self.f
        if self.on_small != "clamp":
            raise ValueError(
                f"[{self.name}] needs {self.bound}, got n = {n}, f = {self.f}; lower f, aggregate more messages, "
                "or use .with_clamp() (make_aggregator(..., on_small='clamp')) to tolerate fewer Byzantine "
                "messages when n is small, counted in .clamped")
        self._clamped += 1
        return max(top, 0)


class Chain(Aggregator):
    """``first >> second``: apply a pre-aggregator, then the next stage (docs/spec.md#composition).

    ``NNM(f) >> Krum(f)`` is ``Chain(NNM(f), Krum(f))``; ``a >> b >> c`` nests as
    ``Chain(Chain(a, b), c)``. The chain's ``name`` joins the stages' names with ``+``
    (``"nnm+krum"``), its ``f`` is the larger of the stages' ``f``, and it is a rule
    (``reduces``) when ``second`` is. It has no state of its own: its :attr:`~Aggregator.state`
    and :meth:`~Aggregator.reset` are those of its stages.

    Parameters
    ----------
    first : Aggregator
        A pre-aggregator (``reduces`` False): :class:`NNM`, :class:`Clipping`, :class:`ARC`,
        :class:`Bucketing` without an inner rule, or a chain of them.
    second : Aggregator
        The stage applied to ``first``'s output: a rule, or another pre-aggregator.

    Raises
    ------
    TypeError
        If ``first`` or ``second`` is not an :class:`Aggregator`.
    ValueError
        If ``first`` reduces to one vector (a rule cannot be followed by anything).
    """

    def __init__(self, first: Aggregator, second: Aggregator):
        for stage in (first, second):
            if not isinstance(stage, Aggregator):
                raise TypeError(f"[aggregator] only aggregators compose with >>, got {type(stage).__name__}")
        if first.reduces:
            raise ValueError(f"[aggregator] {first.name} reduces to one vector and cannot be followed by "
                             f"{second.name}; only pre-aggregators (nnm, bucketing without a rule) may come first")
        self.first, self.second = first, second
        self.name = f"{first.name}+{second.name}"
        self.f = max(first.f, second.f)
        self.reduces = second.reduces

    def stages(self) -> tuple[Aggregator, ...]:
        """The two stages, first then second (a chain's ``>>`` order).

        References
        ----------
        docs/spec.md#composition
        """
        return (self.first, self.second)

    def __call__(self, X: Any) -> Any:
        return self.second(self.first(X))


class Mean(Aggregator):
    """The plain mean, :func:`byzcore.mean` (not robust: the baseline); ``f`` is always 0.

    Takes no parameters and has no bound beyond ``n >= 1``; non-finite entries propagate.
    Definition: docs/spec.md#rule-mean. Registry: ``mean``, ``average``.
    """

    name = "mean"

    def __call__(self, X: Any) -> Any:
        return _ops.mean(X)


class Median(Aggregator):
    """Coordinate-wise median, :func:`byzcore.median`, tolerating ``f`` Byzantine messages.

    The median itself takes no ``f``: ``f`` sets the bound ``n > 2f`` that each call checks
    (with at most ``f`` non-finite entries per coordinate the result is then finite).
    Definition: docs/spec.md#rule-median. Registry: ``median``, ``cwmed``.

    Parameters
    ----------
    f : int, optional
        Byzantine messages tolerated (default 0); a call needs ``n > 2f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer (a ``bool`` or ``float`` is refused).
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).
    """

    name = "median"
    bound = "n > 2f"

    def __init__(self, f: int = 0):
        self.f = _check_f(self.name, f)

    def __call__(self, X: Any) -> Any:
        self._tolerated(X)  # the median takes no f: the bound is checked (or the clamp counted)
        return _ops.median(X)


class TrimmedMean(Aggregator):
    """Coordinate-wise trimmed mean, :func:`byzcore.trimmed_mean`: drop ``f`` values at each end.

    Per coordinate, the mean of the ``n - 2f`` middle values (Yin et al., ICML 2018).
    Definition: docs/spec.md#rule-trimmed-mean. Registry: ``trimmed_mean``, ``tm``, ``cwtm``
    (``trimmed_mean:F``); for trimming by a fraction see :class:`FedTrimmedAvg`.

    Parameters
    ----------
    f : int
        Values dropped at each end, the Byzantine messages tolerated; a call needs ``n > 2f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).
    """

    name = "trimmed_mean"
    bound = "n > 2f"

    def __init__(self, f: int):
        self.f = _check_f(self.name, f)

    def __call__(self, X: Any) -> Any:
        return _ops.trimmed_mean(X, self._tolerated(X))


class Krum(Aggregator):
    """Krum, :func:`byzcore.krum`: the message of lowest Krum score; needs ``n >= f + 3``.

    A message's score is the sum of its ``n - f - 2`` smallest squared distances to the others;
    ties go to the lower index. The object uses the original definition (no ``variant``).
    Definition: docs/spec.md#rule-krum. Registry: ``krum``.

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n >= f + 3``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n < f + 3`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Blanchard, El Mhamdi, Guerraoui, Stainer, NeurIPS 2017.
    """

    name = "krum"
    bound = "n >= f + 3"

    def __init__(self, f: int):
        self.f = _check_f(self.name, f)

    def __call__(self, X: Any) -> Any:
        return _ops.krum(X, self._tolerated(X))


class MultiKrum(Aggregator):
    """Multi-Krum, :func:`byzcore.multi_krum`: the mean of the ``m`` messages of lowest Krum score.

    Scores as in :class:`Krum`, order ``(score, index)``. Definition:
    docs/spec.md#rule-multi-krum. Registry: ``multi_krum``, ``mkrum`` (``multi_krum:M``).

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n >= f + 3``.
    m : int, optional
        Messages averaged, ``>= 1``, and at most ``n`` at a call; default None: ``n - f`` of
        each call (with the clamped ``f`` when clamping).

    Raises
    ------
    TypeError
        If ``f`` or ``m`` is not an integer.
    ValueError
        If ``f < 0`` or ``m < 1``; on a call with ``m > n``, or with ``n < f + 3`` unless
        clamping (:meth:`~Aggregator.with_clamp`).
    """

    name = "multi_krum"
    bound = "n >= f + 3"

    def __init__(self, f: int, m: int | None = None):
        self.f = _check_f(self.name, f)
        if m is not None:
            m = as_index(self.name, "m", m)
            if m < 1:
                raise ValueError(f"[{self.name}] m must be >= 1 (messages averaged), got {m}")
        self.m = m

    def __call__(self, X: Any) -> Any:
        return _ops.multi_krum(X, self._tolerated(X), self.m)


class GeometricMedian(Aggregator):
    """Geometric median, :func:`byzcore.geometric_median`, by smoothed Weiszfeld iterations.

    Starts at the coordinate-wise median; ``f`` takes no part in the computation, it sets the
    bound ``n > 2f`` that each call checks. The options are checked at construction.
    Definition: docs/spec.md#rule-geometric-median. Registry: ``geometric_median``, ``gm``,
    ``rfa``.

    Parameters
    ----------
    f : int, optional
        Byzantine messages tolerated (default 0); a call needs ``n > 2f``.
    nu : float, optional
        Smoothing: distances below ``nu`` count as ``nu``; ``> 0`` (default ``1e-6``).
    max_iter : int, optional
        Most Weiszfeld iterations, ``>= 0`` (default 100; 0 returns the coordinate-wise median).
    tol : float, optional
        Stop when ``||z_{t+1} - z_t|| <= tol * ||z_{t+1}||``; ``>= 0`` (default ``1e-7``).

    Raises
    ------
    TypeError
        If ``f`` or ``max_iter`` is not an integer, or ``nu`` or ``tol`` not a real number.
    ValueError
        If ``f < 0`` or an option is out of range; on a call with ``n <= 2f`` unless clamping
        (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Pillutla, Kakade, Harchaoui, "Robust aggregation for federated learning", IEEE TSP 2022.
    """

    name = "geometric_median"
    bound = "n > 2f"

    def __init__(self, f: int = 0, nu: float = 1e-6, max_iter: int = 100, tol: float = 1e-7):
        self.f = _check_f(self.name, f)
        self.nu, self.tol = as_number(self.name, "nu", nu), as_number(self.name, "tol", tol)
        self.max_iter = as_index(self.name, "max_iter", max_iter)
        # The op checks nu, max_iter and tol here rather than at the first real call.
        _ops.geometric_median(_PROBE, nu=self.nu, max_iter=self.max_iter, tol=self.tol)

    def __call__(self, X: Any) -> Any:
        self._tolerated(X)
        return _ops.geometric_median(X, nu=self.nu, max_iter=self.max_iter, tol=self.tol)


class CenteredClipping(Aggregator):
    """Centered clipping, :func:`byzcore.centered_clipping`, from the previous call's aggregate.

    Each call runs ``v <- v + (1/n) sum_i clip_tau(x_i - v)`` ``iters`` times from the centre
    :attr:`center` and returns ``v``. With ``use_previous`` (default) the result becomes the
    next call's centre, as in the paper; without it every call starts from zero. It has no
    bound on ``n``; ``f`` is informational. ``tau`` and ``iters`` are checked at construction.
    Definition: docs/spec.md#rule-centered-clipping; the state: docs/spec.md#objects.
    Registry: ``centered_clipping``, ``cc`` (``cc:TAU``, options ``iters``, ``use_previous``).

    Parameters
    ----------
    f : int, optional
        Byzantine messages the caller expects (default 0); reported as ``f``, not used.
    tau : float, optional
        Clipping radius, ``>= 0`` (default 1.0).
    iters : int, optional
        Clipping iterations per call, ``>= 1`` (default 1).
    use_previous : bool, optional
        Start each call from the previous call's result (default True).

    Attributes
    ----------
    center : array or None
        The state: the centre the next call starts from, None (the zero vector) after
        construction and after :meth:`~Aggregator.reset`, else a copy of the last result (so
        writing into a returned result leaves the state alone). ``state["center"]`` is another
        copy. A call on messages of another size or device than this centre
        raises ``ValueError``: reset the object before reusing it on other messages.

    Raises
    ------
    TypeError
        If ``f`` or ``iters`` is not an integer, or ``tau`` not a real number.
    ValueError
        If ``f < 0``, ``tau < 0`` or ``iters < 1``.

    References
    ----------
    Karimireddy, He, Jaggi, "Learning from history for Byzantine robust optimization", ICML 2021.
    """

    name = "centered_clipping"

    def __init__(self, f: int = 0, tau: float = 1.0, iters: int = 1, use_previous: bool = True):
        self.f = _check_f(self.name, f)
        self.tau = as_number(self.name, "tau", tau)
        self.iters = as_index(self.name, "iters", iters)
        self.use_previous = bool(use_previous)
        self.center: Any = None
        _ops.centered_clipping(_PROBE, self.tau, iters=self.iters)  # checks tau and iters now

    def __call__(self, X: Any) -> Any:
        out = _ops.centered_clipping(X, self.tau, center=self.center, iters=self.iters)
        if self.use_previous:
            self.center = _copy(out)  # the caller owns out: writing into it must not move the centre
        return out

    def _own_state(self) -> dict:
        return {"center": None if self.center is None else _copy(self.center)}

    def _reset_own(self) -> None:
        self.center = None


class NNM(Aggregator):
    """Nearest-neighbour mixing, :func:`byzcore.nnm`, a pre-aggregator: ``NNM(f) >> rule``.

    Each message is replaced by the mean of its ``n - f`` nearest messages (itself included);
    a call returns the ``n`` mixed messages. Definition: docs/spec.md#pre-nnm. Registry: ``nnm``
    (``nnm+krum``).

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n > f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, "Fixing by mixing: a recipe for
    optimal Byzantine ML under heterogeneity", AISTATS 2023.
    """

    name = "nnm"
    bound = "n > f"
    reduces = False

    def __init__(self, f: int):
        self.f = _check_f(self.name, f)

    def __call__(self, X: Any) -> Any:
        return _ops.nnm(X, self._tolerated(X))


class Bucketing(Aggregator):
    """Bucketing, :func:`byzcore.bucketing`: the rule ``inner`` applied to means of random buckets.

    Each call permutes the ``n`` messages, averages consecutive buckets of ``s`` (the last may
    hold fewer) and returns ``inner`` of the ``ceil(n / s)`` bucket means, so ``inner``'s bound
    holds for the number of buckets: ``Bucketing(Median(f), s=2)`` is a rule. With no ``inner``
    it is a pre-aggregator that returns the bucket means (``Bucketing(None, 2) >> Median(f)``).
    Its ``name`` is ``bucketing:S`` or ``bucketing:S+<inner's name>``, its ``f`` that of
    ``inner`` (0 without one). Definition: docs/spec.md#pre-bucketing; the state:
    docs/spec.md#objects. Registry: ``bucketing:S`` (option ``seed``); ``bucketing:2+median``
    builds ``Bucketing(Median(f), s=2)``.

    Parameters
    ----------
    inner : Aggregator or None, optional
        The rule applied to the bucket means; None (default): return the means.
    s : int, optional
        Bucket size, ``>= 1`` (default 2).
    seed : int, optional
        Seed of the permutations, in ``0..2**64-1`` (default 0).

    Attributes
    ----------
    calls : int
        The state: calls since construction or the last :meth:`~Aggregator.reset` (which also
        resets ``inner``). Call ``t`` permutes with :func:`byzcore.permutation` seeded
        ``(seed + t) mod 2**64``, so a run is reproducible and a reset object repeats it. It is
        also ``state["calls"]``.

    Raises
    ------
    TypeError
        If ``inner`` is neither an :class:`Aggregator` nor None, or ``s`` or ``seed`` is not an
        integer.
    ValueError
        If ``s < 1`` or ``seed`` is outside ``0..2**64-1``.

    References
    ----------
    Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
    bucketing", ICLR 2022.
    """

    name = "bucketing"

    def __init__(self, inner: Aggregator | None = None, s: int = 2, seed: int = 0):
        if inner is not None and not isinstance(inner, Aggregator):
            raise TypeError(f"[bucketing] inner must be an Aggregator (e.g. byzcore.Median()) or None, "
                            f"got {type(inner).__name__}")
        self.inner, self.s, self.seed = inner, as_index("bucketing", "s", s), as_seed("bucketing", seed)
        if self.s < 1:
            raise ValueError(f"[bucketing] bucket size s must be >= 1, got {self.s}")
        self.f = inner.f if inner is not None else 0
        self.reduces = inner is not None
        self.name = f"bucketing:{self.s}" + (f"+{inner.name}" if inner is not None else "")
        self.calls = 0

    def stages(self) -> tuple[Aggregator, ...]:
        """The rule applied to the bucket means, if there is one (else no stages).

        References
        ----------
        docs/spec.md#pre-bucketing
        """
        return () if self.inner is None else (self.inner,)

    def __call__(self, X: Any) -> Any:
        seed = (self.seed + self.calls) % 2**64
        self.calls += 1
        return _ops.bucketing(X, self.s, self.inner if self.inner is not None else _identity_stack, seed=seed)

    def _own_state(self) -> dict:
        return {"calls": self.calls}

    def _reset_own(self) -> None:
        self.calls = 0


def _identity_stack(means: Any) -> Any:
    return means


# ---------------------------------------------------------------- catalogue rules (issue 9)
# These objects never lower f on their own: below a rule's bound on n the call raises, so a
# user who asked for f Byzantine messages never silently gets less protection.
class _RuleOfF(Aggregator):
    """A rule whose only parameter is ``f``: calls ``rule(X, f)`` with ``f`` as given."""

    rule: Callable[[Any, int], Any]

    bound = "n > 2f"

    def __init__(self, f: int):
        self.f = _check_f(self.name, f)

    def __call__(self, X: Any) -> Any:
        return type(self).rule(X, self._tolerated(X))


class MeaMed(_RuleOfF):
    """Mean around the median, :func:`byzcore.meamed`; needs ``n > 2f``.

    Per coordinate, the mean of the ``n - f`` values closest to the coordinate-wise median.
    Definition: docs/spec.md#rule-meamed. Registry: ``meamed``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Xie, Koyejo, Gupta, "Generalized Byzantine-tolerant SGD", arXiv:1802.10116, 2018; the
    peers' conventions: ``docs/rules.md``.
    """

    name = "meamed"

    rule = staticmethod(_ops.meamed)


class Bulyan(_RuleOfF):
    """Bulyan, :func:`byzcore.bulyan`; needs ``n >= 4f + 3``.

    Selects ``n - 2f`` messages by iterated Krum, then takes per coordinate the mean of the
    ``n - 4f`` selected values closest to their median. Definition: docs/spec.md#rule-bulyan.
    Registry: ``bulyan``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n < 4f + 3`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    El Mhamdi, Guerraoui, Rouault, "The hidden vulnerability of distributed learning in
    Byzantium", ICML 2018; the peers' conventions: ``docs/rules.md``.
    """

    name = "bulyan"
    bound = "n >= 4f + 3"

    rule = staticmethod(_ops.bulyan)


class MoNNA(Aggregator):
    """MoNNA, :func:`byzcore.monna`: mean of the ``n - f`` messages nearest to ``pivot``.

    The pivot (itself included, at distance 0) is the aggregating node's own, trusted message.
    Definition: docs/spec.md#rule-monna. Registry: ``monna`` (``monna:PIVOT``).

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated; calls need ``n > 2f``.
    pivot : int, optional
        Index of the trusted message (default 0).

    Raises
    ------
    TypeError
        If ``f`` or ``pivot`` is not an integer.
    ValueError
        If ``f < 0`` or ``pivot < 0``; on a call with a pivot outside ``0..n-1`` or holding a non-finite entry,
        or with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan, "Robust collaborative learning with
    linear gradient overhead", ICML 2023; the peers' conventions: ``docs/rules.md``.
    """

    name = "monna"
    bound = "n > 2f"

    def __init__(self, f: int, pivot: int = 0):
        self.f, self.pivot = _check_f(self.name, f), as_index(self.name, "pivot", pivot)
        if self.pivot < 0:  # the upper bound, n - 1, is the call's to check
            raise ValueError(f"[{self.name}] pivot must be a message index in 0..n-1, got {self.pivot}")

    def __call__(self, X: Any) -> Any:
        return _ops.monna(X, self._tolerated(X), self.pivot)


class CGE(_RuleOfF):
    """Comparative gradient elimination, :func:`byzcore.cge`; needs ``n > 2f``.

    The mean of the ``n - f`` messages of smallest norm, order ``(norm, index)``.
    Definition: docs/spec.md#rule-cge. Registry: ``cge``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated (the ``f`` largest norms are dropped).

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Gupta, Liu, Vaidya, DSN Workshops 2021; the peers' conventions: ``docs/rules.md``.
    """

    name = "cge"

    rule = staticmethod(_ops.cge)


class FedTrimmedAvg(Aggregator):
    """Trimmed mean by fraction, as Flower's ``FedTrimmedAvg``: :func:`byzcore.trimmed_mean` with ``beta``.

    Each call computes ``trimmed_mean(X, beta=beta)``, which trims ``f = int(beta * n)`` values
    at each end, so the bound ``n > 2f`` always holds; the object's ``f`` is 0 and it has no
    bound. Definition: docs/spec.md#rule-trimmed-mean (trimming by fraction). Registry:
    ``fed_trimmed_avg``, ``trimmed_mean_fraction`` (``fed_trimmed_avg:BETA``, default 0.2).

    Parameters
    ----------
    beta : float
        Fraction trimmed at each end, in ``[0, 0.5)``.

    Raises
    ------
    ValueError
        On a ``beta`` outside ``[0, 0.5)`` (NaN included) or too large for a float (at construction).
    TypeError
        If ``beta`` is not a real number (a bool, a string, a complex number, ``None``).
    """

    name = "fed_trimmed_avg"

    def __init__(self, beta: float):
        beta = as_number(self.name, "beta", beta)  # trimmed_mean(X, beta=)'s checks, named after this object
        if not 0.0 <= beta < 0.5:
            raise ValueError(f"[{self.name}] beta must be in [0, 0.5) (the fraction trimmed at each end), got {beta}")
        self.beta = beta

    def __call__(self, X: Any) -> Any:
        return _ops.trimmed_mean(X, beta=self.beta)


class Clipping(Aggregator):
    """Static norm clipping of every message, a pre-aggregator: ``Clipping(tau) >> rule``.

    A call returns the ``n`` clipped messages, :func:`byzcore.clip` row by row; a non-finite
    message becomes zero. No bound on ``n``. Definition: docs/spec.md#pre-clipping. Registry:
    ``clipping``, ``clip`` (``clipping:TAU``).

    Parameters
    ----------
    tau : float
        Clipping radius: each ``x_i`` becomes ``min(1, tau / ||x_i||) x_i``; ``>= 0``.
    f : int, optional
        Byzantine messages the caller expects (default 0): reported as ``f`` (a chain's ``f`` is
        the largest of its stages'), not used by the clipping.

    Raises
    ------
    TypeError
        If ``tau`` is not a real number or ``f`` not an integer.
    ValueError
        If ``f < 0`` or ``tau`` is negative or NaN (at construction).
    """

    name = "clipping"
    reduces = False

    def __init__(self, tau: float, f: int = 0):
        self.tau, self.f = as_number(self.name, "tau", tau), _check_f(self.name, f)
        if not self.tau >= 0:  # clip's check (NaN included), named after this object
            raise ValueError(f"[{self.name}] tau must be >= 0 (inf disables clipping), got {self.tau}")

    def __call__(self, X: Any) -> Any:
        return _ops.clip(X, self.tau)


class ARC(_RuleOfF):
    """Adaptive robust clipping, a pre-aggregator: ``ARC(f) >> rule`` (:func:`byzcore.arc`).

    The ``k = floor(2 f (n - f) / n)`` messages of largest norm are clipped to the norm of the
    largest remaining one; a call returns the ``n`` messages. Definition: docs/spec.md#pre-arc.
    Registry: ``arc``.

    Parameters
    ----------
    f : int
        Number of Byzantine messages tolerated; calls need ``n > 2f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Allouah, Guerraoui, Gupta, Jellouli, Rizk, Stephan, "Boosting robustness by clipping
    gradients in distributed learning", NeurIPS 2024; the peers' conventions: ``docs/rules.md``.
    """

    name = "arc"
    reduces = False

    rule = staticmethod(_ops.arc)




# -------------------------------------------- subset rules (docs/rules.md#subset-rules-mda-smea-caf-dnc)
# f is passed as given: the rule raises below its bound (n > 2f), never tolerating fewer silently.


class MDA(_RuleOfF):
    """Minimum-diameter averaging (:func:`byzcore.mda`) with ``f`` Byzantine messages.

    The mean of a subset of ``n - f`` messages of smallest diameter, found by an exact search
    with the default budget :func:`byzcore.mda_default_budget` of ``n`` branch steps.
    Definition: docs/spec.md#rule-mda. Registry: ``mda``.

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n > 2f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call whose search needs more than the budget, or with ``n <= 2f``
        unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault, PODC 2020; further reading:
    ``docs/rules.md#subset-rules-mda-smea-caf-dnc``.
    """

    name = "mda"
    rule = staticmethod(_ops.mda)


class SMEA(_RuleOfF):
    """Smallest maximum eigenvalue averaging (:func:`byzcore.smea`).

    The mean of a subset of ``n - f`` messages whose covariance has the smallest largest
    eigenvalue, found by an exact search. Definition: docs/spec.md#rule-smea. Registry:
    ``smea`` (option ``max_subsets``).

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n > 2f``.
    max_subsets : int, optional
        The search budget of :func:`byzcore.smea` (past it the call raises ``ValueError``);
        default :func:`byzcore.smea_default_budget` of the number of messages.

    Raises
    ------
    TypeError
        If ``f`` or ``max_subsets`` is not an integer.
    ValueError
        If ``f < 0`` or ``max_subsets < 1`` (at construction); on a call past the budget, or
        with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, AISTATS 2023; further reading:
    ``docs/rules.md#subset-rules-mda-smea-caf-dnc``.
    """

    name = "smea"

    def __init__(self, f: int, max_subsets: int | None = None):
        super().__init__(f)
        self.max_subsets = None if max_subsets is None else as_index(self.name, "max_subsets", max_subsets)
        _ops.smea(_PROBE, 0, max_subsets=self.max_subsets)  # checks max_subsets now

    def __call__(self, X: Any) -> Any:
        return _ops.smea(X, self._tolerated(X), max_subsets=self.max_subsets)


class CAF(_RuleOfF):
    """Covariance-bound agnostic filter (:func:`byzcore.caf`).

    Down-weights the messages along the top principal direction of the weighted covariance and
    returns the weighted mean of the step whose covariance had the smallest largest eigenvalue.
    Definition: docs/spec.md#rule-caf. Registry: ``caf``.

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n > 2f``.

    Raises
    ------
    TypeError
        If ``f`` is not an integer.
    ValueError
        If ``f < 0``; on a call with ``n <= 2f`` unless clamping (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Allouah, Guerraoui, Stephan, "Towards trustworthy federated learning with untrusted
    participants", ICML 2025; further reading: ``docs/rules.md#subset-rules-mda-smea-caf-dnc``.
    """

    name = "caf"
    rule = staticmethod(_ops.caf)


class DnC(Aggregator):
    """Divide-and-conquer (:func:`byzcore.dnc`), with new coordinates drawn at every call.

    Call ``t`` runs :func:`byzcore.dnc` with the seed ``(seed + t) mod 2**64``, so each round of
    training samples new coordinates and a run is reproducible. Definition:
    docs/spec.md#rule-dnc. Registry: ``dnc`` (options ``iters``, ``sub_dim``, ``c``, ``seed``).

    Parameters
    ----------
    f : int
        Byzantine messages tolerated; a call needs ``n > 2f`` and ``n > iters * floor(c f)``.
    iters : int, optional
        Filtering rounds per call, each on new coordinates, ``1..10**6`` (default 1).
    sub_dim : int, optional
        Coordinates per round (all of them if ``>= d``), ``>= 1`` (default 10000).
    c : float, optional
        Filtering fraction: ``floor(c f)`` messages removed per round, ``>= 0`` (default 1.0).
    seed : int, optional
        Seed of call 0's coordinate draws, in ``0..2**64-1`` (default 0).

    Attributes
    ----------
    calls : int
        The state: calls since construction or the last :meth:`~Aggregator.reset`, which picks
        the call's seed. It is also ``state["calls"]``.

    Raises
    ------
    TypeError
        If ``f``, ``iters``, ``sub_dim`` or ``seed`` is not an integer, or ``c`` not a real number.
    ValueError
        If ``f < 0``, ``iters`` is outside ``1..10**6``, ``sub_dim < 1``, ``c`` is negative or
        not finite, or ``seed`` is outside ``0..2**64-1`` (at construction); on a call with
        ``n <= iters * floor(c f)``, or with ``n <= 2f`` unless clamping
        (:meth:`~Aggregator.with_clamp`).

    References
    ----------
    Shejwalkar, Houmansadr, "Manipulating the Byzantine: optimizing model poisoning attacks and
    defenses for federated learning", NDSS 2021.
    """

    name = "dnc"

    def __init__(self, f: int, iters: int = 1, sub_dim: int = 10000, c: float = 1.0, seed: int = 0):
        self.f = _check_f(self.name, f)
        self.iters, self.sub_dim = as_index(self.name, "iters", iters), as_index(self.name, "sub_dim", sub_dim)
        self.c, self.seed = as_number(self.name, "c", c), as_seed(self.name, seed)
        # checks iters, sub_dim and c now (f = 0 on one message: nothing removed, one round)
        _ops.dnc(_PROBE, 0, iters=self.iters, sub_dim=self.sub_dim, c=self.c, seed=self.seed)
        self.calls = 0

    def __call__(self, X: Any) -> Any:
        seed = (self.seed + self.calls) % 2**64
        self.calls += 1
        return _ops.dnc(X, self._tolerated(X), iters=self.iters, sub_dim=self.sub_dim, c=self.c, seed=seed)

    def _own_state(self) -> dict:
        return {"calls": self.calls}

    def _reset_own(self) -> None:
        self.calls = 0


# ---------------------------------------------------------------- registry
def _whole_number(text: str) -> int:
    return int(text)


def _number(text: str) -> float:
    return float(text)


def _boolean(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise ValueError(text)
    return value


_whole_number.__name__, _number.__name__, _boolean.__name__ = "whole number", "number", "boolean (true/false)"


@dataclass(frozen=True)
class _Rule:
    """A registered name: ``build(f=..., seed=..., **options)``, the options it takes (each with
    the converter from its spec text), and which option a positional value sets."""

    build: Callable[..., Aggregator]
    options: dict[str, Callable[[str], Any]] = field(default_factory=dict)
    positional: str | None = None


_RULES: dict[str, _Rule] = {}


def register(*names: str, options: Mapping[str, Callable[[str], Any]] | None = None,
             positional: str | None = None) -> Callable[[Callable[..., Aggregator]], Callable[..., Aggregator]]:
    """Register ``factory(f=..., seed=..., **options) -> Aggregator`` under ``names``.

    Used as a decorator; a name registered again replaces the earlier entry. The factory is
    called with :func:`make_aggregator`'s ``f`` and ``seed`` (or the part's own ``f=`` and
    ``seed=``, where declared as options) and the part's other options, converted; it should
    raise ``TypeError`` or ``ValueError`` for bad values, which :func:`make_aggregator` reports
    with the spec. The registry and the spec grammar: docs/spec.md#objects,
    docs/spec.md#spec-strings.

    Parameters
    ----------
    *names : str
        The spec names, in the normalised form a spec is read in (lower case, ``_`` for ``-``).
    options : dict, optional
        Option name -> converter from its text (``int``, ``float``, ...); the only keys a spec
        may give. ``f`` (the rule's own ``f``, overriding :func:`make_aggregator`'s) is an
        option like any other where a rule declares it.
    positional : str, optional
        The option that ``name:value`` sets; one of ``options``.

    Returns
    -------
    callable
        The decorator: it registers the factory under every name and returns it unchanged.

    Raises
    ------
    ValueError
        If ``positional`` is not among ``options``.

    Examples
    --------
    ::

        @register("my_rule", options={"f": int, "tau": float}, positional="tau")
        def _my_rule(f, seed, tau=1.0):
            return MyRule(f, tau)

    after which ``make_aggregator("my_rule:2.5", f=1)`` builds ``MyRule(1, 2.5)``.
    """
    declared = dict(options or {})
    if positional is not None and positional not in declared:
        raise ValueError(f"[register] positional option {positional!r} is not among the options {sorted(declared)}")

    def deco(factory: Callable[..., Aggregator]) -> Callable[..., Aggregator]:
        for n in names:
            _RULES[n] = _Rule(factory, declared, positional)
        return factory

    return deco


_F = {"f": _whole_number}
register("mean", "average")(lambda f, seed: Mean())
register("median", "cwmed", options=_F)(lambda f, seed: Median(f))
register("trimmed_mean", "tm", "cwtm", options=_F, positional="f")(lambda f, seed: TrimmedMean(f))
register("krum", options=_F)(lambda f, seed: Krum(f))
register("multi_krum", "mkrum", options={**_F, "m": _whole_number}, positional="m")(
    lambda f, seed, m=None: MultiKrum(f, m))
register("geometric_median", "gm", "rfa", options={**_F, "nu": _number, "max_iter": _whole_number, "tol": _number})(
    lambda f, seed, nu=1e-6, max_iter=100, tol=1e-7: GeometricMedian(f, nu, max_iter, tol))
register("centered_clipping", "cc", positional="tau",
         options={**_F, "tau": _number, "iters": _whole_number, "use_previous": _boolean})(
    lambda f, seed, tau=1.0, iters=1, use_previous=True: CenteredClipping(f, tau, iters, use_previous))
register("nnm", options=_F)(lambda f, seed: NNM(f))
register("bucketing", options={"s": _whole_number, "seed": _whole_number}, positional="s")(
    lambda f, seed, s=2: Bucketing(None, s, seed))


_TAU = {"tau": _number}
register("meamed", options=_F)(lambda f, seed: MeaMed(f))
register("bulyan", options=_F)(lambda f, seed: Bulyan(f))
register("monna", options={**_F, "pivot": _whole_number}, positional="pivot")(
    lambda f, seed, pivot=0: MoNNA(f, pivot))
register("cge", options=_F)(lambda f, seed: CGE(f))
register("fed_trimmed_avg", "trimmed_mean_fraction", options={"beta": _number}, positional="beta")(
    lambda f, seed, beta=0.2: FedTrimmedAvg(beta))
register("clipping", "clip", options=_TAU, positional="tau")(lambda f, seed, tau=1.0: Clipping(tau, f))
register("arc", options=_F)(lambda f, seed: ARC(f))
register("mda", options=_F)(lambda f, seed: MDA(f))
register("smea", options={**_F, "max_subsets": _whole_number})(lambda f, seed, max_subsets=None: SMEA(f, max_subsets))
register("caf", options=_F)(lambda f, seed: CAF(f))
register("dnc", options={**_F, "iters": _whole_number, "sub_dim": _whole_number, "c": _number, "seed": _whole_number})(
    lambda f, seed, iters=1, sub_dim=10000, c=1.0: DnC(f, iters, sub_dim, c, seed))


def available() -> list[str]:
    """The names :func:`make_aggregator` knows, aliases included (docs/spec.md#objects).

    Returns
    -------
    list of str
        The registered names, sorted: the rules and the pre-aggregators alike.
    """
    return sorted(_RULES)


def _build(part: SpecPart, spec: str, f: int, seed: int) -> Aggregator:
    op = "make_aggregator"
    rule = _RULES.get(part.name)
    if rule is None:
        raise ValueError(f"[{op}] unknown aggregator {part.name!r} in {spec!r}; known: {', '.join(available())}")
    raw = dict(part.options)
    if part.positional is not None:
        if rule.positional is None:
            raise ValueError(f"[{op}] {part.name} takes no positional option (in {spec!r}); write key=value"
                             + (f" with one of {', '.join(rule.options)}" if rule.options else ""))
        if rule.positional in raw:
            raise ValueError(f"[{op}] option {rule.positional!r} of {part.name} given twice in {spec!r}")
        raw[rule.positional] = part.positional
    unknown = sorted(set(raw) - set(rule.options))
    if unknown:
        known = ", ".join(rule.options) or "none"
        raise ValueError(f"[{op}] unknown option {unknown[0]!r} for {part.name} in {spec!r}; its options: {known}")
    values = {key: option(op, part, key, text, rule.options[key]) for key, text in raw.items()}
    try:
        return rule.build(f=values.pop("f", f), seed=values.pop("seed", seed), **values)
    except (TypeError, ValueError) as exc:
        where = repr(spec) if part.text == spec.strip() else f"{part.text!r} in {spec!r}"
        raise type(exc)(f"[{op}] {where}: {exc}") from None


def make_aggregator(spec: str | Aggregator, f: int = 0, seed: int = 0, *, on_small: str = "raise") -> Aggregator:
    """Build an aggregator from a string such as ``"bucketing:2+median"`` or ``"nnm+krum"``.

    The grammar (docs/spec.md#spec-strings), parsed by :func:`byzcore._spec.parse_spec`::

        spec  := part ("+" part)*
        part  := name [":" item ("," item)*]
        item  := value                 the part's positional option: first item only
               | key "=" value

    Names are case-insensitive, spaces around them are ignored and ``-`` reads as ``_``. Every
    part but the last is a pre-aggregator, the last a rule (docs/spec.md#composition):
    ``pre+rule`` builds ``Chain(pre, rule)``, and ``bucketing:S+rule`` builds
    ``Bucketing(rule, s=S)``. Each stage is built with ``f`` (a part's own ``f=`` overrides it;
    ``mean``, ``fed_trimmed_avg`` and ``bucketing`` take no ``f`` and ignore it) and the seeded
    ones (``bucketing``, ``dnc``) with ``seed`` (a part's ``seed=`` overrides it).

    The names (:func:`available`); ``name:X`` marks the positional option ``x`` (also written
    ``name:x=value``), the options in brackets are given as ``key=value``:

    - rules: ``mean``/``average``; ``median``/``cwmed``, ``krum``, ``meamed``, ``bulyan``,
      ``cge``, ``mda``, ``caf`` (``f``); ``trimmed_mean:F``/``tm``/``cwtm``;
      ``fed_trimmed_avg:BETA``/``trimmed_mean_fraction``; ``multi_krum:M``/``mkrum`` (``f``);
      ``geometric_median``/``gm``/``rfa`` (``f``, ``nu``, ``max_iter``, ``tol``);
      ``centered_clipping:TAU``/``cc`` (``f``, ``iters``, ``use_previous``); ``monna:PIVOT``
      (``f``); ``smea`` (``f``, ``max_subsets``); ``dnc`` (``f``, ``iters``, ``sub_dim``, ``c``,
      ``seed``);
    - pre-aggregators: ``nnm``, ``arc`` (``f``); ``clipping:TAU``/``clip``; ``bucketing:S``
      (``seed``).

    Examples of specs: ``"median"``, ``"trimmed_mean:2"`` (``TrimmedMean(2)``), ``"nnm+krum"``,
    ``"bucketing:2+median"``, ``"cc:tau=10,iters=3"``, ``"Multi-Krum:5"``,
    ``"fed_trimmed_avg:0.1"``, ``"clipping:1.5+arc+cwtm"``, ``"nnm:f=1+krum:f=2"``,
    ``"bucketing:4,seed=7+gm:max_iter=10"``.

    Parameters
    ----------
    spec : str or Aggregator
        The spec; an :class:`Aggregator` is returned as it is (or as
        :meth:`~Aggregator.with_clamp`'s copy with ``on_small="clamp"``).
    f : int, optional
        The number of Byzantine messages each stage tolerates (default 0).
    seed : int, optional
        The seed of the seeded stages, in ``0..2**64-1`` (default 0).
    on_small : {"raise", "clamp"}, optional
        What a rule does on a call with too few messages for its bound: raise (default), or
        tolerate fewer than ``f`` for that call, counted in ``.clamped``
        (:meth:`Aggregator.with_clamp`; docs/spec.md#objects).

    Returns
    -------
    Aggregator
        A new object in its initial state (or ``spec`` itself, see above).

    Raises
    ------
    TypeError
        ``spec`` is not a non-empty string or an Aggregator; ``f`` or ``seed`` not an integer.
    ValueError
        An unknown name or option, an option given twice, an unreadable or empty part, an option
        of the wrong type or range, a positional option on a part that takes none, a spec that
        ends with a pre-aggregator or puts a rule before another stage, ``f < 0``, ``seed``
        outside ``0..2**64-1``, or ``on_small`` not ``"raise"`` or ``"clamp"``. The message
        starts with ``[make_aggregator]`` and names the part.
    """
    op = "make_aggregator"
    if on_small not in ("raise", "clamp"):
        raise ValueError(f"[{op}] on_small must be 'raise' or 'clamp', got {on_small!r}")
    if isinstance(spec, Aggregator):
        return spec.with_clamp() if on_small == "clamp" else spec
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"[{op}] spec must be a non-empty string like 'bucketing:2+median', got {spec!r}")
    f, seed = _check_f(op, f), as_seed(op, seed)
    stages = [_build(part, spec, f, seed) for part in parse_spec(op, spec)]
    agg = stages[-1]
    for stage in reversed(stages[:-1]):
        if isinstance(stage, Bucketing) and stage.inner is None and agg.reduces:
            agg = Bucketing(agg, stage.s, stage.seed)  # bucketing:S+rule is Bucketing(rule, s=S)
        else:
            try:
                agg = Chain(stage, agg)
            except ValueError as exc:
                raise ValueError(f"[{op}] in {spec!r}: {exc}") from None
    if not agg.reduces:
        raise ValueError(f"[{op}] {spec!r} ends with a pre-aggregator; add a rule, e.g. '{spec}+median'")
    return agg.with_clamp() if on_small == "clamp" else agg
