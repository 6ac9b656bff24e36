"""The peer libraries' column of ``byzcore bench --peers``: ByzFL, byzpy and Flower run on
the cell's input, saved once to ``.npy``, in a subprocess of a given interpreter (they need
their own NumPy and torch: ``--peer-python /work/peers/bin/python``), one subprocess per call,
killed after ``timeout`` seconds counted from the end of its imports. Their results come back
as ``.npy`` and are compared with byzcore's: equal where the definitions agree (``same``), the
relative distance otherwise (docs/spec.md#peers tabulates the conventions; docs/rules.md says
where and why they differ)."""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PEER_CALLS", "PeerCall", "agree", "run_peer"]


@dataclass(frozen=True)
class PeerCall:
    """One peer library's version of a kernel, for ``byzcore bench --peers``.

    Attributes
    ----------
    lib : str
        The library: ``"byzfl"``, ``"byzpy"`` or ``"flwr"``.
    expr : str
        The expression the runner evaluates, with the names ``X`` (the float32 NumPy input),
        ``T`` (its torch tensor), ``f``, ``tau``, ``beta`` and ``weights``.
    same : bool
        Whether its definition is byzcore's: then the results must agree (see :func:`agree`),
        else only their distance is shown.
    """

    lib: str
    expr: str
    same: bool


PEER_CALLS: dict[str, list[PeerCall]] = {
    # byzpy's torch MeanOfMedians takes torch.median, the lower middle value for even n.
    "meamed": [PeerCall("byzfl", "byzfl.Meamed(f=f)(T)", True),
               PeerCall("byzpy", "MeanOfMedians(f).aggregate(list(T))", False)],
    "bulyan": [PeerCall("flwr", "flwr_bulyan(X, f)", True)],
    "monna": [PeerCall("byzfl", "byzfl.MoNNA(f=f, idx=0)(T)", True),
              PeerCall("byzpy", "MoNNA(f).aggregate(list(T))", True)],
    "cge": [PeerCall("byzpy", "ComparativeGradientElimination(f).aggregate(list(T))", True)],
    "arc": [PeerCall("byzfl", "torch.stack(list(byzfl.ARC(f=f)(T.clone())))", True),
            PeerCall("byzpy", "torch.stack(list(ARC(f).pre_aggregate(list(T))))", True)],
    # ByzFL's Clipping disagreed with byzcore's clip at tau = the median norm on 2026-12-01
    # (byzpy's agrees); not yet traced to a definition, so only the distance is shown.
    "clip": [PeerCall("byzfl", "torch.stack(list(byzfl.Clipping(c=tau)(T.clone())))", False),
             PeerCall("byzpy", "torch.stack(list(Clipping(tau).pre_aggregate(list(T))))", True)],
    "mda": [PeerCall("byzfl", "byzfl.MDA(f)(X)", True),
            PeerCall("byzpy", "MinimumDiameterAveraging(f).aggregate(list(X))", True)],
    # ByzFL's SMEA takes the eigenvalue from one randomly started power step, not the exact one
    # byzcore computes, so its subset may differ. byzpy's SMEA is the same definition: every
    # n - f subset in itertools.combinations order, the exact largest eigenvalue (eigvalsh of
    # the centred subset Gram), the first strict minimum kept, i.e. byzcore's lexicographically
    # first optimum. (Its Gram is formed in the input's float32, so on near-ties in the
    # eigenvalues it could pick another subset; that would show as DIFFERS, to be read then.)
    # The peers' CAF takes one (ByzFL) or three (byzpy) power steps: weights may differ.
    "smea": [PeerCall("byzfl", "byzfl.SMEA(f)(X)", False),
             PeerCall("byzpy", "SMEA(f).aggregate(list(T))", True)],
    "caf": [PeerCall("byzfl", "byzfl.CAF(f)(X)", False),
            PeerCall("byzpy", "CAF(f).aggregate(list(T))", False)],
    "weighted_mean": [PeerCall("flwr", "flwr_aggregate([([x], int(w)) for x, w in zip(X, weights)])[0]", True)],
    "trimmed_mean_beta": [PeerCall("flwr", "flwr_trimmed([([x], 1) for x in X], beta)[0]", True)],
}

