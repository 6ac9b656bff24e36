"""Message transport of the server-worker runtime: control over the c10d Store, vectors over gloo.

Two planes
----------
* **Control** (small, keyed, with deadlines): torch.distributed's c10d ``TCPStore``, the
  rendezvous store that ``init_process_group`` and torchrun already run. The server pushes
  the plan's JSON header (round, sampled clients, kind, clip level, the sizes of the vectors
  that follow, the links it will use) onto the queue ``go/{rank}`` of each process holding
  sampled clients, which wakes it (the others sleep through the round; a pop removes what it
  reads, so nothing piles up in the store), and sets a ``published`` counter;
  workers write ``join/{rank}`` (to open or reopen their link), ``pid/{rank}``.
  Waiting is event driven (a blocking ``get`` with a deadline), never a polling loop.
* **Data** (bulk vectors at wire speed): one gloo process group *per worker process*, of
  size two (the server and that process): the *link*. Plans go server -> worker and messages
  worker -> server as point-to-point transfers whose sizes the server fixes (the plan header
  says them); messages travel in the problem's dtype (float32 problems send float32).
  A plan of at most ``INLINE_PLAN_BYTES`` rides in its wake-up value instead (a control-sized
  value: the store round trip that wakes the process carries it, no transfer follows).

Why one link per worker process (measured with torch 2.13, ``bench/gloo_p2p_faults.py``)
----------------------------------------------------------------------------------------
A gloo ``recv`` that times out closes its *pair* ("Application timeout caused pair
closure"); in one group of all ranks that poisons the group, and a collective with a dead
member hangs until the group's timeout. With a group per worker process, a crashed or
stalled worker breaks its own link only: the server drops that link (the worker is absent),
the other links go on, and the worker reopens a fresh link (a new *generation*, its own
store prefix) when it comes back. The server waits on a link only up to the round's
deadline.

Message framing and validation
------------------------------
A message is a 32-byte header (magic, dtype code, round, worker id, length) and a payload of
exactly the size the server fixed: one transfer of both when the payload has at most
``PACK_BYTES`` (a transfer's fixed cost, not the copy into one buffer, dominates there), two
transfers otherwise (no copy of a large payload). The server checks the header
(:func:`header_ok`); a message of the wrong dtype, length, round or sender
id is *malformed*: dropped, its sender counted as Byzantine for the round. The sending side
of this module always transfers the fixed payload size (the header declares what the
message really was), so a malformed message leaves the link in step.

What gloo does not survive: a process that bypasses this module and writes a payload
*larger* than the posted buffer aborts the receiving process inside gloo (SIGABRT). So the
engine's threat model (docs/distributed.md) trusts every process to run this framing code
and distrusts the *values* it sends and its timing: arbitrary values (NaN, Inf, huge),
wrong sizes declared in the header, crashes and stalls are survived; forged transport
frames and impersonation (the Store has no authentication) need an engine with
authenticated, server-parsed messages (the Flower integration).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import struct
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ABSENT",
    "MALFORMED",
    "OK",
    "Link",
    "ServerTransport",
    "WorkerTransport",
    "connect_store",
    "decode_plan",
    "encode_header",
    "encode_plan",
    "header_ok",
    "wire_dtype",
]

OK, ABSENT, MALFORMED = "ok", "absent", "malformed"

_MAGIC = b"BZM2"
_HEADER = struct.Struct("<4sB3xqqq")  # magic, dtype code, seq, worker, count: 32 bytes
_DTYPES = {1: np.dtype("<f8"), 2: np.dtype("<f4")}
_CODES = {v: k for k, v in _DTYPES.items()}
_PLAN_TAG = 1 << 28   # + index of the plan's vector
INLINE_PLAN_BYTES = 1 << 16  # plans up to this size travel in the Store's wake-up value
PACK_BYTES = 1 << 20         # messages up to this size travel with their header in one transfer
_MAX_WORKER = 1 << 27  # message tags are 2 * worker + (0, 1): below _PLAN_TAG


def wire_dtype(itemsize: int) -> np.dtype:
    """The dtype messages travel in for a problem with ``itemsize``-byte values.

    Parameters
    ----------
    itemsize : int
        The problem's bytes per value.

    Returns
    -------
    numpy.dtype
        Little-endian float32 for 4, float64 otherwise.
    """
    return np.dtype("<f4") if int(itemsize) == 4 else np.dtype("<f8")


def _code(dtype: np.dtype) -> int:
    dt = np.dtype(dtype)
    return _CODES.get(dt.newbyteorder("<") if dt.byteorder == ">" else dt, 0)


def encode_header(seq: int, worker: int, vec: np.ndarray) -> bytes:
    """A message's 32-byte header, as it describes ``vec`` (not what the server expects).

    Parameters
    ----------
    seq : int
        The round (plan sequence number).
    worker : int
        The sending worker's id.
    vec : numpy.ndarray
        The message.

    Returns
    -------
    bytes
        Magic, dtype code (0 for a dtype that is not float64 or float32), ``seq``,
        ``worker`` and the number of values of ``vec``, little-endian.
    """
    a = np.asarray(vec)
    return _HEADER.pack(_MAGIC, _code(a.dtype), int(seq), int(worker), int(a.size))


def header_ok(raw: bytes, seq: int, worker: int, dtype: np.dtype, count: int) -> bool:
    """Whether ``raw`` is exactly the header of the message expected.

    Parameters
    ----------
    raw : bytes
        The header received.
    seq : int
        The round expected.
    worker : int
        The sender expected.
    dtype : numpy.dtype
        The wire dtype expected (float64 or float32).
    count : int
        The number of values expected.

    Returns
    -------
    bool
        True when ``raw`` has 32 bytes, byzcore's magic and names this round, this sender,
        ``count`` values of ``dtype``; otherwise the message is malformed.
    """
    if len(raw) != _HEADER.size:
        return False
    magic, code, s, w, n = _HEADER.unpack(raw)
    return magic == _MAGIC and code != 0 and code == _code(dtype) and s == seq and w == worker and n == count


def _packed(d: int, dtype: np.dtype) -> int:
    """Values of ``dtype`` the header takes when a message of ``d`` values travels in one
    transfer with it; 0 when header and payload are two transfers (a large payload)."""
    return _HEADER.size // dtype.itemsize if d * dtype.itemsize <= PACK_BYTES else 0


def encode_plan(seq: int, plan: Any, links: dict[int, int]) -> tuple[bytes, list]:
    """Server -> workers: a plan as a JSON header (for the Store) and the vectors that follow.

    Parameters
    ----------
    seq : int
        The plan's sequence number.
    plan : Plan
        The algorithm's plan for the round (round, sampled clients, kind, ``x``, ``x_old``,
        ``info``).
    links : dict of int to int
        Worker rank -> the link generation the server sends on.

    Returns
    -------
    tuple of (bytes, list of numpy.ndarray)
        The header and the float64 vectors ``x``, ``x_old`` that follow it on the links
        (in that order, an absent ``x_old`` left out; the header lists their sizes).
    """
    arrays = {"x": plan.x, "x_old": plan.x_old}
    present = {k: int(np.asarray(v).size) for k, v in arrays.items() if v is not None}
    head = {"seq": int(seq), "round": int(plan.round), "clients": [int(c) for c in plan.clients],
            "kind": plan.kind, "info": plan.info, "arrays": present,
            "links": {str(r): int(g) for r, g in links.items()}}
    vecs = [np.ascontiguousarray(arrays[k], dtype=np.float64) for k in present]
    return json.dumps(head).encode(), vecs


def decode_plan(head: dict, arrays: Sequence[np.ndarray]) -> tuple[int, Any]:
    """A plan back from its header and vectors (the inverse of :func:`encode_plan`).

    Parameters
    ----------
    head : dict
        The decoded JSON header.
    arrays : sequence of numpy.ndarray
        The vectors received, in the header's order.

    Returns
    -------
    tuple of (int, Plan)
        ``(seq, plan)``.
    """
    from ..algorithms.base import Plan

    vec = dict(zip(head["arrays"], arrays))
    plan = Plan(head["round"], np.asarray(head["clients"], dtype=np.int64), vec["x"], kind=head["kind"],
                x_old=vec.get("x_old"), info=head["info"])
    return head["seq"], plan


def connect_store(timeout_s: float = 300.0):
    """The c10d store of this job, from the torchrun environment.

    The environment's ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK`` and ``WORLD_SIZE`` name it;
    under torchrun or :func:`~byzcore.distributed.launch.spawn` the launcher hosts it.

    Parameters
    ----------
    timeout_s : float, optional
        The rendezvous's and the store's timeout, in seconds (default 300).

    Returns
    -------
    tuple of (PrefixStore, int, int)
        ``(store, rank, world_size)``, the store wrapped in a ``byzcore/`` prefix.
    """
    import torch.distributed as dist

    store, rank, world = next(dist.rendezvous("env://", timeout=datetime.timedelta(seconds=timeout_s)))
    store.set_timeout(datetime.timedelta(seconds=timeout_s))
    return dist.PrefixStore("byzcore/", store), rank, world


def _td(seconds: float) -> datetime.timedelta:
    # gloo reads a zero timeout as "the group's default": never pass one.
    return datetime.timedelta(seconds=max(float(seconds), 0.001))


def _tensor(a: np.ndarray):
    import torch

    return torch.from_numpy(a)


class Link:
    """The gloo group of two (the server, one worker process) that carries that process's
    vectors; generation ``gen`` has its own store prefix, so a broken link is replaced by
    a fresh one, never repaired.

    Building a link is a rendezvous: it blocks until the peer builds the same generation.

    Parameters
    ----------
    store : Store
        The job's c10d store (the link uses the prefix ``link/{rank}/{gen}``).
    rank : int
        The worker process's rank.
    gen : int
        The link's generation.
    server : bool
        Whether this end is the server's (rank 0 of the group) or the worker's.
    timeout_s : float
        The group's timeout, in seconds.
    """

    def __init__(self, store: Any, rank: int, gen: int, *, server: bool, timeout_s: float):
        import torch.distributed as dist

        self.rank, self.gen = int(rank), int(gen)
        self.peer = 1 if server else 0
        self.pg = dist.ProcessGroupGloo(dist.PrefixStore(f"link/{rank}/{gen}", store), 0 if server else 1, 2,
                                        _td(timeout_s))

    def send(self, a: np.ndarray, tag: int):
        """Post ``a`` to the peer with ``tag``; returns the pending work (wait on it with a deadline)."""
        return self.pg.send([_tensor(np.ascontiguousarray(a))], self.peer, tag)

    def recv(self, a: np.ndarray, tag: int):
        """Post a receive into ``a`` from the peer with ``tag``; returns the pending work."""
        return self.pg.recv([_tensor(a)], self.peer, tag)

    def close(self) -> None:
        """Abort the link's process group (best effort: a broken link is already gone)."""
        with contextlib.suppress(Exception):  # already broken: nothing more to release
            self.pg.abort()


