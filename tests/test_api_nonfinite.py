"""The security property of docs/spec.md#nonfinite: whenever at most f messages hold non-finite entries (NaN,
+Inf, -Inf) and the rule's bound on n holds, the result of every robust rule is finite.
Hypothesis draws the honest data, n, f, which messages are Byzantine and where their
non-finite entries sit; where the rule is not a fragile selection the result is also compared
with the reference (which follows the same convention)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import byzcore as bz
import reference as ref

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BAD_VALUES = [math.nan, math.inf, -math.inf]


@st.composite
def poisoned(draw, bound, dtype):
    """(X, f, bad rows): n, f with bound(n, f); at most f rows hold NaN/+Inf/-Inf entries."""
    f = draw(st.integers(0, 4))
    n = draw(st.integers(1, 14).filter(lambda n: bound(n, f)))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((n, d))
    n_bad = draw(st.integers(0, min(f, n)))
    bad = sorted(rng.choice(n, size=n_bad, replace=False).tolist()) if n_bad else []
    for i in bad:
        mask = rng.random(d) < draw(st.sampled_from([0.0, 0.5, 1.0]))
        mask[rng.integers(d)] = True  # at least one non-finite entry per Byzantine row
        values = draw(st.lists(st.sampled_from(BAD_VALUES), min_size=d, max_size=d))
        X[i, mask] = np.array(values)[mask]
    return X.astype(dtype), f, bad


def finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def honest(n, bad):
    return [i for i in range(n) if i not in bad]


DTYPES = ["float64", "float32"]


def tol(dtype):
    return 1e-9 if dtype == "float64" else 2e-5


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_median(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n > 2 * f, dtype))
    got = bz.median(X)
    assert finite(got)
    np.testing.assert_allclose(got, ref.median(X), rtol=tol(dtype), atol=tol(dtype) * np.nanmax(np.abs(X[honest(len(X), bad)])))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_trimmed_mean(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n > 2 * f, dtype))
    got = bz.trimmed_mean(X, f)
    assert finite(got)
    scale = np.max(np.abs(X[honest(len(X), bad)]))
    np.testing.assert_allclose(got, ref.trimmed_mean(X, f), rtol=tol(dtype), atol=tol(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_pairwise_distances(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n >= 1, dtype))
    Dm = np.asarray(bz.pairwise_distances(X), dtype=np.float64)
    n = len(X)
    good = honest(n, bad)
    assert np.all(np.diag(Dm) == 0)
    assert not np.any(np.isnan(Dm))
    np.testing.assert_array_equal(Dm, Dm.T)
    for i in range(n):
        for j in range(n):
            if i != j and (i in bad or j in bad):
                assert Dm[i, j] == math.inf
    assert finite(Dm[np.ix_(good, good)])
    assert np.all(Dm >= 0)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_krum(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n >= f + 3, dtype))
    scores = np.asarray(bz.krum_scores(X, f), dtype=np.float64)
    good = honest(len(X), bad)
    assert finite(scores[good])
    assert np.all(scores[bad] == math.inf)
    got = bz.krum(X, f)
    assert finite(got)
    assert any(np.array_equal(got, X[i]) for i in good)  # Krum returns an honest message here
    mk = bz.multi_krum(X, f)
    assert finite(mk)
    for m in range(1, len(X) - f + 1):
        assert finite(bz.multi_krum(X, f, m=m))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_geometric_median(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n > 2 * f, dtype))
    got = bz.geometric_median(X)
    assert finite(got)
    # A Byzantine message has weight zero: the result is that of the honest messages alone,
    # except for the start (the coordinate-wise median of all messages), so compare a few
    # exact steps with the reference, which applies the same convention.
    got3 = np.asarray(bz.geometric_median(X, max_iter=3, tol=0.0), dtype=np.float64)
    want3 = ref.geometric_median(X, max_iter=3, tol=0.0)
    scale = np.max(np.abs(X[honest(len(X), bad)]))
    np.testing.assert_allclose(got3, want3, rtol=100 * tol(dtype), atol=100 * tol(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), threshold=st.sampled_from([0.0, 1e-2, 1.0, 1e3, math.inf]))
def test_clip(dtype, data, threshold):
    X, f, bad = data.draw(poisoned(lambda n, f: n >= 1, dtype))
    got = np.asarray(bz.clip(X, threshold), dtype=np.float64)
    assert finite(got)
    assert np.all(got[bad] == 0)  # infinitely far from zero: clipped to zero
    want = ref.clip(X, threshold)
    scale = max(np.max(np.abs(want)), 1e-300)
    np.testing.assert_allclose(got, want, rtol=tol(dtype), atol=tol(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), tau=st.sampled_from([1e-2, 1.0, 1e3]), iters=st.integers(1, 3))
def test_centered_clipping(dtype, data, tau, iters):
    X, f, bad = data.draw(poisoned(lambda n, f: n >= 1, dtype))
    got = np.asarray(bz.centered_clipping(X, tau, iters=iters), dtype=np.float64)
    assert finite(got)
    want = ref.centered_clipping(X, tau, iters=iters)
    np.testing.assert_allclose(got, want, rtol=10 * tol(dtype), atol=10 * tol(dtype) * max(tau * iters, 1e-300))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**64 - 1))
def test_bucketing_median(dtype, data, seed):
    # s = 2: each Byzantine message spoils at most one bucket; ceil(n/2) buckets > 2f.
    X, f, bad = data.draw(poisoned(lambda n, f: -(-n // 2) > 2 * f, dtype))
    got = bz.bucketing(X, 2, bz.median, seed=seed)
    assert finite(got)
    want = ref.bucketing(X, 2, ref.median, ref.permutation(len(X), seed))
    scale = np.max(np.abs(X[honest(len(X), bad)]))
    np.testing.assert_allclose(got, want, rtol=4 * tol(dtype), atol=4 * tol(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_nnm(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n > f, dtype))
    got = np.asarray(bz.nnm(X, f), dtype=np.float64)
    good = honest(len(X), bad)
    # Each honest message mixes with n - f - 1 others, and at least that many are honest.
    assert finite(got[good])


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_nnm_then_rules(dtype, data):
    X, f, bad = data.draw(poisoned(lambda n, f: n >= 2 * f + 3, dtype))
    mixed = bz.nnm(X, f)  # at most f rows non-finite after mixing
    assert finite((bz.NNM(f) >> bz.Krum(f))(X))
    assert finite(bz.krum(mixed, f))
    assert finite(bz.median(mixed))
    assert finite(bz.trimmed_mean(mixed, f))
    assert finite(bz.geometric_median(mixed))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_propagates_like_numpy(dtype):
    X = np.array([[1.0, 2.0, 3.0], [np.nan, np.inf, -np.inf], [0.0, 1.0, 1.0]], dtype=dtype)
    got = bz.mean(X)
    np.testing.assert_array_equal(np.isnan(got), [True, False, False])
    assert got[1] == np.inf and got[2] == -np.inf
    Y = np.array([[np.inf], [-np.inf], [0.0]], dtype=dtype)  # inf - inf in one coordinate
    assert np.isnan(bz.mean(Y)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_messages_non_finite_does_not_crash(dtype):
    """Beyond the bound the result may be non-finite, but the call returns normally, with the
    documented shape and dtype, leaves the input alone, and invents no finite value: every entry
    comes from the non-finite messages (centered clipping, which ignores them, stays at its centre)."""
    for fill in (math.nan, math.inf, -math.inf):
        X = np.full((5, 3), fill, dtype=dtype)
        before = X.copy()
        for fn, shape in ((bz.median, (3,)), (lambda X: bz.trimmed_mean(X, 1), (3,)),
                          (lambda X: bz.krum(X, 1), (3,)), (bz.geometric_median, (3,)),
                          (lambda X: bz.nnm(X, 1), (5, 3))):
            got = fn(X)
            assert got.shape == shape and got.dtype == X.dtype
            assert not np.isfinite(got).any(), got
        np.testing.assert_array_equal(bz.centered_clipping(X, 1.0), np.zeros(3))
        np.testing.assert_array_equal(bz.centered_clipping(X, 1.0, center=np.ones(3)), np.ones(3))
        D = bz.pairwise_distances(X)
        np.testing.assert_array_equal(D, ref.pairwise_distances(X.astype(np.float64)).astype(dtype))
        assert np.all(np.diag(D) == 0) and np.all(np.isinf(D[~np.eye(5, dtype=bool)]))
        np.testing.assert_array_equal(X, before)
