"""The torch-distributed runtime at model sizes of millions to 1e7 parameters and more: the
same seeded result as the simulation (vectors of tens of MiB travel over the gloo links,
which the c10d Store's 8 MiB values could not carry; a LIBSVM problem of millions of
features stays sparse in every process)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from _dist_workers import big_linear_problem
from conftest import write_wide_libsvm

import byzcore.algorithms as A
from byzcore.distributed.runtime import run_distributed


def test_libsvm_problem_with_millions_of_features_equals_simulation(tmp_path):
    d = 3_000_000
    path = tmp_path / "wide.libsvm"
    write_wide_libsvm(path, 240, d, 10, seed=1, valued=True)
    # 3 workers (1 Byzantine, ALIE: the server replaces its row, from the honest ones),
    # 2 worker processes; every message and plan vector is 24 MB of float64.
    cfg = dict(algorithm="sgd", aggregator="median", attack="alie", workers=3, byzantine=1, rounds=2, batch=16,
               problem=f"libsvm:{path}", seed=2)
    sim = A.run(cfg)
    assert sim.x.size == d
    dist = run_distributed(cfg, nprocs=3, timeout_s=120, run_timeout_s=600)
    np.testing.assert_array_equal(dist.x, sim.x)
    assert [m["loss"] for m in dist.metrics] == [m["loss"] for m in sim.metrics]
    assert all(m["participants"] == 3 for m in dist.metrics[1:])


def test_faults_at_three_million_parameters(tmp_path):
    # 4 workers on 3 worker processes (rank 1 holds workers 0 and 3, ranks 2 and 3 workers 1
    # and 2; seed 2 makes worker 0 Byzantine, ALIE applied by the server), messages of 24 MB of
    # float64. Worker 2 (rank 3) sends one value too few in round 2; worker 1 (rank 2) is
    # SIGKILLed when round 3 begins.
    d = 3_000_000
    path = tmp_path / "wide.libsvm"
    write_wide_libsvm(path, 160, d, 10, seed=3, valued=True)
    cfg = dict(algorithm="sgd", aggregator="median", attack="alie", workers=4, byzantine=1, rounds=5, batch=16,
               problem=f"libsvm:{path}", seed=2)
    faults = {"truncated": {3: 1}, "kill": {2: 2}}  # plan seq s is round s + 1
    res = run_distributed(cfg, nprocs=4, timeout_s=30, faults=faults, run_timeout_s=300)
    assert res.x.size == d
    assert res.byzantine == [0]
    by_round = {m["round"]: m for m in res.metrics}
    assert sorted(by_round) == list(range(6))  # the server survived: every round ran
    assert by_round[1]["participants"] == 4
    assert by_round[2]["malformed"] == [2]
    assert by_round[2]["participants"] == 3
    for k in range(3, 6):
        assert by_round[k]["absent"] == [1]
        assert by_round[k]["participants"] == 3
    for k in range(1, 6):
        assert "skipped" not in by_round[k]
    assert np.all(np.isfinite(res.x))
    losses = [by_round[k]["loss"] for k in range(6)]
    assert all(np.isfinite(losses))
    assert len(set(losses[2:])) == 4  # the rounds after the kill still moved the model


def test_torch_model_of_ten_million_parameters_equals_simulation():
    # 3 workers (1 Byzantine, sign flip) on 2 worker processes: rank 1 holds workers 0 and 2,
    # so one process sends an honest message, a Byzantine one and the attack of 80 MB each.
    cfg = dict(algorithm="sgd", aggregator="median", attack="sign-flip", workers=3, byzantine=1, rounds=2,
               batch=8, lr=0.1, seed=4)
    problem = big_linear_problem(3, seed=4)
    assert problem.d >= 10_000_000
    sim = A.run(cfg, problem=problem)
    dist = run_distributed(cfg, nprocs=3, timeout_s=120, run_timeout_s=600, problem_factory=big_linear_problem)
    np.testing.assert_array_equal(dist.x, sim.x)
    assert not np.array_equal(dist.x, problem.x0())  # it trained
    assert [m["loss"] for m in dist.metrics] == [m["loss"] for m in sim.metrics]
    assert all(m["participants"] == 3 and m["absent"] == [] and m["malformed"] == [] for m in dist.metrics[1:])


@pytest.mark.parametrize("d", [3_000_000, 123])
def test_links_carry_float32_messages_beyond_the_store_limit_and_stay_in_step(d):
    from _dist_workers import transport_roundtrip

    from byzcore.distributed import spawn

    # 3e6: 12 MB of float32 per message, more than one c10d Store value may hold (header and
    # payload in two transfers); 123: header and payload in one transfer (transport.PACK_BYTES).
    res = spawn(transport_roundtrip, 3, (d,), timeout_s=240, backend=None, wait_for=[0])
    assert 0 in res.results, res.errors
    (s0, a0, z0, dt), (s1, a1, _z1, _), (s2, _a2, _, _) = res.results[0]
    assert dt == "<f4"  # received in the wire dtype, no float64 copy
    assert s0 == ["ok", "ok"]
    assert a0 == [[10.0] * 3, [20.0] * 3]
    assert z0 == [10.0, 20.0]
    assert s1 == ["ok", "malformed"]  # float64 sent
    assert a1[0] == [11.0] * 3
    assert np.isnan(a1[1]).all()
    assert s2 == ["malformed", "malformed"]  # rank 1 claims round 0; rank 2 sends d - 1 values
