"""The subset rules mda, smea, caf and dnc against plain float64 references (tests/reference.py:
brute force over every n - f subset for MDA and SMEA, the d x d covariance for CAF, an SVD for
DnC), hand cases with Byzantine outliers, the non-finite property, argument errors, every
input kind, the aggregator objects and the agreement of the ISA builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import reference as ref
from api_helpers import (
    assert_close,
    assert_same_input,
    copy_input,
    kind_dtype_pairs,
    make_input,
    result_framework,
    rounded,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import byzcore

RULES = ["mda", "smea", "caf", "dnc"]
RTOL = {np.float32: 3e-6, np.float64: 1e-11}


def call(name, X, f, **kw):
    return getattr(byzcore, name)(X, f, **kw)


def inputs(seed: int, n: int, f: int, d: int, outliers: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if outliers and f:
        X[rng.choice(n, size=f, replace=False)] += rng.normal(scale=20.0, size=(f, d))
    return X


# ----------------------------------------------------------------------------- references

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", RULES)
def test_matches_brute_force(name, dtype):
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(3, 10))
        f = int(rng.integers(0, (n - 1) // 2 + 1))
        d = int(rng.integers(1, 7))
        X = inputs(seed, n, f, d, outliers=seed % 2 == 0).astype(dtype)
        kw = {"sub_dim": 4, "seed": seed} if name == "dnc" else {}
        got = call(name, X, f, **kw)
        want = getattr(ref, name)(X.astype(np.float64), f, **kw)
        assert got.dtype == dtype
        scale = float(np.max(np.abs(want)))
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                                   err_msg=f"{name} n={n} f={f} seed={seed}")


def test_mda_smea_larger_n_against_brute_force():
    # n = 12, f = 4: 495 subsets; the search must find the same optimum as the enumeration.
    for seed in range(3):
        X = inputs(seed, 12, 4, 5, outliers=seed != 1)
        for name in ["mda", "smea"]:
            np.testing.assert_allclose(call(name, X, 4), getattr(ref, name)(X, 4), rtol=1e-11, atol=1e-11)


def test_dnc_rounds_and_fraction_against_reference():
    X = inputs(7, 11, 3, 40, outliers=True)
    cases = [(1, 10, 1.0, 0), (2, 13, 1.0, 5), (3, 40, 1.0, 9), (2, 7, 1.5, 3), (1, 100, 0.5, 2)]
    for iters, sub_dim, c, seed in cases:
        got = byzcore.dnc(X, 3, iters=iters, sub_dim=sub_dim, c=c, seed=seed)
        want = ref.dnc(X, 3, iters=iters, sub_dim=sub_dim, c=c, seed=seed)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{iters} {sub_dim} {c} {seed}")


# ----------------------------------------------------------------------------- hand cases

def test_mda_hand_cases():
    X = np.array([[0.0], [1.0], [2.0], [100.0]])
    np.testing.assert_array_equal(byzcore.mda(X, 1), [1.0])
    # {0,1,2} and {1,2,3} both have diameter 2: the lexicographically first subset wins.
    np.testing.assert_array_equal(byzcore.mda(np.array([[0.0], [1.0], [2.0], [3.0]]), 1), [1.0])
    np.testing.assert_array_equal(byzcore.mda(X, 0), [25.75])


def test_smea_hand_cases():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0], [-40.0, 7.0]])
    np.testing.assert_allclose(byzcore.smea(X, 2), [1 / 3, 1 / 3], rtol=1e-15)
    # Collinear points: the eigenvalue is the scatter along the line; the tightest three win.
    L = np.array([[0.0], [10.0], [10.5], [11.0], [30.0]])
    np.testing.assert_allclose(byzcore.smea(L, 2), [10.5], rtol=1e-15)


def test_caf_ignores_a_far_outlier():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1e4, -1e4]])
    got = byzcore.caf(X, 1)
    # The first step zeroes the outlier (it is the largest projection) and barely touches the
    # square, whose projections on the outlier's direction are tiny against its own.
    np.testing.assert_allclose(got, [0.5, 0.5], atol=1e-4)
    np.testing.assert_allclose(got, ref.caf(X, 1), rtol=1e-12)


def test_dnc_hand_case():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    np.testing.assert_allclose(byzcore.dnc(X, 1), [1.5], rtol=1e-15)
    # c = 2 removes floor(2 * 1) = 2 messages, both scored from one centring (mean 21.2):
    # 100 and then 0, the next farthest.
    np.testing.assert_allclose(byzcore.dnc(X, 1, c=2.0), [2.0], rtol=1e-15)


def test_identical_messages_and_duplicates():
    # Every subset has diameter and eigenvalue 0: the first n - f messages (all equal).
    X = np.tile(np.array([[1.0, -2.0, 3.0]]), (9, 1))
    for name in RULES:
        np.testing.assert_allclose(call(name, X, 4), X[0], rtol=1e-15, err_msg=name)
    # Mimic attack: f copies of one honest message do not break the reference agreement.
    Y = inputs(3, 8, 3, 4, outliers=False)
    Y[5:] = Y[0]
    for name in ["mda", "smea", "caf"]:
        np.testing.assert_allclose(call(name, Y, 3), getattr(ref, name)(Y, 3), rtol=1e-11, atol=1e-11, err_msg=name)


# ----------------------------------------------------------------------------- non-finite

@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", RULES)
def test_nonfinite_messages_are_never_chosen(name, data):
    n = data.draw(st.integers(3, 9))
    f = data.draw(st.integers(1, (n - 1) // 2))
    d = data.draw(st.integers(1, 5))
    seed = data.draw(st.integers(0, 2**32 - 1))
    X = np.random.default_rng(seed).normal(size=(n, d)) * data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    bad = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=f, unique=True))
    for i in bad:
        j = data.draw(st.integers(0, d - 1))
        X[i, j] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    before = X.copy()
    got = call(name, X, f)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(X, before)
    scale = np.nanmax(np.abs(np.where(np.isfinite(X), X, 0)))
    np.testing.assert_allclose(got, getattr(ref, name)(X, f), rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("name", ["mda", "smea", "dnc"])
def test_more_than_f_nonfinite_give_a_nonfinite_result(name):
    X = np.ones((5, 3))
    X[0, 0] = X[1, 1] = X[2, 2] = np.nan
    assert not np.all(np.isfinite(call(name, X, 2)))


def test_caf_weights_only_finite_messages():
    # CAF starts non-finite messages at weight zero, so any finite message keeps it finite.
    X = np.ones((5, 3))
    X[0, 0] = X[1, 1] = X[2, 2] = np.nan
    X[4] = 3.0
    np.testing.assert_allclose(byzcore.caf(X, 2), [2.0, 2.0, 2.0], rtol=1e-15)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name", RULES)
def test_bound_and_f_errors(name):
    X = np.zeros((6, 3))
    with pytest.raises(ValueError, match=rf"^\[{name}\] needs n > 2f, got n = 6, f = 3"):
        call(name, X, 3)
    for f in [-1, -2**63, 2**63 - 1]:
        with pytest.raises(ValueError, match=rf"^\[{name}\] "):
            call(name, X, f)
    with pytest.raises(ValueError, match=rf"^\[{name}\] f = {2**64}"):
        call(name, X, 2**64)
    for f in [True, 1.0, "1", None]:
        with pytest.raises(TypeError, match=rf"^\[{name}\] f must be an integer"):
            call(name, X, f)
    with pytest.raises(ValueError, match=rf"^\[{name}\] got no messages"):
        call(name, np.zeros((0, 3)), 0)
    with pytest.raises(TypeError, match=rf"^\[{name}\] "):
        call(name, np.zeros((5, 3), dtype=np.int64), 1)


def test_dnc_argument_errors():
    X = np.zeros((7, 4))
    bad = [dict(iters=0), dict(iters=-2**63), dict(sub_dim=0), dict(c=-1.0), dict(c=float("nan")),
           dict(c=float("inf")), dict(c=1e308), dict(c=3.5), dict(iters=2**63 - 1), dict(iters=4, c=1.0)]
    for kw in bad:
        with pytest.raises(ValueError, match=r"^\[dnc\] "):
            byzcore.dnc(X, 2, **kw)
    for kw in [dict(seed=-1), dict(seed=2**64), dict(iters=2**64)]:
        with pytest.raises(ValueError, match=r"^\[dnc\] "):
            byzcore.dnc(X, 2, **kw)
    for kw in [dict(seed=None), dict(c="1"), dict(iters=1.5), dict(sub_dim=True)]:
        with pytest.raises(TypeError, match=r"^\[dnc\] "):
            byzcore.dnc(X, 2, **kw)
    # c = 0 removes nothing (the plain mean); iters * floor(c f) < n is allowed.
    Y = inputs(0, 7, 2, 4, outliers=True)
    np.testing.assert_allclose(byzcore.dnc(Y, 2, c=0.0), Y.mean(axis=0), rtol=1e-15)
    byzcore.dnc(Y, 2, iters=3, c=1.0)


def test_dnc_iters_capped_and_nothing_removed_runs_once():
    # iters is an iteration count: capped at 10**6 as every other one (docs/spec.md#errors); a
    # huge iters with floor(c f) = 0 used to loop for ever (nothing removed, so no bound failed).
    Y = inputs(3, 7, 2, 5, outliers=True)
    for f, c in [(0, 1.0), (1, 0.0), (2, 0.4)]:
        with pytest.raises(ValueError, match=r"^\[dnc\] iters must be in 1\.\.1000000, got 4611686018427387904"):
            byzcore.dnc(Y, f, iters=2**62, c=c)
        with pytest.raises(ValueError, match=r"^\[dnc\] iters must be in 1\.\.1000000, got 1000001"):
            byzcore.dnc(Y, f, iters=10**6 + 1, c=c)
        # floor(c f) = 0: nothing is removed, the mean of all in one pass, even at the cap
        np.testing.assert_allclose(byzcore.dnc(Y, f, iters=10**6, c=c), Y.mean(axis=0), rtol=1e-15)
    with pytest.raises(ValueError, match=r"^\[dnc\] iters must be in 1\.\.1000000"):
        byzcore.DnC(0, iters=2**62)(Y)


# ----------------------------------------------------------------------------- input kinds

@pytest.mark.parametrize("kind,dtype", kind_dtype_pairs())
@pytest.mark.parametrize("name", RULES)
def test_every_input_kind(name, kind, dtype):
    X64 = inputs(11, 7, 2, 12, outliers=True)
    X, shape = make_input(X64, kind, dtype)
    before = copy_input(X)
    got = call(name, X, 2)
    assert_same_input(before, X)
    assert result_framework(kind) == type(got).__module__.split(".")[0]
    assert tuple(got.shape) == shape
    want = getattr(ref, name)(rounded(X64, dtype), 2)
    plain = got.tolist() if hasattr(got, "tolist") and not isinstance(got, np.ndarray) else got
    assert_close(np.asarray(plain).reshape(-1), want, dtype, factor=4)


# ----------------------------------------------------------------------------- objects

def test_aggregator_objects_raise_instead_of_clamping():
    X = inputs(0, 9, 3, 5, outliers=True)
    for spec, obj in [("mda", byzcore.MDA), ("smea", byzcore.SMEA), ("caf", byzcore.CAF), ("dnc", byzcore.DnC)]:
        np.testing.assert_array_equal(byzcore.make_aggregator(spec, f=3)(X), call(spec, X, 3))
        np.testing.assert_array_equal(obj(3)(X), call(spec, X, 3))
        with pytest.raises(ValueError, match=rf"^\[{spec}\] needs n > 2f, got n = 9, f = 5"):
            obj(5)(X)
    agg = byzcore.make_aggregator("dnc:iters=2,sub_dim=3,c=1.0", f=2, seed=4)
    np.testing.assert_array_equal(agg(X), byzcore.dnc(X, 2, iters=2, sub_dim=3, c=1.0, seed=4))
    np.testing.assert_array_equal(agg(X), byzcore.dnc(X, 2, iters=2, sub_dim=3, c=1.0, seed=5))  # next call: seed + 1


# ----------------------------------------------------------------------------- search budgets
# The exact searches are exponential in the worst case; each has a budget and raises past it.

def test_smea_budget_raises_on_a_hard_case():
    # Pure noise: every subset nearly ties, so the bounds prune little (n = 40, f = 10 ran for
    # more than 100 s before the budget existed).
    X = np.random.default_rng(0).standard_normal((40, 50))
    msg = (r"^\[smea\] exact search needs more than 2000 subset evaluations on this input \(n = 40, f = 10\); "
           r"raise max_subsets or use a smaller n$")
    with pytest.raises(ValueError, match=msg):
        byzcore.smea(X, 10, max_subsets=2000)
    with pytest.raises(ValueError, match=r"^\[smea\] exact search needs more than 2000"):
        byzcore.make_aggregator("smea:max_subsets=2000", f=10)(X)
    with pytest.raises(ValueError, match=r"^\[smea\] exact search needs more than 2000"):
        byzcore.SMEA(10, max_subsets=2000)(X)
    for bad in (0, -1, -2**63):
        with pytest.raises(ValueError, match=r"^\[smea\] max_subsets must be >= 1"):
            byzcore.smea(X, 10, max_subsets=bad)
    with pytest.raises((ValueError, TypeError), match=r"^\[smea\]"):
        byzcore.smea(X, 10, max_subsets=2**64)


def test_smea_default_budget_solves_n30_f7():
    # Shifted Byzantine messages: the honest subset is the optimum by far.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 200))
    X[23:] += 3.0
    np.testing.assert_allclose(byzcore.smea(X, 7), X[:23].mean(axis=0), rtol=1e-12, atol=1e-12)
    # Pure noise, the hard case (200,000-400,000 evaluations): solved within the default budget,
    # and the result is the mean of 23 of the messages (the optimum itself is checked against
    # enumeration at n = 12 above; C(30, 7) = 2,035,800 subsets is too many here).
    Y = np.random.default_rng(1).standard_normal((30, 100_000)).astype(np.float32)
    got = byzcore.smea(Y, 7).astype(np.float64)
    w = np.linalg.lstsq(Y.T.astype(np.float64), got, rcond=None)[0]
    np.testing.assert_allclose(np.sort(w), [0.0] * 7 + [1 / 23] * 23, atol=1e-6)
    assert byzcore.smea_default_budget(30) == 500_000
    assert byzcore.smea_default_budget(60) == 62_500
    assert byzcore.smea_default_budget(10**6) == 1000


def _conflict_triangles(m: int) -> np.ndarray:
    """m triangles, each in its own plane (3 unit vectors 120 degrees apart: sqrt(3) within a
    triangle, sqrt(2) across), and m messages at the origin: below sqrt(3) the "too far" graph
    is m disjoint triangles, whose vertex cover (2m > f = 2m - 1) the bounded search can only
    refute by exploring ~1.6^f branches."""
    X = np.zeros((4 * m, 2 * m))
    ang = 2 * np.pi * np.arange(3) / 3
    for j in range(m):
        X[3 * j:3 * j + 3, 2 * j], X[3 * j:3 * j + 3, 2 * j + 1] = np.cos(ang), np.sin(ang)
    return X


def test_mda_budget_raises_on_a_hard_case():
    X = _conflict_triangles(14)  # n = 56, f = 27: ~0.1 s unbounded
    f = 27
    with pytest.raises(ValueError, match=r"^\[mda\] exact search needs more than 1000 branch steps on this input "
                                         r"\(n = 56, f = 27\); raise max_steps or use a smaller f$"):
        byzcore.mda(X, f, max_steps=1000)
    for bad in (0, -1, -2**63):
        with pytest.raises(ValueError, match=r"^\[mda\] max_steps must be >= 1"):
            byzcore.mda(X, f, max_steps=bad)
    assert byzcore.mda_default_budget(88) == 3_000_000
    assert byzcore.mda_default_budget(176) == 750_000
    # Within the budget, the budget changes nothing: the default gives the answer of an
    # unbounded search (the optimum itself is checked against enumeration on small n above).
    want = byzcore.mda(X, f, max_steps=2**63 - 1)
    np.testing.assert_array_equal(byzcore.mda(X, f), want)
    assert np.isfinite(want).all()


# ----------------------------------------------------------------------------- ISA builds

_SCRIPT = """
import json, numpy as np, byzcore
rng = np.random.default_rng(5)
X = rng.normal(size=(12, 3000)); X[:3] += rng.normal(scale=5.0, size=(3, 3000))
out = {"simd": byzcore.build_info()["simd"]}
for dt in ["float32", "float64"]:
    Y = X.astype(dt)
    out[dt] = {"mda": byzcore.mda(Y, 3).tolist(), "smea": byzcore.smea(Y, 3).tolist(),
               "caf": byzcore.caf(Y, 3).tolist(), "dnc": byzcore.dnc(Y, 3, sub_dim=500, seed=1).tolist()}
