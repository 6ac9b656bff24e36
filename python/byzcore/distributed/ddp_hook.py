"""A Byzantine-robust communication hook for PyTorch ``DistributedDataParallel``.

``ddp.register_comm_hook(None, robust_hook("median", f=1))`` replaces DDP's all-reduce of
each gradient bucket by a robust rule over the ``world_size`` bucket copies, computed by
byzcore:

- coordinate-wise rules (mean, median, trimmed mean, bucketing of those) split the
  coordinates: rank ``r`` receives slice ``r`` of every rank's bucket (all-to-all), applies
  the rule to it, and the aggregated slices are all-gathered. Each rank moves as many bytes as
  a ring all-reduce and computes ``1 / world_size`` of the rule;
- whole-vector rules (Krum, geometric median, NNM, centered clipping) all-gather the
  ``world_size x numel`` matrix and every rank runs the same deterministic kernel with the
  same seed, so every rank gets the same aggregate without a second collective.

Both assume every rank runs the collectives as written (a rank's *gradient* may be anything):
the ring all-gather relays other ranks' data as the split relays aggregated slices.
``bench/ddp_hook_cost.py`` measures the cost against plain all-reduce (docs/distributed.md).

Byzantine ranks can be simulated for experiments: ranks listed in ``byzantine_ranks``
replace their bucket by the attack's message before it is gathered. The attacks are the
simulation's (:mod:`byzcore.attacks`, same spec strings, same defaults, run on the gradient
tensors); those that need the honest messages get them from an extra all-gather that only
runs when Byzantine ranks are simulated: the adversary is omniscient, as in the papers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Callable

from ..aggregators import (
    NNM,
    Aggregator,
    Bucketing,
    CenteredClipping,
    Chain,
    GeometricMedian,
    Krum,
    Mean,
    Median,
    MultiKrum,
    TrimmedMean,
    make_aggregator,
)
from ..attacks import Attack, AttackContext, make_attack

__all__ = ["RobustHook", "min_processes", "robust_hook"]


# ---------------------------------------------------------------- simulated attacks
def _hook_attack(attack: Any) -> Callable[..., Any]:
    """The attack the Byzantine ranks run: a spec string or :class:`~byzcore.attacks.Attack`
    (the simulation's own attacks, :mod:`byzcore.attacks`), or any callable ``attack(ctx) ->
    (f, numel)`` taking an :class:`~byzcore.attacks.AttackContext` (the escape hatch)."""
    if isinstance(attack, (str, Attack)):
        attack = make_attack(attack, op="robust_hook")
        if attack.flips_labels:
            raise ValueError(f"[robust_hook] {attack.name} changes the Byzantine ranks' data, not their gradients; "
                             "flip the labels in those ranks' data loader instead")
        if attack.needs_target:
            raise ValueError(f"[robust_hook] {attack.name} needs the training algorithm's target iterate, which a "
                             "DDP hook does not know; use it with `byzcore run`")
        return attack
    if callable(attack):
        return attack
    raise TypeError("[robust_hook] attack must be a spec string like 'alie', a byzcore Attack, or a callable "
                    f"attack(ctx) -> (f, numel), got {type(attack).__name__}")


# ---------------------------------------------------------------- how many ranks a rule needs
def min_processes(aggregator: Aggregator) -> tuple[int, str]:
    """The smallest number of messages ``n`` for which ``aggregator`` tolerates its ``f``.

    Parameters
    ----------
    aggregator : Aggregator
        A byzcore :class:`~byzcore.Aggregator` (as :func:`~byzcore.make_aggregator` builds it).

    Returns
    -------
    tuple of (int, str)
        ``n`` and the bound it comes from, as text (``"n >= f + 3 = 4"``), for error
        messages. An aggregator not named in the Notes gives ``(1, "n >= 1")``: it is not
        checked.

    Notes
    -----
    Krum and Multi-Krum need ``n >= f + 3`` (and ``n >= m``), their kernels' bound
    (docs/spec.md#rule-krum, docs/spec.md#rule-multi-krum); the trimmed mean needs
    ``n >= 2f + 1`` (docs/spec.md#rule-trimmed-mean). The median, geometric median, centered
    clipping and NNM run on fewer messages (docs/spec.md#rule-median,
    docs/spec.md#rule-geometric-median, docs/spec.md#rule-centered-clipping,
    docs/spec.md#pre-nnm) but tolerate ``f`` Byzantine ones only with an honest majority, so
    they are asked ``n >= 2f + 1`` too. Bucketing with buckets of ``s`` hands ``ceil(n / s)``
    bucket means, up to ``f`` of them Byzantine, to its rule (docs/spec.md#pre-bucketing), so
    it needs ``ceil(n / s)`` at least the rule's bound: ``n >= s * (bound - 1) + 1``. A chain
    needs the larger of its first stage's bound and its rule's bound on what the first stage
    returns (NNM returns ``n`` messages). Bucketing without a rule, the mean and aggregators
    of other types give ``(1, "n >= 1")``.
    """
    if isinstance(aggregator, Chain):
        n1, why1 = min_processes(aggregator.first)
        n2, why2 = _min_after(aggregator.first, aggregator.second)
        return (n1, why1) if n1 >= n2 else (n2, why2)
    if isinstance(aggregator, Bucketing):
        if aggregator.inner is None:
            return 1, "n >= 1"
        return _min_after(aggregator, aggregator.inner)
    f = int(aggregator.f)
    if isinstance(aggregator, (Krum, MultiKrum)):
        m = getattr(aggregator, "m", None)
        if m is not None and m > f + 3:
            return int(m), f"n >= m = {m}"
        return f + 3, f"n >= f + 3 = {f + 3}"
    if isinstance(aggregator, (Median, TrimmedMean, GeometricMedian, CenteredClipping, NNM)):
        return 2 * f + 1, f"n >= 2f + 1 = {2 * f + 1}"
    return 1, "n >= 1"  # the mean (f = 0) and rules byzcore does not know


def _min_after(first: Aggregator, rule: Aggregator) -> tuple[int, str]:
    """Messages ``first`` needs so that ``rule``, applied to what it returns, meets its bound."""
    need, why = min_processes(rule)
    if isinstance(first, Bucketing):  # ceil(n / s) >= need  <=>  n >= s * (need - 1) + 1
        s = int(first.s)
        return s * (need - 1) + 1, f"ceil(n / {s}) bucket means >= {need} for {rule.name} ({why})"
    return need, why  # NNM returns n messages


def _check_world(aggregator: Aggregator, world: int) -> None:
    need, why = min_processes(aggregator)
    if world < need:
        raise ValueError(
            f"[robust_hook] {aggregator.name} with f={aggregator.f} needs at least {need} processes ({why}), "
            f"the process group has {world}; lower f, choose another rule or add processes "
            "(byzcore.distributed.ddp_hook.min_processes tells what a rule needs)")


# ---------------------------------------------------------------- the hook
class RobustHook:
    """The callable DDP calls once per gradient bucket; build it with :func:`robust_hook`.

    ``state`` (the first argument of ``register_comm_hook``) may be a process group, or
    ``None`` for the group given here (default: the world group). Each bucket (by index and
    size) has an aggregator of its own, so stateful rules do not mix buckets.

    Parameters
    ----------
    aggregator : str or Aggregator
        A spec string of :func:`~byzcore.make_aggregator` or an aggregator object (deep-copied
        for each bucket; its own ``f`` and seed are used).
    f : int
        Byzantine ranks a spec string's rule tolerates (an integer ``>= 0``).
    seed : int, optional
        Seeds a spec string's randomised rules; bucket ``k`` uses a seed derived from
        ``seed`` and ``k``, the same on every rank.
    process_group : ProcessGroup or None, optional
        The group to reduce over when DDP passes ``state=None`` (default: the world group).
    byzantine_ranks : iterable of int, optional
        Ranks that send ``attack``'s message instead of their bucket (simulation only).
    attack : str, Attack, callable or None, optional
        Required with ``byzantine_ranks``; as in :func:`robust_hook`.

    Attributes
    ----------
    calls : int
        Buckets reduced so far on this rank.

    Raises
    ------
    ValueError
        A bad ``f`` or spec, ``byzantine_ranks`` without an ``attack``, an attack that flips
        labels or needs the algorithm's target iterate, or (when a process group is already
        initialised) a group smaller than :func:`min_processes` of the rule.
    TypeError
        ``aggregator`` is neither a string nor an Aggregator, or ``attack`` is neither a spec
        string, an Attack nor a callable.
    """

    def __init__(self, aggregator: str | Aggregator, f: int, *, seed: int = 0, process_group: Any = None,
                 byzantine_ranks: Iterable[int] = (), attack: str | Callable[..., Any] | None = None):
        if not isinstance(f, int) or isinstance(f, bool) or f < 0:
            raise ValueError(f"[robust_hook] f must be an integer >= 0, got {f!r}")
        if not isinstance(aggregator, (str, Aggregator)):
            raise TypeError("[robust_hook] aggregator must be a spec string like 'bucketing:2+median' or a "
                            f"byzcore Aggregator, got {type(aggregator).__name__}")
        # Fail here, not inside backward, on a bad spec or too few processes.
        self._rule = make_aggregator(aggregator, f=f, seed=seed)
        self.spec, self.f, self.seed, self.group = aggregator, f, int(seed), process_group
        self.byzantine_ranks = frozenset(int(r) for r in byzantine_ranks)
        if self.byzantine_ranks and attack is None:
            raise ValueError("[robust_hook] byzantine_ranks given without an attack; "
                             "pass attack='sign_flip' or another")
        self.attack = _hook_attack(attack) if attack is not None else None
        self._aggregators: dict[tuple[int, int], Aggregator] = {}
        self._buffers: dict[tuple, Any] = {}  # work buffers, reused every step (see _buffer)
        self._split = _coordinate_wise(self._rule)
        self._pending: tuple | None = None  # the bucket whose all-to-all is in flight (_flush)
        self._checked_worlds: set[int] = set()
        self.calls = 0
        self.__name__ = self.__qualname__ = f"robust_hook[{self.spec}]"  # DDP logs hooks by name
        world = _initialized_world(process_group)
        if world is not None:
            self.check_world(world)

    def check_world(self, world: int) -> None:
        """Refuse a process group too small for the rule to tolerate ``f`` Byzantine ranks.

        Parameters
        ----------
        world : int
            The size of the process group (checked once per size).

        Raises
        ------
        ValueError
            ``world`` is below :func:`min_processes` of the rule.
        """
        if world not in self._checked_worlds:
            _check_world(self._rule, world)
            self._checked_worlds.add(world)

    def _aggregator_for(self, key: tuple[int, int]) -> Aggregator:
        # One aggregator per bucket: stateful rules (centered clipping's previous aggregate,
        # bucketing's shuffle counter) must not mix buckets of different sizes; the key holds
        # the size because DDP rebuilds its buckets after the first iteration.
        agg = self._aggregators.get(key)
        if agg is None:
            if isinstance(self.spec, Aggregator):
                agg = copy.deepcopy(self.spec)
            else:
                agg = make_aggregator(self.spec, f=self.f, seed=(self.seed * 1_000_003 + key[0]) % 2**63)
            self._aggregators[key] = agg
        return agg

    def __call__(self, state, bucket):  # no annotations: DDP compares them with its own types
        import torch
        import torch.distributed as dist

        group = state if state is not None and hasattr(state, "size") else self.group
        if group is None:
            group = dist.group.WORLD
        world = dist.get_world_size(group)
        self.check_world(world)  # state may be a group robust_hook(...) did not see
        buf = bucket.buffer()
        self.calls += 1
        if world < 2:
            fut = torch.futures.Future()
            fut.set_result(buf)
            return fut
        index, numel = bucket.index(), buf.numel()
        send = self._byzantine_message(buf, group, world, dist.get_rank(group), index) if self.byzantine_ranks else buf
        agg = self._aggregator_for((index, numel))
        if self._split:
            return self._split_coordinates(agg, send.reshape(-1), buf, bucket, group, world, index)
        # Whole-vector rules: every rank gathers every message. One (world, numel) buffer per
        # bucket, reused every step (a fresh one costs page faults on every step); DDP waits
        # for this bucket's future before the next backward writes into it again.
        gathered = self._buffer(("gathered", index, world), (world, numel), buf)
        work = _all_gather(gathered, send, group, async_op=True)
        shape = buf.shape

        def finish(fut):
            fut.wait()  # re-raises a communication error here rather than aggregating garbage
            # The rule reads the gathered rows in place; DDP copies the returned tensor into
            # the gradients, so it need not be the bucket's own buffer.
            return agg(gathered).reshape(shape)

        return work.get_future().then(finish)

    def _split_coordinates(self, agg, send, buf, bucket, group, world: int, index: int):
        """A coordinate-wise rule as a robust reduce-scatter then an all-gather: rank ``r``
        receives slice ``r`` of every rank's bucket (all_to_all), applies the rule to those
        ``world`` slices and all-gathers the aggregated slices. Each rank moves ``2 (w-1)/w``
        bucket sizes, as a ring all-reduce does, instead of the ``w - 1`` of gathering every
        bucket, and computes ``1/w`` of the rule. The result is the same per coordinate.

        Every collective is issued from this call, on the thread DDP calls the hook from, in
        bucket order, so all ranks issue them in one order: bucket k's all-to-all runs while
        backward goes on, and its rule and all-gather are issued when bucket k+1 arrives, or at
        once for the last bucket of the step."""
        import torch
        import torch.distributed as dist

        self._flush()
        numel = send.numel()
        c = -(-numel // world)  # slice length; the bucket is padded to world * c
        if numel == world * c:
            flat = send
        else:
            flat = self._buffer(("padded", index, world), (world * c,), buf)
            flat[:numel].copy_(send)
            flat[numel:].zero_()
        slices = self._buffer(("slices", index, world), (world, c), buf)
        work = dist.all_to_all_single(slices.view(-1), flat, group=group, async_op=True)
        out = self._buffer(("out", index, world), (world * c,), buf)
        result = torch.futures.Future()
        self._pending = (work, agg, slices, out, numel, buf.shape, group, result)
        is_last = getattr(bucket, "is_last", None)
        if is_last is None or is_last():
            self._flush()
        return result

    def _flush(self) -> None:
        """Rule and all-gather of the bucket whose all-to-all is in flight, if any."""
        if self._pending is None:
            return
        work, agg, slices, out, numel, shape, group, result = self._pending
        self._pending = None
        try:
            work.wait()
            mine = agg(slices)
            gathered = _all_gather(out, mine, group, async_op=True).get_future()
        except Exception as exc:  # every rank fails alike; DDP's wait re-raises it
            result.set_exception(exc)
            return

        def finish(fut):
            try:
                fut.wait()  # re-raises a communication error rather than returning garbage
                result.set_result(out[:numel].view(shape))
            except Exception as exc:
                result.set_exception(exc)

        gathered.add_done_callback(finish)

    def _buffer(self, key: tuple, shape: tuple, like):
        """A work buffer of this bucket's dtype and device, allocated once and reused."""
        key = (*key, like.dtype, like.device)
        b = self._buffers.get(key)
        if b is None or tuple(b.shape) != tuple(shape):
            b = self._buffers[key] = like.new_empty(shape)
        return b

    def _byzantine_message(self, buf, group, world: int, rank: int, index: int):
        import numpy as np
        import torch

        honest_all = buf.new_empty((world, buf.numel()))
        _all_gather(honest_all, buf, group, async_op=False)
        if rank not in self.byzantine_ranks:
            return buf
        # Every Byzantine rank computes the messages of all of them from the same matrix and
        # the same seed (as the simulation's server does), then sends its own row.
        bad = np.zeros(world, dtype=bool)
        bad[[r for r in self.byzantine_ranks if 0 <= r < world]] = True
        mask = torch.from_numpy(bad).to(honest_all.device)
        ctx = AttackContext(honest=honest_all[~mask], own=honest_all[mask], n=world, f=int(bad.sum()),
                            round=self.calls, rng=np.random.default_rng([self.seed % 2**64, index, self.calls]),
                            honest_ids=np.flatnonzero(~bad), aggregator=self._aggregator_for((index, buf.numel())),
                            byzantine_rows=bad)
        assert self.attack is not None  # byzantine_ranks without an attack is refused in __init__
        row = self.attack(ctx)[int(bad[:rank].sum())]
        return torch.as_tensor(row, device=buf.device).to(buf.dtype).view(buf.shape)


def _all_gather(out, x, group, async_op: bool):
    """All-gather ``x`` (any shape) into the rows of ``out`` (world, numel). Gloo accepts only
    the concatenated output form, so gather into the flat view."""
    import torch.distributed as dist

    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.12
    return gather(out.view(-1), x.contiguous().view(-1), group=group, async_op=async_op)


def _coordinate_wise(aggregator: Aggregator) -> bool:
    """True when each coordinate of the result depends only on that coordinate of the
    messages (bucketing shuffles whole messages, with one permutation for every coordinate)."""
    if isinstance(aggregator, Bucketing):
        return aggregator.inner is None or _coordinate_wise(aggregator.inner)
    if isinstance(aggregator, Chain):
        return _coordinate_wise(aggregator.first) and _coordinate_wise(aggregator.second)
    return type(aggregator) in (Mean, Median, TrimmedMean)


def _initialized_world(group: Any) -> int | None:
    """The size of ``group`` (default: the world) when a process group is up, else None."""
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if not dist.is_available() or not dist.is_initialized():
        return None
    return dist.get_world_size(group if group is not None else dist.group.WORLD)


def robust_hook(aggregator: str | Aggregator = "bucketing:2+median", f: int = 0, *, seed: int = 0,
                process_group: Any = None, byzantine_ranks: Iterable[int] = (),
                attack: str | Callable[..., Any] | None = None) -> RobustHook:
    """A DDP communication hook that makes gradient averaging Byzantine-robust.

    Each gradient bucket's ``world_size`` copies are reduced with the robust ``aggregator``
    (a spec string such as ``"bucketing:2+median"`` or ``"nnm+krum"``, or a byzcore
    :class:`~byzcore.Aggregator`) tolerating ``f`` Byzantine ranks, identically on every
    rank. Coordinate-wise rules (mean, median, trimmed mean, bucketing of those) go through
    an all-to-all of slices, the rule on each rank's slice, and an all-gather of the
    aggregated slices; the others all-gather the ``world_size x numel`` matrix and run on
    every rank. A group of one rank returns the bucket unchanged::

        ddp = DistributedDataParallel(model)
        ddp.register_comm_hook(None, byzcore.torch.robust_hook("bucketing:2+median", f=1))

    Parameters
    ----------
    aggregator : str or Aggregator, optional
        The rule (default ``"bucketing:2+median"``); an object is deep-copied for each
        bucket and keeps its own ``f`` and seed. The rules are those of docs/spec.md#rules.
    f : int, optional
        The number of Byzantine ranks a spec string's rule tolerates (default 0).
    seed : int, optional
        The seed of randomised rules (bucketing): spec strings are built once per bucket
        with a seed derived from ``seed`` and the bucket index, so every rank draws the same
        shuffles.
    process_group : ProcessGroup or None, optional
        The group to reduce over when ``register_comm_hook`` is given ``state=None``.
        When a process group is already initialised, its size is checked here against what
        the rule needs (:func:`min_processes`); otherwise on the first bucket.
    byzantine_ranks : iterable of int, optional
        Simulation only: these ranks send an attack's message instead of their gradient.
        Costs one extra all-gather per bucket.
    attack : str, Attack, callable or None, optional
        Required with ``byzantine_ranks``: a spec string or :class:`~byzcore.attacks.Attack`
        of :func:`byzcore.attacks.make_attack` (``"alie"``, ``"ipm:eps=0.5"``, ``"opt-alie"``,
        which searches against this hook's rule; docs/spec.md#attacks), or a callable
        ``attack(ctx) -> (f, numel)`` taking an :class:`~byzcore.attacks.AttackContext`
        (rows: the Byzantine ranks in ascending order).

    Returns
    -------
    RobustHook
        The hook, for ``ddp.register_comm_hook(state, hook)``.

    Raises
    ------
    ValueError
        A bad spec or ``f``, ``byzantine_ranks`` without an ``attack``, an attack that flips
        labels or needs the training algorithm's target iterate, or a process group smaller
        than the rule needs to tolerate ``f`` Byzantine ranks (e.g. Krum with ``f = 1``
        needs 4 processes: ``n >= f + 3``).
    TypeError
        An ``aggregator`` or ``attack`` of another type.

    Notes
    -----
    Replicas stay identical because every rank computes the same kernel on the same data:
    run every rank with the same byzcore build and instruction set (``BYZCORE_ISA``) when
    bitwise equality across machines matters. Rules that use norms or distances see each
    bucket as a message of its own (docs/distributed.md).
    """
    return RobustHook(aggregator, f, seed=seed, process_group=process_group,
                      byzantine_ranks=byzantine_ranks, attack=attack)
