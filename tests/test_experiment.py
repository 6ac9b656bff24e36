"""``byzcore run``: options, files written, summary printed."""

import json
import math

import pytest

from byzcore import cli
from byzcore.algorithms import RunConfig


def test_run_writes_metrics_summary_and_curves(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["run", "--rounds", "12", "--n-samples", "1500", "--no-progress", "--out", str(out),
                     "--compressor", "rand_k:30", "--aggregator", "bucketing:2+trimmed_mean"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == list(range(13))
    for r in rows:
        assert {"round", "loss", "grad_norm", "accuracy", "bytes_sent", "time"} <= set(r)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["algorithm"] == "byz_vr_marina_pp"
    assert summary["config"]["compressor"] == "rand_k:30"
    assert summary["final"]["loss"] == pytest.approx(rows[-1]["loss"])
    assert summary["final"]["grad_norm"] == pytest.approx(rows[-1]["grad_norm"])
    try:
        import matplotlib  # noqa: F401

        assert (out / "curves.png").stat().st_size > 1000
    except ImportError:
        assert not (out / "curves.png").exists()
    printed = capsys.readouterr().out
    assert "byz_vr_marina_pp" in printed
    assert "loss" in printed
    assert str(out) in printed


def test_run_says_when_matplotlib_is_missing(tmp_path, capsys, monkeypatch):
    import sys

    from byzcore.experiments.plots import NO_MATPLOTLIB

    monkeypatch.setitem(sys.modules, "matplotlib", None)             # `import matplotlib` raises ImportError
    out = tmp_path / "run"
    args = ["run", "--rounds", "2", "--n-samples", "600", "--no-progress", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    assert printed.err.count(NO_MATPLOTLIB) == 1
    assert "(no curves.png: matplotlib is not installed)" in printed.out
    assert not (out / "curves.png").exists()
    assert cli.main([*args, "--no-plot"]) == 0
    printed = capsys.readouterr()
    assert NO_MATPLOTLIB not in printed.err
    assert "not installed" not in printed.out


def test_every_issue_option_is_accepted(tmp_path):
    out = tmp_path / "r"
    code = cli.main(["run", "--algorithm", "resam", "--problem", "a9a-synthetic", "--workers", "8", "--byzantine", "2",
                     "--attack", "alie", "--aggregator", "nnm+median", "--clients-per-round", "6", "--rounds", "5",
                     "--lr", "0.2", "--alpha", "inf", "--p", "0.3", "--compressor", "none", "--seed", "3",
                     "--out", str(out), "--beta", "0.5", "--n-samples", "800", "--no-progress", "--no-plot"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    c = summary["config"]
    assert (c["algorithm"], c["workers"], c["byzantine"], c["clients_per_round"], c["seed"], c["beta"]) == \
        ("resam", 8, 2, 6, 3, 0.5)
    assert c["alpha"] is None                                   # inf is written as null (strict JSON)
    assert not (out / "curves.png").exists()


def test_defaults_match_the_python_api():
    parser = cli.build_parser()
    args = parser.parse_args(["run"])
    from byzcore.cli.run import config_from_args

    assert config_from_args(args) == RunConfig()
    assert RunConfig().algorithm == "byz_vr_marina_pp"
    assert RunConfig().attack == "shift-back"
    from byzcore.algorithms import make_algorithm
    from byzcore.problems import make_problem

    alg = make_algorithm(RunConfig(), make_problem("a9a-synthetic", 15, n_samples=300))
    assert (alg.C, alg.C_hat, alg.alpha) == (4, 15, 1.0)           # partial participation, clipping
    args = parser.parse_args(["run", "--alpha", "inf"])
    assert math.isinf(args.alpha)


def test_bad_option_is_reported(capsys, tmp_path):
    assert cli.main(["run", "--algorithm", "adam", "--out", str(tmp_path)]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    assert cli.main(["run", "--attack", "foo", "--rounds", "1", "--n-samples", "500", "--out", str(tmp_path),
                     "--no-progress"]) == 2
    assert "[make_attack]" in capsys.readouterr().err


def test_example_script_runs(tmp_path, capsys):
    import pathlib
    import runpy

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "clipping_vs_shift_back.py"
    if not script.exists():
        pytest.skip("examples/ not next to the tests")
    module = runpy.run_path(str(script))
    module["main"](["--rounds", "10", "--n-samples", "600", "--out", str(tmp_path), "--no-progress"])
    printed = capsys.readouterr().out
    assert "no clipping" in printed
    assert "clipping, alpha = 1" in printed
    assert len(list(tmp_path.glob("*/metrics.jsonl"))) == 4
