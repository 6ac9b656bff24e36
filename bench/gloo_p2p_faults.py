"""What gloo point-to-point does with faulty peers (why the runtime gives every worker process a
link of its own and waits on it only up to a deadline; see byzcore/distributed/transport.py).

Three processes on loopback; rank 0 posts irecv(10 float32) from ranks 1 and 2 and waits
with a timeout; rank 1 misbehaves in one of four ways, rank 2 is honest::

    python bench/gloo_p2p_faults.py            # all four cases
    python bench/gloo_p2p_faults.py larger     # one case

Observed with torch 2.13 (CPU): ``smaller`` (5 floats) completes silently with a stale tail;
``larger`` (10 float64 = 80 bytes) aborts rank 0 (``gloo::EnforceNotMet``, SIGABRT, exit -6);
``silent``: the wait times out and then even a recv from the honest rank 2 fails
("Application timeout caused pair closure"); ``dead`` (rank 1 exits): "Connection reset by
peer" for rank 1, rank 2 still reachable. ``is_completed()`` stays False until ``wait()``.
"""

from __future__ import annotations

import datetime
import sys
import time


def _case(rank: int, world: int, mode: str) -> str:
    import torch
    import torch.distributed as dist

    if rank == 0:
        log = []
        bufs = {r: torch.zeros(10) for r in (1, 2)}
        reqs = {r: dist.irecv(bufs[r], src=r, tag=7) for r in (1, 2)}
        time.sleep(0.5)
        log.append(f"is_completed before wait: {[q.is_completed() for q in reqs.values()]}")
        for r, q in reqs.items():
            try:
                q.wait(datetime.timedelta(seconds=2))
                log.append(f"from rank {r}: {bufs[r].tolist()}")
            except Exception as exc:
                log.append(f"from rank {r}: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}")
        try:
            b = torch.zeros(10)
            dist.recv(b, src=2, tag=8)
            log.append("rank 0 still talks to rank 2 afterwards")
        except Exception as exc:
            log.append(f"later recv from rank 2: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}")
        return "\n".join(log)
    if rank == 1:
        if mode == "smaller":
            dist.send(torch.ones(5), dst=0, tag=7)
        elif mode == "larger":
            dist.send(torch.ones(10, dtype=torch.float64), dst=0, tag=7)
        elif mode == "dead":
            import os

            os._exit(1)
        time.sleep(4)
        return "rank 1 done"
    dist.send(torch.full((10,), 2.0), dst=0, tag=7)
    dist.send(torch.full((10,), 3.0), dst=0, tag=8)
    time.sleep(4)
    return "rank 2 done"


def main(argv: list[str]) -> int:
    from byzcore.distributed import spawn

    for mode in argv or ["smaller", "larger", "silent", "dead"]:
        res = spawn(_case, 3, (mode,), timeout_s=60, init_timeout_s=30, wait_for=[0])
        print(f"== rank 1 {mode}: rank 0 exit code {res.exitcodes[0]}")
        print(res.results.get(0) or res.errors.get(0, "(rank 0 died without a report)").strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
