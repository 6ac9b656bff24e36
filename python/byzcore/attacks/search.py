"""Attacks that choose their scale: line-searched ALIE and IPM, MinMax and MinSum.

The line-searched ("optimal") attacks maximise ``||agg(honest + f copies of m(s)) -
mean(honest)||`` over the scale ``s >= 0`` of a fixed direction, calling the server's own
aggregator (its byzcore kernel) on the exact matrix the server will see. The search is a
coarse geometric grid followed by a golden-section refinement around the best grid point
(:func:`line_search`); its number of aggregator calls is bounded and documented there.

MinMax and MinSum (Shejwalkar, Houmansadr, NDSS 2021) choose the largest ``gamma`` such that
``m = mean(honest) + gamma * p`` is no further from the honest messages than they are from
each other (MinMax: the largest squared distance; MinSum: the sum of squared distances). The
paper finds ``gamma`` by a binary search; both constraints are quadratic in ``gamma``, so the
bound the binary search converges to is computed here in closed form.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from .. import _ops
from .base import ArrayOps, Attack, AttackContext
from .classic import IPM, alie_z

__all__ = ["MinMax", "MinSum", "OptimalALIE", "OptimalIPM", "line_search"]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _check_budget(op: str, hi: float, points: int, refine: int) -> None:
    if not (math.isfinite(hi) and hi > 0):
        raise ValueError(f"[{op}] hi must be a finite number > 0, got {hi}")
    if not 2 <= points <= 64 or not (refine == 0 or 2 <= refine <= 100):
        raise ValueError(f"[{op}] points must be in 2..64 and refine 0 or in 2..100 (the search's budget of "
                         f"objective calls), got points={points}, refine={refine}")


def line_search(objective: Callable[[float], float], *, hi: float = 1024.0, points: int = 16,
                refine: int = 12, extra: tuple[float, ...] = ()) -> tuple[float, float]:
    """Maximise ``objective(s)`` over ``0 <= s <= hi`` with a bounded number of calls.

    First a coarse grid: ``0``, the ``points - 1`` values ``hi * 2**-k`` (``k = points-2 ..
    0``) and the ``extra`` values (e.g. the fixed attack's default scale, so the search never
    does worse than it). Then a golden-section search in the bracket between the grid
    neighbours of the best grid point, ``refine`` calls. The objective need not be unimodal;
    the best value seen is returned, so the answer is never worse than the best grid point.
    Non-finite objective values count as worse than any finite one.

    Parameters
    ----------
    objective : callable
        ``s -> float`` to maximise.
    hi : float, default 1024.0
        Grid top, finite and > 0.
    points, refine : int, default 16 and 12
        Grid size (2..64) and refinement calls (0 or 2..100): at most ``points +
        len(extra) + refine`` objective calls (28, plus the extra points, by default).
    extra : tuple of float, default ()
        More grid points, clamped to ``[0, hi]``.

    Returns
    -------
    s, value : float
        The best scale found and its objective value (ties: the smallest scale).

    Raises
    ------
    ValueError
        ``hi``, ``points`` or ``refine`` out of range.

    References
    ----------
    docs/spec.md#attack-optimal
    """
    _check_budget("line_search", hi, points, refine)
    grid = sorted({0.0, *(hi * 2.0 ** -k for k in range(points - 1)), *(min(max(float(e), 0.0), hi) for e in extra)})
    seen: dict[float, float] = {}

    def value(s: float) -> float:
        if s not in seen:
            v = float(objective(s))
            seen[s] = v if math.isfinite(v) else -math.inf
        return seen[s]

    vals = [value(s) for s in grid]
    i = max(range(len(grid)), key=lambda j: (vals[j], -j))  # ties: the smallest scale
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    if refine > 0 and b > a:
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        fc, fd = value(c), value(d)
        for _ in range(refine - 2):
            if fc >= fd:
                b, d, fd = d, c, fc
                c = b - _GOLDEN * (b - a)
                fc = value(c)
            else:
                a, c, fc = c, d, fd
                d = a + _GOLDEN * (b - a)
                fd = value(d)
    best = max(seen, key=lambda s: (seen[s], -s))
    return best, seen[best]


class _Searched(Attack):
    """Base of the line-searched attacks: subclasses give the message ``m(s)`` and the
    fixed attack's default scale."""

    def __init__(self, agg: Any = None, hi: float = 1024.0, points: int = 16, refine: int = 12):
        self.agg = agg  # a spec string is built per call, with the round's f
        self.hi, self.points, self.refine = float(hi), int(points), int(refine)
        _check_budget(self.name, self.hi, self.points, self.refine)
        self.last_scale: float | None = None  # the scale chosen in the latest call (for reports)

    def message(self, ops: ArrayOps, mean: Any, stats: Any, s: float) -> Any:  # pragma: no cover
        raise NotImplementedError

    def default_scale(self, ctx: AttackContext) -> float:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, ctx: AttackContext):
        if self.agg is not None:
            from ..aggregators import make_aggregator

            agg = make_aggregator(self.agg, f=ctx.f) if isinstance(self.agg, str) else self.agg
            ctx = dataclasses.replace(ctx, aggregator=agg)
        ops, ref = ctx.ops(), ctx.reference()
        mean = ops.mean(ref)
        stats = self.statistics(ops, ref)

        def distance(s: float) -> float:
            return ops.norm(ctx.aggregate_with(ops.tile(self.message(ops, mean, stats, s), ctx.f), self.name) - mean)

        s, _ = line_search(distance, hi=self.hi, points=self.points, refine=self.refine,
                           extra=(self.default_scale(ctx),))
        self.last_scale = s
        return ops.tile(self.message(ops, mean, stats, s), ctx.f)

    def statistics(self, ops: ArrayOps, ref: Any) -> Any:
        return None


