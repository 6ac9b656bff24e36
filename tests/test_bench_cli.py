"""``byzcore bench`` on a tiny grid: the correctness gate, the output format and the JSON.

No timing is asserted (speed belongs in benchmarks). The gate is exercised with stand-in
kernels written in plain NumPy in the benchmark dtype (a correct float32 kernel must pass
the tolerances) and with deliberately wrong ones (which must be refused); the real kernels
run too, and may only be "ok" or "unavailable" (not yet built), never "mismatch".
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import byzcore
from byzcore import bench
from byzcore.bench import baselines, timing
from byzcore.bench import grid as bench_grid
from byzcore.cli import bench as bench_cli
from byzcore.cli import main

# No baseline cap: on a busy machine a tiny cell can take long enough to predict a skip.
TINY = ["--n", "5", "12", "--d", "100", "3000", "--repeat", "1", "--no-progress", "--bw-bytes", "8MiB",
        "--baseline-cap", "1e9"]


def _fake_rand_k_indices(d, k, *, seed, like=None):
    return np.sort(np.random.default_rng(seed).choice(d, k, replace=False))


def _fake_rand_k(X, k, *, seed):
    d = X.shape[1]
    out = np.zeros_like(X)
    idx = _fake_rand_k_indices(d, k, seed=seed)
    out[:, idx] = X[:, idx] * X.dtype.type(d / k)
    return out


def _fake_krum(X, f):
    return X[int(np.argmin(baselines.np_krum_scores(X, f)))].copy()


def _fake_multi_krum(X, f, m=None):
    m = X.shape[0] - f if m is None else m
    return X[np.argsort(baselines.np_krum_scores(X, f))[:m]].mean(axis=0)


def _fake_distances(X, squared=True):
    D = baselines.np_gram_dist2(X)
    return D if squared else np.sqrt(D)


def _fake_gm(X, *, nu=1e-6, max_iter=100, tol=1e-7, weights=None):
    return baselines.np_weiszfeld(X, np.median(X, axis=0), max_iter, nu)


# Each op done the plain NumPy way in the input dtype: what a correct kernel must match.
FAKES = {
    "median": lambda X: np.median(X, axis=0),
    "trimmed_mean": lambda X, f: np.sort(X, axis=0)[f: X.shape[0] - f].mean(axis=0),
    "mean": lambda X: X.mean(axis=0),
    "pairwise_distances": _fake_distances,
    "krum": _fake_krum,
    "multi_krum": _fake_multi_krum,
    "geometric_median": _fake_gm,
    "clip": baselines.np_clip,
    "centered_clipping": lambda X, tau, center=None, iters=1: baselines.np_clip(X, tau).mean(axis=0),
    "nnm": baselines.np_nnm,
    "rand_k": _fake_rand_k,
    "rand_k_indices": _fake_rand_k_indices,
}


@pytest.fixture
def fakes(monkeypatch):
    for name, fn in FAKES.items():
        monkeypatch.setattr(byzcore, name, fn)
    monkeypatch.setattr(bench_grid, "gm_iterations", lambda X, max_iter: max_iter)


def _run(tmp_path, *extra):
    out = tmp_path / "bench.json"
    rc = main(["bench", *TINY, "--json", str(out), *extra])
    return rc, json.loads(out.read_text())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_correct_kernels_pass_the_gate(tmp_path, capsys, fakes, dtype):
    rc, doc = _run(tmp_path, "--dtype", dtype, "--no-torch")
    text = capsys.readouterr().out
    assert rc == 0
    rows = doc["results"]
    assert len(rows) == 4 * len(bench.DEFAULT_OPS)
    assert {r["status"] for r in rows} == {"ok"}, [r for r in rows if r["status"] != "ok"]
    for r in rows:
        assert r["dtype"] == dtype
        assert r["check_ratio"] <= 1
        assert r["time_s"] > 0
        assert r["gbps"] > 0
        assert r["numpy_s"] > 0
        assert r["speedup_numpy"] == pytest.approx(r["numpy_s"] / r["time_s"])
        assert r["bw_fraction"] == pytest.approx(r["gbps"] / doc["bandwidth"]["best_gbps"])
        assert "torch_s" not in r
    # One printed row per cell, under the header.
    header = next(line for line in text.splitlines() if line.startswith("op "))
    assert header.split() == list(bench_grid.COLUMNS)
    printed = [line.split() for line in text.splitlines() if line.split()[:1] and line.split()[0] in bench.KERNELS]
    assert len(printed) == len(rows)
    assert "read bandwidth:" in text
    gm = [r for r in rows if r["op"] == "geometric_median"]
    assert all("per iteration" in r["note"] for r in gm)
    pd = [r for r in rows if r["op"] == "pairwise_distances"]
    assert all(r["gram_s"] > 0 and "X@X.T" in r["note"] for r in pd)
    assert doc["command"].startswith("byzcore bench --ops median")
    assert doc["environment"]["numpy"] == np.__version__
    assert doc["bandwidth"]["best_gbps"] > 0


def test_torch_baselines(tmp_path, fakes):
    pytest.importorskip("torch")
    rc, doc = _run(tmp_path, "--ops", "median", "pairwise_distances", "krum", "multi_krum", "geometric_median",
                   "clip", "centered_clipping", "nnm", "rand_k", "trimmed_mean", "mean")
    assert rc == 0
    assert all(r["status"] == "ok" and r["torch_s"] > 0 for r in doc["results"])


@pytest.mark.parametrize("op, wrong", [
    ("median", lambda X: X.mean(axis=0)),
    ("trimmed_mean", lambda X, f: np.sort(X, axis=0)[f + 1: X.shape[0] - f].mean(axis=0)),
    ("krum", lambda X, f: X[1:].mean(axis=0)),                    # not one of the messages
    ("pairwise_distances", lambda X, squared=True: np.triu(_fake_distances(X, squared))),  # not symmetric
    ("clip", lambda X, thr: X.copy()),
    ("rand_k", lambda X, k, *, seed: _fake_rand_k(X, k, seed=seed + 1)),
])
def test_a_wrong_result_is_refused(tmp_path, capsys, fakes, monkeypatch, op, wrong):
    monkeypatch.setattr(byzcore, op, wrong)
    rc, doc = _run(tmp_path, "--ops", op, "--no-torch")
    text = capsys.readouterr().out
    assert rc == 1
    assert {r["status"] for r in doc["results"]} == {"mismatch"}
    assert all("time_s" not in r and r["check_ratio"] > 1 for r in doc["results"])
    assert "MISMATCH" in text
    assert "disagreed with the NumPy reference" in text


@pytest.mark.parametrize("exc, status, rc", [
    (RuntimeError("[median] CPU kernel not written yet"), "unavailable", 0),
    (ValueError("[median] n too small"), "skipped", 0),
    (RuntimeError("boom"), "error", 1),
])
def test_a_kernel_that_raises(tmp_path, capsys, fakes, monkeypatch, exc, status, rc):
    def raising(X):
        raise exc

    monkeypatch.setattr(byzcore, "median", raising)
    code, doc = _run(tmp_path, "--ops", "median", "mean", "--no-torch")
    assert code == rc
    assert {r["status"] for r in doc["results"] if r["op"] == "median"} == {status}
    assert {r["status"] for r in doc["results"] if r["op"] == "mean"} == {"ok"}
    if status == "unavailable":
        assert doc["unavailable"] == {"median": str(exc)}
        assert "not measured (kernel not available in this build): median" in capsys.readouterr().out


def test_the_real_kernels_never_disagree(tmp_path):
    """Whatever this build has: each kernel is either checked and timed, or not built yet."""
    rc, doc = _run(tmp_path, "--no-torch")
    assert rc == 0
    for r in doc["results"]:
        assert r["status"] in ("ok", "unavailable"), r
        if r["status"] == "unavailable":
            assert r["op"] in doc["unavailable"]


def test_over_budget_cells_are_skipped(tmp_path, capsys, fakes):
    # 5 x 100 float32 = 2000 bytes fits; the rest do not.
    rc, doc = _run(tmp_path, "--ops", "mean", "--max-bytes", "2000", "--no-torch")
    assert rc == 0
    assert [(r["n"], r["d"]) for r in doc["results"]] == [(5, 100)]
    assert {(c["n"], c["d"]) for c in doc["skipped_cells"]} == {(5, 3000), (12, 100), (12, 3000)}
    assert "skipped 3 cells over --max-bytes" in capsys.readouterr().out


def test_slow_baselines_are_capped():
    pred = timing.BaselinePredictor()
    key = ("median", "numpy")
    assert pred.predict(key, 10, 1000, 1) is None
    pred.record(key, 10, 1000, 0.001)          # too short to extrapolate from
    assert pred.predict(key, 10, 10**6, 1) is None
    pred.record(key, 10, 1000, 0.05)
    assert pred.predict(key, 10, 10**6, 1) == pytest.approx(50)
    assert pred.predict(key, 20, 2000, 2) == pytest.approx(0.4)


def test_capped_baselines_are_marked(tmp_path, fakes, monkeypatch):
    monkeypatch.setattr(timing.BaselinePredictor, "predict", lambda self, key, n, d, p: 100.0)
    rc, doc = _run(tmp_path, "--ops", "median", "--baseline-cap", "1")
    assert rc == 0
    assert all("numpy_s" not in r and "torch_s" not in r and "numpy skipped (~100s)" in r["note"]
               for r in doc["results"])


def test_a_failing_baseline_keeps_the_cell(tmp_path, fakes, monkeypatch):
    def boom(case):
        def run():
            raise MemoryError("no room")
        return run

    monkeypatch.setattr(bench.KERNELS["mean"], "numpy", boom)
    rc, doc = _run(tmp_path, "--ops", "mean", "--no-torch")
    assert rc == 0
    assert all(r["status"] == "ok" and "numpy_s" not in r and "numpy failed (MemoryError)" in r["note"]
               for r in doc["results"])


def test_progress_counter_without_tqdm(tmp_path, capsys, fakes, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.split(".")[0] == "tqdm":
            raise ImportError("no tqdm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    rc = main(["bench", "--ops", "mean", "--n", "5", "--d", "100", "--repeat", "1", "--bw-bytes", "0", "--no-torch"])
    assert rc == 0
    assert "bench 1/1 mean n=5 d=100" in capsys.readouterr().err


def test_cuda_without_gpu_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available() and byzcore.build_info()["cuda"]:
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit, match="byzcore bench --device cuda"):
        main(["bench", "--device", "cuda", "--n", "5", "--d", "100"])


def test_help_documents_columns_and_openblas(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    for word in ("GB/s", "x-torch", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "threadpoolctl", "--max-bytes"):
        assert word in text


@pytest.mark.parametrize("text, value", [("512MiB", 512 << 20), ("2GB", 2 * 10**9), ("1e6", 10**6), ("4096", 4096)])
def test_sizes(text, value):
    assert bench_cli._size(text) == value


def test_counts():
    assert bench_cli._count("1e7") == 10**7
    with pytest.raises(Exception, match="positive integer"):
        bench_cli._count("0.5")


# ---------------------------------------------------------------- the catalogue rules (issue 9)
CATALOGUE = ["meamed", "bulyan", "monna", "cge", "arc", "mda", "smea", "caf", "dnc", "weighted_mean",
             "trimmed_mean_beta"]
SMALL = ["--n", "10", "13", "--d", "100", "3000", "--repeat", "1", "--no-progress", "--bw-bytes", "8MiB",
         "--baseline-cap", "1e9", "--no-torch"]


def _run_small(tmp_path, *extra):
    out = tmp_path / "bench.json"
    rc = main(["bench", *SMALL, "--json", str(out), *extra])
    return rc, json.loads(out.read_text())


def test_the_catalogue_rules_pass_the_gate(tmp_path):
    rc, doc = _run_small(tmp_path, "--ops", *CATALOGUE, "--threads", "1")
    assert rc == 0
    rows = doc["results"]
    assert {r["op"] for r in rows} == set(CATALOGUE)
    assert all(r["status"] == "ok" and r["check_ratio"] <= 1 for r in rows), [r for r in rows if r["status"] != "ok"]
    # Bulyan's bound n >= 4f + 3 lowers the default f = n // 5 where it must, and says so.
    assert {(r["n"], r["f"]) for r in rows if r["op"] == "bulyan"} == {(10, 1), (13, 2)}
    assert "--threads 1" in doc["command"]


@pytest.mark.parametrize("op, wrong", [
    ("meamed", lambda X, f: np.median(X, axis=0)),
    ("bulyan", lambda X, f: np.median(X, axis=0)),
    ("monna", lambda X, f: X[1:].mean(axis=0)),
    ("cge", lambda X, f: X.mean(axis=0)),
    ("arc", lambda X, f: X.copy()),
    ("mda", lambda X, f: X[f:].mean(axis=0)),           # an n - f subset holding the Byzantine rows
    ("smea", lambda X, f: X.mean(axis=0)),              # not the mean of n - f messages
    ("caf", lambda X, f: X.mean(axis=0)),
    ("dnc", lambda X, f, **kw: X[: X.shape[0] - 1].mean(axis=0)),
])
def test_a_wrong_catalogue_result_is_refused(tmp_path, monkeypatch, op, wrong):
    monkeypatch.setattr(byzcore, op, wrong)
    rc, doc = _run_small(tmp_path, "--ops", op)
    assert rc == 1
    assert {r["status"] for r in doc["results"]} == {"mismatch"}


def _fake_peer(tmp_path, body: str):
    """A stand-in for the peers' interpreter: it speaks the runner's protocol (request JSON as
    the last argument, "ready", a JSON line with the time, the result saved as .npy) and
    computes what ``body`` says instead of importing ByzFL, byzpy or Flower."""
    import sys

    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n" + """
