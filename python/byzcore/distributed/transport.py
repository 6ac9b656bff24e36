"""Message transport of the server-worker runtime: torch.distributed's c10d Store, with deadlines.

Why the Store and not gloo send/recv
------------------------------------
The runtime must survive workers that crash, stall, or send garbage. Measured with torch
2.13 gloo over loopback (script in docs/distributed.md):

* a ``recv`` whose sender sends *more* bytes than the posted buffer aborts the receiving
  process (SIGABRT inside gloo): one Byzantine worker could kill the server;
* a ``recv`` that sends *fewer* bytes completes silently with the tail of the buffer stale;
* ``Work.wait(timeout)`` on a silent peer times out and then operations with *other*, honest
  peers fail too ("Application timeout caused pair closure"); collectives (gather,
  broadcast) with a dead member hang until the group's timeout, which poisons the group;
* ``Work.is_completed()`` of a gloo ``irecv`` stays ``False`` until ``wait()``, so there is
  nothing to poll.

The c10d ``TCPStore`` (the rendezvous store that ``init_process_group`` and torchrun already
run) has none of these problems: a message is one value under a key that names the round and
the worker, the server polls ``check`` until a per-round deadline, and it reads whatever
bytes arrived and validates them itself. A worker that is dead, slow or silent is absent;
a value of the wrong length, dtype, round or worker id is malformed, and its sender is
treated as Byzantine for that round (its message is dropped). The server holds the model in
its own memory throughout, so no fault can make it lose or corrupt it.

Key layout (under the ``byzcore/`` prefix): ``plan/{seq}`` (server -> workers),
``msg/{seq}/{worker}`` (worker -> server), ``own/{seq}/{worker}`` (a Byzantine worker's
honest computation, shared with its colluders), ``ready/{rank}``, ``pid/{rank}``, ``latest``,
``stop``. Stale keys are deleted as rounds finish. The Store has no authentication: a worker
could write another worker's key. Impersonation is outside this threat model, as in the
papers (Byzantine workers choose their own messages only).
"""

from __future__ import annotations

import datetime
import json
import struct
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["StoreChannel", "encode_vector", "decode_vector", "encode_plan", "decode_plan", "connect_store",
           "OK", "ABSENT", "MALFORMED"]

OK, ABSENT, MALFORMED = "ok", "absent", "malformed"

_MAGIC = b"BZM1"
_HEADER = struct.Struct("<4sB3xqqq")  # magic, dtype code, seq, worker, count: 32 bytes
_DTYPES = {1: np.dtype("<f8"), 2: np.dtype("<f4")}
_CODES = {v: k for k, v in _DTYPES.items()}


def encode_vector(seq: int, worker: int, vec: np.ndarray) -> bytes:
    """A worker's message: a 32-byte header (magic, dtype, round, worker, length) and the values."""
    a = np.ascontiguousarray(vec).reshape(-1)
    code = _CODES.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
    if code is None:
        raise TypeError(f"[transport] messages are float64 or float32, got {a.dtype}")
    return _HEADER.pack(_MAGIC, code, int(seq), int(worker), a.size) + a.astype(_DTYPES[code], copy=False).tobytes()


def decode_vector(raw: bytes, seq: int, worker: int, d: int) -> np.ndarray | None:
    """The float64 vector in ``raw`` if it is exactly the message expected (magic, float64,
    this round, this worker, ``d`` values); ``None`` for anything else."""
    if len(raw) < _HEADER.size:
        return None
    magic, code, s, w, count = _HEADER.unpack_from(raw)
    if magic != _MAGIC or code != 1 or s != seq or w != worker or count != d or len(raw) != _HEADER.size + 8 * d:
        return None
    return np.frombuffer(raw, dtype="<f8", offset=_HEADER.size).astype(np.float64)


def encode_plan(seq: int, plan: Any, target: np.ndarray | None) -> bytes:
    """Server -> workers: a JSON header and the float64 vectors ``x``, ``x_old``, ``target``."""
    arrays = {"x": plan.x, "x_old": plan.x_old, "target": target}
    present = {k: int(np.asarray(v).size) for k, v in arrays.items() if v is not None}
    head = {"seq": int(seq), "round": int(plan.round), "clients": [int(c) for c in plan.clients],
            "kind": plan.kind, "info": plan.info, "arrays": present}
    hb = json.dumps(head).encode()
    body = b"".join(np.ascontiguousarray(arrays[k], dtype="<f8").tobytes() for k in present)
    return struct.pack("<q", len(hb)) + hb + body


def decode_plan(raw: bytes) -> tuple[int, Any, np.ndarray | None]:
    """``(seq, plan, target)`` from :func:`encode_plan`'s bytes."""
    from ..algorithms.base import Plan

    (n,) = struct.unpack_from("<q", raw)
    head = json.loads(raw[8:8 + n].decode())
    off, arrays = 8 + n, {}
    for key, size in head["arrays"].items():
        arrays[key] = np.frombuffer(raw, dtype="<f8", count=size, offset=off).copy()
        off += 8 * size
    plan = Plan(head["round"], np.asarray(head["clients"], dtype=np.int64), arrays["x"], kind=head["kind"],
                x_old=arrays.get("x_old"), info=head["info"])
    return head["seq"], plan, arrays.get("target")


