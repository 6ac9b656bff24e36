"""Time byzcore's subset rules (mda, smea, caf, dnc) against ByzFL and byzpy on the same input.

The peers run in their own interpreter (``--peer-python``, default /work/peers/bin/python),
one subprocess per (peer, rule, size) with a timeout, on the input saved as .npy; byzcore runs
in this interpreter. Each figure is the best of ``--repeat`` runs (byzcore; peers run once:
they take seconds). Results are compared where the definitions agree (MDA is exact in all
three); SMEA and CAF in the peers use one step of a randomly started power iteration, so only
the relative distance to byzcore's exact result is shown. No peer has DnC.

    python bench/subset_rules_vs_peers.py                       # n = 10, 32; d = 1e5, 1e6
    python bench/subset_rules_vs_peers.py --n 30 --f 7 --d 100000 --attack none

On a shared machine pass --threads 1: OpenMP teams that wait on descheduled threads make every
kernel tens of times slower there (measured: 64 ms against 0.7 ms for mda at n = 10, d = 1e5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PEER_SCRIPT = r"""
import sys, time, numpy as np
peer, rule, f, path, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
X = np.load(path)
if peer == "byzfl":
    import byzfl
    agg = {"mda": byzfl.MDA, "smea": byzfl.SMEA, "caf": byzfl.CAF}[rule](f)
    run = lambda: agg(X)
else:
    from byzpy.aggregators.geometric_wise import MinimumDiameterAveraging, SMEA
    from byzpy.aggregators.norm_wise import CAF
    import torch
    agg = {"mda": MinimumDiameterAveraging, "smea": SMEA, "caf": CAF}[rule](f)
    rows = list(X) if rule == "mda" else list(torch.from_numpy(X))  # its SMEA/CAF take tensors only
    run = lambda: agg.aggregate(rows)
print("ready", flush=True)
t = time.perf_counter()
r = run()
dt = time.perf_counter() - t
np.save(out, np.asarray(r, dtype=np.float64))
print(dt)
"""

PEER_RULES = {"byzfl": {"mda", "smea", "caf"}, "byzpy": {"mda", "smea", "caf"}}
EXACT_IN_PEERS = {"mda"}


def make_input(n: int, f: int, d: int, attack: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    if attack == "shift" and f:
        X[n - f:] += 1.0  # f Byzantine messages displaced by one honest standard deviation per coordinate
    return X


def time_byzcore(rule: str, X: np.ndarray, f: int, repeat: int):
    import byzcore

    fn = getattr(byzcore, rule)
    out = fn(X, f)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(X, f)
        best = min(best, time.perf_counter() - t)
    return best, np.asarray(out, dtype=np.float64)


def time_peer(python: str, peer: str, rule: str, path: str, f: int, timeout: float):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.npy")
        # The timeout counts from the end of the peer's imports (torch takes seconds to load).
        proc = subprocess.Popen([python, "-c", PEER_SCRIPT, peer, rule, str(f), path, out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()
            if first.strip() == "ready":
                stdout, stderr = proc.communicate(timeout=timeout)
            else:
                stdout, stderr = proc.communicate()
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return "timeout", None
        if proc.returncode != 0:
            return "error: " + (stderr.strip().splitlines() or ["?"])[-1][:60], None
        return float(stdout.strip().splitlines()[-1]), np.load(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10, 32])
    ap.add_argument("--f", type=int, default=None, help="Byzantine count (default: 2 for n = 10, else (n - 1) // 4)")
    ap.add_argument("--d", type=float, nargs="+", default=[1e5, 1e6])
    ap.add_argument("--rules", nargs="+", default=["mda", "smea", "caf", "dnc"])
    ap.add_argument("--attack", choices=["shift", "none"], default="shift")
    ap.add_argument("--peers", nargs="*", default=["byzfl", "byzpy"])
    ap.add_argument("--peer-python", default="/work/peers/bin/python")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per peer run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP/BLAS threads for byzcore and the peers (set before either is imported)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)  # inherited by the peers' interpreters
    peers = [p for p in args.peers if os.path.exists(args.peer_python)]
    rows = []
    print(f"{'rule':5} {'n':>3} {'f':>2} {'d':>8} {'byzcore ms':>11} " + " ".join(f"{p + ' ms':>12}" for p in peers)
          + "  speedup  check")
    for n in args.n:
        f = args.f if args.f is not None else (2 if n == 10 else (n - 1) // 4)
        for d in map(int, args.d):
            X = make_input(n, f, d, args.attack, seed=n * 7919 + d)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "X.npy")
                np.save(path, X)
                for rule in args.rules:
                    t_bc, r_bc = time_byzcore(rule, X, f, args.repeat)
                    row = {"rule": rule, "n": n, "f": f, "d": d, "attack": args.attack, "byzcore_s": t_bc}
                    cells, checks, fastest = [], [], None
                    for p in peers:
                        if rule not in PEER_RULES.get(p, ()):
                            cells.append("n/a")
                            continue
                        t_p, r_p = time_peer(args.peer_python, p, rule, path, f, args.timeout)
                        row[f"{p}_s"] = t_p
                        cells.append(f"{t_p * 1e3:.1f}" if isinstance(t_p, float) else t_p)
                        if isinstance(t_p, float):
                            fastest = t_p if fastest is None else min(fastest, t_p)
                            rel = float(np.linalg.norm(r_p - r_bc) / max(np.linalg.norm(r_bc), 1e-30))
                            row[f"{p}_reldiff"] = rel
                            if rule in EXACT_IN_PEERS:
                                checks.append(f"{p} {'equal' if rel < 1e-5 else 'DIFFERS'}")
                            else:
                                checks.append(f"{p} rel {rel:.1e}")
                    speed = f"{fastest / t_bc:8.1f}x" if fastest else "       -"
                    row["speedup_vs_fastest_peer"] = fastest / t_bc if fastest else None
                    rows.append(row)
                    print(f"{rule:5} {n:>3} {f:>2} {d:>8} {t_bc * 1e3:>11.1f} " + " ".join(f"{c:>12}" for c in cells)
                          + f"  {speed}  {', '.join(checks)}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
