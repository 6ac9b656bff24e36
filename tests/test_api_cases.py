"""Small cases worked out by hand (the expected numbers are written out, not computed by a
reference), most with Byzantine outliers, and the edge cases of docs/spec.md#rules:
n = 1, n = 2f + 1, d = 1, ties, huge values.

Every test runs once per device of ``conftest.devices()`` (CPU, and CUDA when a GPU and the
CUDA kernels are present): ``arr`` builds the inputs on the device of the run, ``close``
brings results back to NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import byzcore as bz
import reference as ref
from conftest import on_device, to_numpy

DTYPES = ["float64", "float32"]
_DEVICE = ["cpu"]


@pytest.fixture(autouse=True)
def _on_each_device(device):
    """Runs every test of this module on each device; ``arr`` reads the current one."""
    _DEVICE[0] = device
    yield
    _DEVICE[0] = "cpu"


def arr(rows, dtype="float64"):
    return on_device(np.array(rows, dtype=dtype), _DEVICE[0])


def close(got, want, dtype="float64", atol=0.0):
    rtol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(to_numpy(got).astype(np.float64), np.array(want, dtype=np.float64),
                               rtol=rtol, atol=atol)


# ---------------------------------------------------------------- mean / median / trimmed mean
@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_hand(dtype):
    got = bz.mean(arr([[1, 2], [3, 4], [5, 100]], dtype))
    close(got, [3.0, 106 / 3], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_median_odd_with_outliers(dtype):
    # column 0 sorted: -7 1 2 5 1000 -> 2; column 1 sorted: -1e6 0 3 4 8 -> 3
    X = arr([[1, 3], [5, 8], [1000, -1e6], [2, 4], [-7, 0]], dtype)
    close(bz.median(X), [2.0, 3.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_median_even_is_mean_of_middle_two(dtype):
    # column 0 sorted: 1 2 3 100 -> 2.5; column 1 sorted: -1000 10 20 30 -> 15
    X = arr([[1, 10], [2, 20], [3, 30], [100, -1000]], dtype)
    close(bz.median(X), [2.5, 15.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_median_ties(dtype):
    X = arr([[4, 1], [4, 1], [4, 2], [-9, 1], [50, 1]], dtype)
    close(bz.median(X), [4.0, 1.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trimmed_mean_hand(dtype):
    # column 0: drop 1 and 1000, average 2 3 4 -> 3; column 1: drop -1e6 and 3 -> (0+1+2)/3 = 1
    X = arr([[1, -1e6], [2, 0], [3, 1], [4, 2], [1000, 3]], dtype)
    close(bz.trimmed_mean(X, 1), [3.0, 1.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trimmed_mean_f0_is_mean_and_2f1_is_median(dtype):
    X = arr([[1], [2], [10], [-4], [7]], dtype)
    close(bz.trimmed_mean(X, 0), [16 / 5], dtype)
    close(bz.trimmed_mean(X, 2), [2.0], dtype)  # n = 2f + 1: only the median is left


@pytest.mark.parametrize("dtype", DTYPES)
def test_trimmed_mean_even_n(dtype):
    # n = 6, f = 2: sorted -50 1 2 3 4 60 -> keep 2 3 -> 2.5
    X = arr([[3], [60], [1], [-50], [4], [2]], dtype)
    close(bz.trimmed_mean(X, 2), [2.5], dtype)


# ---------------------------------------------------------------- distances and Krum
@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_distances_hand(dtype):
    X = arr([[0, 0], [3, 4], [0, 1]], dtype)
    close(bz.pairwise_distances(X), [[0, 25, 1], [25, 0, 18], [1, 18, 0]], dtype)
    close(bz.pairwise_distances(X, squared=False),
          [[0, 5, 1], [5, 0, math.sqrt(18)], [1, math.sqrt(18), 0]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_distances_near_identical_messages_not_negative(dtype):
    # Large common offset, tiny differences: a naive Gram product cancels catastrophically.
    base = np.full(64, 1e4)
    X = np.stack([base, base + 1e-3 * (np.arange(64) % 2), base]).astype(dtype)
    Dm = np.asarray(bz.pairwise_distances(X), dtype=np.float64)
    assert np.all(Dm >= 0)
    assert np.all(np.diag(Dm) == 0)
    np.testing.assert_array_equal(Dm, Dm.T)
    assert Dm[0, 2] == 0  # identical messages
    want = ref.pairwise_distances(X.astype(np.float64))[0, 1]  # 32 * 1e-6, up to input rounding
    assert Dm[0, 1] == pytest.approx(want, rel=1e-2 if dtype == "float32" else 1e-9)


# X = 0, 1, 3, 4 and a Byzantine 20 (d = 1, f = 1, n - f - 2 = 2 nearest):
# squared distances: 0:{1,9,16,400} 1:{1,4,9,361} 3:{9,4,1,289} 4:{16,9,1,256} 20:{400,361,289,256}
KRUM_X = [[0], [1], [3], [4], [20]]
KRUM_SCORES = [1 + 9, 1 + 4, 1 + 4, 1 + 9, 256 + 289]


@pytest.mark.parametrize("dtype", DTYPES)
def test_krum_hand(dtype):
    X = arr(KRUM_X, dtype)
    close(bz.krum_scores(X, 1), KRUM_SCORES, dtype)
    close(bz.krum(X, 1), [1.0], dtype)  # scores 5, 5 tie: the lower index (message 1)
    close(bz.multi_krum(X, 1), [(0 + 1 + 3 + 4) / 4], dtype)  # m = n - f = 4 drops the 20
    close(bz.multi_krum(X, 1, m=2), [(1 + 3) / 2], dtype)
    close(bz.multi_krum(X, 1, m=3), [(1 + 3 + 0) / 3], dtype)  # tie 10, 10: message 0 before 3
    close(bz.multi_krum(X, 1, m=1), [1.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_krum_all_tied_picks_lowest_index(dtype):
    # Pairs of identical messages: every score is 0.
    X = arr([[5, 5], [5, 5], [0, 0], [0, 0]], dtype)
    close(bz.krum_scores(X, 1), [0, 0, 0, 0], dtype)
    close(bz.krum(X, 1), [5.0, 5.0], dtype)
    close(bz.multi_krum(X, 1, m=3), [10 / 3, 10 / 3], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_krum_minimum_n(dtype):
    # n = f + 3 with f = 0: score = the single nearest squared distance.
    X = arr([[0], [10], [11]], dtype)
    close(bz.krum_scores(X, 0), [100, 1, 1], dtype)
    close(bz.krum(X, 0), [10.0], dtype)


# ---------------------------------------------------------------- geometric median
@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_median_1d_is_median(dtype):
    # Starts at the median 2, where the point at 2 gets weight 1/nu: it stays at 2.
    got = bz.geometric_median(arr([[0], [1], [2], [3], [100]], dtype))
    close(got, [2.0], dtype, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_median_ignores_far_outlier(dtype):
    # Origin holds two points and the rest cancel by symmetry: the geometric median is the
    # origin whatever the far Byzantine point (its unit vector is outweighed).
    X = arr([[1, 0], [-1, 0], [0, 1], [0, -1], [0, 0], [0, 0], [1e3, 1e3]], dtype)
    close(bz.geometric_median(X), [0.0, 0.0], dtype, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_median_weighted(dtype):
    # Weighted 1-D: weights 3 at 0 and 1 at 10 -> the weighted median 0. From the unweighted
    # median 5 each step maps z to 10 z / (30 - 2 z), i.e. about z / 3, then stalls at ~nu/3.
    X = arr([[0], [10]], dtype)
    close(bz.geometric_median(X, weights=[3, 1]), [0.0], dtype, atol=1e-5)
    close(bz.geometric_median(X, weights=[3, 1], max_iter=1, tol=0.0), [2.5], dtype)
    close(bz.geometric_median(X, weights=[3, 1], max_iter=2, tol=0.0), [1.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_median_max_iter_0_is_coordinate_median(dtype):
    X = arr([[0, 5], [1, -1], [9, 2], [100, 3]], dtype)
    close(bz.geometric_median(X, max_iter=0), [5.0, 2.5], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_median_one_step_hand(dtype):
    # Median start z = (1, 0) of (0,0) (2,0) (1,3); distances 1, 1, 3 -> weights 1, 1, 1/3
    # -> z = (0 + 2 + 1/3, 0 + 0 + 1) / (7/3) = (1, 3/7).
    X = arr([[0, 0], [2, 0], [1, 3]], dtype)
    close(bz.geometric_median(X, max_iter=1, tol=0.0), [1.0, 3 / 7], dtype)


# ---------------------------------------------------------------- clipping
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_hand(dtype):
    close(bz.clip(arr([3, 4], dtype), 1.0), [0.6, 0.8], dtype)
    close(bz.clip(arr([3, 4], dtype), 10.0), [3.0, 4.0], dtype)
    close(bz.clip(arr([3, 4], dtype), 5.0), [3.0, 4.0], dtype)
    close(bz.clip(arr([0, 0], dtype), 1.0), [0.0, 0.0], dtype)  # zero stays zero
    close(bz.clip(arr([3, 4], dtype), 0.0), [0.0, 0.0], dtype)
    close(bz.clip(arr([3, 4], dtype), math.inf), [3.0, 4.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_rows_with_byzantine_rows(dtype):
    X = arr([[3, 4], [0.3, 0.4], [0, 0], [np.nan, 1], [np.inf, 0], [-300, 400]], dtype)
    close(bz.clip(X, 1.0), [[0.6, 0.8], [0.3, 0.4], [0, 0], [0, 0], [0, 0], [-0.6, 0.8]], dtype)


# ---------------------------------------------------------------- centered clipping
@pytest.mark.parametrize("dtype", DTYPES)
def test_centered_clipping_hand(dtype):
    X = arr([[1, 0], [0, 1], [100, 0]], dtype)
    # iteration 1 from 0: clip to norm 1 -> (1,0) (0,1) (1,0): v = (2/3, 1/3)
    close(bz.centered_clipping(X, 1.0), [2 / 3, 1 / 3], dtype)
    # iteration 2: x0 - v = (1/3, -1/3) and x1 - v = (-2/3, 2/3) are inside the ball;
    # x2 - v = (298/3, -1/3) is scaled to unit length.
    r = math.hypot(298 / 3, 1 / 3)
    step = [(1 / 3 - 2 / 3 + (298 / 3) / r) / 3, (-1 / 3 + 2 / 3 - (1 / 3) / r) / 3]
    close(bz.centered_clipping(X, 1.0, iters=2), [2 / 3 + step[0], 1 / 3 + step[1]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_centered_clipping_from_center(dtype):
    X = arr([[1, 1], [3, 1], [1, 101]], dtype)
    # From (1, 1): differences (0,0), (2,0) -> clipped to (1,0), (0,100) -> (0,1): v = (1+1/3, 1+1/3)
    close(bz.centered_clipping(X, 1.0, center=np.array([1.0, 1.0])), [4 / 3, 4 / 3], dtype)
    # A huge tau is the plain mean after one step from anywhere.
    close(bz.centered_clipping(X, 1e9, center=np.array([7.0, -3.0])), [5 / 3, 103 / 3], dtype)


# ---------------------------------------------------------------- bucketing
@pytest.mark.parametrize("dtype", DTYPES)
def test_bucketing_hand(dtype):
    X = arr([[1], [2], [3], [4], [100], [200]], dtype)
    # One bucket of all six: the mean whatever the shuffle.
    close(bz.bucketing(X, 6, bz.median, seed=5), [310 / 6], dtype)
    # Buckets of one: the median of the (shuffled) messages is the median.
    close(bz.bucketing(X, 1, bz.median, seed=5), [3.5], dtype)
    # s larger than n: one bucket.
    close(bz.bucketing(X, 100, bz.mean, seed=5), [310 / 6], dtype)


def test_bucketing_uses_the_documented_permutation():
    X = arr([[1], [2], [4], [8], [16], [32], [64]])
    for seed in (0, 1, 2**63 + 5):
        perm = bz.permutation(7, seed=seed)
        np.testing.assert_array_equal(perm, ref.permutation(7, seed))
        got = bz.bucketing(X, 3, lambda means: means.reshape(-1), seed=seed)
        # The aggregator receives the bucket means in order: check them against the shuffle.
        H = to_numpy(X)
        want = [H[perm[0:3], 0].mean(), H[perm[3:6], 0].mean(), H[perm[6:7], 0].mean()]
        close(got, want)


# ---------------------------------------------------------------- NNM
@pytest.mark.parametrize("dtype", DTYPES)
def test_nnm_hand(dtype):
    # f = 1, n - f = 3 nearest (itself included): 0,1,2 -> mean 1 for each of them;
    # the Byzantine 100 mixes with 2 and 1.
    X = arr([[0], [1], [2], [100]], dtype)
    close(bz.nnm(X, 1), [[1], [1], [1], [103 / 3]], dtype)
    close(bz.nnm(X, 0), [[103 / 4]] * 4, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nnm_ties_lower_index_and_itself_included(dtype):
    # n - f = 2: itself and its single nearest other message, ties to the lower index.
    # row 0: 1 and 3 both at distance 1 -> message 1; row 1: message 3 at distance 0;
    # row 2: 1 and 3 both at distance 1 -> message 1; row 3: message 1 at distance 0.
    X = arr([[0], [1], [2], [1]], dtype)
    got = to_numpy(bz.nnm(X, 2)).astype(np.float64)
    np.testing.assert_allclose(got, ref.nnm(to_numpy(X).astype(np.float64), 2))
    close(got, [[0.5], [1.0], [1.5], [1.0]], dtype)


# ---------------------------------------------------------------- edge cases
ONE_ROW = [[1.5, -2.0, 3.0]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_message(dtype):
    X = arr(ONE_ROW, dtype)
    for got in (bz.mean(X), bz.median(X), bz.trimmed_mean(X, 0), bz.geometric_median(X),
                bz.bucketing(X, 2, bz.median, seed=0),
                bz.centered_clipping(X, 1e9)):
        close(got, ONE_ROW[0], dtype)
    close(bz.nnm(X, 0), ONE_ROW, dtype)
    close(bz.pairwise_distances(X), [[0.0]], dtype)
    close(bz.clip(X, 1e9), ONE_ROW, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_d_equals_one(dtype):
    X = arr([[4], [-1], [7], [2], [1e6]], dtype)
    close(bz.median(X), [4.0], dtype)
    close(bz.trimmed_mean(X, 2), [4.0], dtype)
    close(bz.krum(X, 1), ref.krum(to_numpy(X), 1), dtype)
    close(bz.geometric_median(X), [4.0], dtype, atol=1e-4)
    close(bz.clip(X, 2.0), [[2], [-1], [2], [2], [2]], dtype)


@pytest.mark.parametrize("n,f", [(3, 1), (5, 2), (9, 4)])
def test_n_equals_2f_plus_1(n, f):
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 6))
    X[:f] = 1e6  # f Byzantine messages
    close(bz.trimmed_mean(X, f), ref.median(X))
    close(bz.median(X), ref.median(X))
    if n >= f + 3:
        close(bz.krum(X, f), ref.krum(X, f))


def test_huge_float32_values():
    # Values near float32's limit: the result is representable, so it must come out finite
    # and right (accumulate / average without overflowing float32).
    big = np.float32(1e38)
    X = np.array([[big, -big], [big, -big], [big, -big], [2 * big, -2 * big], [big, 0]], dtype=np.float32)
    close(bz.mean(X), [1.2e38, -1.0e38], "float32")
    close(bz.median(X), [1e38, -1e38], "float32")
    close(bz.median(X[:4]), [1e38, -1e38], "float32")  # even n: mean of two middle values
    close(bz.median(np.array([[3e38], [3e38]], dtype=np.float32)), [3e38], "float32")
    close(bz.trimmed_mean(X, 1), [1e38, -1e38], "float32")
    close(bz.clip(np.array([big, big], dtype=np.float32), 1.0), [1 / math.sqrt(2)] * 2, "float32")
    close(bz.geometric_median(X[:3]), [1e38, -1e38], "float32")
    close(bz.centered_clipping(np.array([[big, big]], dtype=np.float32), 2.0),
          [math.sqrt(2), math.sqrt(2)], "float32")


def test_huge_float64_values():
    X = np.array([[1e300], [1e300], [-1e300]])
    close(bz.median(X), [1e300])
    close(bz.mean(X), [1e300 / 3])
    close(bz.clip(np.array([1e300, 1e300]), 2.0), [math.sqrt(2)] * 2)


def test_tiny_values_not_flushed():
    X = np.array([[1e-40], [2e-40], [3e-40]], dtype=np.float32)  # float32 subnormals
    close(bz.median(X), [2e-40], "float32", atol=1e-45)
    close(bz.clip(np.array([3e-40, 4e-40], dtype=np.float32), 1.0), [3e-40, 4e-40], "float32", atol=1e-45)