print(json.dumps(out))
"""


def _run(isa):
    env = dict(os.environ, BYZCORE_ISA=isa)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_isa_builds_agree():
    import importlib.util

    core = byzcore._core
    isas = [i for i in ["generic", "avx2", "avx512"]
            if core.cpu_supports(i) and importlib.util.find_spec(f"byzcore._core_{i}") is not None]
    if len(isas) < 2:
        pytest.skip("only one ISA module built")
    results = [_run(i) for i in isas]
    for r, isa in zip(results, isas):
        assert r["simd"] == isa
        for dt, tol in [("float32", 3e-6), ("float64", 1e-12)]:
            for name in RULES:
                np.testing.assert_allclose(r[dt][name], results[0][dt][name], rtol=tol, atol=tol,
                                           err_msg=f"{isa} {dt} {name}")


@pytest.mark.parametrize("name", ["mda_default_budget", "smea_default_budget"])
def test_default_budgets_check_n(name):
    budget = getattr(byzcore, name)
    for bad in [True, False, 30.0, 1.5, "30", None, [30]]:
        with pytest.raises(TypeError, match=rf"^\[{name}\] n must be an integer"):
            budget(bad)
    for bad in [-1, -2**63, 2**63]:
        with pytest.raises(ValueError, match=rf"^\[{name}\] n "):
            budget(bad)
    assert budget(np.int64(30)) == budget(30)
    assert budget(0) == budget(1)
