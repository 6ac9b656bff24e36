"""Experiment grids (docs/spec.md#grids): expansion, run ids, resuming, the tables, the
worst-case table by hand, and the ``byzcore grid`` command."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import sys

import pytest

from byzcore import cli
from byzcore.algorithms import RunConfig
from byzcore.experiments.grid import config_hash, expand, load_grid, run_grid
from byzcore.experiments.plots import NO_MATPLOTLIB
from byzcore.experiments.report import write_report
from byzcore.experiments.tables import summarise, worst_case

# A grid of seconds: 2 rules x 2 attacks x 2 seeds of 6 rounds on a small problem.
TINY = dict(name="tiny", algorithm="sgd", problem="a9a-synthetic", n_samples=400, workers=6, byzantine=1,
            rounds=6, aggregator=["median", "trimmed_mean:1"], attack=["sign-flip", "alie"], seed=[0, 1])


def _csv(path) -> list:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_lists_expand_into_the_cartesian_product_in_key_order():
    g = expand({"workers": 7, "aggregator": ["median", "krum"], "byzantine": [1, 2], "seed": [0, 1, 2]})
    assert len(g.points) == 12
    combos = [(p.config.aggregator, p.config.byzantine, p.config.seed) for p in g.points]
    assert combos == [(a, f, s) for a in ("median", "krum") for f in (1, 2) for s in (0, 1, 2)]
    assert all(p.config.workers == 7 for p in g.points)
    assert g.varied == ["aggregator", "byzantine", "seed"]
    assert len({p.run_id for p in g.points}) == 12


def test_cases_are_a_union_and_identical_points_share_one_run():
    g = expand({"algorithm": "byz_vr_marina_pp", "alpha": 1.0, "seed": [0, 1],
                "cases": [{"case": "clip", "alpha": [1.0, "inf"]}, {"case": "C", "clients_per_round": [4, 8]}]})
    assert [p.case for p in g.points] == ["clip"] * 4 + ["C"] * 4
    assert math.isinf(g.points[2].config.alpha)                       # "inf" is read as a float
    assert len({p.run_id for p in g.points}) == 8                      # clients_per_round None != 4
    g2 = expand({"alpha": 1.0, "cases": [{"case": "a", "alpha": [1.0, 2.0]}, {"case": "b", "alpha": [1.0]}]})
    ids = [p.run_id for p in g2.points]
    assert ids[0] == ids[2]
    assert len(set(ids)) == 2
    assert g2.varied[0] == "case"


def test_none_quick_and_seeds():
    g = expand({"algorithm": "sgd", "clients_per_round": ["none", 3], "rounds": 100, "seed": [5],
                "quick": {"rounds": 2}}, quick=True, seeds=2)
    assert [p.config.clients_per_round for p in g.points] == [None, None, 3, 3]
    assert {p.config.rounds for p in g.points} == {2}
    assert [p.config.seed for p in g.points] == [0, 1, 0, 1]
    assert expand({"rounds": 100, "quick": {"rounds": 2}}).points[0].config.rounds == 100


@pytest.mark.parametrize(("spec", "match"), [
    ({"aggregator": ["median"], "colour": 1}, r"\[grid\] unknown keys \['colour'\]"),
    ({"seed": []}, r"\[grid\] seed: an empty list"),
    ({"algorithm": "adam"}, r"\[grid\] bad point .*unknown algorithm"),
    ({"seed": [[1, 2]]}, r"\[grid\] seed: nested lists"),
    ({"cases": {"a": 1}}, r"\[grid\] cases must be an array"),
])
def test_bad_grids_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        expand(spec)


def test_bad_seeds_and_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\[grid\] seeds must be a positive integer"):
        expand({}, seeds=0)
    with pytest.raises(ValueError, match=r"\[grid\] no grid file"):
        load_grid(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("aggregator = [median\n")
    with pytest.raises(ValueError, match=r"\[grid\] cannot read"):
        load_grid(str(bad))
    with pytest.raises(ValueError, match=r"\[grid\] jobs must be"):
        run_grid(expand({}), str(tmp_path), jobs=0)


def test_run_id_is_the_hash_of_every_resolved_field():
    cfg = RunConfig(algorithm="zeno", byzantine=2)
    expected = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    assert config_hash(cfg) == expected
    assert config_hash(RunConfig(algorithm="zeno", byzantine=2)) == expected
    for name, value in [("byzantine", 3), ("seed", 1), ("lr", 0.25), ("alpha", math.inf), ("mode", "threads")]:
        assert config_hash(dataclasses.replace(cfg, **{name: value})) != expected
    # an alias resolves to the same run
    assert expand({"algorithm": "zeno++"}).points[0].run_id == expand({"algorithm": "zeno_pp"}).points[0].run_id


def test_run_resume_and_tables(tmp_path):
    out = str(tmp_path / "g")
    grid = expand(TINY)
    first = run_grid(grid, out, jobs=2, progress=False)
    assert sorted(first.ran) == sorted(p.run_id for p in grid.points)
    assert not first.skipped
    assert not first.failed
    report = write_report(grid, out, plots=False)
    again = run_grid(grid, out, jobs=2, progress=False)            # everything finished: nothing runs
    assert again.ran == []
    assert sorted(again.skipped) == sorted(first.ran)

    rows = _csv(tmp_path / "g" / "results.csv")
    assert len(rows) == 8
    for row, p in zip(rows, grid.points):
        assert (row["run"], row["aggregator"], row["attack"], row["seed"]) == \
            (p.run_id, p.config.aggregator, p.config.attack, str(p.config.seed))
        summary = json.loads((tmp_path / "g" / "runs" / p.run_id / "summary.json").read_text())
        assert float(row["loss"]) == summary["final"]["loss"]       # repr() round-trips exactly
        assert float(row["accuracy"]) == summary["final"]["accuracy"]
        assert row["status"] == "ok"
        assert row["diverged"] == "False"
        assert summary["config"] == p.config.to_dict()

    # summary.csv: mean and standard error over the two seeds, by hand
    summ = _csv(tmp_path / "g" / "summary.csv")
    assert len(summ) == 4
    for s in summ:
        losses = [float(r["loss"]) for r in rows if (r["aggregator"], r["attack"]) == (s["aggregator"], s["attack"])]
        mean = sum(losses) / 2
        se = math.sqrt(sum((v - mean) ** 2 for v in losses) / 1) / math.sqrt(2)
        assert float(s["loss_mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(s["loss_se"]) == pytest.approx(se, rel=1e-9, abs=1e-15)
        assert s["seeds"] == "2"
        assert s["diverged"] == "0"

    # worst_case.csv: the larger mean loss over the two attacks, per rule, by hand
    worst = _csv(tmp_path / "g" / "worst_case.csv")
    assert [w["aggregator"] for w in worst] == ["median", "trimmed_mean:1"]
    for w in worst:
        means = {s["attack"]: float(s["loss_mean"]) for s in summ if s["aggregator"] == w["aggregator"]}
        bad = max(means, key=means.get)
        assert w["worst_attack"] == bad
        assert float(w["worst_loss"]) == means[bad]
        assert float(w["alie"]) == means["alie"]
        assert float(w["sign-flip"]) == means["sign-flip"]
    assert len(report.worst) == 2

    # a run lost (its folder removed) is run again, and only it
    import shutil

    shutil.rmtree(tmp_path / "g" / "runs" / grid.points[3].run_id)
    third = run_grid(grid, out, jobs=1, progress=False)
    assert third.ran == [grid.points[3].run_id]
    assert len(third.skipped) == 7
    write_report(grid, out, plots=False)

    def timeless(table: list) -> list:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in table]

    assert timeless(_csv(tmp_path / "g" / "results.csv")) == timeless(rows)   # seeded runs: the same table


def test_summary_and_worst_case_by_hand_with_divergence():
    rows = [
        # rule A: attack x twice (0.2, 0.4), attack y once (0.9); rule B: attack x fine, y diverged once
        {"status": "ok", "rule": "A", "attack": "x", "diverged": False, "loss": 0.2, "accuracy": 0.9},
        {"status": "ok", "rule": "A", "attack": "x", "diverged": False, "loss": 0.4, "accuracy": 0.7},
        {"status": "ok", "rule": "A", "attack": "y", "diverged": False, "loss": 0.9, "accuracy": 0.6},
        {"status": "ok", "rule": "B", "attack": "x", "diverged": False, "loss": 0.5, "accuracy": 0.5},
        {"status": "ok", "rule": "B", "attack": "y", "diverged": True, "loss": None, "accuracy": None},
        {"status": "ok", "rule": "B", "attack": "y", "diverged": False, "loss": 0.1, "accuracy": 0.95},
        {"status": "error", "rule": "B", "attack": "z", "diverged": None},
    ]
    s = summarise(rows, ["rule", "attack"], ["loss", "accuracy"])
    assert [(r["rule"], r["attack"], r["seeds"], r["diverged"]) for r in s] == \
        [("A", "x", 2, 0), ("A", "y", 1, 0), ("B", "x", 1, 0), ("B", "y", 2, 1)]
    assert s[0]["loss_mean"] == pytest.approx(0.3)
    assert s[0]["loss_se"] == pytest.approx(0.1)
    assert s[1]["loss_se"] is None
    assert s[3]["loss_mean"] == pytest.approx(0.1)
    w = worst_case(s, ["rule"], "loss")
    assert [(r["rule"], r["worst_attack"], r["worst_loss"], r["attacks"]) for r in w] == \
        [("A", "y", 0.9, 2), ("B", "y", None, 2)]                   # a divergence is the worst case
    assert w[1]["y"] == "diverged"
    assert w[1]["x"] == pytest.approx(0.5)
    acc = worst_case(s, ["rule"], "accuracy")                       # higher is better: the minimum
    assert (acc[0]["worst_attack"], acc[0]["worst_accuracy"]) == ("y", pytest.approx(0.6))


def test_parallel_equals_serial(tmp_path):
    spec = {**TINY, "aggregator": "median"}
    grid = expand(spec)
    run_grid(grid, str(tmp_path / "a"), jobs=1, progress=False)
    run_grid(grid, str(tmp_path / "b"), jobs=2, progress=False)
    for p in grid.points:
        a = (tmp_path / "a" / "runs" / p.run_id / "metrics.jsonl").read_text().splitlines()
        b = (tmp_path / "b" / "runs" / p.run_id / "metrics.jsonl").read_text().splitlines()
        strip = [{k: v for k, v in json.loads(x).items() if k != "time"} for x in a]
        assert strip == [{k: v for k, v in json.loads(x).items() if k != "time"} for x in b]


def test_a_failing_point_is_reported_and_retried(tmp_path, capsys):
    path = tmp_path / "g.json"
    # real threads exist for zeno_pp only: that point fails when it runs, the other one runs
    path.write_text(json.dumps({"name": "bad", "algorithm": "sgd", "problem": "a9a-synthetic", "n_samples": 300,
                                "workers": 5, "byzantine": 1, "rounds": 3, "mode": ["threads", "simulated"]}))
    out = tmp_path / "out"
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "1", "--no-progress", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "[run] mode='threads'" in err
    assert "failed" in err
    rows = _csv(out / "results.csv")
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert "[run] mode='threads'" in rows[0]["error"]
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "1", "--no-progress", "--no-plot"]) == 1
    assert "ran 0, skipped 1 finished, failed 1" in capsys.readouterr().out


def test_grid_command_on_a_toml_file(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text('name = "toml"\nalgorithm = "resam"\nproblem = "a9a-synthetic"\nn_samples = 300\nworkers = 6\n'
                    'byzantine = [1, 2]\nsplit = ["homogeneous", "heterogeneous"]\nrounds = 3\n'
                    'attack = ["alie", "ipm"]\naggregator = "median"\n')
    out = tmp_path / "out"
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "2", "--no-progress", "--dry-run"]) == 0
    assert "8 points, 8 distinct runs, 0 finished" in capsys.readouterr().out
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "ran 8, skipped 0" in printed
    assert "worst_loss" in printed
    assert len(_csv(out / "worst_case.csv")) == 4                  # f x split, worst over the two attacks
    assert cli.main(["grid", str(tmp_path / "nope.toml")]) == 2
    assert "[grid] no grid file" in capsys.readouterr().err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "heatmaps.png").stat().st_size > 1000


def test_no_matplotlib_is_said_once_on_stderr_and_in_the_summary(tmp_path, capsys, monkeypatch):
    # Whether or not matplotlib is installed here: `import matplotlib` now raises ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    spec = {**TINY, "name": "nomatplotlib", "byzantine": [1, 2], "aggregator": "median", "attack": "alie", "seed": 0,
            "rounds": 3}                                              # byzantine varies: curves and heatmaps
    grid = expand(spec)
    out = tmp_path / "g"
    run_grid(grid, str(out), jobs=1, progress=False)
    capsys.readouterr()
    report = write_report(grid, str(out))
    err = capsys.readouterr().err
    assert err.count(NO_MATPLOTLIB) == 1
    assert 'pip install "byzcore[plot]"' in err
    assert report.notes == [NO_MATPLOTLIB]
    assert not [p for p in report.paths if p.endswith(".png")]
    assert not list(out.glob("*.png"))
    assert write_report(grid, str(out), plots=False).notes == []     # no figure asked for: nothing said
    assert capsys.readouterr().err == ""
    # the command: the note once on stderr, and its `wrote` line says no figure was written
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec))
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert printed.err.count(NO_MATPLOTLIB) == 1
    assert "(no figures: matplotlib is not installed)" in printed.out
    assert cli.main(["grid", str(path), "--out", str(out), "--jobs", "1", "--no-progress", "--no-plot"]) == 0
    printed = capsys.readouterr()
    assert NO_MATPLOTLIB not in printed.err
    assert "no figures" not in printed.out


def test_reproduce_command_lists_and_refuses(tmp_path, capsys):
    assert cli.main(["reproduce", "zeno", "--quick", "--dry-run", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "zeno: 16 points, 16 distinct runs, 0 finished" in printed
    assert "attack" in printed
    assert cli.main(["reproduce", "zeno", "--seeds", "2", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "32 points" in capsys.readouterr().out
    assert cli.main(["reproduce", "fig9", "--dry-run"]) == 2
    assert "[reproduce] unknown preset 'fig9'" in capsys.readouterr().err


def test_parquet_table_matches_the_csv(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from byzcore.experiments.tables import write_table

    rows = [{"rule": "median", "loss": 0.25, "x": "diverged"}, {"rule": "krum", "loss": None, "x": 0.5}]
    paths = write_table(rows, str(tmp_path / "t.csv"))
    assert paths == [str(tmp_path / "t.csv"), str(tmp_path / "t.parquet")]
    table = pq.read_table(paths[1]).to_pylist()
    assert table == [{"rule": "median", "loss": 0.25, "x": "diverged"}, {"rule": "krum", "loss": None, "x": "0.5"}]
