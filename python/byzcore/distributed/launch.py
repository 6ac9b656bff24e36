"""Start ``nprocs`` ranks on this machine the way ``torchrun`` does, and always clean up.

:func:`spawn` hosts the rendezvous ``TCPStore`` in the calling process on a port the OS
picks (no free-port race), then starts one process per rank with the environment torchrun
sets (``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``TORCHELASTIC_USE_AGENT_STORE=True``), so code that calls ``init_process_group("gloo")``
with the default ``env://`` method runs unchanged under both launchers. Every child is
terminated, then killed, when the call returns, fails or times out, and dies with the
launcher itself (``PR_SET_PDEATHSIG`` on Linux).

``python -m byzcore.distributed.launch ARGS`` is the torchrun entry point of the
server-worker runtime (``ARGS`` are those of ``byzcore run``, parsed by
:mod:`byzcore.cli.launch`)::

    torchrun --nproc-per-node 5 -m byzcore.distributed.launch --problem a9a-synthetic --rounds 100
"""

from __future__ import annotations

import datetime
import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import Any, Callable

from .._environ import scoped_environ

__all__ = ["SpawnResult", "init_from_env", "spawn"]


class SpawnResult:
    """What :func:`spawn` returns: how each rank ended.

    A rank that was stopped before it returned or raised is in neither ``results`` nor
    ``errors``.

    Parameters
    ----------
    results : dict of int to object
        ``results[rank]``: the function's return value, for ranks that returned.
    exitcodes : dict of int to int or None
        ``exitcodes[rank]``: the process's exit code (0 after a return, 1 after an error;
        negative: the signal that ended it, e.g. -15 for one stopped at the deadline).
    errors : dict of int to str
        ``errors[rank]``: the traceback text of ranks that raised (or returned a value that
        cannot be pickled).
    """

    def __init__(self, results: dict[int, Any], exitcodes: dict[int, int | None], errors: dict[int, str]):
        self.results, self.exitcodes, self.errors = results, exitcodes, errors

    def __repr__(self) -> str:
        return f"SpawnResult(exitcodes={self.exitcodes}, errors={list(self.errors)})"


def init_from_env(backend: str = "gloo", timeout_s: float = 60.0) -> tuple[int, int]:
    """``init_process_group`` from the torchrun environment (``env://``), unless initialised.

    Parameters
    ----------
    backend : str, optional
        The process group's backend (default ``"gloo"``; ``"nccl"`` for GPUs).
    timeout_s : float, optional
        The process group's timeout, in seconds (default 60).

    Returns
    -------
    tuple of (int, int)
        ``(rank, world_size)`` of the default process group.
    """
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when the launcher dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except Exception:  # not glibc: the store going away still ends the ranks
            pass


def _child(fn: Callable[..., Any], rank: int, world: int, env: dict[str, str], args: tuple, out_dir: str,
           backend: str | None, init_timeout_s: float) -> None:
    _die_with_parent()
    os.environ.update(env)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
    path = os.path.join(out_dir, f"rank{rank}.pkl")
    code = 0
    try:
        if backend is not None:
            init_from_env(backend, init_timeout_s)
        payload = ("ok", fn(rank, world, *args))
    except BaseException:  # reported to the parent, which decides what a failure means
        payload, code = ("error", traceback.format_exc()), 1
    try:
        with open(path + ".tmp", "wb") as fh:
            pickle.dump(payload, fh)
        os.replace(path + ".tmp", path)
    except Exception:  # an unpicklable result: say so instead of losing the rank silently
        with open(path, "wb") as fh:
            pickle.dump(("error", traceback.format_exc()), fh)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: gloo threads blocked on a dead peer can hang a normal exit.
    os._exit(code)


