"""What every attack shares: the round's context, the base class and the array adapter.

Attacks are written once against :class:`ArrayOps`, a handful of array operations that
exist for NumPy arrays and torch tensors (CPU or CUDA), so the simulation (NumPy, float64)
and the DDP hook (torch, the gradient's dtype and device) run the same code and the same
defaults. Random draws always come from the context's NumPy generator and are then moved
to the caller's framework, so both give the same message for the same seed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["ArrayOps", "Attack", "AttackContext"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch" and hasattr(x, "data_ptr")


class ArrayOps:
    """The array operations attacks use, for the framework of ``like`` (NumPy or torch).

    Parameters
    ----------
    like : numpy.ndarray or torch.Tensor
        Results take its framework, dtype and device.

    References
    ----------
    docs/spec.md#attacks
    """

    def __init__(self, like: Any):
        self.torch = _is_torch(like)
        self.like = like
        if self.torch:
            import torch

            self._t = torch

    def mean(self, X: Any) -> Any:
        """Column means of a 2-D array."""
        return X.mean(0)

    def std(self, X: Any) -> Any:
        """Column population standard deviations (``ddof = 0``) of a 2-D array."""
        return X.std(0, correction=0) if self.torch else X.std(0)

    def sign(self, x: Any) -> Any:
        """Elementwise sign of ``x`` in the messages' array library.

        References
        ----------
        docs/spec.md#attacks
        """
        return self._t.sign(x) if self.torch else np.sign(x)

    # Sums of products rather than BLAS dot/norm: a threaded BLAS on a busy machine can take
    # a thousand times longer for one vector, and both frameworks then add in the same way.
    def norm(self, x: Any) -> float:
        """Euclidean norm of the flattened array, as a Python float."""
        return math.sqrt(float((x * x).sum()))

    def row_sq_norms(self, X: Any) -> Any:
        """Squared Euclidean norm of each row of ``X``.

        References
        ----------
        docs/spec.md#attacks
        """
        return (X * X).sum(1)

    def row_dots(self, X: Any, v: Any) -> Any:
        """``<x_i, v>`` for every row of ``X``."""
        return (X * v.reshape(1, -1)).sum(1)

    def to_float_list(self, x: Any) -> list[float]:
        """``x`` (a vector) as a list of Python floats.

        References
        ----------
        docs/spec.md#attacks
        """
        return [float(v) for v in (x.detach().cpu().numpy() if self.torch else np.asarray(x))]

    def tile(self, v: Any, f: int) -> Any:
        """``f`` copies of the vector ``v`` as an ``(f, d)`` array (a new buffer)."""
        v = v.reshape(1, -1)
        return v.repeat(f, 1) if self.torch else np.repeat(v, f, axis=0)

    def asarray(self, a: Any) -> Any:
        """``a`` (NumPy or Python numbers) in the framework, dtype and device of ``like``."""
        if self.torch:
            return self._t.as_tensor(np.asarray(a), dtype=self.like.dtype, device=self.like.device)
        return np.asarray(a, dtype=self.like.dtype)

    def full(self, shape: tuple[int, ...], value: float) -> Any:
        """An array of ``shape`` filled with ``value``, of the messages' library, dtype and device.

        References
        ----------
        docs/spec.md#attacks
        """
        if self.torch:
            return self._t.full(shape, value, dtype=self.like.dtype, device=self.like.device)
        return np.full(shape, value, dtype=self.like.dtype)

    def copy(self, X: Any) -> Any:
        """A copy of ``X`` (the caller's array is never modified).

        References
        ----------
        docs/spec.md#attacks
        """
        return X.clone() if self.torch else X.copy()

    def assemble(self, honest: Any, byzantine: Any, byzantine_rows: np.ndarray | None) -> Any:
        """The server's ``(n, d)`` matrix: honest rows and Byzantine rows in their places
        (``byzantine_rows``: boolean mask over the ``n`` rows; ``None``: honest rows first)."""
        if byzantine_rows is None:
            if self.torch:
                return self._t.cat([honest, byzantine], 0)
            return np.concatenate([honest, byzantine], 0)
        mask = np.asarray(byzantine_rows, dtype=bool)
        shape = (len(mask), byzantine.shape[1])
        if self.torch:
            out = self._t.empty(shape, dtype=byzantine.dtype, device=byzantine.device)
            m = self._t.as_tensor(mask, device=byzantine.device)
            out[~m], out[m] = honest.to(byzantine.dtype), byzantine
        else:
            out = np.empty(shape, dtype=np.result_type(honest, byzantine))
            out[~mask], out[mask] = honest, byzantine
        return out


@dataclass
class AttackContext:
    """What the adversary sees in one round (the omniscient adversary of the papers).

    Parameters
    ----------
    honest : numpy.ndarray or torch.Tensor
        ``(h, d)`` messages of the round's good clients (ids ``honest_ids``); ``h`` may be 0.
    own : numpy.ndarray or torch.Tensor
        ``(f, d)`` what the Byzantine clients would send if they were honest (for label-flip,
        computed on flipped labels). The attack answers in its framework, dtype and device.
    n, f : int
        Messages the server receives this round, and how many of them are Byzantine.
    round : int
        The round number.
    rng : numpy.random.Generator
        The attack's NumPy random stream for this round.
    honest_ids : numpy.ndarray, default empty
        Client ids of the rows of ``honest``.
    target : callable or None, default None
        For shift-back: a function returning the message that, aggregated, sends the next
        iterate to ``x^0``; ``None`` where the algorithm defines none.
    aggregator : Aggregator, callable or None, default None
        The server's aggregator (a byzcore :class:`~byzcore.aggregators.Aggregator` or any
        callable ``(n, d) -> (d,)``), which the line-searched attacks query; ``None`` if the
        algorithm aggregates otherwise (Zeno, Zeno++).
    byzantine_rows : numpy.ndarray or None, default None
        Boolean mask over the ``n`` rows of the server's matrix marking the Byzantine rows
        (where the attack's messages go); ``None``: honest rows first, then Byzantine.

    References
    ----------
    docs/spec.md#attacks
    """

    honest: Any
    own: Any
    n: int
    f: int
    round: int
    rng: np.random.Generator
    honest_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    target: Callable[[], Any] | None = None
    aggregator: Any = None
    byzantine_rows: np.ndarray | None = None

    def reference(self) -> Any:
        """The honest messages, or the Byzantines' own honest ones if no good client sent."""
        return self.honest if len(self.honest) else self.own

    def ops(self) -> ArrayOps:
        """The array adapter for this round's framework."""
        return ArrayOps(self.own)

    def aggregate_with(self, byzantine: Any, op: str = "attack") -> Any:
        """What the server's aggregator would answer if the Byzantine clients sent
        ``byzantine`` (``(f, d)``). The aggregator is copied first, so a stateful rule
        (centered clipping's centre, bucketing's shuffle counter) answers as in the real call
        and is not advanced by the query. ``op`` names the attack in errors."""
        if self.aggregator is None:
            raise ValueError(f"[{op}] this attack queries the server's aggregator, and none is known here; "
                             "use it with an algorithm that aggregates (sgd, resam, byz_vr_marina_pp) or the DDP "
                             "hook, or pass agg=SPEC to the attack")
        X = self.ops().assemble(self.honest, byzantine, self.byzantine_rows)
        return copy.deepcopy(self.aggregator)(X)


class Attack:
    """Base class: ``attack(ctx) -> (ctx.f, d)`` messages in the framework of ``ctx.own``.

    Class attributes tell the callers what an attack needs: ``flips_labels`` (the runner
    computes the Byzantines' own messages on flipped labels) and ``needs_target`` (the
    algorithm must define the shift-back target).

    References
    ----------
    docs/spec.md#attacks
    """

    name = "attack"
    flips_labels = False
    needs_target = False

    def __call__(self, ctx: AttackContext) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name
