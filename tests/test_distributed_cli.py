"""``byzcore run --backend torch-distributed`` and the torchrun entry point, as a user runs them
(subprocesses with a deadline; the whole process group is killed if it is exceeded)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("torch")

import byzcore.algorithms as A

ARGS = ["--algorithm", "sgd", "--aggregator", "trimmed_mean", "--attack", "sign-flip", "--workers", "4",
        "--byzantine", "1", "--rounds", "8", "--n-samples", "1000", "--seed", "5", "--no-progress", "--no-plot"]
CFG = dict(algorithm="sgd", aggregator="trimmed_mean", attack="sign-flip", workers=4, byzantine=1, rounds=8,
           n_samples=1000, seed=5)


def _run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every rank it started
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s:\n{err[-3000:]}")
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_byzcore_run_torch_distributed_backend(tmp_path):
    sim = A.run(CFG)
    _run([sys.executable, "-m", "byzcore", "run", *ARGS, "--backend", "torch-distributed", "--nprocs", "3",
          "--timeout", "60", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["backend"] == "torch-distributed"
    assert summary["config"]["nprocs"] == 3
    assert summary["final"]["loss"] == sim.final["loss"]
    assert summary["final"]["grad_norm"] == sim.final["grad_norm"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == [m["loss"] for m in sim.metrics]


def test_torchrun_entry_point(tmp_path):
    sim = A.run(CFG)
    res = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "5",
                "-m", "byzcore.distributed.launch", *ARGS, "--out", str(tmp_path)])
    final = json.loads(res.stdout.strip().splitlines()[-1])["final"]
    assert final["loss"] == sim.final["loss"]
    assert final["grad_norm"] == sim.final["grad_norm"]
    assert (tmp_path / "metrics.jsonl").exists()
