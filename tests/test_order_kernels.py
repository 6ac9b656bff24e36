"""Correctness of the CPU kernels for median, trimmed_mean, clip, rand_k(_indices),
centered_clipping and bucketing, against the plain float64 references of tests/reference.py.

The sizes are chosen to reach every code path of the order-statistics kernel: the median for
n <= 32 (the network held in SIMD registers), the network run over L1/L2 tiles after
sorting blocks of 16 in registers (any n up to 4096, whole or partial blocks), above 4096
(transposed tiles + selection), and d that is not a multiple of any SIMD width (tails).
Run under BYZCORE_ISA=generic and BYZCORE_ISA=avx2 to cover both compiled modules.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import byzcore
import reference as ref64

NS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 48, 64, 100, 127, 128, 129, 200, 301, 1000]
DS = [1, 3, 37, 1029]
DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------------------------- references

def rng_matrix(n, d, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


def tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- median / trimmed mean

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", NS)
def test_median_matches_reference(n, dtype):
    for d in DS:
        X = rng_matrix(n, d, dtype, seed=n * 7 + d)
        out = byzcore.median(X)
        assert out.dtype == dtype and out.shape == (d,)
        np.testing.assert_allclose(out, ref64.median(X), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", NS)
def test_trimmed_mean_matches_reference(n, dtype):
    for f in sorted({0, 1, n // 4, (n - 1) // 2}):
        if n <= 2 * f:
            continue
        X = rng_matrix(n, 1029, dtype, seed=n + f)
        out = byzcore.trimmed_mean(X, f)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, ref64.trimmed_mean(X, f), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_trimmed_mean_every_small_window(dtype):
    """n <= 32 runs one register network per (wire count 8/16/32, window width n - 2f), the n
    messages between -inf and +inf pad wires: every (n, f) once, with up to f non-finite
    entries per coordinate (ranked above every finite value) and a ragged tail (d = 13)."""
    rng = np.random.default_rng(7)
    for n in range(1, 34):
        for f in range((n + 1) // 2):
            if n <= 2 * f:
                continue
            X = rng.standard_normal((n, 13)).astype(dtype)
            for c in range(13):
                bad = rng.choice(n, size=rng.integers(0, f + 1), replace=False)
                X[bad, c] = rng.choice([np.nan, np.inf, -np.inf], size=bad.size)
            out = byzcore.trimmed_mean(X, f)
            assert np.all(np.isfinite(out)), (n, f)
            np.testing.assert_allclose(out, ref64.trimmed_mean(X, f), **tol(dtype), err_msg=f"n={n} f={f}")


def test_hand_computed_cases():
    X = np.array([[1.0, 10.0], [2.0, -5.0], [100.0, 0.0]])
    np.testing.assert_array_equal(byzcore.median(X), [2.0, 0.0])
    np.testing.assert_array_equal(byzcore.trimmed_mean(X, 1), [2.0, 0.0])
    np.testing.assert_allclose(byzcore.trimmed_mean(X, 0), X.mean(0), rtol=1e-15)
    # even n: the mean of the two middle values
    np.testing.assert_array_equal(byzcore.median(np.array([[4.0], [1.0], [3.0], [1e9]])), [3.5])
    # n = 1 and d = 1
    np.testing.assert_array_equal(byzcore.median(np.array([[7.5, -1.0]])), [7.5, -1.0])
    np.testing.assert_array_equal(byzcore.median(np.array([[3.0], [1.0]])), [2.0])
    # trimmed mean at the bound n = 2f + 1 is the median
    X = rng_matrix(9, 50, np.float64)
    np.testing.assert_array_equal(byzcore.trimmed_mean(X, 4), byzcore.median(X))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 16, 32, 40, 150])
def test_ties(n, dtype):
    X = np.random.default_rng(n).integers(-2, 3, size=(n, 333)).astype(dtype)
    np.testing.assert_allclose(byzcore.median(X), ref64.median(X), **tol(dtype))
    np.testing.assert_allclose(byzcore.trimmed_mean(X, n // 3), ref64.trimmed_mean(X, n // 3), **tol(dtype))
    same = np.full((n, 17), 2.5, dtype=dtype)
    np.testing.assert_array_equal(byzcore.median(same), np.full(17, 2.5, dtype=dtype))
    np.testing.assert_array_equal(byzcore.trimmed_mean(same, n // 3), np.full(17, 2.5, dtype=dtype))


@pytest.mark.parametrize("n", [4, 6, 32, 64, 200])
def test_huge_float32_values_do_not_overflow(n):
    big = np.float32(3e38)
    X = np.full((n, 40), big, dtype=np.float32)
    X[: n // 2] = np.float32(2.8e38)
    med = byzcore.median(X)
    assert np.all(np.isfinite(med))
    np.testing.assert_allclose(med, ref64.median(X), rtol=1e-6)
    tm = byzcore.trimmed_mean(X, n // 4)
    assert np.all(np.isfinite(tm))
    np.testing.assert_allclose(tm, ref64.trimmed_mean(X, n // 4), rtol=1e-6)
    Y = np.full((n, 3), 1e38, dtype=np.float32)
    np.testing.assert_allclose(byzcore.trimmed_mean(Y, 0), np.full(3, 1e38), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 5, 8, 17, 32, 33, 64, 65, 129, 250])
def test_non_finite_rows_give_finite_results(n, dtype):
    f = (n - 1) // 2
    X = rng_matrix(n, 301, dtype, seed=n)
    bad = np.random.default_rng(n).choice(n, size=f, replace=False)
    poison = [np.nan, np.inf, -np.inf]
    for t, i in enumerate(bad):
        X[i] = poison[t % 3]
        X[i, :: 5] = 1.0  # mixed finite / non-finite rows too
    med = byzcore.median(X)
    assert np.all(np.isfinite(med))
    np.testing.assert_allclose(med, ref64.median(X), **tol(dtype))
    tm = byzcore.trimmed_mean(X, f)
    assert np.all(np.isfinite(tm))
    np.testing.assert_allclose(tm, ref64.trimmed_mean(X, f), **tol(dtype))
    g = max(f, n // 4)
    if len(bad) <= g and n > 2 * g:
        tm = byzcore.trimmed_mean(X, g)
        assert np.all(np.isfinite(tm))


def test_non_finite_ranks_above_every_finite_value():
    X = np.array([[-np.inf], [1.0], [2.0]])
    # -inf counts as larger than 2, so the middle value is 2
    np.testing.assert_array_equal(byzcore.median(X), [2.0])
    X = np.array([[np.nan, 0.0], [5.0, np.nan], [-1e30, 3.0], [4.0, -4.0]])
    np.testing.assert_array_equal(byzcore.trimmed_mean(X, 1), ref64.trimmed_mean(X, 1))


def test_selection_path_for_very_large_n():
    for n, d in [(4097, 5), (5000, 3)]:
        X = rng_matrix(n, d, np.float32, seed=n)
        X[:7, 1] = np.nan
        np.testing.assert_allclose(byzcore.median(X), ref64.median(X), **tol(np.float32))
        for f in (0, 1, n // 3, (n - 1) // 2):
            np.testing.assert_allclose(byzcore.trimmed_mean(X, f), ref64.trimmed_mean(X, f), rtol=1e-5, atol=1e-6)
    X = rng_matrix(4099, 2, np.float64, seed=1)
    np.testing.assert_allclose(byzcore.median(X), ref64.median(X), rtol=1e-12)


@pytest.mark.parametrize("n", [3, 20, 40, 140])
def test_list_and_torch_inputs(n):
    X = rng_matrix(n, 129, np.float32, seed=3)
    rows = [X[i].reshape(3, 43) for i in range(n)]
    out = byzcore.median(rows)
    assert out.shape == (3, 43)
    np.testing.assert_allclose(out.reshape(-1), ref64.median(X), **tol(np.float32))
    np.testing.assert_allclose(byzcore.trimmed_mean(list(X), 1), ref64.trimmed_mean(X, 1), **tol(np.float32))
    torch = pytest.importorskip("torch")
    T = torch.from_numpy(X.astype(np.float64))
    out = byzcore.median(T)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref64.median(X), **tol(np.float64))
    out = byzcore.trimmed_mean([T[i] for i in range(n)], n // 3)
    np.testing.assert_allclose(out.numpy(), ref64.trimmed_mean(X, n // 3), **tol(np.float64))


def test_inputs_are_not_modified():
    X = rng_matrix(40, 100, np.float32)
    X[3] = np.nan
    before = X.copy()
    byzcore.median(X)
    byzcore.trimmed_mean(X, 5)
    byzcore.clip(X, 1.0)
    byzcore.centered_clipping(X, 1.0)
    np.testing.assert_array_equal(X, before)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.integers(1, 20), st.data())
def test_property_order_statistics(n, d, data):
    X = np.array(data.draw(st.lists(st.lists(finite, min_size=d, max_size=d), min_size=n, max_size=n)),
                 dtype=np.float64).reshape(n, d)
    f = data.draw(st.integers(0, (n - 1) // 2))
    med = byzcore.median(X)
    np.testing.assert_allclose(med, ref64.median(X), rtol=1e-12, atol=1e-12)
    tm = byzcore.trimmed_mean(X, f)
    np.testing.assert_allclose(tm, ref64.trimmed_mean(X, f), rtol=1e-12, atol=1e-9)
    # permutation invariance and lying between min and max
    perm = np.random.default_rng(n).permutation(n)
    np.testing.assert_array_equal(byzcore.median(X[perm]), med)
    assert np.all(tm >= X.min(0) - 1e-9) and np.all(tm <= X.max(0) + 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.data())
def test_property_non_finite_tolerated(n, data):
    f = data.draw(st.integers(0, (n - 1) // 2))
    X = rng_matrix(n, 9, np.float32, seed=n)
    for i in data.draw(st.lists(st.integers(0, n - 1), max_size=f, unique=True)):
        X[i, data.draw(st.integers(0, 8))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    assert np.all(np.isfinite(byzcore.trimmed_mean(X, f)))
    if f == (n - 1) // 2:
        assert np.all(np.isfinite(byzcore.median(X)))


# ----------------------------------------------------------------------------- clip

@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_rows(dtype):
    X = rng_matrix(6, 1001, dtype) * np.array([0.001, 0.5, 1, 10, 100, 0], dtype=dtype)[:, None]
    out = byzcore.clip(X, 5.0)
    assert out.shape == X.shape and out.dtype == dtype
    np.testing.assert_allclose(out, ref64.clip(X, 5.0), **tol(dtype))
    assert np.all(out[5] == 0)
    norms = np.linalg.norm(out.astype(np.float64), axis=1)
    assert np.all(norms <= 5.0 * (1 + 1e-6))


def test_clip_vector_and_hand_cases():
    np.testing.assert_allclose(byzcore.clip(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])
    np.testing.assert_array_equal(byzcore.clip(np.array([3.0, 4.0]), 5.0), [3.0, 4.0])
    np.testing.assert_array_equal(byzcore.clip(np.zeros(4), 1.0), np.zeros(4))
    np.testing.assert_array_equal(byzcore.clip(np.array([3.0, 4.0]), 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(byzcore.clip(np.array([3.0, 4.0]), np.inf), [3.0, 4.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_non_finite_rows_become_zero(dtype):
    X = rng_matrix(4, 50, dtype)
    X[1, 7] = np.nan
    X[2, 0] = -np.inf
    out = byzcore.clip(X, 1.0)
    assert np.all(np.isfinite(out))
    assert np.all(out[1] == 0) and np.all(out[2] == 0)
    np.testing.assert_allclose(out, ref64.clip(X, 1.0), **tol(dtype))


def test_clip_huge_values():
    X = np.full((2, 100), 1e38, dtype=np.float32)
    out = byzcore.clip(X, 1.0)
    np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), [1.0, 1.0], rtol=1e-6)
    # float64 whose squares overflow: rescaled, not treated as non-finite
    Y = np.array([[1e200, -1e200, 0.0]])
    np.testing.assert_allclose(byzcore.clip(Y, 2.0), [[np.sqrt(2.0), -np.sqrt(2.0), 0.0]], rtol=1e-12)
    Z = np.array([[1e-200, 1e-200]])
    np.testing.assert_array_equal(byzcore.clip(Z, 1.0), Z)


def test_clip_list_and_torch():
    X = rng_matrix(3, 20, np.float64) * 10
    out = byzcore.clip(list(X), 2.0)
    np.testing.assert_allclose(out, ref64.clip(X, 2.0), rtol=1e-12)
    torch = pytest.importorskip("torch")
    out = byzcore.clip(torch.from_numpy(X[0]), 2.0)
    assert isinstance(out, torch.Tensor) and out.shape == (20,)
    np.testing.assert_allclose(out.numpy(), ref64.clip(X[:1], 2.0)[0], rtol=1e-12)


# ----------------------------------------------------------------------------- centered clipping

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("iters", [1, 3])
def test_centered_clipping_matches_reference(dtype, iters):
    X = rng_matrix(9, 513, dtype) + np.arange(9, dtype=dtype)[:, None]
    center = rng_matrix(1, 513, dtype, seed=5)[0]
    for c in (None, center):
        out = byzcore.centered_clipping(X, 4.0, center=c, iters=iters)
        assert out.dtype == dtype and out.shape == (513,)
        np.testing.assert_allclose(out, ref64.centered_clipping(X, 4.0, center=c, iters=iters), **tol(dtype))


def test_centered_clipping_hand_cases():
    X = np.array([[3.0, 4.0], [0.0, 0.0]])
    # from zero: clip((3,4), 1) = (0.6, 0.8); mean over 2 messages
    np.testing.assert_allclose(byzcore.centered_clipping(X, 1.0), [0.3, 0.4])
    # tau = inf: one step from zero is the plain mean
    np.testing.assert_allclose(byzcore.centered_clipping(X, np.inf), X.mean(0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_centered_clipping_non_finite_messages_contribute_zero(dtype):
    X = rng_matrix(7, 64, dtype)
    X[2, 5] = np.nan
    X[4] = np.inf
    out = byzcore.centered_clipping(X, 1.0, iters=4)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref64.centered_clipping(X, 1.0, iters=4), **tol(dtype))


def test_centered_clipping_huge_float32():
    X = np.full((3, 10), 3e38, dtype=np.float32)
    out = byzcore.centered_clipping(X, np.inf)
    np.testing.assert_allclose(out, np.full(10, 3e38), rtol=1e-6)


# ----------------------------------------------------------------------------- rand_k

@pytest.mark.parametrize("d,k", [(1, 1), (10, 1), (10, 3), (10, 10), (100, 50), (257, 7), (1000, 999)])
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**64 - 1])
def test_rand_k_indices_follow_the_documented_rule(d, k, seed):
    idx = byzcore.rand_k_indices(d, k, seed=seed)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, ref64.rand_k_indices(d, k, seed))


def test_rand_k_indices_large_d():
    d, k = 2_000_003, 1000
    idx = byzcore.rand_k_indices(d, k, seed=7)
    assert len(idx) == k and len(np.unique(idx)) == k
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < d
    keys = np.array([ref64.counter_key(7, int(j)) for j in idx], dtype=np.uint64)
    # every kept key is at most the k-th smallest, so no other coordinate may have a smaller key
    # than the largest kept one: check against a sample of the others.
    others = np.setdiff1d(np.arange(0, d, 997), idx)
    other_keys = np.array([ref64.counter_key(7, int(j)) for j in others], dtype=np.uint64)
    assert keys.max() < other_keys.min()
    np.testing.assert_array_equal(byzcore.rand_k_indices(d, k, seed=7), idx)


def test_rand_k_indices_are_uniform():
    d, k, trials = 20, 5, 4000
    counts = np.zeros(d)
    for s in range(trials):
        counts[byzcore.rand_k_indices(d, k, seed=s)] += 1
    expected = trials * k / d
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rand_k_dense(dtype):
    X = rng_matrix(3, 1500, dtype)
    out = byzcore.rand_k(X, 40, seed=3)
    idx = byzcore.rand_k_indices(1500, 40, seed=3)
    ref = np.zeros_like(X)
    ref[:, idx] = X[:, idx] * dtype(1500 / 40)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)
    one = byzcore.rand_k(X[1], 40, seed=3)
    np.testing.assert_array_equal(one, ref[1])
    i2, v2 = byzcore.rand_k_sparse(X[1], 40, seed=3)
    np.testing.assert_array_equal(byzcore.rand_k_dense(i2, v2, 1500), one)


def test_rand_k_unbiased():
    x = np.linspace(-1, 1, 12)
    avg = np.mean([byzcore.rand_k(x, 3, seed=s) for s in range(6000)], axis=0)
    np.testing.assert_allclose(avg, x, atol=0.12)


# ----------------------------------------------------------------------------- bucketing

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,s", [(1, 1), (5, 1), (5, 2), (10, 3), (10, 10), (7, 20), (64, 4)])
def test_bucket_means(n, s, dtype):
    X = rng_matrix(n, 77, dtype, seed=n + s)
    seen = []

    def capture(M):
        seen.append(np.array(M))
        return M[0]

    byzcore.bucketing(X, s, capture, seed=11)
    perm = byzcore.permutation(n, seed=11)
    ref = np.array([X[perm[b * s: min(n, (b + 1) * s)]].astype(np.float64).mean(0) for b in range(-(-n // s))])
    assert seen[0].dtype == dtype and seen[0].shape == ref.shape
    np.testing.assert_allclose(seen[0], ref, **tol(dtype))
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))


def test_bucketing_median_end_to_end():
    X = rng_matrix(12, 50, np.float64)
    X[0] = np.nan
    out = byzcore.bucketing(X, 2, byzcore.median, seed=5)
    perm = byzcore.permutation(12, seed=5)
    means = np.array([X[perm[2 * b: 2 * b + 2]].mean(0) for b in range(6)])
    np.testing.assert_allclose(out, ref64.median(means), rtol=1e-12)
    assert np.all(np.isfinite(out))