def spawn(fn: Callable[..., Any], nprocs: int, args: Sequence[Any] = (), *, timeout_s: float = 120.0,
          backend: str | None = "gloo", wait_for: Sequence[int] | None = None, env: dict[str, str] | None = None,
          init_timeout_s: float = 60.0) -> SpawnResult:
    """Run ``fn(rank, world_size, *args)`` in ``nprocs`` fresh processes on loopback.

    The processes are started by ``spawn`` with torchrun's environment (see the module
    docstring). When the ranks of ``wait_for`` have ended, or at the deadline, the others get
    up to 2 s to end, then every child still alive is terminated (SIGTERM) and, 3 s later,
    killed.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by reference into spawned interpreters); its
        return value must pickle.
    nprocs : int
        Processes (ranks ``0..nprocs-1``), at least 1.
    args : sequence, optional
        Further arguments of ``fn`` (pickled into every process).
    timeout_s : float, optional
        Wall-clock deadline for the whole run, in seconds (default 120); ranks still alive
        then are stopped.
    backend : str or None, optional
        ``init_process_group`` backend each child initialises before calling ``fn``
        (``"gloo"``, the default, or ``"nccl"``), or ``None`` to leave it to ``fn``.
    wait_for : sequence of int or None, optional
        Ranks whose end ends the run (default: all). The runtime passes ``[0]``: once the
        server is done, workers left waiting are stopped instead of awaited.
    env : dict of str to str or None, optional
        Further environment variables of the children (``OMP_NUM_THREADS`` defaults to this
        process's value, else ``1``).
    init_timeout_s : float, optional
        The process group's timeout when ``backend`` is given, in seconds (default 60).

    Returns
    -------
    SpawnResult
        What each rank returned or how it ended; no child process is left behind.

    Raises
    ------
    ValueError
        ``nprocs < 1``.
    """
    import multiprocessing

    import torch.distributed as dist

    if nprocs < 1:
        raise ValueError(f"[spawn] nprocs must be >= 1, got {nprocs}")
    store = dist.TCPStore("127.0.0.1", 0, world_size=None, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=max(timeout_s, 1.0)))
    child_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(store.port),
                 "TORCHELASTIC_USE_AGENT_STORE": "True", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    child_env.update(env or {})
    ctx = multiprocessing.get_context("spawn")
    watched = set(range(nprocs) if wait_for is None else wait_for)
    procs: dict[int, Any] = {}
    with tempfile.TemporaryDirectory(prefix="byzcore-spawn-") as out_dir:
        try:
            # The children inherit os.environ at start: set it around the starts, so that
            # variables read when libraries load (OMP_NUM_THREADS by OpenMP) take effect.
            with scoped_environ(child_env):
                for rank in range(nprocs):
                    p = ctx.Process(target=_child, args=(fn, rank, nprocs, child_env, tuple(args), out_dir, backend,
                                                         init_timeout_s), daemon=True)
                    p.start()
                    procs[rank] = p
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and any(procs[r].is_alive() for r in watched):
                time.sleep(0.02)
            # Give the others a moment to finish on their own before they are stopped.
            grace = min(deadline, time.monotonic() + 2.0)
            while time.monotonic() < grace and any(p.is_alive() for p in procs.values()):
                time.sleep(0.02)
        finally:
            _stop_all(procs.values())
        results: dict[int, Any] = {}
        errors: dict[int, str] = {}
        for rank in range(nprocs):
            path = os.path.join(out_dir, f"rank{rank}.pkl")
            if os.path.exists(path):
                with open(path, "rb") as fh:
                    status, value = pickle.load(fh)
                (results if status == "ok" else errors)[rank] = value
        exitcodes = {r: p.exitcode for r, p in procs.items()}
    del store
    return SpawnResult(results, exitcodes, errors)


def _stop_all(procs) -> None:
    procs = list(procs)
    for p in procs:
        if p.is_alive():
            p.terminate()
    end = time.monotonic() + 3.0
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5.0)


if __name__ == "__main__":
    # Run as a program (torchrun -m byzcore.distributed.launch): the command line sits on top
    # (byzcore.cli.launch parses the options), so only this entry block reaches up to it.
    from byzcore.cli.launch import main

    sys.exit(main())
