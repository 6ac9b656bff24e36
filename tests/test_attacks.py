"""Attacks of docs/spec.md#attacks against hand computations and plain NumPy formulas."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import reference as R
from byzcore import attacks as A
from byzcore.aggregators import Aggregator, make_aggregator


def _ctx(f=2, target=None, honest_ids=None, seed=0):
    honest = np.array([[1.0, 2.0, -1.0], [3.0, 0.0, -1.0], [2.0, 4.0, -4.0]])
    own = np.array([[9.0, 9.0, 9.0]] * f)
    return A.AttackContext(honest=honest, own=own, n=len(honest) + f, f=f, round=3,
                           rng=np.random.default_rng(seed), target=target,
                           honest_ids=np.array([4, 1, 7]) if honest_ids is None else honest_ids)


MEAN = np.array([2.0, 2.0, -2.0])
STD = np.array([np.std([1, 3, 2]), np.std([2, 0, 4]), np.std([-1, -1, -4])])


def _seeded(n_honest=7, f=3, d=40, seed=0, agg="trimmed_mean"):
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n_honest, d)) + 1.0
    mask = np.zeros(n_honest + f, dtype=bool)
    mask[rng.choice(n_honest + f, size=f, replace=False)] = True
    aggregator = make_aggregator(agg, f=f, seed=seed) if isinstance(agg, str) else agg
    return A.AttackContext(honest=H, own=np.zeros((f, d)), n=n_honest + f, f=f, round=0,
                           rng=np.random.default_rng(seed), honest_ids=np.arange(n_honest),
                           aggregator=aggregator, byzantine_rows=mask)


def _server_view(ctx, byz):
    """The server's matrix, built plainly from the mask."""
    X = np.empty((ctx.n, ctx.honest.shape[1]))
    X[~ctx.byzantine_rows], X[ctx.byzantine_rows] = ctx.honest, byz
    return X


def test_sign_flip_and_ipm():
    np.testing.assert_allclose(A.SignFlip()(_ctx()), [-MEAN, -MEAN])
    np.testing.assert_allclose(A.make_attack("sign-flip:s=4")(_ctx(f=1)), [-4 * MEAN])
    np.testing.assert_allclose(A.IPM()(_ctx()), [-0.1 * MEAN] * 2)
    np.testing.assert_allclose(A.make_attack("ipm:eps=2")(_ctx()), [-2 * MEAN] * 2)
    np.testing.assert_allclose(A.make_attack("ipm:2")(_ctx()), [-2 * MEAN] * 2)  # the positional option


def test_alie_z_formula_and_its_range():
    # n = 10, f = 3: s = floor(6) - 3 = 3, z = PhiInverse(7/10)
    assert A.alie_z(10, 3) == pytest.approx(0.5244005127080407)
    # n = 5, f = 2: s = floor(3.5) - 2 = 1, z = PhiInverse(4/5)
    assert A.alie_z(5, 2) == pytest.approx(0.8416212335729143)
    # Byzantine majority (n = 4, f = 3: s = 0, the formula is +inf): s is kept at 1
    assert A.alie_z(4, 3) == pytest.approx(NormalDist().inv_cdf(3 / 4))
    assert A.alie_z(4, 3) == A.alie_z(4, 2)                      # f = 2: s = 1 exactly
    assert A.alie_z(2, 0) == 0.0 and A.alie_z(1, 0) == 0.0       # nothing to hide among
    assert math.isfinite(A.alie_z(2**63 - 1, 2**62))


def test_alie_message():
    ctx = _ctx(f=2)                                            # n = 5, f = 2
    np.testing.assert_allclose(A.ALIE()(ctx), [MEAN - 0.8416212335729143 * STD] * 2)
    np.testing.assert_allclose(A.make_attack("alie:z=1.5")(ctx), [MEAN - 1.5 * STD] * 2)


def test_gaussian_is_the_context_stream():
    a = A.Gaussian(sigma=2.0)(_ctx(seed=5))
    np.testing.assert_array_equal(a, np.random.default_rng(5).normal(0.0, 2.0, size=(2, 3)))
    big = A.Gaussian()(A.AttackContext(honest=np.zeros((1, 4000)), own=np.zeros((2, 4000)), n=3, f=2,
                                       round=0, rng=np.random.default_rng(0)))
    assert np.std(big) == pytest.approx(200.0, rel=0.05)       # sigma = 200 (Xie et al.)
    with pytest.raises(ValueError, match=r"^\[make_attack\] gaussian"):
        A.make_attack("gaussian:sigma=-1")