class OptimalALIE(_Searched):
    """ALIE with a searched ``z``: ``mean - z * std``, ``z`` maximising the distance between
    the server's aggregate and the honest mean (as ByzFL's Optimal_ALittleIsEnough; the
    search is :func:`line_search`, with ALIE's default ``z`` among its grid points).

    Parameters
    ----------
    agg : str, Aggregator or None, default None
        The aggregator to attack: a spec string (built with the round's ``f``) or an object;
        ``None``: the server's (``ctx.aggregator``).
    hi : float, default 1024.0
        The search's range (:func:`line_search`).
    points, refine : int, default 16 and 12
        The search's budget (:func:`line_search`); out of range: ``ValueError``.

    References
    ----------
    docs/spec.md#attack-optimal
    """

    name = "opt-alie"

    def statistics(self, ops, ref):
        """The coordinate-wise standard deviation of the reference messages.

        References
        ----------
        docs/spec.md#attack-optimal
        """
        return ops.std(ref)

    def message(self, ops, mean, std, s):
        """The ALIE message ``mean - s * std`` for the scale ``s``.

        References
        ----------
        docs/spec.md#attack-optimal
        """
        return mean - s * std

    def default_scale(self, ctx):
        """The scale of plain ALIE for this context, the search's starting point.

        References
        ----------
        docs/spec.md#attack-alie
        """
        return alie_z(ctx.n, ctx.f)


class OptimalIPM(_Searched):
    """IPM with a searched ``eps``: ``-eps * mean(honest)``, ``eps`` maximising the distance
    between the server's aggregate and the honest mean (as ByzFL's
    Optimal_InnerProductManipulation; the search is :func:`line_search`, with IPM's default
    ``eps`` among its grid points).

    Parameters
    ----------
    agg : str, Aggregator or None, default None
        As for :class:`OptimalALIE`.
    hi : float, default 1024.0
        As for :class:`OptimalALIE`.
    points, refine : int, default 16 and 12
        As for :class:`OptimalALIE`.

    References
    ----------
    docs/spec.md#attack-optimal
    """

    name = "opt-ipm"

    def message(self, ops, mean, stats, s):
        """The IPM message ``-s * mean`` for the scale ``s``.

        References
        ----------
        docs/spec.md#attack-optimal
        """
        return -s * mean

    def default_scale(self, ctx):
        """IPM's default ``eps``, the search's starting point.

        References
        ----------
        docs/spec.md#attack-ipm
        """
        return IPM().eps


_DIRECTIONS = {"std": "std", "unit": "unit", "uv": "unit", "sign": "sign", "sgn": "sign"}