import json, sys, time
import numpy as np
from byzcore.bench import baselines
from byzcore.bench.references import closest_to_median64
req = json.loads(sys.argv[-1])
X, f, lib = np.load(req["input"]), req["f"], req["lib"]
print("ready", flush=True)
""" + body + """
np.save(req["output"], np.asarray(r, dtype=np.float64))
print(json.dumps({"time_s": 0.5}))
""")
    script.chmod(0o755)
    return str(script)


def test_the_peer_column(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ":".join(__import__("sys").path))
    python = _fake_peer(tmp_path, """
if lib == "flwr":
    time.sleep(60)
r = closest_to_median64(X.astype(np.float64), len(X) - f) if lib == "byzfl" else X.mean(axis=0)
""")
    rc, doc = _run_small(tmp_path, "--ops", "meamed", "bulyan", "--peers", "--peer-python", python,
                         "--peer-timeout", "2")
    assert rc == 0
    for r in doc["results"]:
        assert r["status"] == "ok"
        if r["op"] == "meamed":
            byzfl, byzpy = r["peers"]["byzfl"], r["peers"]["byzpy"]
            assert byzfl["equal"]
            assert byzfl["time_s"] == 0.5
            assert byzfl["speedup"] == pytest.approx(0.5 / r["time_s"])
            assert not byzpy["equal"]
            assert byzpy["rel_diff"] > 0
            assert not byzpy["same_definition"]
            assert r["speedup_peer"] == pytest.approx(0.5 / r["time_s"])
            assert "byzfl 500ms" in r["note"]
            assert "equal" in r["note"]
        else:
            assert r["peers"]["flwr"]["status"] == "timeout"
            assert "flwr timeout" in r["note"]
            assert "speedup_peer" not in r


def test_a_peer_that_disagrees_where_the_definitions_agree_fails_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", ":".join(__import__("sys").path))
    python = _fake_peer(tmp_path, "r = baselines.np_monna(X, f) if lib == 'byzfl' else X.mean(axis=0)")
    rc, doc = _run_small(tmp_path, "--ops", "monna", "--peers", "--peer-python", python)
    assert rc == 1
    assert all(r["peers"]["byzfl"]["equal"] and not r["peers"]["byzpy"]["equal"] and r["peer_mismatch"]
               for r in doc["results"])
    assert "byzpy" in capsys.readouterr().out


def test_a_missing_peer_interpreter_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="--peer-python"):
        main(["bench", *SMALL, "--ops", "meamed", "--peers", "--peer-python", str(tmp_path / "nope")])


def test_info_prints_build_info_as_json(capsys):
    rc = main(["info"])
    printed = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert printed == json.loads(json.dumps(byzcore.build_info()))
    assert printed["simd"] in printed["isa_modules"]
