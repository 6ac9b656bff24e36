"""Correctness of the distance-based CPU kernels: pairwise_distances, krum_scores, krum,
multi_krum, nnm and geometric_median, against the plain float64 references of tests/reference.py.

Sizes reach every path of the pairwise kernel: tiny problems (direct float64 sums), the
blocked Gram product with coordinates split between threads (many 512-coordinate chunks) and
with 4-row blocks split between threads (few chunks), its cancellation guard (near-identical
messages), rows sent to the direct path for their magnitude (huge / tiny values), and the
re-centring when the first message is far from all others. Run under BYZCORE_ISA=generic and
BYZCORE_ISA=avx2 to cover both compiled modules.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import byzcore
import reference as ref64

DTYPES = [np.float32, np.float64]
# Relative tolerance against the float64 reference: float32 results are rounded to float32
# (and the Gram path is bounded by 2.6e-4 in the worst case, ~1e-7 in practice).
RTOL = {np.float32: 2e-6, np.float64: 1e-12}


# ----------------------------------------------------------------------------- references

def assert_close(got, ref, dtype, rtol=None):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    rtol = RTOL[dtype] if rtol is None else rtol
    scale = np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


def gradients(rng, n, d, dtype, spread=0.3):
    """Messages that share a large common part, as honest gradients do."""
    base = rng.standard_normal(d)
    return (base + spread * rng.standard_normal((n, d))).astype(dtype)


# ----------------------------------------------------------------------------- hand-computed

def test_hand_computed():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]])
    D = byzcore.pairwise_distances(X)
    expected = np.array([[0, 25, 100, 1], [25, 0, 25, 18], [100, 25, 0, 85], [1, 18, 85, 0]], dtype=float)
    np.testing.assert_array_equal(D, expected)
    np.testing.assert_array_equal(byzcore.pairwise_distances(X, squared=False), np.sqrt(expected))
    # f = 1: n - f - 2 = 1 nearest distance: scores 1, 18, 25, 1 -> tie between 0 and 3, lowest index wins
    np.testing.assert_array_equal(byzcore.krum_scores(X, 1), [1, 18, 25, 1])
    np.testing.assert_array_equal(byzcore.krum(X, 1), [0.0, 0.0])
    np.testing.assert_array_equal(byzcore.multi_krum(X, 1, m=2), [0.0, 0.5])
    # nnm f = 2: each message with its nearest other one
    np.testing.assert_array_equal(byzcore.nnm(X, 2), [[0, 0.5], [1.5, 2.5], [4.5, 6], [0, 0.5]])


def test_krum_ties_lowest_index():
    X = np.array([[5.0], [1.0], [2.0], [1.0], [2.0], [9.0]], dtype=np.float32)
    scores = byzcore.krum_scores(X, 1)
    np.testing.assert_allclose(scores, ref64.krum_scores(X, 1))
    assert byzcore.krum(X, 1)[0] == 1.0  # rows 1 and 3 tie (and 2, 4 as well)
    # multi_krum ties: the lower index goes first
    np.testing.assert_allclose(byzcore.multi_krum(X, 1, m=3), ref64.multi_krum(X, 1, m=3))


# ----------------------------------------------------------------------------- random cases

# (n, d): direct path, Gram split over coordinates (many chunks), Gram split over row blocks
# (few chunks), chunk tails that are not a multiple of the SIMD width.
SHAPES = [(3, 1), (4, 7), (5, 513), (13, 1000), (20, 5001), (37, 3001), (40, 70001), (100, 1000), (131, 777)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
def test_pairwise_random(n, d, dtype):
    rng = np.random.default_rng(n * 1000 + d)
    X = gradients(rng, n, d, dtype)
    D = byzcore.pairwise_distances(X)
    assert D.dtype == dtype and D.shape == (n, n)
    R = ref64.pairwise_distances(X)
    assert_close(D, R, dtype)
    assert np.all(D == D.T) and np.all(np.diag(D) == 0) and np.all(D >= 0)
    assert_close(byzcore.pairwise_distances(X, squared=False), np.sqrt(R), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", [(13, 1000), (37, 3001), (100, 1000)])
def test_pairwise_near_identical(n, d, dtype):
    """Cancellation: distances 1e-4..1e-12 of the norms go to the guard's direct sums."""
    rng = np.random.default_rng(7)
    base = 1000 + rng.standard_normal(d)
    scales = 10.0 ** -rng.integers(2, 7, size=n)
    X = (base + scales[:, None] * rng.standard_normal((n, d))).astype(dtype)
    X[3] = X[1]  # exact duplicates: distance exactly 0
    D = byzcore.pairwise_distances(X)
    R = ref64.pairwise_distances(X)
    assert D[1, 3] == 0 and D[3, 1] == 0
    np.testing.assert_allclose(D, R, rtol=RTOL[dtype])  # relative to each entry, no atol


