"""The one round loop (``byzcore.algorithms.loop``), the progress bar and the timer."""

import builtins
import dataclasses

import numpy as np
import pytest

import byzcore.algorithms as A
from byzcore import _progress, attacks, problems


def _setup(**kw):
    cfg = A.RunConfig(algorithm="sgd", rounds=6, n_samples=600, workers=6, byzantine=1, aggregator="median", **kw)
    problem = problems.make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, n_samples=cfg.n_samples)
    byz = A.byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    return cfg, problem, A.make_algorithm(cfg, problem), attacks.make_attack(cfg.attack), byz


def _strip_time(metrics):
    return [{k: v for k, v in m.items() if k != "time"} for m in metrics]


@pytest.mark.parametrize("in_loop", [True, False])
def test_loop_with_a_gathering_collect_equals_the_simulation(in_loop):
    """A server that gathers each client's row alone and drives RoundLoop records what the
    simulation records, whether the loop applies the attack (``attack=``, what the
    distributed server does) or the collect does."""
    cfg, problem, alg, attack, byz = _setup(attack="opt-alie")
    sim = A.run(cfg)
    bad = np.isin(np.arange(cfg.workers), byz)
    state = alg.init_worker_state()

    def gather(plan):
        rows = np.stack([alg.worker_messages(problem, plan, [i], state)[0] for i in plan.clients])
        if in_loop:
            return A.Round(plan, rows)
        return A.Round(plan, A.apply_attack(attack, alg, plan, rows, bad[plan.clients], cfg.seed))

    loop = A.RoundLoop(alg, problem, np.flatnonzero(~bad), gather, attack=attack if in_loop else None)
    metrics, diverged = loop.run(cfg.rounds)
    assert not diverged
    assert _strip_time(metrics) == _strip_time(sim.metrics)


def test_partial_rounds_keep_the_model_and_say_why():
    cfg, problem, alg, _attack, byz = _setup()
    honest = np.setdiff1d(np.arange(cfg.workers), byz)
    state = alg.init_worker_state()
    model_at = {}                                               # the model a round starts from

    def nobody_in_round_3(plan):
        model_at[plan.round] = alg.model().copy()
        if plan.round == 3:
            plan = dataclasses.replace(plan, clients=np.zeros(0, dtype=np.int64))
            return A.Round(plan, np.zeros((0, alg.d)), {"participants": 0})
        messages = alg.worker_messages(problem, plan, plan.clients, state)
        return A.Round(plan, messages, {"participants": len(plan.clients)})

    loop = A.RoundLoop(alg, problem, honest, nobody_in_round_3, partial=True)
    metrics, _ = loop.run(cfg.rounds)
    row3 = metrics[3]
    assert row3["skipped"] == "no message arrived"
    assert row3["participants"] == 0
    assert row3["bytes_sent"] == metrics[2]["bytes_sent"]          # nothing was sent in round 3
    assert not np.array_equal(model_at[3], model_at[2])            # round 2 moved the model ...
    np.testing.assert_array_equal(model_at[4], model_at[3])        # ... round 3 did not
    # Without partial=True the same round is an error of the rule, not a silent skip.
    cfg, problem, alg, _attack, byz = _setup()
    state = alg.init_worker_state()
    with pytest.raises(ValueError, match="got no messages"):
        A.RoundLoop(alg, problem, honest, nobody_in_round_3).run(cfg.rounds)


def test_timer_adds_up_blocks(monkeypatch):
    clock = iter([10.0, 10.5, 20.0, 21.0, 30.0])
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    t = _progress.Timer()
    with t:
        pass
    with t:
        pass
    assert t.seconds == pytest.approx(1.5)
    assert t.elapsed == pytest.approx(1.5)
    started = _progress.Timer(started=True)                          # reads 30.0
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: 32.0)
    assert started.elapsed == pytest.approx(2.0)


def test_progress_without_tqdm_prints_a_line_per_tenth(monkeypatch, capsys):
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name.startswith("tqdm")
                        else real_import(name, *a, **k))
    with _progress.Progress(20, "run", unit="round") as bar:
        bar.tty = False
        for k in range(1, 21):
            bar.show(loss=k)
            bar.update_to(k)
        bar.write("a row")
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[0] == "run 2/20 loss 2"
    assert lines[-1] == "run 20/20 loss 20"
    assert len(lines) == 10
    assert out.out == "a row\n"
    with _progress.Progress(5, "quiet", enabled=False) as bar:
        bar.update(5)
    assert capsys.readouterr().err == ""