class _Bounded(Attack):
    """Base of MinMax and MinSum: ``mean + gamma * p`` with the largest ``gamma`` that keeps
    the subclass's distance constraint."""

    def __init__(self, direction: str = "std"):
        key = str(direction).strip().lower()
        if key not in _DIRECTIONS:
            raise ValueError(f"[{self.name}] direction must be one of std, unit, sign, got {direction!r}")
        self.direction = _DIRECTIONS[key]
        self.last_gamma: float | None = None

    def perturbation(self, ops: ArrayOps, ref: Any, mean: Any) -> Any:
        """The paper's perturbations: inverse unit vector, inverse std, inverse sign."""
        if self.direction == "std":
            return -ops.std(ref)
        if self.direction == "sign":
            return -ops.sign(mean)
        norm = ops.norm(mean)
        return -mean / norm if norm > 0 else 0.0 * mean

    def gamma(self, ops: ArrayOps, ref: Any, mean: Any, p: Any, a: float) -> float:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, ctx: AttackContext):
        ops, ref = ctx.ops(), ctx.reference()
        mean = ops.mean(ref)
        p = self.perturbation(ops, ref, mean)
        a = ops.norm(p) ** 2
        g = self.gamma(ops, ref, mean, p, a) if a > 0 and len(ref) > 1 else 0.0
        self.last_gamma = g
        return ops.tile(mean + g * p, ctx.f)


class MinMax(_Bounded):
    """MinMax (Shejwalkar, Houmansadr, NDSS 2021): ``m = mean + gamma * p`` with the largest
    ``gamma`` such that ``max_i ||m - h_i||^2 <= max_ij ||h_i - h_j||^2`` over the honest
    messages ``h``.

    Each ``||m - h_i||^2 = c_i + b_i gamma + a gamma^2`` (``c_i = ||mean - h_i||^2``,
    ``b_i = 2 <mean - h_i, p>``, ``a = ||p||^2``), so ``gamma`` is the smallest of the
    positive roots of ``c_i + b_i gamma + a gamma^2 = D`` (``D`` the honest diameter squared,
    from byzcore's :func:`~byzcore.pairwise_distances`).

    Parameters
    ----------
    direction : str, default "std"
        The perturbation ``p``: ``std`` (``-std(honest)``), ``unit`` (also ``uv``:
        ``-mean/||mean||``) or ``sign`` (also ``sgn``: ``-sign(mean)``); another value:
        ``ValueError``.

    References
    ----------
    docs/spec.md#attack-minmax
    """

    name = "minmax"

    def gamma(self, ops, ref, mean, p, a):
        """The ``gamma`` of the Min-Max condition for the direction ``p``.

        References
        ----------
        docs/spec.md#attack-minmax
        """
        D = float(_ops.pairwise_distances(ref, squared=True).max())
        R = mean.reshape(1, -1) - ref
        c = ops.to_float_list(ops.row_sq_norms(R))
        b = ops.to_float_list(2.0 * ops.row_dots(R, p))
        best = math.inf
        for ci, bi in zip(c, b):
            slack = max(D - ci, 0.0)
            root = math.sqrt(bi * bi + 4.0 * a * slack)
            # the positive root of a g^2 + b g - slack, written to avoid cancellation
            g = 2.0 * slack / (bi + root) if bi > 0 else (root - bi) / (2.0 * a)
            best = min(best, g)
        return best if math.isfinite(best) else 0.0


class MinSum(_Bounded):
    """MinSum (Shejwalkar, Houmansadr, NDSS 2021): ``m = mean + gamma * p`` with the largest
    ``gamma`` such that ``sum_i ||m - h_i||^2 <= max_i sum_j ||h_i - h_j||^2``.

    Because ``mean`` is the honest mean the cross terms cancel: the left side is
    ``S + h a gamma^2`` and the right side ``S + h max_i ||h_i - mean||^2`` (``S = sum_i
    ||h_i - mean||^2``), so ``gamma = max_i ||h_i - mean|| / ||p||``.

    Parameters
    ----------
    direction : str, default "std"
        As for :class:`MinMax`.

    References
    ----------
    docs/spec.md#attack-minmax
    """

    name = "minsum"

    def gamma(self, ops, ref, mean, p, a):
        """The ``gamma`` of the Min-Sum condition for the direction ``p``.

        References
        ----------
        docs/spec.md#attack-minmax
        """
        c = ops.to_float_list(ops.row_sq_norms(ref - mean.reshape(1, -1)))
        return math.sqrt(max(c) / a)
