"""A Byzantine-robust communication hook for PyTorch ``DistributedDataParallel``.

``ddp.register_comm_hook(None, robust_hook("median", f=1))`` replaces DDP's all-reduce of
each gradient bucket by an all-gather of the ``world_size`` bucket copies followed by a
robust rule, computed by byzcore on every rank. Every rank sees the same ``world_size x
numel`` matrix and runs the same deterministic kernel with the same seed, so every rank
gets the same aggregate and the replicas stay identical without a second collective.

Cost: an all-gather moves ``world_size`` times the bytes of a ring all-reduce's output and
every rank runs the rule; ``bench/ddp_hook_cost.py`` measures it (docs/distributed.md).

Byzantine ranks can be simulated for experiments: ranks listed in ``byzantine_ranks``
replace their bucket by the attack's message before it is gathered. The attacks are the
simulation's (:mod:`byzcore.attacks`, same spec strings, same defaults, run on the gradient
tensors); those that need the honest messages get them from an extra all-gather that only
runs when Byzantine ranks are simulated: the adversary is omniscient, as in the papers.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

from ..aggregators import Aggregator, make_aggregator
from ..attacks import Attack, AttackContext, make_attack

__all__ = ["RobustHook", "robust_hook"]


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


# ---------------------------------------------------------------- the hook
class RobustHook:
    """The callable DDP calls once per gradient bucket; build it with :func:`robust_hook`.

    ``state`` (the first argument of ``register_comm_hook``) may be a process group, or
    ``None`` for the group given here (default: the world group).
    """

    def __init__(self, aggregator: str | Aggregator, f: int, *, seed: int = 0, process_group: Any = None,
                 byzantine_ranks: Iterable[int] = (), attack: str | Callable[..., Any] | None = None):
        if not isinstance(f, int) or isinstance(f, bool) or f < 0:
            raise ValueError(f"[robust_hook] f must be an integer >= 0, got {f!r}")
        if not isinstance(aggregator, (str, Aggregator)):
            raise TypeError("[robust_hook] aggregator must be a spec string like 'bucketing:2+median' or a "
                            f"byzcore Aggregator, got {type(aggregator).__name__}")
        make_aggregator(aggregator, f=f, seed=seed)  # fail here, not inside backward, on a bad spec
        self.spec, self.f, self.seed, self.group = aggregator, f, int(seed), process_group
        self.byzantine_ranks = frozenset(int(r) for r in byzantine_ranks)
        if self.byzantine_ranks and attack is None:
            raise ValueError("[robust_hook] byzantine_ranks given without an attack; pass attack='sign_flip' or another")
        self.attack = _hook_attack(attack) if attack is not None else None
        self._aggregators: dict[tuple[int, int], Aggregator] = {}
        self.calls = 0
        self.__name__ = self.__qualname__ = f"robust_hook[{self.spec}]"  # DDP logs hooks by name

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
        world, rank = dist.get_world_size(group), dist.get_rank(group)
        buf = bucket.buffer()
        self.calls += 1
        if world < 2:
            fut = torch.futures.Future()
            fut.set_result(buf)
            return fut
        send = self._byzantine_message(buf, group, world, rank, bucket.index()) if self.byzantine_ranks else buf
        gathered = buf.new_empty((world, buf.numel()))
        work = _all_gather(gathered, send, group, async_op=True)
        agg = self._aggregator_for((bucket.index(), buf.numel()))

        def finish(fut):
            fut.wait()  # re-raises a communication error here rather than aggregating garbage
            out = agg(gathered)
            buf.copy_(out.reshape(buf.shape))
            return buf

        return work.get_future().then(finish)

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
        row = self.attack(ctx)[int(bad[:rank].sum())]
        return torch.as_tensor(row, device=buf.device).to(buf.dtype).view(buf.shape)


def _all_gather(out, x, group, async_op: bool):
    """All-gather ``x`` (any shape) into the rows of ``out`` (world, numel). Gloo accepts only
    the concatenated output form, so gather into the flat view."""
    import torch.distributed as dist

    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.12
    return gather(out.view(-1), x.contiguous().view(-1), group=group, async_op=async_op)


def robust_hook(aggregator: str | Aggregator = "bucketing:2+median", f: int = 0, *, seed: int = 0,
                process_group: Any = None, byzantine_ranks: Iterable[int] = (),
                attack: str | Callable[..., Any] | None = None) -> RobustHook:
    """A DDP communication hook that makes gradient averaging Byzantine-robust.

    Each gradient bucket is all-gathered (``world_size x numel``) and reduced with the robust
    ``aggregator`` (a spec string such as ``"bucketing:2+median"`` or ``"nnm+krum"``, or a
    byzcore :class:`~byzcore.Aggregator`) tolerating ``f`` Byzantine ranks, identically on
    every rank::

        ddp = DistributedDataParallel(model)
        ddp.register_comm_hook(None, byzcore.torch.robust_hook("bucketing:2+median", f=1))

    Parameters
    ----------
    aggregator, f, seed
        The rule, the number of Byzantine ranks it tolerates, and the seed of randomised
        rules (bucketing); spec strings are built once per bucket with a seed derived from
        ``seed`` and the bucket index, so every rank draws the same shuffles.
    process_group
        The group to gather over when ``register_comm_hook`` is given ``state=None``.
    byzantine_ranks, attack
        Simulation only: these ranks send an attack's message instead of their gradient.
        ``attack`` is a spec string or :class:`~byzcore.attacks.Attack` of
        :func:`byzcore.attacks.make_attack` (``"alie"``, ``"ipm:eps=0.5"``, ``"opt-alie"``,
        which searches against this hook's rule), or a callable ``attack(ctx) -> (f, numel)``
        taking an :class:`~byzcore.attacks.AttackContext` (rows: the Byzantine ranks in
        ascending order). Costs one extra all-gather per bucket.

    Notes
    -----
    Replicas stay identical because every rank computes the same kernel on the same matrix:
    run every rank with the same byzcore build and instruction set (``BYZCORE_ISA``) when
    bitwise equality across machines matters.
    """
    return RobustHook(aggregator, f, seed=seed, process_group=process_group,
                      byzantine_ranks=byzantine_ranks, attack=attack)