def _wait(work: Any, deadline: float) -> bool:
    try:
        work.wait(_td(deadline - time.monotonic()))
        return True
    except Exception:  # timeout, reset by a dead peer, aborted: the link is broken
        return False


class _BoundedStore:
    """Store calls with a short timeout inside the block (a link's rendezvous with a peer
    that died after asking to join must not hang the server for the store's long default)."""

    def __init__(self, store: Any, seconds: float, restore_s: float):
        self.store, self.seconds, self.restore_s = store, seconds, restore_s

    def __enter__(self) -> None:
        self.store.set_timeout(_td(self.seconds))

    def __exit__(self, *exc: Any) -> None:
        self.store.set_timeout(_td(self.restore_s))


# ---------------------------------------------------------------------------- server side
class ServerTransport:
    """Rank 0's end: the links to the worker processes, the plans it publishes, the
    messages it gathers (see the module docstring).

    Parameters
    ----------
    store : Store
        The job's store (:func:`connect_store`).
    link_timeout_s : float, optional
        The links' timeout, and the bound on opening one, in seconds (default 10).
    store_timeout_s : float, optional
        The store's timeout outside those bounded calls, in seconds (default 300).
    """

    def __init__(self, store: Any, *, link_timeout_s: float = 10.0, store_timeout_s: float = 300.0):
        self.store, self.link_timeout_s, self.store_timeout_s = store, float(link_timeout_s), float(store_timeout_s)
        self.links: dict[int, Link] = {}
        self.joined: dict[int, int] = {}   # rank -> last generation seen in join/{rank}
        self._joins_seen = 0
        self._pending: list = []           # (rank, work, buffer): plan sends of this round

    def accept(self, ranks: Sequence[int], deadline: float | None = None) -> None:
        """Open the links that worker processes asked for (``join/{rank}``). With a
        ``deadline``, first wait until every one of ``ranks`` asked (the start of a run);
        later calls cost one store round trip unless someone asked."""
        if deadline is not None:
            for r in ranks:
                with contextlib.suppress(Exception):  # not up in time: it can still join later
                    self.store.wait([f"join/{r}"], _td(deadline - time.monotonic()))
        else:
            n = int(self.store.add("joins", 0))
            if n == self._joins_seen:
                return
            self._joins_seen = n
        for r in ranks:
            if not self.store.check([f"join/{r}"]):
                continue
            gen = int(self.store.get(f"join/{r}"))
            if self.joined.get(r) == gen:
                continue
            self.joined[r] = gen
            self.drop(r)
            try:
                with _BoundedStore(self.store, self.link_timeout_s, self.store_timeout_s):
                    self.links[r] = Link(self.store, r, gen, server=True, timeout_s=self.link_timeout_s)
            except Exception:  # the process went away while joining: absent until it asks again
                pass

    def drop(self, rank: int) -> None:
        """Close and forget the link of worker process ``rank``."""
        link = self.links.pop(rank, None)
        if link is not None:
            link.close()

    def generations(self) -> dict[int, int]:
        """The generation of each open link, by rank (a rejoined worker has a new one)."""
        return {r: link.gen for r, link in self.links.items()}

    def publish(self, seq: int, plan: Any, ranks: Sequence[int]) -> None:
        """Set the ``published`` counter to ``seq + 1`` and wake the processes ``ranks``
        (those holding sampled clients; the others sleep through the round) with the plan's
        header, without waiting for a reply; the plan's vectors ride in the header when they
        are small (``INLINE_PLAN_BYTES``), else go over the links, without waiting."""
        head, vecs = encode_plan(seq, plan, {r: self.links[r].gen for r in self.links})
        inline = sum(v.nbytes for v in vecs) <= INLINE_PLAN_BYTES
        if inline:  # JSON never holds a NUL byte: the vectors' bytes follow one
            head = b"\0".join([head, b"".join(v.tobytes() for v in vecs)])
        self._notify(ranks, head, published=seq + 1)
        if not inline:
            for r in ranks:
                if r in self.links:
                    for i, v in enumerate(vecs):
                        self._pending.append((r, self.links[r].send(v, _PLAN_TAG + i), v))

    def _notify(self, ranks: Sequence[int], value: bytes, published: int | None = None) -> None:
        # Sets and pushes are one-way writes (no reply to wait for); "published" (workers read
        # it with add(key, 0)) first, so a process never pops a plan newer than it.
        if published is not None:
            self.store.set("published", str(int(published)))
        for r in ranks:
            self.store.queue_push(f"go/{r}", value)

    def gather(self, seq: int, senders: Sequence[tuple[int, int]], d: int, dtype: np.dtype,
               deadline: float) -> tuple[np.ndarray, list[str]]:
        """The messages of ``senders`` (``(worker, rank)`` pairs) for round ``seq``:
        ``(rows (len, d) of dtype, status)``, status ``ok``, ``absent`` (link missing or
        broken, or nothing by ``deadline``) or ``malformed`` (wrong header). Rows that are
        not ``ok`` hold NaN; ``rows`` may be a view whose rows are apart by more than ``d``
        (small messages arrive with their header in front)."""
        dtype = np.dtype(dtype)
        hw = _packed(d, dtype)
        # Payloads land in place (no copy); packed, each row has its header in front.
        frames = np.empty((len(senders), hw + d), dtype=dtype)
        rows = frames[:, hw:]
        posted: list[tuple[np.ndarray, list] | None] = []
        for i, (w, r) in enumerate(senders):
            link = self.links.get(r)
            if link is None:
                posted.append(None)
                continue
            tag = 2 * int(w)
            if hw:
                posted.append((frames[i, :hw].view(np.uint8), [link.recv(frames[i], tag)]))
            else:
                head = np.empty(_HEADER.size, dtype=np.uint8)
                posted.append((head, [link.recv(head, tag), link.recv(rows[i], tag + 1)]))
        status = []
        for i, ((w, r), p) in enumerate(zip(senders, posted)):
            if p is None or r not in self.links:
                status.append(ABSENT)
            elif not all(_wait(work, deadline) for work in p[1]):
                self.drop(r)
                status.append(ABSENT)
            else:
                status.append(OK if header_ok(p[0].tobytes(), seq, w, dtype, d) else MALFORMED)
            if status[-1] != OK:
                rows[i] = np.nan
        return rows, status

    def end_round(self, deadline: float) -> None:
        """Settle this round's sends (a link whose send failed is dropped)."""
        for r, work, _ in self._pending:
            if r in self.links and not _wait(work, deadline):
                self.drop(r)
        self._pending = []

    def stop(self, ranks: Sequence[int]) -> None:
        """Tell every worker process (``ranks``) the run is over."""
        self.store.set("stop", "1")
        self._notify(ranks, b"stop")
        for r in list(self.links):
            self.drop(r)


