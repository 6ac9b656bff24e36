"""The catalogue rules of issue 9 (MeaMed, Bulyan, MoNNA, CGE, ARC, clipping, weighted mean,
trimming by fraction, ByzFL's Krum variant) against the plain float64 references of
tests/reference.py: every kernel path (n <= 32 register networks, the runtime network, n > 4096
sorted columns), hand cases with Byzantine outliers, the non-finite property, errors, every
input kind, the aggregator objects and registry names, and agreement of the ISA builds."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import reference as ref
from api_helpers import assert_same_input, copy_input, make_input, result_framework, rounded, to64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import byzcore as bz

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def rng_matrix(n, d, dtype, seed=0, loc=0.0):
    return (loc + np.random.default_rng(seed).standard_normal((n, d))).astype(dtype)


# ---------------------------------------------------------------- MeaMed
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 64, 129])
def test_meamed_matches_reference(n, dtype):
    for f in sorted({0, 1, n // 4, (n - 1) // 2}):
        if n <= 2 * f:
            continue
        X = rng_matrix(n, 37, dtype, seed=31 * n + f)  # 37: a ragged tail on every lane width
        out = bz.meamed(X, f)
        assert out.dtype == dtype
        assert out.shape == (37,)
        np.testing.assert_allclose(out, ref.meamed(X, f), **tol(dtype), err_msg=f"n={n} f={f}")


def test_meamed_sorted_columns_path():
    """n > 4096 runs std::sort per coordinate."""
    X = rng_matrix(4099, 5, np.float64, seed=2)
    X[:100] = 1e6  # outliers on one side
    np.testing.assert_allclose(bz.meamed(X, 1000), ref.meamed(X, 1000), rtol=1e-12)


@pytest.mark.parametrize("n", [5, 16, 32, 40])
def test_meamed_ties_follow_the_smaller_value(n):
    X = np.random.default_rng(n).integers(-3, 4, size=(n, 203)).astype(np.float64)
    for f in (1, (n - 1) // 2):
        np.testing.assert_array_equal(bz.meamed(X, f), ref.meamed(X, f))
        np.testing.assert_array_equal(bz.meamed(X.astype(np.float32), f), ref.meamed(X, f).astype(np.float32))


def test_meamed_hand_cases():
    # median 1: distances 1, 0, 2 -> keep {0, 1}
    np.testing.assert_array_equal(bz.meamed(np.array([[0.0], [1.0], [3.0]]), 1), [0.5])
    # median 2: distances 2, 0, 2 tie -> the smaller value (0) is kept
    np.testing.assert_array_equal(bz.meamed(np.array([[4.0], [2.0], [0.0]]), 1), [1.0])
    # even n: median 2 (mean of 1 and 3); keep 3 of 0, 1, 3, 10 -> 0, 1, 3
    np.testing.assert_allclose(bz.meamed(np.array([[0.0], [1.0], [3.0], [10.0]]), 1), [4.0 / 3.0])
    # f = 0 is the mean; a Byzantine coordinate far away is dropped
    X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, -1e9]])
    np.testing.assert_allclose(bz.meamed(X, 0), X.mean(0))
    np.testing.assert_allclose(bz.meamed(X, 1), [1.5, 3.0])


# ---------------------------------------------------------------- Bulyan
def separated(n, d, seed, n_far=0):
    """Honest messages around 1 with distinct spreads (no near-ties in Krum scores), the last
    n_far ones far away."""
    rng = np.random.default_rng(seed)
    X = 1.0 + rng.standard_normal((n, d)) * (1.0 + np.arange(n)[:, None] / n)
    for i in range(n - n_far, n):
        X[i] = 50.0 + 10 * rng.standard_normal(d)
    return X


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 4, 7, 8, 11, 12, 15, 19, 23, 32, 35, 43])
def test_bulyan_matches_reference(n, dtype):
    for f in sorted({0, 1, (n - 3) // 4}):
        if n < 4 * f + 3:
            continue
        X = separated(n, 29, seed=n + 100 * f, n_far=f).astype(dtype)
        out = bz.bulyan(X, f)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, ref.bulyan(X, f), **tol(dtype), err_msg=f"n={n} f={f}")


def test_bulyan_selection_recomputes_scores():
    """Round 2 scores on the remaining set differ from the first round's scores: a 1-D case
    where the iterated selection and "the n - 2f best first-round scores" disagree."""
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.05], [5.1], [5.15], [20.0]])
    f = 1
    assert ref.bulyan_selection(X, f) != sorted(ref.krum_order(X, f)[:len(X) - 2 * f])
    np.testing.assert_allclose(bz.bulyan(X, f), ref.bulyan(X, f), rtol=1e-14)


def test_bulyan_ignores_outliers():
    X = separated(11, 64, seed=3, n_far=0)
    X[9] = 1e6
    X[10, ::2] = -1e6
    out = bz.bulyan(X, 2)
    honest = X[:9]
    assert np.all(out >= honest.min(0))
    assert np.all(out <= honest.max(0))
    np.testing.assert_allclose(out, ref.bulyan(X, 2), rtol=1e-12)


# ---------------------------------------------------------------- MoNNA, CGE
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 16, 33])
def test_monna_and_cge_match_reference(n, dtype):
    for f in sorted({0, 1, (n - 1) // 2}):
        if n <= 2 * f:
            continue
        X = separated(n, 41, seed=n + f, n_far=f).astype(dtype)
        for pivot in sorted({0, n // 2, n - 1 - f if n - 1 - f >= 0 else 0}):
            np.testing.assert_allclose(bz.monna(X, f, pivot=pivot), ref.monna(X, f, pivot), **tol(dtype))
        np.testing.assert_allclose(bz.cge(X, f), ref.cge(X, f), **tol(dtype))


def test_monna_and_cge_hand_cases():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [100.0, 100.0], [0.5, 0.5]])
    # nearest 3 to message 0: itself, [0.5, 0.5] (0.707), [1, 0] (1.0)
    np.testing.assert_allclose(bz.monna(X, 2), [0.5, 1.0 / 6.0])
    # 3 smallest norms: 0, 0.707, 1
    np.testing.assert_allclose(bz.cge(X, 2), [0.5, 1.0 / 6.0])
    # ties by norm: lower index first
    Y = np.array([[1.0], [-1.0], [1.0], [-1.0], [0.0]])
    np.testing.assert_array_equal(bz.cge(Y, 2), [0.0])  # norms 1,1,1,1,0 -> rows 4, 0, 1
    np.testing.assert_array_equal(bz.monna(Y, 2, pivot=4), [0.0])


def test_monna_refuses_a_non_finite_pivot():
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^\[monna\] the pivot message holds NaN or Inf"):
        bz.monna(X, 1, pivot=2)
    np.testing.assert_array_equal(bz.monna(X, 1, pivot=0), np.ones(3))


# ---------------------------------------------------------------- ARC, clipping
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 17, 32])
def test_arc_matches_reference(n, dtype):
    for f in sorted({0, 1, (n - 1) // 2}):
        if n <= 2 * f:
            continue
        X = separated(n, 23, seed=n * 3 + f, n_far=f).astype(dtype)
        out = bz.arc(X, f)
        assert out.shape == (n, 23)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, ref.arc(X, f), **tol(dtype))


def test_arc_hand_case():
    # n = 5, f = 1: floor(2 * 1 * 4 / 5) = 1 clipped, to the second largest norm (3)
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -40.0], [0.5, 0.0]])
    out = bz.arc(X, 1)
    np.testing.assert_allclose(out[3], [0.0, -3.0])
    np.testing.assert_array_equal(np.delete(out, 3, axis=0), np.delete(X, 3, axis=0))
    # n = 10, f = 3: floor(2 * 3 * 7 / 10) = 4 clipped
    Y = np.arange(1.0, 11.0).reshape(10, 1)
    np.testing.assert_array_equal(bz.arc(Y, 3)[:, 0], [1, 2, 3, 4, 5, 6, 6, 6, 6, 6])


def test_clipping_and_arc_compose():
    X = separated(9, 16, seed=5, n_far=2)
    chain = bz.Clipping(3.0) >> bz.MeaMed(2)
    np.testing.assert_allclose(chain(X), ref.meamed(ref.clip(X, 3.0), 2), rtol=1e-12)
    np.testing.assert_allclose(bz.make_aggregator("clipping:3+meamed", f=2)(X), chain(X), rtol=0)
    # (not arc+cge in a value test: the clipped messages tie in norm up to rounding)
    arc_meamed = bz.make_aggregator("arc+meamed", f=2)
    assert arc_meamed.name == "arc+meamed"
    assert arc_meamed.f == 2
    np.testing.assert_allclose(arc_meamed(X), ref.meamed(ref.arc(X, 2), 2), rtol=1e-12)
    np.testing.assert_allclose((bz.ARC(2) >> bz.Bulyan(1))(X), ref.bulyan(ref.arc(X, 2), 1), rtol=1e-12)


# ---------------------------------------------------------------- weights, fractions, ByzFL Krum
def test_weighted_mean():
    X = rng_matrix(6, 33, np.float64, seed=1)
    w = [3, 1, 0, 2, 5, 1]
    np.testing.assert_allclose(bz.mean(X, weights=w), ref.weighted_mean(X, w), rtol=1e-14)
    np.testing.assert_allclose(bz.mean(X, weights=np.ones(6)), bz.mean(X), rtol=0)
    X[2, 0] = np.nan  # weight 0: left out
    assert np.all(np.isfinite(bz.mean(X, weights=w)))
    torch = pytest.importorskip("torch")
    got = bz.mean(torch.from_numpy(X.astype(np.float32)), weights=torch.tensor(w))
    np.testing.assert_allclose(got.numpy(), ref.weighted_mean(X.astype(np.float32), w), rtol=1e-6)


@pytest.mark.parametrize("weights, match", [
    ([1, 2], r"^\[mean\] weights must have one entry per message"),
    ([1, -1, 1], r"^\[mean\] weights must be finite and >= 0"),
    ([1, math.nan, 1], r"^\[mean\] weights must be finite and >= 0"),
    ([0, 0, 0], r"^\[mean\] weights must not all be zero"),
    ([1e308, 1e308, 1e308], r"^\[mean\] weights must not all be zero and must sum to a finite"),
])
def test_weight_errors(weights, match):
    with pytest.raises(ValueError, match=match):
        bz.mean(np.ones((3, 2)), weights=weights)


@pytest.mark.parametrize("n", [1, 5, 10, 29, 100])
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.2, 0.29, 0.45])
def test_trimmed_mean_by_fraction(n, beta):
    X = rng_matrix(n, 17, np.float64, seed=n)
    f = int(beta * n)
    np.testing.assert_array_equal(bz.trimmed_mean(X, beta=beta), bz.trimmed_mean(X, f))
    np.testing.assert_allclose(bz.trimmed_mean(X, beta=beta), ref.trimmed_mean_fraction(X, beta), rtol=1e-12)
    np.testing.assert_array_equal(bz.FedTrimmedAvg(beta)(X), bz.trimmed_mean(X, f))


def test_trimmed_mean_fraction_errors():
    X = np.ones((4, 2))
    with pytest.raises(TypeError, match=r"^\[trimmed_mean\] give exactly one of f"):
        bz.trimmed_mean(X)
    with pytest.raises(TypeError, match=r"^\[trimmed_mean\] give exactly one of f"):
        bz.trimmed_mean(X, 1, beta=0.1)
    for bad in (0.5, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^\[trimmed_mean\] beta must be in \[0, 0.5\)"):
            bz.trimmed_mean(X, beta=bad)
    with pytest.raises(TypeError, match=r"^\[trimmed_mean\] beta must be a real number"):
        bz.trimmed_mean(X, beta="0.1")


@pytest.mark.parametrize("n,f", [(3, 1), (5, 2), (7, 2), (10, 4), (12, 0)])
def test_krum_byzfl_variant(n, f):
    X = separated(n, 19, seed=n, n_far=f)
    order = ref.krum_byzfl_order(X, f)
    np.testing.assert_array_equal(bz.krum(X, f, variant="byzfl"), X[order[0]])
    np.testing.assert_allclose(bz.multi_krum(X, f, variant="byzfl"), ref.multi_krum_byzfl(X, f), rtol=1e-12)
    np.testing.assert_allclose(bz.multi_krum(X, f, 2, variant="byzfl"), ref.multi_krum_byzfl(X, f, 2), rtol=1e-12)
    if n >= f + 3:  # the original definition is unchanged
        np.testing.assert_array_equal(bz.krum(X, f), ref.krum(X, f))


def test_krum_variant_errors():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"^\[krum\] variant='byzfl' needs n > 2f"):
        bz.krum(X, 2, variant="byzfl")
    with pytest.raises(ValueError, match=r"^\[multi_krum\] variant must be 'original'"):
        bz.multi_krum(X, 1, variant="ByzFL")
    with pytest.raises(ValueError, match=r"^\[multi_krum\] m must be in 1..n"):
        bz.multi_krum(X, 1, 5, variant="byzfl")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,f,m", [(3, 0, None), (5, 1, None), (7, 2, None), (7, 2, 3), (10, 3, 1), (12, 0, 12)])
def test_multi_krum_weighted(n, f, m, dtype):
    X = separated(n, 19, seed=n + f, n_far=f).astype(dtype)
    w = np.random.default_rng(n).integers(1, 100, size=n).astype(np.float64)
    if m is None or m > 1:
        w[0] = 0.0  # a zero weight (message 0 may be selected): it takes no part
    np.testing.assert_allclose(bz.multi_krum(X, f, m, weights=w), ref.multi_krum(X, f, m, weights=w), **tol(dtype))
    # the selection ignores the weights: equal weights give the unweighted rule
    np.testing.assert_allclose(bz.multi_krum(X, f, m, weights=np.full(n, 7.0)), bz.multi_krum(X, f, m), **tol(dtype))
    if n > 2 * f:
        np.testing.assert_allclose(bz.multi_krum(X, f, m, variant="byzfl", weights=w),
                                   ref.multi_krum_byzfl(X, f, m, weights=w), **tol(dtype))


def test_multi_krum_weighted_inputs():
    X = separated(7, 11, seed=3, n_far=2)
    w = [5, 1, 2, 9, 3, 4, 1000]
    X[6, 0] = np.nan  # a non-finite Byzantine message is not selected, whatever its weight
    want = ref.multi_krum(X, 2, weights=w)
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(bz.multi_krum(X, 2, weights=w), want, rtol=1e-12)
    np.testing.assert_allclose(bz.multi_krum(list(X), 2, weights=np.asarray(w)), want, rtol=1e-12)
    np.testing.assert_allclose(bz.MultiKrum(2)(X), ref.multi_krum(X, 2), rtol=1e-12)  # the object: unweighted
    torch = pytest.importorskip("torch")
    T = torch.from_numpy(X)
    got = bz.multi_krum(T, 2, weights=torch.tensor(w, dtype=torch.float64))
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    half = bz.multi_krum(T.to(torch.bfloat16), 2, weights=w)
    assert half.dtype == torch.bfloat16
    np.testing.assert_allclose(half.float().numpy(), ref.multi_krum(T.to(torch.bfloat16).float().numpy(), 2, weights=w),
                               rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("weights, match", [
    ([1, 2], r"^\[multi_krum\] weights must have one entry per message \(n = 5\), got 2"),
    ([1, 1, -1, 1, 1], r"^\[multi_krum\] weights must be finite and >= 0"),
    ([1, 1, 1, math.nan, 1], r"^\[multi_krum\] weights must be finite and >= 0"),
    ([1, 1, 1, 1, math.inf], r"^\[multi_krum\] weights must be finite and >= 0"),
    ([0, 0, 0, 0, 0], r"^\[multi_krum\] weights must not all be zero"),
    ([1e308] * 5, r"^\[multi_krum\] weights must not all be zero and must sum to a finite"),
    # the left-out message (the far one, index 4) alone has weight: nothing selected to average
    ([0, 0, 0, 0, 1], r"^\[multi_krum\] the weights of the 4 selected messages are all zero"),
])
@pytest.mark.parametrize("variant", ["original", "byzfl"])
def test_multi_krum_weight_errors(weights, match, variant):
    X = separated(5, 6, seed=5, n_far=1)
    with pytest.raises(ValueError, match=match):
        bz.multi_krum(X, 1, variant=variant, weights=weights)


def test_multi_krum_weighted_argument_errors():
    X = separated(5, 6, seed=5, n_far=1)
    w = np.ones(5)
    with pytest.raises(TypeError, match=r"^\[multi_krum\] weights must be a real number"):
        bz.multi_krum(X, 1, weights=[1, 1, "a", 1, 1])
    with pytest.raises(ValueError, match=r"^\[multi_krum\] needs n >= f \+ 3, got n = 5, f = 3"):
        bz.multi_krum(X, 3, weights=w)
    with pytest.raises(ValueError, match=r"^\[multi_krum\] needs n >= f \+ 3"):
        bz.multi_krum(X, 2**63 - 1, weights=w)
    with pytest.raises(ValueError, match=r"^\[multi_krum\] f must be >= 0"):
        bz.multi_krum(X, -1, weights=w)
    for m in (0, 6):
        with pytest.raises(ValueError, match=r"^\[multi_krum\] m must be in 1..n \(n = 5\)"):
            bz.multi_krum(X, 1, m, weights=w)
    with pytest.raises(ValueError, match=r"^\[multi_krum\] variant='byzfl' needs n > 2f"):
        bz.multi_krum(X, 3, variant="byzfl", weights=w)


# ---------------------------------------------------------------- bounds and argument errors
RULES = {
    "meamed": (bz.meamed, "n > 2f", lambda n: (n - 1) // 2),
    "bulyan": (bz.bulyan, "n >= 4f + 3", lambda n: (n - 3) // 4),
    "monna": (bz.monna, "n > 2f", lambda n: (n - 1) // 2),
    "cge": (bz.cge, "n > 2f", lambda n: (n - 1) // 2),
    "arc": (bz.arc, "n > 2f", lambda n: (n - 1) // 2),
}


@pytest.mark.parametrize("op", sorted(RULES))
def test_bounds_are_enforced_without_wrapping(op):
    call, needs, fmax = RULES[op]
    for n in (3, 7, 8, 12):
        X = rng_matrix(n, 4, np.float64, seed=n)
        call(X, fmax(n))  # at the bound: fine
        with pytest.raises(ValueError, match=rf"^\[{op}\] needs {re.escape(needs)}, got n = {n}, f = {fmax(n) + 1}"):
            call(X, fmax(n) + 1)
    X = rng_matrix(5, 3, np.float64)
    for f in (2**63 - 1, 2**62, 2**61 + 1):  # 4f + 3 or 2f would wrap in int64
        with pytest.raises(ValueError, match=rf"^\[{op}\] needs {re.escape(needs)}"):
            call(X, f)
    with pytest.raises(ValueError, match=rf"^\[{op}\] f must be >= 0"):
        call(X, -1)
    with pytest.raises(ValueError, match=rf"^\[{op}\] f must be >= 0"):
        call(X, -2**63)
    with pytest.raises(ValueError, match=rf"^\[{op}\] f = {2**64} is outside the 64-bit integer range"):
        call(X, 2**64)
    with pytest.raises(TypeError, match=rf"^\[{op}\] f must be an integer"):
        call(X, True)
    with pytest.raises(TypeError, match=rf"^\[{op}\] f must be an integer"):
        call(X, 1.0)
    with pytest.raises(TypeError, match=rf"^\[{op}\] messages must be floating point"):
        call(np.ones((5, 3), dtype=np.int64), 0)
    with pytest.raises(ValueError, match=rf"^\[{op}\] expects n messages as a 2-D"):
        call(np.ones(5), 0)
    with pytest.raises(ValueError, match=rf"^\[{op}\] got no messages"):
        call([], 0)


def test_monna_pivot_errors():
    X = np.ones((5, 2))
    for pivot in (-1, 5, 2**63 - 1):
        with pytest.raises(ValueError, match=r"^\[monna\] pivot must be a message index in 0..n-1"):
            bz.monna(X, 1, pivot=pivot)
    with pytest.raises(TypeError, match=r"^\[monna\] pivot must be an integer"):
        bz.monna(X, 1, pivot=1.5)


def test_objects_raise_instead_of_clamping():
    X = rng_matrix(6, 3, np.float64)
    for obj, needs in ((bz.MeaMed(3), "n > 2f"), (bz.Bulyan(1), "n >= 4f \\+ 3"), (bz.MoNNA(3), "n > 2f"),
                       (bz.CGE(3), "n > 2f"), (bz.ARC(3), "n > 2f")):
        with pytest.raises(ValueError, match=rf"needs {needs}, got n = 6"):
            obj(X)
    for name in ("meamed", "bulyan", "monna", "monna:2", "cge", "arc+median", "clipping:1.5+mean",
                 "fed_trimmed_avg:0.2", "trimmed_mean_fraction:beta=0.1"):
        agg = bz.make_aggregator(name, f=1)
        assert np.all(np.isfinite(np.asarray(agg(rng_matrix(7, 3, np.float64)))))
    with pytest.raises(ValueError,
                       match=r"^\[make_aggregator\] 'fed_trimmed_avg:0.6': \[fed_trimmed_avg\] beta must be in"):
        bz.make_aggregator("fed_trimmed_avg:0.6")


# ---------------------------------------------------------------- non-finite property
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDS = {
    "meamed": lambda n, f: n > 2 * f,
    "bulyan": lambda n, f: n >= 4 * f + 3,
    "monna": lambda n, f: n > 2 * f,
    "cge": lambda n, f: n > 2 * f,
    "arc": lambda n, f: n > 2 * f,
}
REFS = {"meamed": ref.meamed, "bulyan": ref.bulyan, "monna": ref.monna, "cge": ref.cge, "arc": ref.arc}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", sorted(BOUNDS))
@SETTINGS
@given(data=st.data())
def test_at_most_f_non_finite_messages_give_a_finite_result(op, dtype, data):
    f = data.draw(st.integers(0, 3))
    n = data.draw(st.integers(1, 16).filter(lambda n: BOUNDS[op](n, f)))
    d = data.draw(st.integers(1, 9))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = separated(n, d, seed=int(rng.integers(2**31)))
    candidates = list(range(1, n)) if op == "monna" else list(range(n))  # monna's pivot 0 is honest
    n_bad = data.draw(st.integers(0, min(f, len(candidates))))
    bad = rng.choice(candidates, size=n_bad, replace=False) if n_bad else []
    for i in bad:
        mask = rng.random(d) < 0.5
        mask[rng.integers(d)] = True
        X[i, mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
    X = X.astype(dtype)
    out = RULES[op][0](X, f)
    assert np.all(np.isfinite(out))
    want = REFS[op](X, f)
    np.testing.assert_allclose(out, want, **tol(np.dtype(dtype).type))


# ---------------------------------------------------------------- input kinds
CASES = {
    "meamed": (lambda X: bz.meamed(X, 2), lambda X: ref.meamed(X, 2), False),
    "bulyan": (lambda X: bz.bulyan(X, 1), lambda X: ref.bulyan(X, 1), False),
    "monna": (lambda X: bz.monna(X, 2, pivot=1), lambda X: ref.monna(X, 2, 1), False),
    "cge": (lambda X: bz.cge(X, 2), lambda X: ref.cge(X, 2), False),
    "arc": (lambda X: bz.arc(X, 2), lambda X: ref.arc(X, 2), True),
    "weighted_mean": (lambda X: bz.mean(X, weights=[1, 2, 3, 4, 5, 6, 7]),
                      lambda X: ref.weighted_mean(X, [1, 2, 3, 4, 5, 6, 7]), False),
}
KINDS = ["numpy", "numpy3d", "list_numpy", "dlpack", "np_colslice", "np_transposed", "np_reversed", "torch",
         "list_torch", "torch_colslice", "torch_transposed", "dlpack_torch"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", sorted(CASES))
def test_every_input_kind(op, kind, dtype):
    if "torch" in kind:
        pytest.importorskip("torch")
    X64 = separated(7, 12, seed=11, n_far=2)
    X, shape = make_input(X64, kind, dtype)
    before = copy_input(X)
    call, want, per_message = CASES[op]
    got = call(X)
    assert_same_input(before, X)
    fw = result_framework(kind)
    assert (type(got).__module__.split(".")[0] == "torch") == (fw == "torch")
    g = to64(got)
    assert g.shape == ((7, *shape) if per_message else shape)
    expect = want(rounded(X64, dtype)).reshape(g.shape)
    np.testing.assert_allclose(g, expect, **tol(np.float32 if dtype == "float32" else np.float64))


# ---------------------------------------------------------------- ISA builds agree
ISA_SCRIPT = r"""
import json, sys
import numpy as np
import byzcore as bz
rng = np.random.default_rng(0)
out = {}
for dtype in ("float64", "float32"):
    for n in (7, 13, 31, 45):
        X = (1.0 + rng.standard_normal((n, 1000))).astype(dtype)
        X[-1] *= 40
        X[-2, 5] = np.nan
        r = {"meamed": bz.meamed(X, 2), "bulyan": bz.bulyan(X, 1), "monna": bz.monna(X, 2),
             "cge": bz.cge(X, 2), "arc": bz.arc(X, 2), "wmean": bz.mean(X[:-2], weights=np.arange(n - 2) + 1.0)}
        out[f"{dtype}-{n}"] = {k: np.asarray(v, dtype=np.float64).tolist() for k, v in r.items()}
json.dump(out, sys.stdout)
"""


def _run_isa(isa):
    env = dict(os.environ)
    env.pop("BYZCORE_ISA", None)
    if isa:
        env["BYZCORE_ISA"] = isa
    proc = subprocess.run([sys.executable, "-c", ISA_SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_isa_builds_agree_on_the_catalogue_rules():
    import importlib.util

    from byzcore._native import core

    isas = [i for i in ("generic", "avx2", "avx512")
            if core.cpu_supports(i) and importlib.util.find_spec(f"byzcore._core_{i}") is not None]
    if len(isas) < 2:
        pytest.skip("only one ISA module built")
    results = {isa: _run_isa(isa) for isa in isas}
    base = results[isas[0]]
    for isa in isas[1:]:
        for key, ops in base.items():
            rtol = 1e-12 if key.startswith("float64") else 1e-5
            for name, want in ops.items():
                np.testing.assert_allclose(results[isa][key][name], want, rtol=rtol, atol=rtol,
                                           err_msg=f"{isa} {key} {name}")