def test_label_flip_none_nan_inf_zero_scale():
    ctx = _ctx()
    assert A.LabelFlip.flips_labels and not A.SignFlip.flips_labels
    np.testing.assert_array_equal(A.LabelFlip()(ctx), ctx.own)
    np.testing.assert_array_equal(A.make_attack("none")(ctx), ctx.own)
    assert A.make_attack("none")(ctx) is not ctx.own
    assert np.all(np.isnan(A.make_attack("nan")(ctx)))
    out = A.make_attack("inf")(ctx)
    assert out.shape == (2, 3) and np.all(np.isposinf(out))
    np.testing.assert_array_equal(A.make_attack("zero")(ctx), np.zeros((2, 3)))
    np.testing.assert_array_equal(A.make_attack("scale:factor=-3")(ctx), np.full((2, 3), -27.0))


def test_mimic():
    ctx = _ctx()
    np.testing.assert_array_equal(A.Mimic()(ctx), [ctx.honest[1]] * 2)          # lowest id (1)
    np.testing.assert_array_equal(A.make_attack("mimic:target=7")(ctx), [ctx.honest[2]] * 2)
    np.testing.assert_array_equal(A.Mimic(target=99)(ctx), [ctx.honest[1]] * 2)  # absent: the default


def test_shift_back_strict_majority_by_default():
    t = np.array([5.0, -5.0, 1.0])

    def ctx(n, f):
        return A.AttackContext(honest=np.ones((n - f, 3)), own=np.full((f, 3), 7.0), n=n, f=f, round=1,
                               rng=np.random.default_rng(0), target=lambda: t)

    np.testing.assert_array_equal(A.ShiftBack()(ctx(5, 3)), [t] * 3)          # 3 of 5: a majority
    np.testing.assert_array_equal(A.ShiftBack()(ctx(4, 2)), np.full((2, 3), 7.0))  # half: hide
    np.testing.assert_array_equal(A.make_attack("shift-back:when=half")(ctx(4, 2)), [t] * 2)
    np.testing.assert_array_equal(A.make_attack("shift-back:half")(ctx(5, 2)), np.full((2, 3), 7.0))
    with pytest.raises(ValueError, match=r"^\[shift-back\]"):
        A.ShiftBack()(_ctx(f=2, target=None))
    with pytest.raises(ValueError, match=r"^\[make_attack\] shift-back"):
        A.make_attack("shift-back:when=sometimes")


def test_no_honest_client_in_the_round():
    ctx = A.AttackContext(honest=np.zeros((0, 2)), own=np.array([[1.0, 3.0], [3.0, 5.0]]), n=2, f=2, round=0,
                          rng=np.random.default_rng(0))
    np.testing.assert_allclose(A.SignFlip()(ctx), [[-2.0, -4.0]] * 2)   # falls back on the own messages
    np.testing.assert_array_equal(A.Mimic()(ctx), ctx.own)


# ---------------------------------------------------------------- MinMax, MinSum
def _directions(H):
    mu = H.mean(axis=0)
    return {"std": -H.std(axis=0), "unit": -mu / np.linalg.norm(mu), "sign": -np.sign(mu)}


def _max_sq_distance(H, m):
    return max(np.sum((m - h) ** 2) for h in H)


def _sum_sq_distance(H, m):
    return np.sum((H - m) ** 2)


