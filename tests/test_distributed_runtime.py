"""The server-worker runtime on torch.distributed (c10d store for control, gloo links for the
vectors, over loopback): equal to the simulation with the same seed (the server applies the
attack, as the simulation does), and alive through crashed, stalled and malformed workers and
arbitrary (NaN) values."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("torch")

import byzcore.algorithms as A
from byzcore.distributed.runtime import run_distributed
from byzcore.distributed.transport import encode_header, header_ok, wire_dtype

SMALL = dict(workers=5, byzantine=1, rounds=12, n_samples=1500, seed=3)


@pytest.mark.parametrize("cfg, nprocs", [
    # partial participation, clipping, shift-back (the server's target); 2 worker processes
    # holding 3 and 2 workers
    (dict(algorithm="byz_vr_marina_pp", aggregator="bucketing:2+median", attack="shift-back",
          clients_per_round=2, p=0.3, **SMALL), 3),
    # worker state (momentum) in the worker processes, an attack that reads honest messages,
    # one process per worker
    (dict(algorithm="resam", aggregator="trimmed_mean", attack="alie", **SMALL), 6),
    # label flipping: the Byzantine worker computes its row on flipped labels
    (dict(algorithm="sgd", aggregator="mean", attack="label-flip", **SMALL), 6),
    # arbitrary values: the Byzantine rows are NaN, the rule drops them, on 2 worker processes
    (dict(algorithm="sgd", aggregator="median", attack="nan", **SMALL), 3),
    # the l2 regulariser of the Byz-VR-MARINA(-PP) papers reaches the worker processes
    (dict(algorithm="byz_vr_marina_pp", aggregator="median", attack="sign-flip", reg="l2", **SMALL), 3),
    # an attack that queries the server's aggregator (AttackContext.aggregate_with: its line
    # search runs the rule), which only the server holds
    (dict(algorithm="sgd", aggregator="trimmed_mean", attack="opt-alie", **SMALL), 3),
    # an attack that reads every honest message (max pairwise distance), on worker state (momentum)
    (dict(algorithm="resam", aggregator="median", attack="minmax", **SMALL), 3),
    # the attack acts on the full estimator g^k + Delta_i (the server's attack_offset) and
    # queries the server's view (MARINA's clipping and centre); ipm is not translation
    # equivariant, so the offset changes the run
    (dict(algorithm="byz_vr_marina_pp", aggregator="bucketing:2+median", attack="opt-ipm",
          attack_space="estimator", clients_per_round=3, p=0.3, **SMALL), 3),
], ids=["marina-pp-shift-back", "resam-alie", "sgd-label-flip", "sgd-nan", "marina-pp-l2", "sgd-opt-alie",
        "resam-minmax", "marina-pp-estimator-opt-ipm"])
def test_runtime_equals_simulation(cfg, nprocs):
    sim = A.run(cfg)
    dist = run_distributed(cfg, nprocs=nprocs, timeout_s=60, run_timeout_s=240)
    np.testing.assert_array_equal(dist.x, sim.x)
    assert len(dist.metrics) == len(sim.metrics)
    for a, b in zip(dist.metrics, sim.metrics):
        assert a["round"] == b["round"]
        assert a["loss"] == b["loss"]
        assert a["grad_norm"] == b["grad_norm"]
        assert a["bytes_sent"] == b["bytes_sent"]
        assert a.get("absent", []) == []
        assert a.get("malformed", []) == []
    assert dist.final == sim.final
    assert dist.config["backend"] == "torch-distributed"


def test_runtime_survives_killed_stalled_and_malformed_workers():
    # 4 workers, one per process (worker i on rank i + 1); no Byzantine workers, so every
    # missing message below is a fault of the runtime's own making.
    cfg = dict(algorithm="sgd", aggregator="mean", attack="none", workers=4, byzantine=0, rounds=12,
               n_samples=1200, seed=1)
    faults = {"kill": {2: 4}, "hang": {3: 7}, "malformed": {4: 2}, "truncated": {4: 3}, "wrong_round": {4: 5}}
    res = run_distributed(cfg, timeout_s=1.5, faults=faults, run_timeout_s=180)
    by_round = {m["round"]: m for m in res.metrics}
    assert sorted(by_round) == list(range(13))  # every round ran, none was lost
    # sgd has no initial round: plan seq s is round s + 1
    assert by_round[3]["malformed"] == [3]  # float32 values
    assert by_round[3]["participants"] == 3
    assert by_round[4]["malformed"] == [3]  # d - 1 values
    assert by_round[4]["participants"] == 3
    assert by_round[6]["malformed"] == [3]  # claims the round before
    assert by_round[6]["participants"] == 2
    for k in (1, 2, 5, *range(7, 13)):
        assert by_round[k]["malformed"] == []
    for k in range(1, 5):
        assert 1 not in by_round[k]["absent"]
    for k in range(5, 13):  # rank 2 (worker 1) was SIGKILLed when round 5 began
        assert 1 in by_round[k]["absent"]
    for k in range(8, 13):  # rank 3 (worker 2) stopped answering at round 8
        assert 2 in by_round[k]["absent"]
        assert by_round[k]["participants"] == 2
    assert np.all(np.isfinite(res.x))
    assert by_round[12]["loss"] < by_round[0]["loss"]


def test_runtime_all_workers_gone_keeps_the_model():
    cfg = dict(algorithm="sgd", aggregator="mean", attack="none", workers=2, byzantine=0, rounds=4,
               n_samples=600, seed=2)
    res = run_distributed(cfg, timeout_s=1.0, faults={"kill": {1: 1, 2: 1}}, run_timeout_s=120)
    by_round = {m["round"]: m for m in res.metrics}
    assert by_round[1]["participants"] == 2
    for k in (2, 3, 4):
        assert by_round[k]["participants"] == 0
        assert by_round[k]["skipped"] == "no message arrived"
        assert by_round[k]["loss"] == by_round[1]["loss"]  # the model did not move, nor was it lost


def test_message_header_validation():
    v = np.arange(4.0)
    raw = encode_header(7, 2, v)
    f8 = np.dtype(np.float64)
    assert header_ok(raw, 7, 2, f8, 4)
    assert not header_ok(raw, 8, 2, f8, 4)  # another round
    assert not header_ok(raw, 7, 3, f8, 4)  # another sender
    assert not header_ok(raw, 7, 2, f8, 5)  # another size
    assert not header_ok(raw, 7, 2, np.dtype(np.float32), 4)  # another dtype
    assert header_ok(encode_header(7, 2, v.astype(np.float32)), 7, 2, np.dtype(np.float32), 4)
    assert not header_ok(encode_header(7, 2, v.astype(np.float16)), 7, 2, np.dtype(np.float16), 4)  # unknown dtype
    assert not header_ok(raw[:-1], 7, 2, f8, 4)  # truncated
    assert not header_ok(raw + b"\0", 7, 2, f8, 4)  # trailing bytes
    assert not header_ok(b"", 7, 2, f8, 4)
    assert not header_ok(os.urandom(32), 7, 2, f8, 4)
    assert wire_dtype(4) == np.float32
    assert wire_dtype(8) == np.float64


def test_runtime_rejects_bad_process_counts():
    with pytest.raises(ValueError, match=r"^\[run\] --nprocs"):
        run_distributed(dict(workers=2, rounds=1), nprocs=1)


def test_stalled_worker_rejoins_on_a_fresh_link():
    # Worker 0 (rank 1) goes silent at plan 1 until the server has published plan 3: it misses
    # round 2 (the server drops its link at the deadline), then opens a fresh link and answers
    # again in every later round (the rounds it misses while rejoining depend on the machine).
    cfg = dict(algorithm="sgd", aggregator="mean", attack="none", workers=2, byzantine=0, rounds=60,
               n_samples=600, seed=2)
    res = run_distributed(cfg, timeout_s=1.0, faults={"stall": {1: [1, 3]}}, run_timeout_s=150)
    absent = [m["absent"] for m in res.metrics[1:]]
    assert len(absent) == 60
    assert absent[0] == []
    assert absent[1] == [0]
    back = next(k for k in range(2, 60) if absent[k] == [])
    assert all(a == [0] for a in absent[1:back])
    assert all(a == [] for a in absent[back:])
    assert all(m["malformed"] == [] for m in res.metrics[1:])
    assert res.metrics[-1]["loss"] < res.metrics[0]["loss"]