# ---------------------------------------------------------------------------- worker side
class WorkerTransport:
    """A worker process's end: its link to the server, the plans it reads, the messages it sends.

    Parameters
    ----------
    store : Store
        The job's store (:func:`connect_store`).
    rank : int
        This process's rank.
    link_timeout_s : float, optional
        The link's timeout, and the bound on waiting for the server to accept it, in
        seconds (default 60).
    store_timeout_s : float, optional
        The store's timeout outside those bounded calls, in seconds (default 300).
    """

    def __init__(self, store: Any, rank: int, *, link_timeout_s: float = 60.0, store_timeout_s: float = 300.0):
        self.store, self.rank, self.link_timeout_s = store, int(rank), float(link_timeout_s)
        self.store_timeout_s = float(store_timeout_s)
        self.link: Link | None = None
        self.gen, self.joined_at = -1, -1

    def join(self) -> bool:
        """Ask for a fresh link and open it (blocks until the server accepts, at the start of
        its next round, or ``link_timeout_s``). Returns whether it is open."""
        if self.link is not None:
            self.link.close()
            self.link = None
        self.gen += 1
        self.store.set(f"join/{self.rank}", str(self.gen))
        self.store.add("joins", 1)
        try:
            with _BoundedStore(self.store, self.link_timeout_s, self.store_timeout_s):
                self.link = Link(self.store, self.rank, self.gen, server=False, timeout_s=self.link_timeout_s)
        except Exception:  # the server did not accept in time: retried at the next plan
            return False
        # The server accepts at the start of a round, before it publishes that round's plan:
        # plans up to the latest one now may predate this link and do not list it.
        self.joined_at = self.latest()
        return True

    def next_plan(self, idle_timeout_s: float) -> dict | None:
        """The header of the next plan that samples this process; ``None`` when the server
        said stop or went quiet for ``idle_timeout_s``. The process sleeps in the store until
        the server wakes it (it pops the header from ``go/{rank}``), so processes that are not
        sampled cost nothing in a round.

        A process that was away reads the wake-ups it missed in order, at little cost: the
        server publishes round ``s + 1`` only once round ``s`` answered or its deadline
        passed (and then dropped the link), so the plans it missed name no link of its own or
        one that is gone (its answer fails), and the process rejoins (:meth:`needs_join`)."""
        deadline, seen = time.monotonic() + idle_timeout_s, -1
        while True:
            try:
                with _BoundedStore(self.store, min(2.0, deadline - time.monotonic()), self.store_timeout_s):
                    value = bytes(self.store.queue_pop(f"go/{self.rank}"))  # waits for a push
            except Exception:  # not yet: check stop and the idle deadline (a server that publishes is not idle)
                if self.store.check(["stop"]):
                    return None
                latest = self.latest()
                if latest > seen:
                    seen, deadline = latest, time.monotonic() + idle_timeout_s
                elif time.monotonic() >= deadline:
                    return None
                continue
            if value == b"stop":
                return None
            text, inline, raw = value.partition(b"\0")
            head = json.loads(text.decode())
            if inline:
                head["_inline"] = raw  # the plan's vectors (see ServerTransport.publish)
            return head

    def latest(self) -> int:
        """The sequence number of the latest plan the server published (-1: none yet)."""
        return int(self.store.add("published", 0)) - 1

    def linked(self, head: dict) -> bool:
        """Whether the server sends on this process's current link this round."""
        return self.link is not None and head["links"].get(str(self.rank)) == self.gen

    def _joined(self) -> Link:
        assert self.link is not None, "a worker exchanges messages only after join()"
        return self.link

    def needs_join(self, head: dict) -> bool:
        """Whether this process must ask for a fresh link: it has none, or the server
        dropped it (a plan published after the link opened does not list it)."""
        return self.link is None or (not self.linked(head) and head["seq"] > self.joined_at)

    def recv_plan(self, head: dict, timeout_s: float) -> list[np.ndarray] | None:
        """The plan's vectors: those that came with the header, else from the server over
        the link; ``None`` (and the link dropped) if they do not arrive within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        sizes = [int(n) for n in head["arrays"].values()]
        raw = head.get("_inline")
        if raw is not None:  # the vectors came with the header (the server wrote both)
            flat = np.frombuffer(raw, dtype="<f8").astype(np.float64) if len(raw) == 8 * sum(sizes) else None
            return None if flat is None else np.split(flat, np.cumsum(sizes)[:-1])
        bufs = [np.empty(n, dtype=np.float64) for n in sizes]
        link = self._joined()
        works = [link.recv(b, _PLAN_TAG + i) for i, b in enumerate(bufs)]
        if all(_wait(w, deadline) for w in works):
            return bufs
        self._broken()
        return None

    def send(self, seq: int, worker: int, vec: np.ndarray, d: int, dtype: np.dtype, timeout_s: float) -> bool:
        """Send worker ``worker``'s message of round ``seq``: its true header, then a payload
        of the size the server fixed (``d`` values of ``dtype``: the message itself when it
        conforms, zeros otherwise, so the link stays in step). Returns False (and drops the
        link) if the server did not take it within ``timeout_s``."""
        if not 0 <= int(worker) < _MAX_WORKER:
            raise ValueError(f"[transport] worker ids must be in 0..{_MAX_WORKER - 1}, got {worker}")
        vec = np.asarray(vec)
        dtype = np.dtype(dtype)
        conforms = vec.dtype == dtype and vec.size == d
        head = encode_header(seq, worker, vec)
        tag = 2 * int(worker)
        deadline = time.monotonic() + timeout_s
        link = self._joined()
        hw = _packed(d, dtype)
        if hw:  # header and payload in one transfer (see the module docstring)
            frame = np.empty(hw + d, dtype=dtype)
            frame[:hw].view(np.uint8)[:] = np.frombuffer(head, dtype=np.uint8)
            frame[hw:] = vec.reshape(-1) if conforms else 0
            works = [link.send(frame, tag)]
        else:
            body = vec.reshape(-1) if conforms else np.zeros(d, dtype=dtype)
            works = [link.send(np.frombuffer(head, dtype=np.uint8).copy(), tag), link.send(body, tag + 1)]
        if all(_wait(w, deadline) for w in works):
            return True
        self._broken()
        return False

    def _broken(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def close(self) -> None:
        """Close the link to the server, if open."""
        self._broken()
