"""The round's robust aggregation, free of Flower: what both strategies (Message API and
legacy) call on plain NumPy arrays.

A round's input is the current global model (an ordered ``{name: array}``) and one
``({name: array}, num_examples)`` pair per reply. Replies whose keys, shapes or dtypes differ
from the global model's are dropped as Byzantine for the round. The kept replies become one
flat vector each (arrays concatenated in the global model's key order), optionally minus
the global vector (``mode="update"``), and the byzcore rule aggregates the ``(n, d)``
matrix (or each layer's block, ``per_layer=True``). See docs/flower.md.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..aggregators import Aggregator, Bucketing, Chain, Mean, make_aggregator
from ..attacks import Attack, AttackContext, make_attack

Arrays = Mapping[str, np.ndarray]

# The largest f each bound allows is never computed with 2 * f (docs/spec.md#errors).
_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "n >= 1": lambda n, f: n >= 1,
    "n > f": lambda n, f: f < n,
    "n > 2f": lambda n, f: f < n - f,
    "n >= f + 3": lambda n, f: f <= n - 3,
    "n >= 4f + 3": lambda n, f: f <= (n - 3) // 4 and n >= 3,
}
# Bounds by rule name, for aggregator objects that do not declare theirs (``bound``).
# Rules whose spec bound is n >= 1 (median, geometric median, clipping) are robust to f
# Byzantine messages only with an honest majority, so with f > 0 they ask n > 2f.
_BY_NAME = {"mean": "n >= 1", "krum": "n >= f + 3", "multi_krum": "n >= f + 3", "nnm": "n > f",
            "bulyan": "n >= 4f + 3"}


def bound_of(agg: Aggregator) -> str:
    """The bound on ``n`` that one stage of an aggregator needs (``"n > 2f"``, ...).

    Parameters
    ----------
    agg : Aggregator
        A single byzcore aggregator (not a chain).

    Returns
    -------
    str
        One of ``"n >= 1"``, ``"n > f"``, ``"n > 2f"``, ``"n >= f + 3"``, ``"n >= 4f + 3"``:
        the object's declared ``bound`` if it is one of these, else the rule's bound from
        docs/spec.md#rules for the mean, Krum, Multi-Krum, NNM and Bulyan, else ``"n >= 1"``
        for ``f = 0`` and ``"n > 2f"`` (an honest majority) otherwise.
    """
    declared = getattr(agg, "bound", None)
    if isinstance(declared, str) and declared in _BOUNDS:
        return declared
    name = _BY_NAME.get(agg.name)
    if name is not None:
        return name
    return "n >= 1" if agg.f == 0 else "n > 2f"


def fits(agg: Aggregator, n: int) -> bool:
    """Whether ``agg`` tolerates its full ``f`` on ``n`` messages (never by lowering ``f``).

    Parameters
    ----------
    agg : Aggregator
        A byzcore aggregator: a rule, a :class:`~byzcore.aggregators.Chain` or a
        :class:`~byzcore.aggregators.Bucketing`.
    n : int
        Messages the server would aggregate.

    Returns
    -------
    bool
        False for ``n < 1``; for a chain, whether each stage fits the messages it receives
        (bucketing hands ``ceil(n / s)`` means to its rule); else :func:`bound_of` on ``n``.
    """
    if n < 1:
        return False
    if isinstance(agg, Chain):
        return fits(agg.first, n) and fits(agg.second, _out_count(agg.first, n))
    if isinstance(agg, Bucketing):
        return agg.inner is None or fits(agg.inner, -(-n // agg.s))
    return _BOUNDS[bound_of(agg)](n, agg.f)


def _out_count(pre: Aggregator, n: int) -> int:
    if isinstance(pre, Bucketing):
        return -(-n // pre.s)
    if isinstance(pre, Chain):
        return _out_count(pre.second, _out_count(pre.first, n))
    return n  # nnm and the other pre-aggregators keep n messages


def min_clients(agg: Aggregator, limit: int = 1 << 20) -> int:
    """The fewest valid replies on which ``agg`` keeps its full ``f``.

    Parameters
    ----------
    agg : Aggregator
        A byzcore aggregator.
    limit : int, optional
        Search no further (the answer is ``limit`` if none below fits; default ``2**20``).

    Returns
    -------
    int
        The smallest ``n`` with :func:`fits` true.
    """
    lo, hi = 1, limit
    while lo < hi:  # every bound is monotone in n
        mid = (lo + hi) // 2
        if fits(agg, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def resolve_rule(rule: str | Aggregator, f: int | None, seed: int, op: str) -> Aggregator:
    """A byzcore aggregator from a spec string (``f`` required) or an object (``f`` checked).

    Parameters
    ----------
    rule : str or Aggregator
        A spec string (docs/spec.md#spec-strings) or an aggregator object.
    f : int or None
        Byzantine messages tolerated: required with a spec string, optional with an object.
    seed : int
        Seeds a spec string's random stages (bucketing).
    op : str
        The name errors start with (``[op] ...``).

    Returns
    -------
    Aggregator
        The object itself, or what :func:`~byzcore.make_aggregator` builds from the string.

    Raises
    ------
    ValueError
        A spec string without ``f`` or with an ``f`` that is not an integer ``>= 0`` (or a bad
        spec), or an object whose ``f`` differs from the one given.
    TypeError
        ``rule`` is neither a string nor an aggregator.
    """
    if isinstance(rule, Aggregator):
        if f is not None and int(f) != rule.f:
            raise ValueError(f"[{op}] f={f} differs from the rule object's f={rule.f}; build the rule with that f "
                             "or leave f out")
        return rule
    if not isinstance(rule, str):
        raise TypeError(f"[{op}] rule must be a spec string like 'bucketing:2+median' or a byzcore aggregator, "
                        f"got {type(rule).__name__}")
    if f is None:
        raise ValueError(f"[{op}] give f, the number of Byzantine clients the rule must tolerate, e.g. "
                         f"{op}('{rule}', f=2)")
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
        raise ValueError(f"[{op}] f must be an integer >= 0, got {f!r}")
    return make_aggregator(rule, f=int(f), seed=seed)


@dataclass
class ServerAttack:
    """A server-side attack injector for experiments with omniscient attacks (ALIE, IPM,
    MinMax, ...): the ``f`` valid replies of the lowest client ids are replaced, inside the
    server, by what ``attack`` answers given every honest reply of the round.

    Parameters
    ----------
    attack : str or Attack
        A byzcore attack or spec string (:func:`byzcore.attacks.make_attack`).
    f : int
        Byzantine replies per round (capped at the valid replies minus one).
    seed : int, optional
        Seeds the attack's random draws (round ``t`` uses ``seed + t``).

    Shift-back's target is the first global model the server aggregated from (``x^0``):
    the injected rows bring the next global model back to it.

    Raises
    ------
    ValueError
        An unknown attack, label flipping (it changes the clients' data, not their replies:
        use :func:`byzcore.flower.flip_labels` in the Byzantine clients' ``ClientApp``), or
        ``f`` that is not an integer ``>= 0``.

    References
    ----------
    docs/spec.md#attacks; docs/flower.md.
    """

    attack: Any
    f: int
    seed: int = 0
    _attack: Attack = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._attack = make_attack(self.attack, op="ServerAttack")
        if self._attack.flips_labels:
            raise ValueError(f"[ServerAttack] {self._attack.name} changes the Byzantine clients' data, not their "
                             "replies, so the server cannot inject it; use byzcore.flower.flip_labels in those "
                             "clients' ClientApp")
        if isinstance(self.f, bool) or not isinstance(self.f, (int, np.integer)) or self.f < 0:
            raise ValueError(f"[ServerAttack] f must be an integer >= 0, got {self.f!r}")

    def __call__(self, X: np.ndarray, ids: Sequence[int], agg: Any, server_round: int,
                 target: Callable[[], np.ndarray] | None = None) -> tuple[np.ndarray, int]:
        """Return ``X`` with the Byzantine rows replaced, and how many were replaced.

        ``target`` gives shift-back's message (the row that returns the global model to
        ``x^0``, in the rows' space: update or model).
        """
        n = X.shape[0]
        f = min(int(self.f), max(n - 1, 0))
        if f == 0:
            return X, 0
        order = np.argsort(np.asarray(ids), kind="stable")
        byz = np.zeros(n, dtype=bool)
        byz[order[:f]] = True
        ctx = AttackContext(honest=X[~byz], own=X[byz], n=n, f=f, round=server_round,
                            rng=np.random.default_rng(self.seed + server_round),
                            honest_ids=np.asarray(ids)[~byz], aggregator=agg, byzantine_rows=byz,
                            target=target)
        out = X.copy()
        out[byz] = np.asarray(self._attack(ctx), dtype=X.dtype).reshape(f, -1)
        return out, f


def zeno_score(loss: Callable[[dict[str, np.ndarray]], float], rho: float = 5e-4) -> Callable[..., float]:
    """Zeno's score of a candidate model on the server's data: the loss decrease it brings,
    less ``rho`` times its squared distance to the current model (Xie et al., ICML 2019).

    Parameters
    ----------
    loss : callable
        ``loss(model) -> float`` on the server's validation data (``model``: ``{name: array}``).
    rho : float, optional
        Penalty on the squared norm of the update (default ``5e-4``).

    Returns
    -------
    callable
        ``score(candidate, current) -> float``: ``loss(current) - loss(candidate) - rho *
        ||candidate - current||^2``, for ``validate=``.

    References
    ----------
    docs/spec.md#alg-zeno.
    """

    def score(candidate: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> float:
        sq = sum(float(np.sum((np.asarray(candidate[k], np.float64) - np.asarray(current[k], np.float64)) ** 2))
                 for k in current)
        return float(loss(current)) - float(loss(candidate)) - rho * sq

    return score


@dataclass
class RoundReport:
    """What one round did; becomes the round's metrics (keys in :meth:`metrics`).

    Attributes
    ----------
    received : int
        Replies with content (not Flower errors).
    failed : int
        Replies that are Flower errors (failures in the legacy API).
    dropped : int
        Replies with other keys, shapes or dtypes than the global model, unreadable, or
        (weighted) with a bad example count: dropped as Byzantine for the round.
    nonfinite : int
        Kept replies holding NaN or Inf (given to the rule, docs/spec.md#nonfinite).
    rejected : int
        Replies the validation hook rejected.
    injected : int
        Replies replaced by the :class:`ServerAttack`.
    used : int
        Replies the rule aggregated.
    skipped : bool
        Whether the round kept the global model.
    reason : str
        Why it did (logged, not a metric).
    """

    received: int = 0
    failed: int = 0
    dropped: int = 0
    nonfinite: int = 0
    rejected: int = 0
    injected: int = 0
    used: int = 0
    skipped: bool = False
    reason: str = ""

    def metrics(self) -> dict[str, int]:
        """Integer metrics (Flower's MetricRecord holds numbers only; ``reason`` is logged)."""
        return {"byz-received": self.received, "byz-failed": self.failed, "byz-dropped": self.dropped,
                "byz-nonfinite": self.nonfinite, "byz-rejected": self.rejected, "byz-injected": self.injected,
                "byz-used": self.used, "byz-skipped": int(self.skipped)}


class RobustRound:
    """The server's robust aggregation of a round's replies (shared by both strategies).

    Parameters
    ----------
    rule : str or Aggregator
        A byzcore spec string (``"bucketing:2+median"``) or aggregator (``NNM(f) >> Krum(f)``).
    f : int or None, optional
        Byzantine clients tolerated; required with a spec string.
    mode : {"update", "model"}, optional
        ``"update"`` (default): aggregate client model minus current global model, then add the
        aggregate to the global; ``"model"``: aggregate the models.
    per_layer : bool, optional
        Aggregate each array separately (one rule copy per array) instead of the whole model
        as one vector.
    weighted : bool, optional
        Weight by example counts; only for ``mean`` (a robust rule would let a Byzantine
        client inflate its say by reporting a large count, so it is refused).
    validate : callable or None, optional
        Optional Zeno-style hook ``score(candidate, current) -> float`` (see :func:`zeno_score`)
        run on the server's data for every valid reply's model; replies are kept if their score is
        positive, or the ``keep`` best if ``keep`` is given; the rule then aggregates those kept.
    keep : int or None, optional
        With ``validate``: how many of the best-scoring replies to keep.
    attack : ServerAttack or None, optional
        Optional :class:`ServerAttack` (experiments with omniscient attacks).
    seed : int, optional
        Seeds the rule's random stages (bucketing).
    op : str, optional
        The name errors start with (default ``"ByzFedAvg"``).

    Raises
    ------
    ValueError, TypeError
        Bad options; messages start with ``[op]``.

    References
    ----------
    docs/flower.md; docs/spec.md#rules, docs/spec.md#nonfinite.
    """

    def __init__(self, rule: str | Aggregator, f: int | None = None, *, mode: str = "update", per_layer: bool = False,
                 weighted: bool = False, validate: Callable[..., float] | None = None, keep: int | None = None,
                 attack: ServerAttack | None = None, seed: int = 0, op: str = "ByzFedAvg"):
        self.op = op
        self.rule = resolve_rule(rule, f, seed, op)
        if mode not in ("update", "model"):
            raise ValueError(f"[{op}] mode must be 'update' or 'model', got {mode!r}")
        if weighted and not isinstance(self.rule, Mean):
            raise ValueError(f"[{op}] weighted=True is refused for {self.rule.name}: weights by example count would "
                             "let a Byzantine client inflate its say by reporting a large num-examples; leave "
                             "weighted=False (or use rule='mean' for plain FedAvg)")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 1):
            raise ValueError(f"[{op}] keep must be an integer >= 1 or None, got {keep!r}")
        if validate is not None and not callable(validate):
            raise TypeError(f"[{op}] validate must be a callable score(candidate, current) -> float")
        if attack is not None and not isinstance(attack, ServerAttack):
            raise TypeError(f"[{op}] attack must be a ServerAttack (client-side attacks: byzantine_mod)")
        self.mode, self.per_layer, self.weighted = mode, bool(per_layer), bool(weighted)
        self.validate, self.keep, self.attack = validate, keep, attack
        self._layer_rules: dict[str, Aggregator] = {}
        self._initial: np.ndarray | None = None  # x^0, flattened: the shift-back target

    def min_clients(self) -> int:
        """The fewest valid replies a round needs to be aggregated with the full ``f``."""
        return min_clients(self.rule)

    # ------------------------------------------------------------------ the round
    def __call__(self, server_round: int, current: Arrays | None,
                 replies: Sequence[tuple[int, Arrays | None, float | None]],
                 report: RoundReport | None = None) -> tuple[dict[str, np.ndarray] | None, RoundReport]:
        """Aggregate one round.

        Parameters
        ----------
        server_round : int
            The round number.
        current : mapping of str to numpy.ndarray or None
            The global model the clients were sent (``{name: array}``, in its fixed order);
            ``None`` skips the round.
        replies : sequence of tuple
            ``(client_id, arrays or None, num_examples or None)`` per reply; ``None`` arrays
            mark a reply that could not be read (dropped).
        report : RoundReport or None, optional
            A report to fill (the caller may have counted failures already).

        Returns
        -------
        (dict or None, RoundReport)
            The new global model, or ``None`` to keep the current one (the report says why).
        """
        rep = report if report is not None else RoundReport()
        rep.received += len(replies)
        if current is None:
            rep.skipped, rep.reason = True, "no current global model known (configure_train was not called)"
            return None, rep
        names = list(current)
        floats = [k for k in names if np.issubdtype(np.asarray(current[k]).dtype, np.floating)]
        # one floating dtype for the matrix: float32 models stay float32 (half the memory)
        dt = np.result_type(*[np.asarray(current[k]).dtype for k in floats]) if floats else np.float64
        ids, valid, counts = [], [], []
        for cid, arrays, num in replies:
            if not _conforms(arrays, current) or (self.weighted and not _is_count(num)):
                rep.dropped += 1
                continue
            assert arrays is not None  # _conforms refuses None
            ids.append(cid)
            valid.append(arrays)
            counts.append(float(num) if self.weighted and num is not None else 1.0)  # _is_count checked it
        if not floats:
            rep.skipped, rep.reason = True, "the model has no floating-point arrays to aggregate"
            return None, rep
        base = np.concatenate([np.asarray(current[k], dtype=dt).reshape(-1) for k in floats])
        # One copy of each reply, straight into its row (the replies may be read-only views of
        # the received bytes); the matrix is ours, so the update is taken in place.
        X = np.empty((len(valid), base.size), dtype=dt)
        for row, arrays in zip(X, valid):
            np.concatenate([arrays[k].reshape(-1) for k in floats], out=row)
        rep.nonfinite = sum(1 for row in X if not _finite_row(row))
        if self._initial is None:
            self._initial = base.copy()
        if self.mode == "update" and len(X):
            X -= base
        # Neither the attack nor the validation adds replies: a round that is short already
        # is skipped before either runs (an omniscient attack queries the rule, which would refuse).
        rep.used = len(X)
        if not self._enough(len(X), rep):
            return None, rep
        if self.attack is not None:
            initial = self._initial
            target = (lambda: initial - base) if self.mode == "update" else (lambda: initial)
            try:
                X, rep.injected = self.attack(X, ids, self.rule, server_round, target)
            except (ValueError, TypeError, FloatingPointError) as exc:  # an experiment's injector, not a crash
                rep.skipped, rep.reason = True, f"the server-side attack failed: {exc}"
                return None, rep
        if self.validate is not None and len(X):
            X, counts, rep.rejected = self._filter(X, counts, base, current, floats)
        rep.used = len(X)
        if not self._enough(len(X), rep):
            return None, rep
        try:
            agg = self._aggregate(X, np.asarray(counts), floats, current)
        except (ValueError, TypeError, FloatingPointError) as exc:  # never crash the server
            rep.skipped, rep.reason = True, f"aggregation failed: {exc}"
            return None, rep
        new = base + agg if self.mode == "update" else agg
        return _unflatten(new, current, floats), rep

    def _enough(self, n: int, rep: RoundReport) -> bool:
        """Whether ``n`` replies let the rule keep its full ``f``; if not, mark the round skipped."""
        if fits(self.rule, n):
            return True
        rep.skipped = True
        rep.reason = (f"{n} valid replies, fewer than the {self.rule.name} rule needs to tolerate "
                      f"f = {self.rule.f} (at least {self.min_clients()}); global model kept")
        return False

    def _filter(self, X: np.ndarray, counts: list[float], base: np.ndarray, current: Arrays,
                floats: list[str]) -> tuple[np.ndarray, list[float], int]:
        models = X + base if self.mode == "update" else X
        scores = np.empty(len(X))
        for i, row in enumerate(models):
            try:
                s = float(self.validate(_unflatten(row, current, floats), dict(current)))  # type: ignore[misc]
            except Exception:  # a user callable failing on one candidate rejects it
                s = -math.inf
            scores[i] = s if math.isfinite(s) else -math.inf
        if self.keep is not None:
            order = sorted(range(len(X)), key=lambda i: (-scores[i], i))
            kept = sorted(i for i in order[: self.keep] if scores[i] > -math.inf)
        else:
            kept = [i for i in range(len(X)) if scores[i] > 0]
        return X[kept], [counts[i] for i in kept], len(X) - len(kept)

    def _aggregate(self, X: np.ndarray, counts: np.ndarray, floats: list[str], current: Arrays) -> np.ndarray:
        if not self.per_layer:
            return self._apply(self.rule, X, counts)
        out, start = np.empty(X.shape[1], dtype=X.dtype), 0
        for k in floats:
            size = int(np.asarray(current[k]).size)
            rule = self._layer_rules.setdefault(k, copy.deepcopy(self.rule))  # stateful rules: one per layer
            out[start:start + size] = self._apply(rule, X[:, start:start + size], counts)
            start += size
        return out

    def _apply(self, rule: Aggregator, X: np.ndarray, counts: np.ndarray) -> np.ndarray:
        if self.weighted:
            return (counts[:, None] * X).sum(0) / counts.sum()
        return np.asarray(rule(X), dtype=X.dtype)


def _finite_row(row: np.ndarray) -> bool:
    """Every entry finite: the min and max propagate NaN and show +-inf (no n x d temporaries)."""
    return row.size == 0 or bool(np.isfinite(row.min()) and np.isfinite(row.max()))


def _conforms(arrays: Arrays | None, current: Arrays) -> bool:
    """Same keys, shapes and dtypes as the current global model."""
    if not isinstance(arrays, Mapping) or set(arrays) != set(current):
        return False
    for k, value in current.items():
        a, ref = arrays[k], np.asarray(value)
        if not isinstance(a, np.ndarray) or a.shape != ref.shape or a.dtype != ref.dtype:
            return False
    return True


def _is_count(num: Any) -> bool:
    return isinstance(num, (int, float, np.integer, np.floating)) and not isinstance(num, bool) \
        and math.isfinite(float(num)) and float(num) > 0


def _unflatten(vec: np.ndarray, current: Arrays, floats: list[str]) -> dict[str, np.ndarray]:
    """The model ``{name: array}`` with the floating arrays read from ``vec`` (in order) and
    the others (integer counters) kept from the current model."""
    out, start = {}, 0
    fl = set(floats)
    for k, value in current.items():
        ref = np.asarray(value)
        if k in fl:
            out[k] = vec[start:start + ref.size].reshape(ref.shape).astype(ref.dtype)
            start += ref.size
        else:
            out[k] = ref.copy()
    return out
