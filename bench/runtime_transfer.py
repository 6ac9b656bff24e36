"""Worker -> server transfer of the torch-distributed runtime against a plain gloo gather.

One server and ``W`` workers on loopback, in one run: each worker holds a float32 vector of
``d`` coordinates; per repetition the server receives all of them through

* ``gather``: ``torch.distributed.gather`` over one gloo group of all ranks (no validation,
  no fault tolerance: the reference speed), and
* ``byzcore``: the runtime's path (:class:`byzcore.distributed.transport.ServerTransport`
  ``gather``): per-process gloo links, a validated 32-byte header and a payload of the size
  the server fixed, with a deadline.

The two are interleaved repetition by repetition (so load on a shared machine falls on both
alike); the server's time from a barrier to having every vector is reported (median)::

    python bench/runtime_transfer.py --workers 4 8 --d 1000000 4000000 --reps 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _rank(rank: int, world: int, sizes: list[int], reps: int) -> dict | None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from byzcore.distributed.transport import ServerTransport, WorkerTransport, connect_store

    store, _, _ = connect_store(120.0)
    f4 = np.dtype(np.float32)
    if rank == 0:
        server = ServerTransport(store, link_timeout_s=60.0)
        server.accept(range(1, world), time.monotonic() + 120.0)
    else:
        worker = WorkerTransport(store, rank, link_timeout_s=60.0)
        worker.join()
    out: dict = {}
    seq = 0
    for d in sizes:
        vec = np.full(d, float(rank), dtype=np.float32)
        t = torch.from_numpy(vec)
        times: dict[str, list[float]] = {"gather": [], "byzcore": []}
        for rep in range(reps + 1):  # the first repetition warms up
            for method in (("gather", "byzcore") if rep % 2 else ("byzcore", "gather")):  # alternate who goes first
                dist.barrier()
                t0 = time.perf_counter()
                if method == "gather":
                    if rank == 0:
                        bufs = [torch.empty(d) for _ in range(world)]
                        dist.gather(t, bufs, dst=0)
                        ok = all(float(bufs[r][0]) == r for r in range(world))
                    else:
                        dist.gather(t, None, dst=0)
                else:
                    if rank == 0:
                        rows, status = server.gather(seq, [(r - 1, r) for r in range(1, world)], d, f4,
                                                     time.monotonic() + 60.0)
                        ok = status == ["ok"] * (world - 1) and all(rows[r - 1, 0] == r for r in range(1, world))
                    else:
                        worker.send(seq, rank - 1, vec, d, f4, 60.0)
                    seq += 1
                if rank == 0:
                    if not ok:
                        raise RuntimeError(f"{method}: wrong data at d={d}")
                    if rep:
                        times[method].append(time.perf_counter() - t0)
        if rank == 0:
            out[d] = {**{m: statistics.median(v) for m, v in times.items()},
                      **{m + '_min': min(v) for m, v in times.items()}}
    dist.barrier()
    return out if rank == 0 else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[4, 8])
    p.add_argument("--d", type=int, nargs="+", default=[1_000_000, 4_000_000])
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args(argv)

    from byzcore.distributed import spawn

    print("median (min) over the repetitions; speed ratio = gather time / byzcore time")
    print("workers         d     gather (ms)    byzcore (ms)  byzcore MB/s  ratio median (min)")
    for w in args.workers:
        res = spawn(_rank, w + 1, (args.d, args.reps), timeout_s=1800, backend="gloo", init_timeout_s=120)
        if 0 not in res.results:
            print(res.exitcodes, "\n".join(f"rank {r}: {e}" for r, e in res.errors.items()), file=sys.stderr)
            return 1
        for d, t in res.results[0].items():
            mbps = w * d * 4 / t["byzcore"] / 1e6
            print(f"{w:7d} {d:9d} {1e3 * t['gather']:7.1f} ({1e3 * t['gather_min']:5.1f})"
                  f" {1e3 * t['byzcore']:7.1f} ({1e3 * t['byzcore_min']:5.1f}) {mbps:13.0f}"
                  f" {t['gather'] / t['byzcore']:11.2f} ({t['gather_min'] / t['byzcore_min']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
