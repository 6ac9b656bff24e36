"""Byzantine clients for experiments: a ClientApp mod that replaces a client's training reply
with a byzcore attack.

A mod runs inside one client and sees only that client's own update, so it can run the
attacks that need nothing else: ``sign-flip`` (``-s`` times its own update), ``gaussian``,
``nan``, ``inf``, ``zero``, ``scale``, ``none``. Omniscient attacks (``alie``, ``ipm``,
``minmax``, ``minsum``, ``opt-*``, ``mimic``, ``shift-back``) need every honest reply of the
round: inject them on the server with :class:`byzcore.flower.ServerAttack`. Label flipping
changes the client's data, not its reply: flip the labels in the client's own training
function (:func:`flip_labels`). See docs/flower.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from ..attacks import AttackContext, Gaussian, NoAttack, NonFinite, Scale, SignFlip, Zero, make_attack
from ._compat import Array, ArrayRecord, Context, Message

_LOCAL = (NoAttack, SignFlip, Gaussian, NonFinite, Zero, Scale)


def flip_labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Label flipping as byzcore's ``label-flip`` attack defines it: class ``c -> C - 1 - c``.

    Parameters
    ----------
    y : array_like of int
        Integer class labels in ``0..num_classes-1``.
    num_classes : int
        ``C``.

    Returns
    -------
    numpy.ndarray
        The flipped labels (a new array).

    References
    ----------
    docs/spec.md#attack-label-flip.
    """
    return (num_classes - 1 - np.asarray(y)).astype(np.asarray(y).dtype)


def _partition_id(context: Context) -> int | None:
    try:
        return int(context.node_config["partition-id"])
    except (KeyError, TypeError, ValueError):
        return None


def _partition_in(ids: frozenset[int]) -> Callable[[Context], bool]:
    return lambda ctx: _partition_id(ctx) in ids


def byzantine_mod(attack: Any, byzantine: Iterable[int] | Callable[[Context], bool], *, seed: int = 0,
                  arrayrecord_key: str = "arrays") -> Callable[[Message, Context, Callable], Message]:
    """A ClientApp mod making some clients Byzantine: their training replies are replaced by
    the global model plus the attack's update (computed from the client's own update).

    Parameters
    ----------
    attack : str or Attack
        A byzcore attack or spec string that needs only the client's own update
        (``"sign-flip"``, ``"gaussian:sigma=10"``, ``"nan"``, ``"inf"``, ``"zero"``, ``"scale:-10"``;
        docs/spec.md#attacks).
    byzantine : iterable of int or callable
        Partition ids (``node_config["partition-id"]``, as Flower's simulation numbers
        clients) of the Byzantine clients, or ``predicate(context) -> bool``.
    seed : int, optional
        Seeds the random attacks (client ``p`` in round ``t`` draws from ``(seed, p, t)``).
    arrayrecord_key : str, optional
        The ArrayRecord's key in messages (default ``"arrays"``; the strategy's
        ``arrayrecord_key``).

    Returns
    -------
    callable
        ``mod(msg, context, call_next) -> Message``, for ``ClientApp(mods=[...])``. It
        changes only the floating-point arrays of a Byzantine client's successful ``train``
        reply; other replies pass unchanged.

    Raises
    ------
    ValueError
        An omniscient attack or label flipping (see the module's docstring).
    """
    att = make_attack(attack, op="byzantine_mod")
    if not isinstance(att, _LOCAL):
        raise ValueError(f"[byzantine_mod] {att.name} needs more than the client's own update (it is omniscient or "
                         "changes the data); inject it on the server with ServerAttack, or flip labels in the "
                         "client's training function with flip_labels")
    is_byz = byzantine if callable(byzantine) else _partition_in(frozenset(int(i) for i in byzantine))

    def mod(msg: Message, context: Context, call_next: Callable[[Message, Context], Message]) -> Message:
        reply = call_next(msg, context)
        if msg.metadata.message_type != "train" or not is_byz(context) or reply.has_error():
            return reply
        sent = msg.content.array_records.get(arrayrecord_key)
        got = reply.content.array_records.get(arrayrecord_key)
        if sent is None or got is None:
            return reply
        glob = {k: v.numpy() for k, v in sent.items()}
        own = {k: v.numpy() for k, v in got.items()}
        floats = [k for k in glob if np.issubdtype(glob[k].dtype, np.floating) and k in own]
        u = np.concatenate([(own[k].astype(np.float64) - glob[k]).reshape(-1) for k in floats])[None, :]
        rnd = int(msg.content.config_records.get("config", {}).get("server-round", 0)) \
            if "config" in msg.content.config_records else 0
        ctx = AttackContext(honest=u, own=u, n=1, f=1, round=rnd,
                            rng=np.random.default_rng([seed, _partition_id(context) or 0, rnd]))
        v = np.asarray(att(ctx), dtype=np.float64).reshape(-1)
        out, start = dict(own), 0
        for k in floats:
            size = glob[k].size
            out[k] = (glob[k] + v[start:start + size].reshape(glob[k].shape)).astype(glob[k].dtype)
            start += size
        reply.content[arrayrecord_key] = ArrayRecord({k: Array(np.asarray(a)) for k, a in out.items()})
        return reply

    return mod
