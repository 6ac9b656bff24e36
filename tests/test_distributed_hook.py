"""The robust DDP communication hook, on 4 gloo processes over loopback, against a float64
NumPy re-computation of the same training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import _dist_workers as W  # noqa: E402
import reference as ref64  # noqa: E402
from byzcore.distributed import spawn  # noqa: E402

WORLD, STEPS, LR = 4, 30, 0.05


def reference(rule, byzantine, attack=None, steps=STEPS, lr=LR):
    """The same training written plainly: per-rank MSE gradients, attack, rule, SGD step."""
    data = [W.rank_data(r) for r in range(WORLD)]
    w = np.zeros(W.D + 1)  # weight..., bias
    for _ in range(steps):
        grads = []
        for X, y in data:
            A = np.hstack([X, np.ones((len(y), 1))])
            grads.append(2.0 / len(y) * A.T @ (A @ w - y))
        G = np.array(grads)
        honest = G[[r for r in range(WORLD) if r not in byzantine]]
        for r in byzantine:
            G[r] = attack(G[r], honest)
        w = w - lr * rule(G)
    return w


CONFIGS = {  # name: (spec, f, byzantine ranks, attack, bucket_cap_mb)
    "plain": (None, 0, [], None, None),
    "mean": ("mean", 0, [], None, None),
    "median": ("median", 1, [3], "scale:factor=-100", None),
    "median_small_buckets": ("median", 1, [3], "scale:factor=-100", 1e-6),  # one bucket per parameter
    "trimmed_nan": ("trimmed_mean", 1, [1], "nan", None),
    # At 4 ranks, buckets of 2 leave 2 bucket means, whose median is their mean: f = 0 is all
    # this rule tolerates here (f = 1 is refused, see bucketing_f1).
    "bucketing_sign_flip": ("bucketing:2+median", 0, [2], "sign_flip", None),
    "bucketing_f1": ("bucketing:2+median", 1, [], None, None),
    "krum_sign_flip": ("krum", 1, [0], "sign_flip", None),  # a whole-vector rule: one bucket
}


@pytest.fixture(scope="module")
def trained():
    """All configurations trained by 4 gloo processes spawned once; {name: [params of each rank]}."""
    configs = [cfg + (STEPS, LR) for cfg in CONFIGS.values()]
    configs = [(spec, f, byz, attack, steps, lr, cap) for (spec, f, byz, attack, cap, steps, lr) in configs]
    res = spawn(W.ddp_train_many, WORLD, (configs,), timeout_s=300)
    assert not res.errors, res.errors
    assert sorted(res.results) == list(range(WORLD)), res
    return {name: [res.results[r][i] for r in range(WORLD)] for i, name in enumerate(CONFIGS)}


def _params(trained, name):
    per_rank = trained[name]
    if "error" in per_rank[0]:
        pytest.fail(f"training {name!r} failed on rank 0:\n{per_rank[0]['error']}")
    return [np.append(p["weight"], p["bias"]) for p in per_rank]


def _honest_loss(w, byzantine):
    losses = []
    for r in range(WORLD):
        if r not in byzantine:
            X, y = W.rank_data(r)
            losses.append(np.mean((X @ w[:-1] + w[-1] - y) ** 2))
    return float(np.mean(losses))


# The rules as functions of the gradient matrix, with the f the configurations use.
def _median(G):
    return ref64.median(G)


def _trimmed_mean(G, f=1):
    return ref64.trimmed_mean(G, f)


def _krum(G, f=1):
    return ref64.krum(G, f)


def test_mean_hook_equals_plain_ddp(trained):
    plain, hooked = _params(trained, "plain"), _params(trained, "mean")
    np.testing.assert_allclose(hooked[0], plain[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain[0], reference(lambda G: G.mean(0), ()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["median", "median_small_buckets"])
def test_median_hook_one_byzantine_rank(trained, name):
    ranks = _params(trained, name)
    for r in range(1, WORLD):  # every replica holds exactly the same model
        np.testing.assert_array_equal(ranks[r], ranks[0])
    expected = reference(_median, [3], lambda own, honest: -100.0 * own)
    np.testing.assert_allclose(ranks[0], expected, rtol=1e-9, atol=1e-12)
    # the same attack ruins plain averaging
    ruined = reference(lambda G: G.mean(0), [3], lambda own, honest: -100.0 * own)
    assert not np.all(np.isfinite(ruined)) or np.abs(ruined).max() > 1e6
    assert _honest_loss(ranks[0], [3]) < 0.2 * _honest_loss(np.zeros(W.D + 1), [3])


def test_trimmed_mean_hook_nan_rank_stays_finite(trained):
    ranks = _params(trained, "trimmed_nan")
    assert np.all(np.isfinite(ranks[0]))
    for r in range(1, WORLD):
        np.testing.assert_array_equal(ranks[r], ranks[0])
    honest_ref = reference(_trimmed_mean, [1], lambda own, honest: np.full_like(own, np.inf))
    np.testing.assert_allclose(ranks[0], honest_ref, rtol=1e-9, atol=1e-12)


def test_bucketing_hook_sign_flip(trained):
    ranks = _params(trained, "bucketing_sign_flip")
    for r in range(1, WORLD):
        np.testing.assert_array_equal(ranks[r], ranks[0])
    # the median of two bucket means of two messages each is the mean of the four, whatever the shuffle
    expected = reference(lambda G: G.mean(0), [2], lambda own, honest: -honest.mean(0))
    np.testing.assert_allclose(ranks[0], expected, rtol=1e-9, atol=1e-12)


def test_hook_refuses_too_few_ranks_at_registration(trained):
    error = trained["bucketing_f1"][0].get("error", "")
    assert "[robust_hook] bucketing:2+median with f=1 needs at least 5 processes" in error
    assert "the process group has 4" in error


def test_hook_refusals_at_two_processes():
    """The reported failure: krum with f = 1 at 2 processes died inside backward with
    'f must be >= 0, got -1'; now robust_hook(...) refuses it with what the rule needs."""
    cases = [("krum", 1), ("median", 1), ("trimmed_mean", 1), ("nnm+krum", 0), ("krum", 0), ("median", 0),
             ("mean", 0), ("bucketing:2+median", 0)]
    res = spawn(W.hook_refusals, 2, (cases,), timeout_s=120)
    assert not res.errors, res.errors
    got = dict(zip(cases, res.results[0]))
    assert got[("krum", 1)].startswith("[robust_hook] krum with f=1 needs at least 4 processes (n >= f + 3 = 4), "
                                       "the process group has 2")
    assert "needs at least 3 processes (n >= 2f + 1 = 3)" in got[("median", 1)]
    assert "needs at least 3 processes (n >= 2f + 1 = 3)" in got[("trimmed_mean", 1)]
    assert "nnm+krum with f=0 needs at least 3 processes (n >= f + 3 = 3)" in got[("nnm+krum", 0)]
    assert "needs at least 3 processes" in got[("krum", 0)]
    assert got[("median", 0)] == got[("mean", 0)] == got[("bucketing:2+median", 0)] == ""
    assert res.results[1] == res.results[0]


def test_check_world_before_a_process_group_exists():
    """Without a process group the size is checked on the first bucket (check_world)."""
    from byzcore.torch import RobustHook

    hook = RobustHook("krum", 2)
    hook.check_world(5)
    with pytest.raises(ValueError, match=r"^\[robust_hook\] krum with f=2 needs at least 5 processes"):
        hook.check_world(4)
    with pytest.raises(ValueError, match=r"needs at least 3 processes"):
        RobustHook("geometric_median", 1).check_world(2)


@pytest.mark.parametrize("spec,f,need", [
    ("mean", 3, 1), ("median", 0, 1), ("median", 1, 3), ("trimmed_mean", 2, 5), ("trimmed_mean:1", 3, 3),
    ("krum", 1, 4), ("multi_krum", 1, 4), ("multi_krum:6", 1, 6), ("geometric_median", 2, 5),
    ("centered_clipping", 1, 3), ("nnm+krum", 1, 4), ("nnm+median", 2, 5),
    ("bucketing:2+median", 1, 5), ("bucketing:2+median", 0, 1), ("bucketing:3+krum", 1, 10),
    ("nnm+bucketing:2+trimmed_mean", 1, 5),
])
def test_min_processes_table(spec, f, need):
    from byzcore.aggregators import make_aggregator
    from byzcore.distributed.ddp_hook import min_processes

    got, why = min_processes(make_aggregator(spec, f=f))
    assert got == need, (spec, f, got, why)


@pytest.mark.parametrize("s,inner_need", [(2, 3), (3, 4), (2, 1), (4, 5)])
def test_min_processes_of_bucketing_by_brute_force(s, inner_need):
    """Bucketing's bound is the first n whose ceil(n / s) bucket means meet the rule's bound."""
    from byzcore.aggregators import make_aggregator
    from byzcore.distributed.ddp_hook import min_processes

    rule, f = {1: ("median", 0), 3: ("median", 1), 4: ("krum", 1), 5: ("trimmed_mean", 2)}[inner_need]
    got, _ = min_processes(make_aggregator(f"bucketing:{s}+{rule}", f=f))
    assert got == min(n for n in range(1, 100) if -(-n // s) >= inner_need)


def test_min_processes_is_enough_for_the_kernels():
    """At the bound each rule runs with its f (the kernels' own checks accept it)."""
    import byzcore as bz

    X = np.random.default_rng(0).standard_normal((12, 4))
    for f in range(4):
        bz.krum(X[:f + 3], f)
        bz.multi_krum(X[:f + 3], f)
        bz.trimmed_mean(X[:2 * f + 1], f)
        bz.nnm(X[:2 * f + 1], f)
        with pytest.raises(ValueError, match=r"^\[krum\]"):
            bz.krum(X[:f + 2], f)


def test_hook_rejects_bad_arguments():
    from byzcore.torch import robust_hook

    with pytest.raises(ValueError, match=r"^\[make_aggregator\]"):
        robust_hook("no_such_rule", f=1)
    with pytest.raises(ValueError, match=r"^\[robust_hook\]"):
        robust_hook("median", f=-1)
    with pytest.raises(ValueError, match=r"^\[robust_hook\]"):
        robust_hook("median", f=1, byzantine_ranks=[0])
    with pytest.raises(ValueError, match=r"^\[robust_hook\] unknown attack"):
        robust_hook("median", f=1, byzantine_ranks=[0], attack="nope")


def test_spawn_reports_errors_and_kills_stragglers():
    res = spawn(W.fail_on_rank1, 3, backend=None, timeout_s=30)
    assert res.results == {0: 0, 2: 20}
    assert "rank 1 fails on purpose" in res.errors[1]
    res = spawn(W.sleep_forever, 2, backend=None, timeout_s=2)
    assert res.results == {} and all(code is not None and code != 0 for code in res.exitcodes.values())


def test_krum_hook_sign_flip(trained):
    ranks = _params(trained, "krum_sign_flip")
    for r in range(1, WORLD):
        np.testing.assert_array_equal(ranks[r], ranks[0])
    expected = reference(_krum, [0], lambda own, honest: -honest.mean(0))
    np.testing.assert_allclose(ranks[0], expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- the hook runs the simulation's attacks
ATTACK_CONFIGS = {  # name: (spec, f, byzantine ranks, attack, bucket_cap_mb); compared with byzcore.attacks
    "median_alie": ("median", 1, [2], "alie", None),
    "median_opt_alie": ("median", 1, [1], "opt-alie", None),
    "trimmed_opt_ipm": ("trimmed_mean", 1, [3], "opt-ipm:hi=64", None),
    "krum_minmax": ("krum", 1, [0], "minmax:direction=unit", None),
    "trimmed_minsum": ("trimmed_mean", 1, [2], "minsum:sign", None),
    "median_mimic": ("median", 1, [0], "mimic", 1e-6),
}
CONFIGS.update(ATTACK_CONFIGS)


def _simulated_attack(spec, rule, f, byzantine):
    """The row the simulation's attack gives a Byzantine rank, from the NumPy gradients."""
    from byzcore.aggregators import make_aggregator
    from byzcore.attacks import AttackContext, make_attack

    attack = make_attack(spec)
    bad = np.zeros(WORLD, dtype=bool)
    bad[byzantine] = True

    def run(own, honest):
        ctx = AttackContext(honest=honest, own=own.reshape(1, -1), n=WORLD, f=1, round=0,
                            rng=np.random.default_rng(0), honest_ids=np.flatnonzero(~bad),
                            aggregator=make_aggregator(rule, f=f), byzantine_rows=bad)
        return np.asarray(attack(ctx))[0]

    return run


@pytest.mark.parametrize("name", sorted(ATTACK_CONFIGS))
def test_hook_attack_is_the_simulation_attack(trained, name):
    spec, f, byzantine, attack, _ = ATTACK_CONFIGS[name]
    ranks = _params(trained, name)
    for r in range(1, WORLD):
        np.testing.assert_array_equal(ranks[r], ranks[0])
    rule = {"median": _median, "trimmed_mean": _trimmed_mean, "krum": _krum}[spec]
    expected = reference(rule, byzantine, _simulated_attack(attack, spec, f, byzantine))
    np.testing.assert_allclose(ranks[0], expected, rtol=1e-9, atol=1e-12)


def test_hook_rejects_attacks_it_cannot_run():
    from byzcore.torch import robust_hook

    with pytest.raises(ValueError, match=r"^\[robust_hook\] label-flip changes the Byzantine ranks' data"):
        robust_hook("median", f=1, byzantine_ranks=[0], attack="label-flip")
    with pytest.raises(ValueError, match=r"^\[robust_hook\] shift-back needs"):
        robust_hook("median", f=1, byzantine_ranks=[0], attack="shift-back")
    with pytest.raises(ValueError, match=r"^\[robust_hook\] unknown option 'eps' for alie"):
        robust_hook("median", f=1, byzantine_ranks=[0], attack="alie:eps=1")
    with pytest.raises(TypeError, match=r"^\[robust_hook\] attack must be"):
        robust_hook("median", f=1, byzantine_ranks=[0], attack=3)
