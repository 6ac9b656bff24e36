"""byzcore's catalogue rules against NumPy references and the peer libraries (ByzFL, byzpy,
Flower), on the same float32 input, side by side in one run (issue 9).

    python bench/catalogue_vs_peers.py                    # n = 10, 32; d = 1e5, 1e6
    python bench/catalogue_vs_peers.py --n 32 --d 100000 --rules meamed bulyan
    python bench/catalogue_vs_peers.py --peers-python /work/peers/bin/python

For every (rule, n, d) it times byzcore (this interpreter), a vectorised NumPy reference (this
interpreter) and each installed peer that has the rule. Peers are imported here when they
import; otherwise (e.g. they live in a venv with another NumPy) they run in a subprocess of
``--peers-python`` on the same input, saved once to a .npy file, and send their results back
the same way. Every result is checked against the NumPy reference (and each peer whose
definition agrees with byzcore's) before its time is printed; times are the best of a few runs.
Effective GB/s = the least traffic the rule needs / time: n*d*4 bytes read for the rules that
return one vector, twice that (read the input, write the n results) for the pre-aggregators
(ARC, clipping); the machine's read bandwidth is the faster of a NumPy and a multi-threaded
PyTorch sum over a 1 GiB float32 array. Under a loaded machine OpenMP waits badly: run with
OMP_NUM_THREADS=1 (it applies to the peers' torch too) for comparable single-thread figures.

Adding a rule: append a ``Rule`` to ROWS (byzcore call, NumPy reference, and the peer calls
as source text for the runner, keyed ``"lib"``, with ``same`` naming the peers whose result
must equal byzcore's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import byzcore  # noqa: E402
from quick_order import best  # noqa: E402  (best of a few runs within a time budget)


# ---------------------------------------------------------------- NumPy references (vectorised)
def np_closest_to_median(X: np.ndarray, keep: int) -> np.ndarray:
    S = np.sort(X.astype(np.float64), axis=0)
    n = S.shape[0]
    m = 0.5 * S[(n - 1) // 2] + 0.5 * S[n // 2]
    k, f = keep, n - keep
    start = np.zeros(S.shape[1], dtype=np.int64)
    for q in range(f):  # slide the window while the next value up is strictly closer
        start += (0.5 * S[q] + 0.5 * S[q + k]) < m
    csum = np.vstack([np.zeros((1, S.shape[1])), np.cumsum(S, axis=0)])
    cols = np.arange(S.shape[1])
    return ((csum[start + k, cols] - csum[start, cols]) / k).astype(X.dtype)


def np_sqdist(X: np.ndarray) -> np.ndarray:
    X64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X64, X64)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * X64 @ X64.T, 0)


def np_bulyan(X: np.ndarray, f: int) -> np.ndarray:
    D = np_sqdist(X)
    left, chosen = list(range(len(X))), []
    for _ in range(len(X) - 2 * f):
        r = len(left)
        k = min(r - 1, max(1, r - f - 2))
        sub = D[np.ix_(left, left)] + np.diag(np.full(r, np.inf))
        scores = np.sort(sub, axis=1)[:, :k].sum(1)
        chosen.append(left.pop(int(np.argmin(scores))))
    return np_closest_to_median(X[sorted(chosen)], len(X) - 4 * f)


def np_nearest_mean(X: np.ndarray, dist: np.ndarray, keep: int) -> np.ndarray:
    idx = np.sort(np.argsort(dist, kind="stable")[:keep])
    return X[idx].astype(np.float64).mean(0).astype(X.dtype)


def np_norms(X: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))


def np_clip(X: np.ndarray, tau: float) -> np.ndarray:
    norms = np_norms(X)
    return (X * np.minimum(1.0, tau / np.maximum(norms, 1e-300))[:, None]).astype(X.dtype)


def np_arc(X: np.ndarray, f: int) -> np.ndarray:
    n = len(X)
    nb = 2 * f * (n - f) // n
    return np_clip(X, float(np.sort(np_norms(X))[n - nb - 1]))


@dataclass
class Rule:
    name: str
    byzcore: Callable[[np.ndarray, int], object]
    numpy: Callable[[np.ndarray, int], np.ndarray]
    peers: dict[str, str] = field(default_factory=dict)  # lib -> expression of X (numpy/torch), f
    same: set[str] = field(default_factory=set)          # peers whose definition equals byzcore's
    # n*d*4-byte passes of the least traffic the rule needs: 1 (read the input) for the rules
    # that return one vector, 2 (read, write the n clipped messages) for the pre-aggregators
    passes: int = 1


TAU = 1.0  # clipping radius, relative to sqrt(d) below
ROWS: list[Rule] = [
    Rule("meamed", lambda X, f: byzcore.meamed(X, f), lambda X, f: np_closest_to_median(X, len(X) - f),
         {"byzfl": "byzfl.Meamed(f=f)(T)",
          "byzpy": "MeanOfMedians(f).aggregate(list(T))"},
         # byzpy's torch backend takes torch.median, the lower middle value for even n
         same={"byzfl"}),
    Rule("bulyan", lambda X, f: byzcore.bulyan(X, f), np_bulyan,
         {"flwr": "flwr_bulyan(X, f)"}, same={"flwr"}),
    Rule("monna", lambda X, f: byzcore.monna(X, f), lambda X, f: np_nearest_mean(X, np_norms(X - X[0]), len(X) - f),
         {"byzfl": "byzfl.MoNNA(f=f, idx=0)(T)", "byzpy": "MoNNA(f).aggregate(list(T))"}, same={"byzfl", "byzpy"}),
    Rule("cge", lambda X, f: byzcore.cge(X, f), lambda X, f: np_nearest_mean(X, np_norms(X), len(X) - f),
         {"byzpy": "ComparativeGradientElimination(f).aggregate(list(T))"}, same={"byzpy"}),
    Rule("arc", lambda X, f: byzcore.arc(X, f), np_arc,
         {"byzfl": "torch.stack(list(byzfl.ARC(f=f)(T.clone())))",
          "byzpy": "torch.stack(list(ARC(f).pre_aggregate(list(T))))"}, same={"byzfl", "byzpy"}, passes=2),
    Rule("clipping", lambda X, f: byzcore.clip(X, TAU * X.shape[1] ** 0.5),
         lambda X, f: np_clip(X, TAU * X.shape[1] ** 0.5),
         {"byzfl": "torch.stack(list(byzfl.Clipping(c=tau)(T.clone())))",
          "byzpy": "torch.stack(list(Clipping(tau).pre_aggregate(list(T))))"}, same={"byzfl", "byzpy"}, passes=2),
]

# The peer runner: imports what it can, times each requested call on the saved input, saves
# results. Runs here (when the peers import) or under --peers-python.
RUNNER = r'''
import json, sys, time
import numpy as np
req = json.loads(sys.argv[1])
X = np.load(req["input"])
f = req["f"]
tau = req["tau"]
import torch
T = torch.from_numpy(X)
env = {"np": np, "torch": torch, "X": X, "T": T, "f": f, "tau": tau}
try:
    import byzfl
    env["byzfl"] = byzfl
except Exception:
    pass
try:
    from byzpy.aggregators.coordinate_wise import MeanOfMedians
    from byzpy.aggregators.geometric_wise import MoNNA
    from byzpy.aggregators.norm_wise import ComparativeGradientElimination
    from byzpy.pre_aggregators import ARC, Clipping
    env.update(MeanOfMedians=MeanOfMedians, MoNNA=MoNNA, ComparativeGradientElimination=ComparativeGradientElimination,
               ARC=ARC, Clipping=Clipping, byzpy=True)
except Exception:
    pass
try:
    from flwr.server.strategy.aggregate import aggregate_bulyan, aggregate_krum
    def flwr_bulyan(X, f):
        results = [([x], 1) for x in X]
        return aggregate_bulyan(results, f, aggregate_krum, to_keep=0)[0]
    env["flwr_bulyan"] = flwr_bulyan
    env["flwr"] = True
except Exception:
    pass
out = {}
for key, (lib, expr) in req["calls"].items():
    if lib not in env:
        out[key] = {"missing": True}
        continue
    try:
        times = []
        deadline = time.perf_counter() + req["budget"]
        for _ in range(req["reps"]):
            t0 = time.perf_counter()
            r = eval(expr, env)
            times.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                break
        r = r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r)
        path = req["input"] + "." + key + ".npy"
        np.save(path, r.astype(np.float32))
        out[key] = {"time": min(times), "result": path}
    except Exception as exc:
        out[key] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
print(json.dumps(out))
'''


def peers_importable() -> bool:
    try:
        import byzfl  # noqa: F401
        return True
    except Exception:
        return False


def run_peers(python: str, X: np.ndarray, f: int, rules: list[Rule], tmp: str, reps: int, budget: float) -> dict:
    """Each peer call in its own subprocess, killed after `budget` seconds plus start-up, so one
    slow peer cannot hold up the others; a killed call is reported as a timeout."""
    path = os.path.join(tmp, "input.npy")
    np.save(path, X)
    out = {}
    for r in rules:
        for lib, expr in r.peers.items():
            key = f"{r.name}:{lib}"
            req = dict(input=path, f=f, tau=TAU * X.shape[1] ** 0.5, calls={key: (lib, expr)}, reps=reps, budget=budget)
            try:
                proc = subprocess.run([python, "-c", RUNNER, json.dumps(req)], capture_output=True, text=True,
                                      timeout=budget + 60)
            except subprocess.TimeoutExpired:
                out[key] = {"error": f"did not finish in {budget:.0f} s"}
                continue
            if proc.returncode != 0:
                out[key] = {"error": proc.stderr.strip()[-120:]}
                continue
            out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def read_bandwidth(reps: int) -> float:
    A = np.ones(2**28, dtype=np.float32)
    bw = 2**30 / best(lambda: A.sum(), reps) / 1e9
    try:
        import torch

        At = torch.from_numpy(A)
        bw = max(bw, 2**30 / best(lambda: At.sum(), reps) / 1e9)
    except ImportError:
        pass
    return bw


def agree(got: np.ndarray, want: np.ndarray) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-5 * scale))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10, 32])
    ap.add_argument("--d", type=float, nargs="+", default=[1e5, 1e6])
    ap.add_argument("--rules", nargs="+", default=[r.name for r in ROWS])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peer-reps", type=int, default=2)
    ap.add_argument("--peer-budget", type=float, default=30.0, help="seconds of runs per peer call")
    ap.add_argument("--peers-python", default="/work/peers/bin/python",
                    help="interpreter with the peers installed, used when they do not import here")
    ap.add_argument("--json", help="also write the table to this file")
    args = ap.parse_args()
    rules = [r for r in ROWS if r.name in args.rules]
    local = peers_importable()
    python = sys.executable if local else args.peers_python
    have_peers = local or os.path.exists(python)
    bw = read_bandwidth(args.reps)
    print(f"byzcore {byzcore.build_info()['simd']}, {byzcore.build_info()['threads']} threads; "
          f"load average {os.getloadavg()[0]:.1f}; read bandwidth {bw:.1f} GB/s; "
          f"peers: {'this interpreter' if local else python if have_peers else 'none'}")
    print(f"{'rule':<9} {'n':>3} {'d':>8} {'f':>2} {'byzcore ms':>10} {'GB/s':>6} {'%bw':>5} {'numpy ms':>9} "
          f"{'x':>6}  peers (ms, speed-up, result)")
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for d in (int(v) for v in args.d):
                f = (n - 3) // 4  # every rule's bound holds (Bulyan's n >= 4f + 3 is the tightest)
                X = np.random.default_rng(n * 7 + d).standard_normal((n, d)).astype(np.float32)
                X[-f:] *= 10 if f else 1  # f Byzantine-looking messages: larger norms
                peers = run_peers(python, X, f, rules, tmp, args.peer_reps, args.peer_budget) if have_peers else {}
                for r in rules:
                    want = r.numpy(X, f)
                    got = np.asarray(r.byzcore(X, f))
                    if not agree(got, want):
                        raise SystemExit(f"{r.name} n={n} d={d}: byzcore differs from the NumPy reference")
                    t_b = best(lambda: r.byzcore(X, f), args.reps)
                    t_n = best(lambda: r.numpy(X, f), max(1, args.reps // 2))
                    gbs = r.passes * n * d * 4 / t_b / 1e9
                    row = dict(rule=r.name, n=n, d=d, f=f, byzcore_ms=t_b * 1e3, gbs=gbs, bw_frac=gbs / bw,
                               numpy_ms=t_n * 1e3, peers={})
                    cells = []
                    for lib in r.peers:
                        res = peers.get(f"{r.name}:{lib}", {"missing": True})
                        if "time" in res:
                            ok = agree(np.load(res["result"]), got)
                            if lib in r.same and not ok:
                                raise SystemExit(f"{r.name} n={n} d={d}: {lib} differs from byzcore although the definitions agree")
                            row["peers"][lib] = dict(ms=res["time"] * 1e3, speedup=res["time"] / t_b, equal=ok)
                            cells.append(f"{lib} {res['time'] * 1e3:.1f} ({res['time'] / t_b:.0f}x, {'equal' if ok else 'differs'})")
                        elif "error" in res:
                            cells.append(f"{lib} error: {res['error'][:60]}")
                    table.append(row)
                    print(f"{r.name:<9} {n:>3} {d:>8} {f:>2} {t_b * 1e3:>10.2f} {gbs:>6.1f} {gbs / bw:>5.0%} "
                          f"{t_n * 1e3:>9.1f} {t_n / t_b:>6.1f}  " + "; ".join(cells), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(bandwidth_gbs=bw, rows=table), indent=1))


if __name__ == "__main__":
    main()
