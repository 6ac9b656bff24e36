"""rand_k: the documented draw, exactly k nonzeros, reproducibility, unbiasedness (a statistical
test over a fixed set of seeds with a stated tolerance), and the sparse form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref

import byzcore as bz


@pytest.mark.parametrize("d,k,seed", [(1, 1, 0), (10, 3, 0), (10, 10, 5), (37, 5, 123), (100, 1, 2**64 - 1),
                                      (1000, 999, 42), (4096, 17, 7)])
def test_indices_are_the_documented_draw(d, k, seed):
    idx = bz.rand_k_indices(d, k, seed=seed)
    assert isinstance(idx, np.ndarray)
    assert idx.dtype == np.int64
    assert idx.shape == (k,)
    np.testing.assert_array_equal(idx, ref.rand_k_indices(d, k, seed))


@pytest.mark.parametrize("d,k", [(50, 7), (8, 1), (8, 8), (3000, 1500)])
def test_indices_sorted_unique_in_range(d, k):
    for seed in range(20):
        idx = bz.rand_k_indices(d, k, seed=seed)
        assert np.all(np.diff(idx) > 0)
        assert idx[0] >= 0
        assert idx[-1] < d


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exactly_k_nonzeros_scaled(dtype):
    rng = np.random.default_rng(0)
    d, k = 40, 9
    x = (rng.random(d) + 0.5).astype(dtype)  # no zero entries
    for seed in range(10):
        y = bz.rand_k(x, k, seed=seed)
        assert y.dtype == x.dtype
        assert y.shape == x.shape
        nz = np.flatnonzero(y)
        assert len(nz) == k
        np.testing.assert_array_equal(nz, bz.rand_k_indices(d, k, seed=seed))
        np.testing.assert_allclose(y[nz], x[nz].astype(np.float64) * d / k, rtol=1e-6)


def test_k_equals_d_is_identity():
    x = np.arange(1.0, 8.0)
    np.testing.assert_array_equal(bz.rand_k(x, 7, seed=3), x)


def test_same_seed_same_draw_different_seeds_differ():
    x = np.arange(1.0, 201.0)
    a, b = bz.rand_k(x, 10, seed=99), bz.rand_k(x, 10, seed=99)
    np.testing.assert_array_equal(a, b)
    draws = {tuple(bz.rand_k_indices(200, 10, seed=s)) for s in range(50)}
    assert len(draws) == 50  # C(200, 10) ~ 2e16 draws: repeats would mean a broken generator


def test_rows_share_one_draw():
    X = np.arange(1.0, 31.0).reshape(3, 10)
    Y = bz.rand_k(X, 4, seed=11)
    masks = Y != 0
    assert np.all(masks == masks[0])
    assert masks[0].sum() == 4


def test_same_draw_for_every_dtype_and_framework():
    x = np.arange(1.0, 65.0)
    want = np.flatnonzero(bz.rand_k(x, 8, seed=5))
    assert np.array_equal(np.flatnonzero(bz.rand_k(x.astype(np.float32), 8, seed=5)), want)
    torch = pytest.importorskip("torch")
    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        y = bz.rand_k(torch.tensor(x, dtype=dt), 8, seed=5)
        assert isinstance(y, torch.Tensor)
        assert y.dtype == dt
        assert np.array_equal(np.flatnonzero(y.to(torch.float64).numpy()), want)
    idx = bz.rand_k_indices(64, 8, seed=5, like=torch.zeros(64))
    assert isinstance(idx, torch.Tensor)
    assert idx.dtype == torch.int64
    np.testing.assert_array_equal(idx.numpy(), want)


def test_unbiased():
    """E[rand_k(x)] = x. Over N = 4000 fixed seeds each coordinate's average has standard
    deviation |x_j| * sqrt(omega / N), omega = d/k - 1 = 3 here (about 0.027 |x_j|); we allow
    5 standard deviations per coordinate. With 20 coordinates a correct generator fails this
    with probability about 20 * 6e-7, and the seed set is fixed, so the test is deterministic."""
    d, k, N = 20, 5, 4000
    x = np.linspace(-2.0, 3.0, d)
    x[x == 0] = 0.5
    total = np.zeros(d)
    for seed in range(N):
        total += bz.rand_k(x, k, seed=seed)
    avg = total / N
    omega = d / k - 1
    sd = np.abs(x) * math.sqrt(omega / N)
    assert np.all(np.abs(avg - x) <= 5 * sd), np.max(np.abs(avg - x) / sd)


def test_draw_is_uniform_without_replacement():
    """Inclusion frequencies: P(j kept) = k/d and P(i and j kept) = k(k-1)/(d(d-1)). Over N fixed
    seeds the counts are binomial; we allow 5 sd for the d singles and 6 sd for the d(d-1)/2
    pairs (family-wise false alarm probability below 1e-5 for a uniform draw)."""
    d, k, N = 16, 4, 4000
    counts = np.zeros(d)
    pairs = np.zeros((d, d))
    for seed in range(N):
        idx = bz.rand_k_indices(d, k, seed=seed)
        counts[idx] += 1
        pairs[np.ix_(idx, idx)] += 1
    p1 = k / d
    assert np.all(np.abs(counts - N * p1) <= 5 * math.sqrt(N * p1 * (1 - p1))), counts
    p2 = k * (k - 1) / (d * (d - 1))
    off = pairs[~np.eye(d, dtype=bool)]
    assert np.all(np.abs(off - N * p2) <= 6 * math.sqrt(N * p2 * (1 - p2))), (off.min(), off.max(), N * p2)


def test_nearby_seeds_uncorrelated():
    """Seeds s and s+1 keep overlapping sets no more often than independent draws would."""
    d, k, N = 100, 10, 2000
    overlap = [len(np.intersect1d(bz.rand_k_indices(d, k, seed=s), bz.rand_k_indices(d, k, seed=s + 1)))
               for s in range(N)]
    # Hypergeometric overlap: mean k^2/d = 1, variance ~ 0.83; the mean of N has sd ~0.02.
    assert abs(np.mean(overlap) - k * k / d) < 0.15


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sparse_roundtrip_numpy(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50).astype(dtype)
    idx, values = bz.rand_k_sparse(x, 6, seed=8)
    np.testing.assert_array_equal(idx, bz.rand_k_indices(50, 6, seed=8))
    assert values.shape == (6,)
    dense = bz.rand_k_dense(idx, values, 50)
    assert dense.dtype == x.dtype
    np.testing.assert_allclose(dense, bz.rand_k(x, 6, seed=8), rtol=1e-6)


def test_sparse_roundtrip_torch():
    torch = pytest.importorskip("torch")
    x = torch.randn(30, generator=torch.Generator().manual_seed(0))
    idx, values = bz.rand_k_sparse(x, 4, seed=2)
    assert isinstance(idx, torch.Tensor)
    assert isinstance(values, torch.Tensor)
    dense = bz.rand_k_dense(idx, values, 30)
    assert isinstance(dense, torch.Tensor)
    np.testing.assert_allclose(dense.numpy(), bz.rand_k(x, 4, seed=2).numpy(), rtol=1e-6)


def test_sparse_of_shaped_message():
    # The sparse form is of one message, flattened (rand_k of a 2-D array is one draw per row).
    x = np.arange(1.0, 13.0).reshape(3, 4)
    idx, values = bz.rand_k_sparse(x, 3, seed=4)
    np.testing.assert_allclose(bz.rand_k_dense(idx, values, 12), bz.rand_k(x.reshape(-1), 3, seed=4))


def test_d_is_capped_at_2_32():
    # The draw scans all d keys (2**30 took 8.7 s): 2**40 ran for hours, 2**32 bounds a call.
    for d in [2**32 + 1, 2**40, 2**63 - 1]:
        with pytest.raises(ValueError, match=r"^\[rand_k_indices\] d must be in 1\.\.2\*\*32"):
            bz.rand_k_indices(d, 1, seed=0)
        with pytest.raises(ValueError, match=r"^\[rand_k_dense\] d must be in 1\.\.2\*\*32"):
            bz.rand_k_dense(np.array([0]), np.array([1.0]), d)
    with pytest.raises(ValueError, match=r"^\[rand_k_indices\] k must be in 1\.\.d \(d = 5\), got 6"):
        bz.rand_k_indices(5, 6, seed=0)


def test_indices_that_do_not_fit_raise_value_error(monkeypatch):
    import os

    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if memory < 8 * 2**32:  # 32 GiB of indices on this machine: refused before any allocation
        with pytest.raises(ValueError, match=r"^\[rand_k_indices\] the k = 4294967296 indices .* do not fit in memory"):
            bz.rand_k_indices(2**32, 2**32, seed=0)
    monkeypatch.setattr(bz._ops, "_physical_memory", lambda: 2**20)  # 1 MiB: 2**17 indices fit, 2**17 + 1 not
    np.testing.assert_array_equal(bz.rand_k_indices(2**17, 2**17, seed=0), np.arange(2**17))
    with pytest.raises(ValueError, match=r"^\[rand_k_indices\] the k = 131073 indices \(1048584 bytes"):
        bz.rand_k_indices(2**18, 2**17 + 1, seed=0)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(bz._ops, "_physical_memory", lambda: None)
    monkeypatch.setattr(bz._ops.np, "empty", no_memory)  # the allocation itself fails
    with pytest.raises(ValueError, match=r"^\[rand_k_indices\] the k = 3 indices .* do not fit in memory"):
        bz.rand_k_indices(10, 3, seed=0)


def test_dense_refuses_indices_it_cannot_place():
    # A negative index used to wrap (rand_k_dense([-1], [1.], 3) gave [0, 0, 1]) and a repeated
    # one to keep only its last value: both are refused, as the docstring says.
    bad = [
        (np.array([-1]), np.array([1.0]), r"indices must be in 0\.\.d-1 \(d = 3\), got -1"),
        ([3], [1.0], r"indices must be in 0\.\.d-1 \(d = 3\), got 3"),
        (np.array([0, 2**40]), np.ones(2), r"indices must be in 0\.\.d-1 \(d = 3\), got 1099511627776"),
        (np.array([2**64 - 1], dtype=np.uint64), [1.0],
         r"indices must be in 0\.\.d-1 \(d = 3\), got 18446744073709551615"),
        (np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]), r"indices must not repeat"),
        (np.array([0, 1]), np.array([1.0]), r"got 2 indices and 1 values"),
        (np.array([[0, 1]]), np.array([[1.0, 2.0]]), r"indices must be one-dimensional"),
    ]
    for idx, values, match in bad:
        with pytest.raises(ValueError, match=r"^\[rand_k_dense\] " + match):
            bz.rand_k_dense(idx, values, 3)
    for idx, values in [([0], [1]), (np.array([0]), np.array([True])), (np.array([0]), np.array([1], dtype=np.int32)),
                        (np.array([0.0]), np.array([1.0])), (["0"], [1.0])]:
        with pytest.raises(TypeError, match=r"^\[rand_k_dense\] "):
            bz.rand_k_dense(idx, values, 3)
    # what remains valid: unsorted distinct indices, NumPy integer kinds, an empty pair
    want = np.array([0.0, 5.0, 0.0, 2.0])
    np.testing.assert_array_equal(bz.rand_k_dense(np.array([3, 1], dtype=np.uint8), np.array([2.0, 5.0]), 4), want)
    np.testing.assert_array_equal(bz.rand_k_dense([], np.array([]), 2), np.zeros(2))