@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_huge_and_tiny_values(dtype):
    rng = np.random.default_rng(3)
    n, d = 24, 4000
    X = rng.standard_normal((n, d))
    X[2] *= 1e30 if dtype is np.float32 else 1e150  # float products would overflow
    tiny = 1e-15 if dtype is np.float32 else 1e-150  # float products would underflow
    X[5] *= tiny
    X[6] *= tiny
    X[9] = 1e20 + X[9]  # far away but in range
    X = X.astype(dtype)
    D = byzcore.pairwise_distances(X)
    with np.errstate(over="ignore"):  # float32 output: the reference overflows to inf too
        R = ref64.pairwise_distances(X).astype(dtype)
    np.testing.assert_allclose(D, R, rtol=RTOL[dtype])
    assert D[5, 6] > 0 and np.isfinite(D[5, 6])
    # The choice is made on float64 scores, so it matches the reference even when the
    # float32 output overflows.
    np.testing.assert_array_equal(byzcore.krum(X, 2), X[int(np.argmin(ref64.krum_scores(X, 2)))])


def test_pairwise_far_first_message_recentres():
    rng = np.random.default_rng(11)
    X = gradients(rng, 40, 6000, np.float32, spread=0.01)
    X[0] += 1e3  # the first finite row would be the centre: the others then all look equal
    assert_close(byzcore.pairwise_distances(X), ref64.pairwise_distances(X), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,f", [(5, 10, 2), (7, 3000, 4), (30, 5000, 7), (100, 1000, 30)])
def test_krum_family(n, d, f, dtype):
    rng = np.random.default_rng(n + d + f)
    X = gradients(rng, n, d, dtype)
    assert_close(byzcore.krum_scores(X, f), ref64.krum_scores(X, f), dtype)
    np.testing.assert_array_equal(byzcore.krum(X, f), ref64.krum(X, f).astype(dtype))
    assert_close(byzcore.multi_krum(X, f), ref64.multi_krum(X, f), dtype)
    assert_close(byzcore.multi_krum(X, f, m=1), ref64.multi_krum(X, f, m=1), dtype)
    assert_close(byzcore.nnm(X, f), ref64.nnm(X, f), dtype)


def test_n_equals_f_plus_3_and_bounds():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 50))
    assert_close(byzcore.krum_scores(X, 3), ref64.krum_scores(X, 3), np.float64)
    with pytest.raises(ValueError, match=r"^\[krum\].*n >= f \+ 3"):
        byzcore.krum(X, 4)
    with pytest.raises(ValueError, match=r"^\[multi_krum\]"):
        byzcore.multi_krum(X, 1, m=0)
    with pytest.raises(ValueError, match=r"^\[nnm\]"):
        byzcore.nnm(X, 6)
    with pytest.raises(ValueError, match=r"^\[pairwise_distances\]"):
        byzcore.pairwise_distances(np.zeros((0, 3)))


