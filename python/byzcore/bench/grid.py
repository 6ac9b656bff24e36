"""``byzcore bench`` without the argument parsing: the grid, the checks, the timings, the
table and the JSON document (``run(options)``; the options are those of
:mod:`byzcore.cli.bench`)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, Callable

import numpy as np

from .._progress import Progress
from .environment import check_device, environment, measure_read_bandwidth
from .formatting import COLUMNS, fmt_time, format_row, header_lines, table_line
from .inputs import Case, default_f, make_messages
from .kernels import KERNELS, Kernel, gm_iterations, unavailable_reason
from .peers import PEER_CALLS, agree, run_peer
from .timing import BaselinePredictor, device_sync, time_call

__all__ = ["DEFAULT_D", "DEFAULT_MAX_BYTES", "DEFAULT_N", "DEFAULT_OPS", "command_line", "run"]

DEFAULT_OPS = ("median", "trimmed_mean", "mean", "pairwise_distances", "krum", "multi_krum",
               "geometric_median", "clip", "centered_clipping", "nnm", "rand_k")
DEFAULT_N = (5, 32, 100, 1000)
DEFAULT_D = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
DEFAULT_MAX_BYTES = {"cpu": 512 << 20, "cuda": 16 << 30}


def _byzcore():
    import byzcore

    return byzcore


def command_line(args: Any) -> str:
    """The ``byzcore bench`` command that reproduces a run, with every option spelled out.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options (those of :mod:`byzcore.cli.bench`).

    Returns
    -------
    str
        The command line.
    """
    parts = ["byzcore bench", "--ops", *args.ops, "--n", *map(str, args.n), "--d", *(f"{d:g}" for d in args.d),
             "--dtype", args.dtype, "--repeat", str(args.repeat), "--device", args.device]
    if args.max_bytes is not None:
        parts += ["--max-bytes", str(args.max_bytes)]
    parts += ["--baseline-cap", f"{args.baseline_cap:g}", "--gm-iters", str(args.gm_iters), "--seed", str(args.seed)]
    if args.f is not None:
        parts += ["--f", str(args.f)]
    if args.no_torch:
        parts.append("--no-torch")
    if getattr(args, "threads", None) is not None:
        parts += ["--threads", str(args.threads)]
    if getattr(args, "peers", False):
        parts += ["--peers", "--peer-python", args.peer_python, "--peer-timeout", f"{args.peer_timeout:g}"]
    return " ".join(parts)


def _limit_threads(n: int | None) -> None:
    """--threads: byzcore's OpenMP and NumPy's BLAS threads here (threadpoolctl), and the
    environment the peers' interpreters inherit (their torch reads OMP_NUM_THREADS)."""
    if n is None:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("note: threadpoolctl is not installed: --threads applies to the peers only", file=sys.stderr)
        return
    threadpool_limits(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def run(args: Any) -> int:
    """Run ``byzcore bench``: check and time every kernel on every cell, print the table.

    For each cell of the ``--n`` x ``--d`` grid within ``--max-bytes``, every kernel of
    ``--ops`` is checked against its float64 reference; a cell that disagrees is reported, not
    timed. With ``--peers`` the peer libraries are run on the same input; with ``--json`` the
    environment and every result are written to that file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options (those of :mod:`byzcore.cli.bench`).

    Returns
    -------
    int
        The exit status: 0 when no result mismatched or errored (byzcore's, or a peer's that
        shares the definition), else 1.

    Raises
    ------
    SystemExit
        When the device cannot be benchmarked (:func:`~byzcore.bench.environment.check_device`)
        or ``--peer-python`` does not exist.
    """
    check_device(args.device)
    _limit_threads(getattr(args, "threads", None))
    peer_python = getattr(args, "peer_python", None) if getattr(args, "peers", False) else None
    if peer_python and not os.path.exists(peer_python):
        raise SystemExit(f"[bench] --peer-python {peer_python} does not exist; give the interpreter that has "
                         "ByzFL, byzpy and Flower installed")
    dtype = np.dtype(args.dtype)
    max_bytes = args.max_bytes if args.max_bytes is not None else DEFAULT_MAX_BYTES[args.device]
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            use_torch = False
    ops = list(dict.fromkeys(args.ops))
    cells = [(n, d) for n in sorted(set(args.n)) for d in sorted(set(args.d))]
    kept = [(n, d) for n, d in cells if n * d * dtype.itemsize <= max_bytes]
    skipped = [(n, d) for n, d in cells if (n, d) not in kept]

    env = environment(args.device)
    bw = measure_read_bandwidth(min(args.bw_bytes, max(max_bytes, 1 << 24)), args.device) if args.bw_bytes > 0 else {}
    for line in header_lines(env, bw):
        print(line)
    print(f"dtype {dtype.name}, device {args.device}, f = {'20% of n' if args.f is None else args.f}, "
          f"repeat {args.repeat}, max bytes {max_bytes / 2**20:.0f} MiB"
          + (f"; skipped {len(skipped)} cells over --max-bytes: " + " ".join(f"{n}x{d:g}" for n, d in skipped)
             if skipped else ""))
    print(table_line(COLUMNS))
    sys.stdout.flush()

    sync = device_sync(args.device)
    budget = 2.0
    results: list[dict] = []
    unavailable: dict[str, str] = {}
    pred = BaselinePredictor()
    bar = Progress(len(kept) * len(ops), "bench", unit="cell", enabled=not args.no_progress)
    tmp = tempfile.TemporaryDirectory(prefix="byzcore-bench-") if peer_python else None
    try:
        for n, d in kept:
            f = default_f(n) if args.f is None else args.f
            case = Case(make_messages(n, d, dtype, f=min(f, n), seed=args.seed), f=f, seed=args.seed,
                        device=args.device, gm_iters=args.gm_iters)
            for op in ops:
                bar.describe(f"{op} n={n} d={d:g}")
                row = {"op": op, "n": n, "d": d, "dtype": dtype.name, "device": args.device, "f": f,
                       "bytes": case.nbytes}
                if op in unavailable:
                    row.update(status="unavailable", note=unavailable[op])
                else:
                    k = KERNELS[op]
                    cell = k.case_for(case)
                    row["f"] = cell.f
                    _bench_cell(k, cell, row, args, use_torch, sync, budget, pred)
                    if peer_python and row["status"] == "ok" and op in PEER_CALLS:
                        assert tmp is not None  # made when peer_python is given
                        _peer_columns(op, cell, row, args, peer_python, tmp.name)
                    if row["status"] == "unavailable":
                        unavailable[op] = row["note"]
                        bar.write(f"note: {op} is not available in this build ({row['note']}); skipping it")
                    else:
                        row["bw_fraction"] = row["gbps"] / bw["best_gbps"] if bw and row.get("gbps") else None
                        bar.write(format_row(row))
                results.append(row)
                bar.update(1)
            del case
            _free(args.device)
    finally:
        bar.close()
        if tmp is not None:
            tmp.cleanup()

    bad = [r for r in results if r["status"] in ("mismatch", "error") or r.get("peer_mismatch")]
    if unavailable:
        print("not measured (kernel not available in this build): " + ", ".join(unavailable))
    failed = [r for r in bad if not r.get("peer_mismatch")]
    if failed:
        print(f"{len(failed)} cell(s) disagreed with the NumPy reference or failed; their timings were not reported")
    for r in bad:
        if r.get("peer_mismatch"):
            libs = [lib for lib, p in r["peers"].items()
                    if p["same_definition"] and p["status"] == "ok" and not p["equal"]]
            print(f"{r['op']} n={r['n']} d={r['d']:g}: {', '.join(libs)} differs from byzcore "
                  "although the definitions agree")
    if args.json:
        doc = {"command": command_line(args),
               "environment": env, "bandwidth": bw, "dtype": dtype.name, "device": args.device,
               "max_bytes": max_bytes, "skipped_cells": [{"n": n, "d": d} for n, d in skipped],
               "unavailable": unavailable, "results": results}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
    return 1 if bad else 0


def _free(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _bench_cell(k: Kernel, case: Case, row: dict, args: Any, use_torch: bool,
                sync: Callable[[], None], budget: float, pred: BaselinePredictor) -> None:
    """Fills ``row``: checks byzcore on the case, then times it and its baselines."""
    n, d = case.n, case.d
    try:
        out = k.checked_result(case)
        sync()
        ratio = k.check(case, out)
        del out
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason:
            row.update(status="unavailable", note=reason)
        elif isinstance(exc, (ValueError, TypeError)):
            row.update(status="skipped", note=str(exc))
        else:
            row.update(status="error", note=f"{type(exc).__name__}: {exc}")
        return
    row["check_ratio"] = ratio  # max |error| / tolerance; <= 1 passes
    if not ratio <= 1:
        row.update(status="mismatch", note=f"differs from the NumPy reference: max error / tolerance = {ratio:.3g}")
        return

    t = time_call(k.bz(case), repeat=args.repeat, budget=budget, sync=sync)
    notes = []
    if k.per_iteration:
        iters = gm_iterations(case.bz_X(), case.gm_iters)
        sync()
        t0 = time_call(lambda: _byzcore().geometric_median(case.bz_X(), max_iter=0), repeat=args.repeat,
                       budget=budget, sync=sync)
        if iters < 1:
            row.update(status="skipped", note="geometric_median ran no iteration")
            return
        if t - t0 > 0.1 * t:
            t = (t - t0) / iters
            notes.append(f"per iteration ({iters} its)")
        else:  # the iterations are lost in the timing noise of the start: count the start too
            t = t / iters
            notes.append(f"per iteration ({iters} its, median start included)")
    row.update(status="ok", time_s=t, gbps=k.passes * case.nbytes / t / 1e9)

    for lib, maker in (("numpy", k.numpy), ("torch", k.torch)):
        if maker is None or (lib == "numpy" and args.device != "cpu") or (lib == "torch" and not use_torch):
            continue
        key = (k.name, lib)
        guess = pred.predict(key, n, d, k.n_power)
        if guess is not None and guess > args.baseline_cap:
            notes.append(f"{lib} skipped (~{fmt_time(guess)})")
            continue
        try:
            tb = time_call(maker(case), repeat=args.repeat, budget=budget,
                           sync=device_sync(args.device) if lib == "torch" else (lambda: None))
        except Exception as exc:
            notes.append(f"{lib} failed ({type(exc).__name__})")
            _free(args.device)
            continue
        if k.per_iteration:
            tb /= case.gm_iters
        pred.record(key, n, d, tb * (case.gm_iters if k.per_iteration else 1))
        row[f"{lib}_s"] = tb
        row[f"speedup_{lib}"] = tb / t
    if k.name == "pairwise_distances" and ("numpy_s" in row or "torch_s" in row):
        # The BLAS Gram alone, the floor distances are measured against: NumPy's X @ X.T on
        # the CPU, cuBLAS through torch on the GPU.
        if args.device == "cpu":
            tg = time_call(lambda: case.X @ case.X.T, repeat=args.repeat, budget=budget, sync=lambda: None)
        else:
            T = case.torch_X()
            tg = time_call(lambda: T @ T.T, repeat=args.repeat, budget=budget, sync=sync)
        row["gram_s"] = tg
        notes.append(f"X@X.T {fmt_time(tg)} ({t / tg:.2f}x of it)")
    row["note"] = "; ".join(notes)


def _peer_columns(op: str, case: Case, row: dict, args: Any, python: str, tmp: str) -> None:
    """Runs each peer that has ``op`` on the cell's input (saved once per cell) and records its
    time, its speed-up and its agreement with byzcore's result in ``row["peers"]``; the note
    gets one entry per peer and ``speedup_peer`` is against the fastest one that finished."""
    from .tolerances import to_host

    path = os.path.join(tmp, f"input-{case.n}x{case.d}.npy")
    if not os.path.exists(path):
        for old in os.listdir(tmp):
            os.remove(os.path.join(tmp, old))
        np.save(path, np.ascontiguousarray(case.X, dtype=np.float32))
    mine = to_host(KERNELS[op].checked_result(case))
    peers: dict[str, dict] = {}
    notes = []
    for call in PEER_CALLS[op]:
        res = run_peer(python, call, path, f=case.f, tau=case.threshold(), beta=case.beta,
                       weights=[float(w) for w in case.weights], reps=args.peer_repeat, timeout=args.peer_timeout)
        entry = {"status": res["status"], "same_definition": call.same}
        if res["status"] == "ok":
            equal, rel = agree(res["result"], mine, case.n)
            entry.update(time_s=res["time_s"], speedup=res["time_s"] / row["time_s"], equal=equal, rel_diff=rel)
            verdict = "equal" if equal else ("DIFFERS" if call.same else f"rel {rel:.1e}")
            notes.append(f"{call.lib} {fmt_time(res['time_s'])} ({res['time_s'] / row['time_s']:.3g}x, {verdict})")
            if call.same and not equal:
                row["peer_mismatch"] = True
        else:
            entry["note"] = res["note"]
            late = f" (> {args.peer_timeout:g} s)" if res["status"] == "timeout" else ""
            notes.append(f"{call.lib} {res['status']}" + late)
        peers[call.lib] = entry
    row["peers"] = peers
    done = [p["time_s"] for p in peers.values() if p["status"] == "ok"]
    if done:
        row["fastest_peer_s"] = min(done)
        row["speedup_peer"] = min(done) / row["time_s"]
    row["note"] = "; ".join(x for x in (row.get("note"), "peers: " + ", ".join(notes)) if x)