# Runs in the peer's interpreter: argv[1] is the request (JSON). Imports only the library asked
# for, says "ready" (the timeout starts then), times `reps` calls, saves the last result.
RUNNER = r'''
import json, sys, time
import numpy as np
req = json.loads(sys.argv[1])
X = np.load(req["input"])
import torch
env = {"np": np, "torch": torch, "X": X, "T": torch.from_numpy(X), "f": req["f"], "tau": req["tau"],
       "beta": req["beta"], "weights": req["weights"]}
lib = req["lib"]
if lib == "byzfl":
    import byzfl
    env["byzfl"] = byzfl
elif lib == "byzpy":
    from byzpy.aggregators.coordinate_wise import MeanOfMedians
    from byzpy.aggregators.geometric_wise import MinimumDiameterAveraging, MoNNA, SMEA
    from byzpy.aggregators.norm_wise import CAF, ComparativeGradientElimination
    from byzpy.pre_aggregators import ARC, Clipping
    env.update(MeanOfMedians=MeanOfMedians, MinimumDiameterAveraging=MinimumDiameterAveraging, MoNNA=MoNNA,
               SMEA=SMEA, CAF=CAF, ComparativeGradientElimination=ComparativeGradientElimination, ARC=ARC,
               Clipping=Clipping)
elif lib == "flwr":
    from flwr.server.strategy.aggregate import aggregate, aggregate_bulyan, aggregate_krum, aggregate_trimmed_avg
    env["flwr_bulyan"] = lambda X, f: aggregate_bulyan([([x], 1) for x in X], f, aggregate_krum, to_keep=0)[0]
    env["flwr_aggregate"] = aggregate
    env["flwr_trimmed"] = aggregate_trimmed_avg
print("ready", flush=True)
times = []
for _ in range(req["reps"]):
    t0 = time.perf_counter()
    r = eval(req["expr"], env)
    times.append(time.perf_counter() - t0)
r = r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r)
np.save(req["output"], r.astype(np.float64))
print(json.dumps({"time_s": min(times)}), flush=True)
'''


def run_peer(python: str, call: PeerCall, input_path: str, *, f: int, tau: float, beta: float,
             weights: list[float], reps: int = 1, timeout: float = 30.0,
             import_timeout: float = 120.0) -> dict[str, Any]:
    """Run one peer call in a subprocess of ``python`` on the input saved at ``input_path``.

    The subprocess imports NumPy, torch and only the peer library asked for, then says "ready";
    the ``timeout`` starts then. It times ``reps`` calls and saves the last result, which is
    read back.

    Parameters
    ----------
    python : str
        The interpreter that has the peer installed.
    call : PeerCall
        What to run.
    input_path : str
        The cell's input, a float32 ``(n, d)`` ``.npy`` file.
    f : int
        The number of Byzantine messages.
    tau : float
        The clipping threshold (the cell's median norm).
    beta : float
        The trimmed fraction.
    weights : list of float
        The per-message weights.
    reps : int, default 1
        Timed calls; the best is reported.
    timeout : float, default 30.0
        Seconds the calls may take, counted from the end of the peer's imports.
    import_timeout : float, default 120.0
        Seconds the interpreter may take to start and import the peer.

    Returns
    -------
    dict
        ``{"status": "ok", "time_s": ..., "result": array}``, or ``{"status": "timeout" | "error" |
        "missing", "note": ...}`` (``"missing"``: the interpreter would not start or the library
        is not installed).
    """
    output = input_path + f".{call.lib}.out.npy"
    req = dict(input=input_path, output=output, lib=call.lib, expr=call.expr, f=f, tau=tau, beta=beta,
               weights=weights, reps=reps)
    try:
        # Unbuffered: readline() must not read past "ready" into what communicate() reads next.
        proc = subprocess.Popen([python, "-c", RUNNER, json.dumps(req)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        return {"status": "missing", "note": f"cannot start {python}: {exc}"}
    try:
        assert proc.stdout is not None  # stdout=PIPE
        ready, _, _ = select.select([proc.stdout], [], [], import_timeout)
        first = proc.stdout.readline().decode(errors="replace") if ready else ""
        if first.strip() != "ready":
            if not ready:
                raise subprocess.TimeoutExpired(python, import_timeout)
            _, err = (x.decode(errors="replace") for x in proc.communicate(timeout=timeout))
            missing = "ModuleNotFoundError" in err or "ImportError" in err
            return {"status": "missing" if missing else "error", "note": (err.strip().splitlines() or ["?"])[-1][:120]}
        out, err = (x.decode(errors="replace") for x in proc.communicate(timeout=timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"status": "timeout", "note": f"{call.lib} did not finish in {timeout:g} s"}
    if proc.returncode != 0:
        return {"status": "error", "note": (err.strip().splitlines() or ["?"])[-1][:120]}
    try:
        t = float(json.loads(out.strip().splitlines()[-1])["time_s"])
        result = np.load(output)
    except (ValueError, KeyError, IndexError, OSError) as exc:
        return {"status": "error", "note": f"unreadable answer from {call.lib}: {exc}"}
    finally:
        if os.path.exists(output):
            os.remove(output)
    return {"status": "ok", "time_s": t, "result": result}


def agree(got: Any, ref: Any, n: int) -> tuple[bool, float]:
    """Whether a peer's result equals byzcore's within float32 rounding, and their relative distance.

    Equal means ``|got - ref| <= 4 (n + 1) eps32 max|ref|`` elementwise: their sums and ours run
    in different orders and precisions.

    Parameters
    ----------
    got : array_like
        The peer's result.
    ref : array_like
        byzcore's result.
    n : int
        The number of messages (the terms of the sums).

    Returns
    -------
    tuple of (bool, float)
        Whether they are equal, and ``||got - ref|| / ||ref||``; ``(False, inf)`` for different
        shapes.
    """
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return False, math.inf
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = np.abs(got - ref)
    rel = float(np.linalg.norm(got - ref) / max(float(np.linalg.norm(ref)), 1e-300))
    tol = 4 * (n + 1) * float(np.finfo(np.float32).eps) * max(scale, 1e-30)
    return bool(np.all(diff <= tol)), rel
