"""The papers' settings (issue 10): regulariser, shift-back trigger, clipping heuristic, attack
space of Byz-VR-MARINA, one aggregator state per message kind, declared f, Zeno's penalty and
Zeno++'s defaults, optimality gap, oracle calls, Zeno's detection rates, local steps, CLI."""

import argparse
import copy
import math

import numpy as np
import pytest
import reference as ref

import byzcore.algorithms as A
from byzcore import attacks
from byzcore import problems as P
from byzcore.algorithms.base import Plan, apply_attack

SMALL = dict(n_samples=2000, eval_every=1)


def _logreg(reg, lam=0.05, n_workers=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(48, 6))
    y = np.where(rng.random(48) < 0.5, 1.0, -1.0)
    return P.LogisticRegression(X, y, n_workers, split="homogeneous", lam=lam, seed=1, reg=reg), X, y


# ------------------------------------------------------------------ regulariser
@pytest.mark.parametrize("reg", ["nonconvex", "l2"])
def test_regulariser_value_and_gradient(reg):
    prob, X, y = _logreg(reg)
    x = np.linspace(-1.5, 2.0, X.shape[1])
    loss, grad = prob.objective(x)
    assert loss == pytest.approx(ref.logistic_objective(X, y, x, 0.05, reg), rel=1e-12)
    h = 1e-6
    def objective(z):
        return ref.logistic_objective(X, y, z, 0.05, reg)

    fd = np.array([(objective(x + h * e) - objective(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    # the two regularisers differ exactly by lam * sum(x^2 - x^2 / (1 + x^2))
    other = _logreg("l2" if reg == "nonconvex" else "nonconvex")[0].objective(x)[0]
    diff = 0.05 * np.sum(x**2 - x**2 / (1 + x**2))
    assert (other - loss if reg == "nonconvex" else loss - other) == pytest.approx(diff, rel=1e-10)


def test_regulariser_errors():
    with pytest.raises(ValueError, match=r"^\[LogisticRegression\] reg must be"):
        _logreg("l1")
    with pytest.raises(ValueError, match=r"^\[LogisticRegression\] lam"):
        _logreg("l2", lam=float("nan"))


# ------------------------------------------------------------------ shift-back trigger
def test_shift_back_trigger_flips_a_run():
    """4 of 20 sampled, 5 Byzantine: a round with exactly 2 Byzantine among 4 attacks only with
    when=half, so without clipping the two rules give different runs (the attack's own
    trigger is tested in tests/test_attacks.py)."""
    kw = dict(workers=20, byzantine=5, clients_per_round=4, alpha=math.inf, rounds=60, **SMALL)
    strict, half = A.run(attack="shift-back", **kw), A.run(attack="shift-back:when=half", **kw)
    assert not np.array_equal(strict.x, half.x)


# ------------------------------------------------------------------ clipping heuristic
def _sgd(prob, **kw):
    return A.RobustSGD(prob, lr=0.1, aggregator="mean", batch=0, **kw)


def test_clip_heuristic_matches_eq10():
    prob, X, _ = _logreg("l2", n_workers=4)
    alg = _sgd(prob, clip_alpha=2.0)
    rng = np.random.default_rng(5)
    m1 = rng.normal(size=(4, X.shape[1]))
    alg.server_step(alg.plan(1), m1)                       # round 1: g^1 = F(m^1), no clipping
    np.testing.assert_allclose(alg.g, m1.mean(axis=0), rtol=1e-12)
    x1 = alg.x.copy()
    np.testing.assert_allclose(x1, -0.1 * m1.mean(axis=0), rtol=1e-12)
    m2 = rng.normal(size=(4, X.shape[1])) * 50.0           # large: most differences get clipped
    g1 = alg.g.copy()
    alg.server_step(alg.plan(2), m2)
    lam = 2.0 * np.linalg.norm(x1 - alg.x0)
    expect = ref.clip_heuristic_step(g1, m2, lam, ref.mean)
    np.testing.assert_allclose(alg.g, expect, rtol=1e-12)
    np.testing.assert_allclose(alg.x, x1 - 0.1 * expect, rtol=1e-12)
    assert np.linalg.norm(alg.g - g1) <= lam * (1 + 1e-12)


def test_clip_heuristic_bounds_an_all_byzantine_round():
    """Every sampled client Byzantine and sending 1e12: g moves by at most lambda."""
    prob = P.make_problem("a9a-synthetic", 10, n_samples=1000, split="homogeneous", reg="l2")
    alg = A.RESAM(prob, lr=0.5, aggregator="median", batch=8, clients_per_round=3, clip_alpha=1.0)
    for k in (1, 2):
        plan = alg.plan(k)
        alg.server_step(plan, alg.worker_messages(prob, plan, plan.clients, {}))
    g, step = alg.g.copy(), np.linalg.norm(alg.x - alg.x_prev)
    alg.server_step(alg.plan(3), np.full((3, prob.d), 1e12))
    assert np.linalg.norm(alg.g - g) <= step * (1 + 1e-9)


def test_clip_heuristic_options_refused_elsewhere():
    with pytest.raises(ValueError, match=r"^\[run\] local_steps and clip_alpha"):
        A.run(algorithm="byz_vr_marina_pp", clip_alpha=1.0, rounds=1, **SMALL)
    with pytest.raises(ValueError, match=r"^\[sgd\] clip_alpha must be > 0"):
        A.run(algorithm="sgd", clip_alpha=0.0, rounds=1, **SMALL)


# ------------------------------------------------------------------ attack space of MARINA
def test_estimator_attack_space():
    prob = P.make_problem("a9a-synthetic", 6, n_samples=600, split="homogeneous", reg="l2")
    alg = A.ByzVRMarinaPP(prob, lr=0.5, aggregator="mean", batch=8, clients_per_round=6, p=1e-9,
                          attack_space="estimator")
    first = alg.initial_plan()
    alg.server_step(first, alg.worker_messages(prob, first, first.clients, {}))
    plan = alg.plan(1)
    assert plan.kind == "difference"
    msgs = alg.worker_messages(prob, plan, plan.clients, {})
    bad = np.array([False, True, False, False, True, False])
    out = apply_attack(attacks.make_attack("sign-flip"), alg, plan, msgs, bad, 0)
    expect = -(msgs[~bad] + alg.g).mean(axis=0) - alg.g          # -mean(g + Delta) sent, g removed
    np.testing.assert_allclose(out[bad], np.tile(expect, (2, 1)), rtol=1e-12, atol=1e-15)
    assert np.array_equal(out[~bad], msgs[~bad])                 # honest rows keep their bits
    diff = apply_attack(attacks.make_attack("sign-flip"), A.ByzVRMarinaPP(prob, aggregator="mean"), plan, msgs, bad, 0)
    np.testing.assert_allclose(diff[bad], np.tile(-msgs[~bad].mean(axis=0), (2, 1)), rtol=1e-12)
    # shift-back in the estimator space still sends the next iterate to x^0
    sb = apply_attack(attacks.make_attack("shift-back"), alg, plan, msgs, np.array([True] * 4 + [False] * 2), 0)
    g_next = alg.g + sb[0]                                      # what one attacked row adds to g
    np.testing.assert_allclose(plan.x - alg.lr * g_next, alg.x0, atol=1e-9)
    with pytest.raises(ValueError, match=r"attack_space must be"):
        A.ByzVRMarinaPP(prob, attack_space="model")


# ------------------------------------------------------------------ state per message kind
def test_one_aggregator_state_per_message_kind():
    """Centered clipping inside MARINA-PP: the first difference round starts from its own
    (empty) centre, not from the full gradient's aggregate."""
    prob = P.make_problem("a9a-synthetic", 5, n_samples=500, split="homogeneous", reg="l2")
    alg = A.ByzVRMarinaPP(prob, lr=0.5, aggregator="cc:tau=0.05", batch=8, clients_per_round=5, p=1e-9)
    first = alg.initial_plan()
    full = alg.worker_messages(prob, first, first.clients, {})
    alg.server_step(first, full)
    g0 = alg.g.copy()
    np.testing.assert_allclose(g0, ref.centered_clipping(full, 0.05), rtol=1e-10, atol=1e-14)
    plan = alg.plan(1)
    diffs = alg.worker_messages(prob, plan, plan.clients, {})
    alg.server_step(plan, diffs)
    lam = plan.info["lambda"]
    np.testing.assert_allclose(alg.g - g0, ref.centered_clipping(ref.clip(diffs, lam), 0.05), rtol=1e-10, atol=1e-14)
    assert alg._aggregators["full"] is not alg._aggregators["difference"]


@pytest.mark.parametrize("space", ["difference", "estimator"])
def test_attacks_query_what_the_server_computes_from_the_round(space):
    """The aggregator the line-searched attacks query is the server's own step on the round's
    messages: the state of the round's message kind (not the first kind's), with the
    difference round's clipping, centred on g where the attack acts on the estimator."""
    prob = P.make_problem("a9a-synthetic", 5, n_samples=500, split="homogeneous", reg="l2")
    alg = A.ByzVRMarinaPP(prob, lr=0.5, aggregator="cc:tau=0.05", batch=8, clients_per_round=5, p=1e-9,
                          attack_space=space)
    first = alg.initial_plan()
    alg.server_step(first, alg.worker_messages(prob, first, first.clients, {}))
    for k in (1, 2):  # the difference state has a centre of its own by round 2
        plan = alg.plan(k)
        msgs = alg.worker_messages(prob, plan, plan.clients, {})
        view = alg.server_view(plan)
        assert view.aggregator is alg._aggregators.get("difference", view.aggregator)
        seen = msgs + (alg.g if space == "estimator" else 0.0)      # what the attack sees
        queried = copy.deepcopy(view)(seen)
        g_before = alg.g.copy()
        alg.server_step(plan, msgs)
        expect = alg.g if space == "estimator" else alg.g - g_before
        np.testing.assert_allclose(queried, expect, rtol=1e-12, atol=1e-15)
    assert alg._aggregators["difference"] is not alg._aggregators["full"]

    sgd = A.RobustSGD(prob, lr=0.1, aggregator="cc:tau=0.05", batch=8, clip_alpha=2.0)
    for k in (1, 2, 3):
        plan = sgd.plan(k)
        msgs = sgd.worker_messages(prob, plan, plan.clients, {}) * 10.0  # large: clipped
        queried = copy.deepcopy(sgd.server_view(plan))(msgs)
        sgd.server_step(plan, msgs)
        np.testing.assert_allclose(queried, sgd.g, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ declared f, Zeno, Zeno++
def test_declared_f():
    cfg = A.RunConfig(algorithm="zeno", byzantine=3, declared_f=5, n_samples=500)
    prob = P.make_problem(cfg.problem, cfg.workers, n_samples=500, split="homogeneous")
    alg = A.make_algorithm(cfg, prob)
    assert alg.f == 5
    assert alg.b == 5
    assert A.make_algorithm(A.RunConfig(byzantine=3), prob).aggregator.f == 3
    with pytest.raises(ValueError, match=r"^\[run\] declared_f"):
        A.make_algorithm(A.RunConfig(declared_f=15), prob)


def test_zeno_penalty_mean_divides_by_d():
    prob = P.make_problem("a9a-synthetic", 6, n_samples=600, split="homogeneous")
    u = np.random.default_rng(0).normal(size=(4, prob.d))
    plan = Plan(1, np.arange(4), np.zeros(prob.d))
    s_sum = A.Zeno(prob, rho=0.3, f=1, lr=0.1).scores(plan, u)
    s_mean = A.Zeno(prob, rho=0.3, f=1, lr=0.1, penalty="mean").scores(plan, u)
    np.testing.assert_allclose(s_mean - s_sum, 0.3 * np.sum(u * u, axis=1) * (1 - 1 / prob.d), rtol=1e-10)
    with pytest.raises(ValueError, match=r"^\[zeno\] penalty"):
        A.Zeno(prob, penalty="max")


def test_zeno_pp_defaults_follow_the_authors_scripts():
    cfg = A.RunConfig()
    assert (cfg.k_v, cfg.max_delay, cfg.eps) == (10, 10, 0.0)
    prob = P.make_problem("a9a-synthetic", 4, n_samples=400, split="homogeneous")
    alg = A.ZenoPP(prob)
    assert (alg.k_v, alg.max_delay, alg.rho) == (10, 10, 1e-3)


def test_zeno_detection_rates():
    res = A.run(algorithm="zeno", workers=10, byzantine=4, attack="sign-flip:s=4", rounds=30, **SMALL)
    rows = res.metrics[1:]
    det = res.summary()["totals"]["detection"]
    assert det["honest"] == 30 * 6
    assert det["byzantine"] == 30 * 4
    assert det["accepted"] == 30 * (10 - 4)
    # the totals are the sums of the rounds' rates times their denominators
    assert det["honest_rejected"] == round(sum(r["false_positive_rate"] * 6 for r in rows))
    assert det["byzantine_accepted"] == round(sum(r["false_negative_rate"] * 4 for r in rows))
    assert det["accepted"] == det["honest"] - det["honest_rejected"] + det["byzantine_accepted"]
    assert det["false_negative_rate"] == det["byzantine_accepted"] / det["byzantine"]
    assert all(r["accept_rate"] == 0.6 for r in rows)
    # a strong sign flip is kept far less often than an honest gradient
    assert det["false_negative_rate"] < 0.5 * (1 - det["false_positive_rate"])
    zpp = A.run(algorithm="zeno_pp", workers=6, byzantine=3, attack="sign-flip", rounds=40, k_v=1, **SMALL)
    d2 = zpp.summary()["totals"]["detection"]
    assert d2["honest"] + d2["byzantine"] == 40
    assert d2["accepted"] == sum(r["accepted"] for r in zpp.metrics)


# ------------------------------------------------------------------ optimality gap, oracle calls
def test_optimal_value_numpy_solver_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BYZCORE_CACHE", str(tmp_path))
    prob, _X, _y = _logreg("l2", lam=0.05, n_workers=3)
    fstar = P.optimal_value(prob, [0, 2])
    # the NumPy L-BFGS alone (no SciPy) agrees, and the minimiser is stationary
    fun = lambda x: prob.objective(x, [0, 2])  # noqa: E731
    x = P.optimum.minimise(fun, np.zeros(prob.d), gtol=1e-10)
    assert np.linalg.norm(fun(x)[1]) <= 1e-9
    assert fstar == pytest.approx(fun(x)[0], abs=1e-12)
    files = list((tmp_path / "fstar").glob("*.json"))
    assert len(files) == 1
    monkeypatch.setattr(prob, "objective", None)   # a cache hit does not solve again
    assert P.optimal_value(prob, [0, 2]) == fstar
    with pytest.raises(ValueError, match=r"^\[optimality_gap\]"):
        P.optimal_value(type("T", (P.Problem,), {"name": "t"})())


def test_gap_and_oracle_calls_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("BYZCORE_CACHE", str(tmp_path))
    res = A.run(algorithm="sgd", workers=5, byzantine=1, clients_per_round=3, batch=16, rounds=12, reg="l2",
                optimality_gap=True, attack="none", split="homogeneous", **SMALL)
    gap, loss = res.column("gap"), res.column("loss")
    fstar = res.summary()["totals"]["f_star"]
    np.testing.assert_allclose(gap, loss - fstar, rtol=0, atol=1e-15)
    assert np.all(gap > -1e-9)
    assert gap[-1] < gap[0]
    assert [m["oracle_calls"] for m in res.metrics] == [3 * 16 * k for k in range(13)]
    assert res.metrics[-1]["epochs"] == pytest.approx(12 * 3 * 16 / 2000)
    mar = A.run(algorithm="byz_vr_marina_pp", workers=4, byzantine=1, clients_per_round=2, batch=8, rounds=20, **SMALL)
    calls = np.diff([m["oracle_calls"] for m in mar.metrics])
    full = np.array([m["full_round"] for m in mar.metrics[1:]], dtype=bool)
    assert np.all(calls[~full] == 2 * 2 * 8)
    assert np.all(calls[full] == 2000)
    assert mar.metrics[0]["oracle_calls"] == 2000                # g^0: every local gradient once


# ------------------------------------------------------------------ local steps
def test_local_steps():
    prob = P.make_problem("a9a-synthetic", 4, n_samples=400, split="homogeneous")
    one = A.RobustSGD(prob, lr=0.3, batch=8)
    two = A.RobustSGD(prob, lr=0.3, batch=8, local_steps=2)
    plan = Plan(3, np.arange(4), np.full(prob.d, 0.1))
    g1 = prob.minibatch_gradients(plan.x, np.arange(4), 8, 0, 6)
    g2 = prob.minibatch_gradients(plan.x - 0.3 * g1, np.arange(4), 8, 0, 7)
    np.testing.assert_allclose(two.worker_messages(prob, plan, np.arange(4), {}), g1 + g2, rtol=1e-12)
    np.testing.assert_array_equal(one.worker_messages(prob, plan, np.arange(4), {}),
                                  prob.minibatch_gradients(plan.x, np.arange(4), 8, 0, 3))
    assert two.oracle_calls(plan) == 2 * 4 * 8


# ------------------------------------------------------------------ configuration and CLI
def test_cli_maps_every_new_option():
    from byzcore.cli import run as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--reg", "l2", "--declared-f", "4", "--optimality-gap", "--attack-space", "estimator",
                              "--clip-alpha", "10", "--local-steps", "3", "--zeno-penalty", "mean",
                              "--split", "dirichlet:0.3", "--attack", "shift-back:when=half"])
    cfg = cli.config_from_args(args)
    assert (cfg.reg, cfg.declared_f, cfg.optimality_gap, cfg.attack_space, cfg.clip_alpha, cfg.local_steps,
            cfg.zeno_penalty, cfg.split, cfg.attack) == ("l2", 4, True, "estimator", 10.0, 3, "mean",
                                                         "dirichlet:0.3", "shift-back:when=half")
    d = cli.config_from_args(parser.parse_args([]))
    assert d == A.RunConfig(clients_per_round=None)


def test_distributed_backend_refuses_what_it_cannot_build_yet():
    from byzcore.experiments import run_experiment

    for cfg in (A.RunConfig(optimality_gap=True), A.RunConfig(attack_space="estimator")):
        with pytest.raises(ValueError, match=r"^\[run\] --optimality-gap and --attack-space estimator"):
            run_experiment(cfg, backend="torch-distributed")