# name: (plain bisection reference, the message's measure, the honest bound on it)
BOUNDED = {
    "minmax": (R.minmax_message, _max_sq_distance, lambda H: R.pairwise_distances(H).max()),
    "minsum": (R.minsum_message, _sum_sq_distance, lambda H: max(_sum_sq_distance(H, h) for h in H)),
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
@pytest.mark.parametrize("direction", ["std", "unit", "sign"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minmax_minsum_take_the_largest_feasible_gamma(name, direction, seed):
    ctx = _seeded(seed=seed, d=30)
    H = ctx.honest
    reference_message, measure, bound = BOUNDED[name]
    out = A.make_attack(f"{name}:direction={direction}")(ctx)
    assert out.shape == (3, 30)
    np.testing.assert_allclose(out, [reference_message(H, _directions(H)[direction])] * 3, rtol=1e-9, atol=1e-9)
    # the constraint holds, and tightly
    assert bound(H) * (1 - 1e-6) <= measure(H, out[0]) <= bound(H) * (1 + 1e-9)


def test_minmax_minsum_degenerate_inputs():
    one = A.AttackContext(honest=np.array([[1.0, -2.0]]), own=np.zeros((2, 2)), n=3, f=2, round=0,
                          rng=np.random.default_rng(0))
    for name in ("minmax", "minsum"):  # one honest message: nothing to hide among, send it
        np.testing.assert_array_equal(A.make_attack(name)(one), [[1.0, -2.0]] * 2)
    same = A.AttackContext(honest=np.ones((3, 2)), own=np.zeros((1, 2)), n=4, f=1, round=0,
                           rng=np.random.default_rng(0))
    np.testing.assert_array_equal(A.make_attack("minmax")(same), [[1.0, 1.0]])   # zero std: no direction
    with pytest.raises(ValueError, match=r"^\[make_attack\] minmax"):
        A.make_attack("minmax:direction=diagonal")


# ---------------------------------------------------------------- line-searched ALIE and IPM
def _distance(ctx, byz):
    """How far the server's aggregate moves from the honest mean, computed independently
    (a fresh aggregator on the plainly assembled matrix)."""
    return float(np.linalg.norm(R.trimmed_mean(_server_view(ctx, byz), ctx.f) - ctx.honest.mean(axis=0)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_optimal_attacks_beat_the_fixed_ones(seed):
    ctx = _seeded(seed=seed)
    for fixed, searched in (("alie", "opt-alie"), ("ipm", "opt-ipm")):
        d_fixed = _distance(ctx, A.make_attack(fixed)(ctx))
        atk = A.make_attack(searched)
        d_opt = _distance(ctx, atk(ctx))
        assert d_opt > 1.1 * d_fixed, (fixed, d_fixed, d_opt, atk.last_scale)


def test_line_search_finds_a_smooth_maximum_within_its_budget():
    calls = []

    def objective(s):
        calls.append(s)
        return -(s - 3.7) ** 2

    s, v = A.line_search(objective)
    assert abs(s - 3.7) < 0.05 and v == -(s - 3.7) ** 2
    assert len(calls) <= 16 + 12 and len(set(calls)) == len(calls)
    s, _ = A.line_search(lambda s: s, hi=8.0)            # increasing: the top of the range
    assert s == 8.0
    s, _ = A.line_search(lambda s: math.nan if s > 1 else s)   # NaN is worse than anything
    assert s == 1.0
    for bad in ({"points": 2**40}, {"refine": 1}, {"hi": math.inf}, {"hi": 0.0}):
        with pytest.raises(ValueError, match=r"^\[line_search\] "):
            A.line_search(lambda s: s, **bad)


class _Counting(Aggregator):
    """A stateful rule that counts its calls and remembers the last output (like centered
    clipping's centre)."""

    name = "counting"
    calls = 0

    def __init__(self):
        self.count = 0

    def __call__(self, X):
        type(self).calls += 1
        self.count += 1
        return np.median(X, axis=0) + self.count


def test_search_calls_are_bounded_and_leave_the_rule_unchanged():
    agg = _Counting()
    ctx = _seeded(agg=agg)
    _Counting.calls = 0
    atk = A.OptimalALIE()
    msgs = atk(ctx)
    assert 2 <= _Counting.calls <= 16 + 1 + 12
    assert agg.count == 0                                     # every query ran on a copy
    # the chosen message is at least as strong as every grid point, measured on the real call
    best = np.linalg.norm(agg(_server_view(ctx, msgs)) - ctx.honest.mean(axis=0))
    agg.count = 0
    for z in (0.0, 0.5, 1.0, 2.0, A.alie_z(ctx.n, ctx.f)):
        m = ctx.honest.mean(0) - z * ctx.honest.std(0)
        probe = _Counting()
        assert np.linalg.norm(probe(_server_view(ctx, np.tile(m, (3, 1)))) - ctx.honest.mean(0)) <= best + 1e-12


def test_bucketing_state_is_not_advanced_by_the_search():
    ctx = _seeded(agg="bucketing:2+median:f=1")  # 5 bucket means tolerate 2, not 3
    before = ctx.aggregator.calls
    A.make_attack("opt-ipm")(ctx)
    assert ctx.aggregator.calls == before


def test_optimal_attack_needs_an_aggregator():
    ctx = _seeded()
    ctx.aggregator = None
    with pytest.raises(ValueError, match=r"^\[opt-alie\] this attack queries the server's aggregator"):
        A.make_attack("opt-alie")(ctx)
    out = A.make_attack("opt-alie:agg=median")(ctx)           # or is told which rule to attack
    ctx.aggregator = make_aggregator("median")
    np.testing.assert_array_equal(out, A.make_attack("opt-alie")(ctx))


# ---------------------------------------------------------------- NumPy and torch
ALL_SPECS = ["none", "sign-flip:s=2", "ipm", "alie", "gaussian", "nan", "inf", "zero", "scale", "mimic",
             "opt-alie", "opt-ipm", "minmax", "minmax:unit", "minmax:sign", "minsum", "minsum:sign"]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_numpy_and_torch_give_the_same_message(spec):
    torch = pytest.importorskip("torch")
    ctx = _seeded(seed=4, d=25)
    expected = A.make_attack(spec)(ctx)
    tctx = _seeded(seed=4, d=25)
    tctx.honest, tctx.own = torch.from_numpy(tctx.honest), torch.from_numpy(tctx.own)
    got = A.make_attack(spec)(tctx)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and tuple(got.shape) == (3, 25)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_torch_float32_stays_float32():
    torch = pytest.importorskip("torch")
    ctx = _seeded(seed=1, d=8)
    ctx.honest, ctx.own = torch.from_numpy(ctx.honest).float(), torch.from_numpy(ctx.own).float()
    for spec in ("alie", "gaussian", "minmax", "opt-alie", "nan"):
        assert A.make_attack(spec)(ctx).dtype == torch.float32


def test_the_caller_arrays_are_not_modified():
    ctx = _seeded(seed=2, agg="median")
    h, o = ctx.honest.copy(), ctx.own.copy()
    for spec in ALL_SPECS:
        A.make_attack(spec)(ctx)
    np.testing.assert_array_equal(ctx.honest, h)
    np.testing.assert_array_equal(ctx.own, o)


# ---------------------------------------------------------------- registry and spec errors
def test_registry():
    assert set(A.available_attacks()) >= {"shift-back", "sign-flip", "ipm", "alie", "gaussian", "label-flip", "nan",
                                          "inf", "mimic", "none", "zero", "opt-alie", "opt-ipm", "minmax", "minsum"}
    assert isinstance(A.make_attack("shift_back"), A.ShiftBack)
    assert isinstance(A.make_attack("SignFlip"), A.SignFlip)
    assert isinstance(A.make_attack("label_flip"), A.LabelFlip)
    assert isinstance(A.make_attack("optimal_alie"), A.OptimalALIE)
    assert isinstance(A.make_attack("Min-Sum"), A.MinSum)
    assert isinstance(A.make_attack(None), A.NoAttack)
    atk = A.IPM(0.3)
    assert A.make_attack(atk) is atk


@pytest.mark.parametrize("spec, message", [
    ("foo", r"unknown attack 'foo'"),
    ("ipm:sigma=1", r"unknown option 'sigma' for ipm in 'ipm:sigma=1'; its options: eps"),
    ("ipm:eps=x", r"option eps='x' of 'ipm'"),
    ("ipm:eps=nan", r"ipm in 'ipm:eps=nan': \[ipm\] eps must be a finite number"),
    ("ipm:1,eps=2", r"option 'eps' given twice"),
    ("none:3", r"none takes no positional option"),
    ("mimic:target=1.5", r"option target='1.5' of 'mimic'"),
    ("opt-alie:points=100000000000", r"opt-alie .*points must be in 2..64"),
    ("opt-alie:hi=inf", r"opt-alie .*hi must be a finite number"),
    ("ipm:eps=", r"cannot read option"),
])
def test_spec_errors_name_the_op(spec, message):
    with pytest.raises(ValueError, match=r"^\[make_attack\] " + message):
        A.make_attack(spec)
    with pytest.raises(ValueError, match=r"^\[robust_hook\] "):
        A.make_attack(spec, op="robust_hook")


def test_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match=r"^\[make_attack\]"):
        A.make_attack(3)
    with pytest.raises(TypeError, match=r"^\[make_attack\]"):
        A.make_attack("  ")