# ----------------------------------------------------------------------------- non-finite messages

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", [(9, 40), (30, 5000), (100, 1000)])
def test_non_finite_messages(n, d, dtype):
    rng = np.random.default_rng(5)
    X = gradients(rng, n, d, dtype)
    f = 3
    bad = [0, n // 2, n - 1]
    X[bad[0], 3] = np.nan
    X[bad[1], d - 1] = np.inf
    X[bad[2], :] = -np.inf
    D = byzcore.pairwise_distances(X)
    R = ref64.pairwise_distances(X)
    assert np.all(np.isinf(D[bad][:, [i for i in range(n) if i not in bad]]))
    assert np.all(np.diag(D) == 0) and np.all(D == D.T)
    assert_close(D, R, dtype)
    k = byzcore.krum(X, f)
    assert np.all(np.isfinite(k))
    np.testing.assert_array_equal(k, ref64.krum(X, f).astype(dtype))
    mk = byzcore.multi_krum(X, f)
    assert np.all(np.isfinite(mk))
    assert_close(mk, ref64.multi_krum(X, f), dtype)
    N = byzcore.nnm(X, f)
    assert np.all(np.isfinite(N))
    assert_close(N, ref64.nnm(X, f), dtype)
    gm = byzcore.geometric_median(X)
    assert np.all(np.isfinite(gm))
    ref = ref64.geometric_median(X)
    assert_close(gm, ref, dtype, rtol=1e-5 if dtype is np.float32 else 1e-9)


# ----------------------------------------------------------------------------- geometric median

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", [(1, 5), (2, 3), (5, 10), (32, 3000), (64, 1001)])
def test_geometric_median(n, d, dtype):
    rng = np.random.default_rng(n * d)
    X = gradients(rng, n, d, dtype, spread=1.0)
    got = byzcore.geometric_median(X, max_iter=50, tol=1e-9)
    ref = ref64.geometric_median(X, max_iter=50, tol=1e-9)
    assert got.dtype == dtype
    assert_close(got, ref, dtype, rtol=1e-5 if dtype is np.float32 else 1e-9)


def test_geometric_median_iterations_weights_and_start():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((9, 20))
    # max_iter = 0 returns the start point, the coordinate-wise median
    np.testing.assert_allclose(byzcore.geometric_median(X, max_iter=0), np.median(X, axis=0), rtol=0, atol=0)
    w = rng.uniform(0.1, 2.0, size=9)
    w[4] = 0
    for it in (1, 2, 7):
        ref, n_it = ref64.weiszfeld(X, max_iter=it, tol=0.0, weights=w)
        assert n_it == it
        assert_close(byzcore.geometric_median(X, max_iter=it, tol=0.0, weights=w), ref, np.float64)
    # the iteration count: the compiled kernel stops at the same step as the reference
    _, n_ref = ref64.weiszfeld(X, tol=1e-6)
    from byzcore._arrays import Batch
    from byzcore._native import core

    b = Batch("geometric_median", X)
    out, ptr = b.empty((b.d,))
    assert core.geometric_median(b.messages, [], 1e-6, 100, 1e-6, ptr) == n_ref
    # a Byzantine point far away barely moves the geometric median (unlike the mean)
    Y = np.vstack([X, 1e6 * np.ones((1, 20))])
    assert np.linalg.norm(byzcore.geometric_median(Y) - ref64.geometric_median(X)) < 1.0


# ----------------------------------------------------------------------------- input kinds

def test_list_and_torch_inputs():
    rng = np.random.default_rng(4)
    X = gradients(rng, 12, 300, np.float32)
    rows = [X[i].reshape(20, 15) for i in range(12)]  # a list of per-worker arrays, read in place
    np.testing.assert_array_equal(byzcore.pairwise_distances(rows), byzcore.pairwise_distances(X))
    k = byzcore.krum(rows, 2)
    assert k.shape == (20, 15)
    np.testing.assert_array_equal(k.reshape(-1), byzcore.krum(X, 2))
    assert byzcore.nnm(rows, 2).shape == (12, 20, 15)
    assert byzcore.geometric_median(rows).shape == (20, 15)
    torch = pytest.importorskip("torch")
    T = torch.from_numpy(X)
    D = byzcore.pairwise_distances(T)
    assert isinstance(D, torch.Tensor) and D.dtype == torch.float32
    np.testing.assert_array_equal(D.numpy(), byzcore.pairwise_distances(X))
    np.testing.assert_array_equal(byzcore.multi_krum(T, 2).numpy(), byzcore.multi_krum(X, 2))
    np.testing.assert_array_equal(byzcore.geometric_median(list(T)).numpy(), byzcore.geometric_median(X))


def test_input_not_modified():
    rng = np.random.default_rng(8)
    X = gradients(rng, 30, 2000, np.float32)
    X[4, 0] = np.nan
    before = X.copy()
    byzcore.pairwise_distances(X), byzcore.krum(X, 3), byzcore.nnm(X, 3), byzcore.geometric_median(X)
    np.testing.assert_array_equal(X, before)


# ----------------------------------------------------------------------------- properties

finite32 = st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(1, 40)), elements=finite32))
def test_property_symmetric_nonnegative(X):
    D = byzcore.pairwise_distances(X)
    assert np.all(D == D.T) and np.all(np.diag(D) == 0) and np.all(D >= 0)
    with np.errstate(over="ignore"):  # the float32 output may overflow or underflow, like the reference cast
        R = ref64.pairwise_distances(X).astype(np.float32)
    assert_close(D, R, np.float32, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.integers(1, 300), st.integers(0, 2**32 - 1), st.floats(1e2, 1e8))
def test_property_krum_picks_honest(f, d, seed, far):
    rng = np.random.default_rng(seed)
    n = 2 * f + 3
    X = rng.standard_normal((n, d))
    out = rng.permutation(n)[:f]
    X[out] += far * rng.choice([-1, 1], size=(f, 1)) * (1 + rng.random((f, d)))
    k = byzcore.krum(X, f)
    honest = [i for i in range(n) if i not in set(out)]
    assert any(np.array_equal(k, X[i]) for i in honest)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(4, 12), st.integers(1, 30)),
                  elements=st.floats(-1e3, 1e3, allow_nan=False)), st.integers(0, 1))
def test_property_duplicates_tie(X, f):
    """A message and its copy get bit-identical scores; Krum then prefers the lower index."""
    X = np.vstack([X, X[:1]])
    s = byzcore.krum_scores(X, f)
    assert s[0] == s[-1]
    np.testing.assert_array_equal(byzcore.krum(X, f), X[int(np.argmin(s))])  # argmin: first of ties
