"""Aggregation time per round: byzcore's Flower strategy against Flower's own robust
strategies (Message API: Krum, MultiKrum, FedMedian, FedTrimmedAvg, Bulyan) on the same
replies, and whether the results agree where the definitions do.

    python bench/flower_strategies.py          # 10, 50 clients x 1e6, 1.1e7
    python bench/flower_strategies.py --clients 10 --dims 1000000 --limit 60

Each cell (strategy, n, d) runs in its own process under a time limit (``--limit`` seconds);
a cell over it prints ``>LIMIT``. Replies are float32 models, f = n // 5 Byzantine tolerated
(Bulyan: the largest f its bound allows; trimmed mean: FedTrimmedAvg's int(0.2 n)); both
sides aggregate models (``mode="model"``), Flower's per layer, byzcore's as one vector (the
model is one array here, so both see the same vectors). Results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# name: (Flower strategy factory(f, n), byzcore spec or None, does the definition agree?)
CASES = {
    "krum": ("Krum(num_malicious_nodes=f)", "krum", True),
    "multi_krum": ("MultiKrum(num_malicious_nodes=f, num_nodes_to_select=n - f)", "multi_krum", True),
    "median": ("FedMedian()", "median", True),
    "trimmed_mean": ("FedTrimmedAvg(beta=0.2)", "trimmed_mean", True),
    "bulyan": ("Bulyan(num_malicious_nodes=f)", "bulyan", False),  # Flower: Krum scores over n - f - 2, theta - 2f kept
}


def _replies(n: int, d: int, seed: int = 0):
    from flwr.app import Array, ArrayRecord, Message, Metadata, MetricRecord, RecordDict

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        meta = Metadata(run_id=1, message_id=f"m{i}", src_node_id=i + 1, dst_node_id=0, reply_to_message_id="",
                        group_id="", created_at=0.0, ttl=60.0, message_type="train")
        x = rng.standard_normal(d, dtype=np.float32)
        content = RecordDict({"arrays": ArrayRecord({"w": Array(x)}), "metrics": MetricRecord({"num-examples": 1})})
        out.append(Message(content=content, metadata=meta))
    return out


def _f(name: str, n: int) -> int:
    """f = n // 5 Byzantine; Bulyan's n >= 4f + 3 and FedTrimmedAvg's int(beta * n) cut (beta = 0.2)."""
    return (n - 3) // 4 if name == "bulyan" else int(0.2 * n) if name == "trimmed_mean" else n // 5


def cell(name: str, n: int, d: int) -> None:
    """Runs one cell and prints one JSON line per side (byzcore first), flushed."""
    import logging

    from flwr.app import Array, ArrayRecord
    from flwr.serverapp import strategy as S

    from byzcore.aggregators import available
    from byzcore.flower import ByzFedAvg

    logging.getLogger("flwr").setLevel(logging.ERROR)
    f = _f(name, n)
    flower_expr, spec, _ = CASES[name]
    replies = _replies(n, d)
    ours = None
    if spec.split(":")[0] in available():
        strat = ByzFedAvg(spec, f=_f(name, n), mode="model")
        strat.set_global(ArrayRecord({"w": Array(np.zeros(d, np.float32))}))
        t = time.perf_counter()
        arrays, _ = strat.aggregate_train(1, replies)
        ours = arrays["w"].numpy()
        print(json.dumps({"side": "byzcore", "s": time.perf_counter() - t}), flush=True)
    else:
        print(json.dumps({"side": "byzcore", "s": None}), flush=True)
    flower = eval("S." + flower_expr, {"S": S, "f": f, "n": n})  # a fixed table above, not user input
    t = time.perf_counter()
    arrays, _ = flower.aggregate_train(1, replies)
    elapsed = time.perf_counter() - t
    theirs = arrays["w"].numpy()
    diff = None if ours is None else float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    print(json.dumps({"side": "flower", "s": elapsed, "max_abs_diff": diff}), flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    p.add_argument("--dims", type=int, nargs="+", default=[1_000_000, 11_000_000])
    p.add_argument("--rules", nargs="+", default=list(CASES))
    p.add_argument("--limit", type=float, default=120.0, help="seconds per cell")
    p.add_argument("--cell", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cell:
        cell(args.cell[0], int(args.cell[1]), int(args.cell[2]))
        return
    print("| rule | n | d | byzcore strategy (s) | Flower's (s) | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in args.clients:
        for d in args.dims:
            for name in args.rules:
                cmd = [sys.executable, __file__, "--cell", name, str(n), str(d)]
                res = None
                try:
                    res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit, env=os.environ,
                                         check=False)
                    out = res.stdout
                except subprocess.TimeoutExpired as exc:
                    out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
                if not out.strip() and res is not None and res.returncode:
                    print(res.stderr[-400:], file=sys.stderr)
                sides = {r["side"]: r for r in (json.loads(x) for x in out.splitlines() if x.startswith("{"))}
                ours = sides.get("byzcore", {}).get("s")
                theirs = sides.get("flower", {}).get("s")
                diff = sides.get("flower", {}).get("max_abs_diff")
                fmt = lambda v, lim=">LIMIT": lim if v is None else f"{v:.3f}"  # noqa: E731
                speed = f"{theirs / ours:.1f}x" if ours and theirs else "-"
                print(f"| {name} | {n} | {d:.1e} | {fmt(ours, 'n/a' if 'byzcore' in sides else '>LIMIT')} | "
                      f"{fmt(theirs)} | {speed} | {'-' if diff is None else f'{diff:.1e}'} |", flush=True)


if __name__ == "__main__":
    main()