def connect_store(timeout_s: float = 300.0):
    """The c10d store of this job, from the torchrun environment (``MASTER_ADDR``,
    ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``; under torchrun or :func:`spawn` the launcher
    hosts it), wrapped in a ``byzcore/`` prefix. Returns ``(store, rank, world_size)``."""
    import torch.distributed as dist

    store, rank, world = next(dist.rendezvous("env://", timeout=datetime.timedelta(seconds=timeout_s)))
    store.set_timeout(datetime.timedelta(seconds=timeout_s))
    return dist.PrefixStore("byzcore/", store), rank, world


class StoreChannel:
    """The runtime's messages over a c10d store (see the module docstring)."""

    def __init__(self, store: Any, poll_s: float = 0.0005, max_poll_s: float = 0.01):
        self.store, self.poll_s, self.max_poll_s = store, poll_s, max_poll_s

    # ------------------------------------------------------------------ basics
    def has(self, key: str) -> bool:
        return bool(self.store.check([key]))

    def get(self, key: str) -> bytes:
        return bytes(self.store.get(key))

    def delete(self, keys: Sequence[str]) -> None:
        for k in keys:
            try:
                self.store.delete_key(k)
            except Exception:  # already gone, or the store is closing: nothing to free
                pass

    def wait_any(self, keys: Sequence[str], deadline: float) -> str | None:
        """The first of ``keys`` that exists, polling until ``deadline`` (monotonic); else None."""
        sleep = self.poll_s
        while True:
            for k in keys:
                if self.has(k):
                    return k
            if time.monotonic() >= deadline:
                return None
            time.sleep(sleep)
            sleep = min(sleep * 2, self.max_poll_s)

    def collect(self, keys: dict[int, str], deadline: float) -> dict[int, bytes]:
        """Whatever of ``keys`` (``{id: key}``) arrives before ``deadline``: ``{id: raw bytes}``."""
        pending, got = dict(keys), {}
        sleep = self.poll_s
        while pending:
            for i, k in list(pending.items()):
                if self.has(k):
                    got[i] = self.get(k)
                    del pending[i]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(sleep)
            sleep = min(sleep * 2, self.max_poll_s)
        return got

    # ------------------------------------------------------------------ server side
    def publish(self, seq: int, payload: bytes) -> None:
        self.store.set(f"plan/{seq}", payload)
        self.store.set("latest", str(seq))

    def stop(self) -> None:
        self.store.set("stop", "1")

    def gather(self, seq: int, workers: Sequence[int], d: int, deadline: float) -> tuple[np.ndarray, list[str]]:
        """The messages of ``workers`` for round ``seq``: ``(rows (len, d) float64, status)``,
        status ``ok``, ``absent`` (nothing by the deadline) or ``malformed`` (wrong size,
        dtype, round or sender id). Rows that are not ``ok`` hold NaN."""
        raw = self.collect({int(w): f"msg/{seq}/{int(w)}" for w in workers}, deadline)
        rows = np.full((len(workers), d), np.nan)
        status = []
        for r, w in enumerate(workers):
            if int(w) not in raw:
                status.append(ABSENT)
                continue
            vec = decode_vector(raw[int(w)], seq, int(w), d)
            if vec is None:
                status.append(MALFORMED)
            else:
                rows[r] = vec
                status.append(OK)
        return rows, status

    def forget_round(self, seq: int, workers: Sequence[int]) -> None:
        self.delete([f"msg/{seq}/{int(w)}" for w in workers] + [f"own/{seq}/{int(w)}" for w in workers])

    # ------------------------------------------------------------------ worker side
    def next_plan(self, seq: int, idle_timeout_s: float) -> bytes | None:
        """The plan of round ``seq``, or of the latest round if the server is already past
        ``seq``; ``None`` when the server said stop or went quiet.

        Skipping to the latest plan is safe: the server publishes round ``s + 1`` only once
        every client sampled in round ``s`` answered or its deadline passed, so a worker that
        finds the server ahead was not sampled in the rounds it skips, or missed them anyway
        (a stalled worker thus rejoins at once instead of replaying stale rounds)."""
        deadline = time.monotonic() + idle_timeout_s
        if self.has("latest"):
            latest = int(self.get("latest"))
            if latest > seq and self.has(f"plan/{latest}"):
                return self.get(f"plan/{latest}")
        while True:
            key = self.wait_any([f"plan/{seq}", "stop"], min(deadline, time.monotonic() + 0.5))
            if key == "stop":
                return None
            if key is not None:
                return self.get(key)
            if self.has("latest"):
                latest = int(self.get("latest"))
                if latest > seq and self.has(f"plan/{latest}"):
                    return self.get(f"plan/{latest}")
            if time.monotonic() >= deadline:
                return None

    def send(self, seq: int, worker: int, vec: np.ndarray, *, kind: str = "msg") -> None:
        self.store.set(f"{kind}/{seq}/{int(worker)}", encode_vector(seq, worker, vec))

    def send_raw(self, seq: int, worker: int, raw: bytes) -> None:
        self.store.set(f"msg/{seq}/{int(worker)}", raw)
