"""Every bad input docs/spec.md#errors names gives ValueError / TypeError whose message names the
function in brackets ("[trimmed_mean] ...")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref

import byzcore as bz

GOOD = np.arange(15, dtype=np.float64).reshape(5, 3)

# Each function called on X with otherwise valid arguments (n = 5 satisfies every bound).
CALLS = {
    "mean": bz.mean,
    "median": bz.median,
    "trimmed_mean": lambda X: bz.trimmed_mean(X, 1),
    "pairwise_distances": bz.pairwise_distances,
    "krum_scores": lambda X: bz.krum_scores(X, 1),
    "krum": lambda X: bz.krum(X, 1),
    "multi_krum": lambda X: bz.multi_krum(X, 1),
    "geometric_median": bz.geometric_median,
    "clip": lambda X: bz.clip(X, 1.0),
    "rand_k": lambda X: bz.rand_k(X, 1, seed=0),
    "centered_clipping": lambda X: bz.centered_clipping(X, 1.0),
    "bucketing": lambda X: bz.bucketing(X, 2, bz.median, seed=0),
    "nnm": lambda X: bz.nnm(X, 1),
}
NAMES = list(CALLS)
# clip and rand_k also take one vector, so a 1-D input is valid for them.
NEEDS_2D = [n for n in NAMES if n not in ("clip", "rand_k")]


def raises(exc, op, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert f"[{op}]" in str(info.value), str(info.value)
    return str(info.value)


# The result each call of CALLS must give on GOOD (so the error tests below start from calls
# that are right, not merely calls that return).
WANT = {
    "mean": ref.mean,
    "median": ref.median,
    "trimmed_mean": lambda X: ref.trimmed_mean(X, 1),
    "pairwise_distances": ref.pairwise_distances,
    "krum_scores": lambda X: ref.krum_scores(X, 1),
    "krum": lambda X: ref.krum(X, 1),
    "multi_krum": lambda X: ref.multi_krum(X, 1),
    "geometric_median": ref.geometric_median,
    "clip": lambda X: ref.clip(X, 1.0),
    "rand_k": lambda X: ref.rand_k(X, ref.rand_k_indices(3, 1, 0)),
    "centered_clipping": lambda X: ref.centered_clipping(X, 1.0),
    "bucketing": lambda X: ref.bucketing(X, 2, ref.median, ref.permutation(5, 0)),
    "nnm": lambda X: ref.nnm(X, 1),
}


@pytest.mark.parametrize("name", NAMES)
def test_calls_are_valid_on_good_input(name):
    before = GOOD.copy()
    np.testing.assert_allclose(CALLS[name](GOOD), WANT[name](GOOD), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(GOOD, before)


# ---------------------------------------------------------------- bad X, for every function
BAD_X_VALUE = {
    "no rows": np.zeros((0, 3)),
    "no columns": np.zeros((5, 0)),
    "empty list": [],
    "shapes differ": [np.zeros(3), np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3)],
    "shapes differ 2d": [np.zeros((2, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))],
    "list of empties": [np.zeros(0)] * 5,
    "ragged nested lists": [[1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
    "ragged deeper": [[[1.0], [2.0]], [[1.0]], [[1.0], [2.0]], [[1.0], [2.0]], [[1.0], [2.0]]],
}


@pytest.mark.parametrize("what", list(BAD_X_VALUE))
@pytest.mark.parametrize("name", NAMES)
def test_bad_x_value_error(name, what):
    raises(ValueError, name, CALLS[name], BAD_X_VALUE[what])


@pytest.mark.parametrize("name", NEEDS_2D)
def test_one_vector_is_not_n_messages(name):
    raises(ValueError, name, CALLS[name], np.arange(3.0))
    raises(ValueError, name, CALLS[name], np.float64(3.0))


BAD_X_TYPE = {
    "int64": GOOD.astype(np.int64),
    "int8": GOOD.astype(np.int8),
    "uint32": GOOD.astype(np.uint32),
    "bool": GOOD > 3,
    "complex128": GOOD.astype(np.complex128),
    "complex64": GOOD.astype(np.complex64),
    "list of ints": [np.arange(3)] * 5,
    "nested int lists": [[1, 2, 3]] * 5,
    "object": np.array([[object()] * 3] * 5, dtype=object),
    "string": "12345",
    "none": None,
    "int": 7,
    "dict": {"a": GOOD},
    "list with a non-array": [np.zeros(3), "x", np.zeros(3), np.zeros(3), np.zeros(3)],
    "list float then int": [np.zeros(3), np.zeros(3, dtype=np.int32)] + [np.zeros(3)] * 3,
}


@pytest.mark.parametrize("what", list(BAD_X_TYPE))
@pytest.mark.parametrize("name", NAMES)
def test_bad_x_type_error(name, what):
    raises(TypeError, name, CALLS[name], BAD_X_TYPE[what])


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool", "complex64", "complex128"])
@pytest.mark.parametrize("name", NAMES)
def test_torch_non_float_dtypes(name, dtype):
    torch = pytest.importorskip("torch")
    T = torch.ones((5, 3), dtype=getattr(torch, dtype))
    raises(TypeError, name, CALLS[name], T)
    raises(TypeError, name, CALLS[name], [T[i] for i in range(5)])


@pytest.mark.parametrize("name", NAMES)
def test_mixed_frameworks_in_a_list(name):
    torch = pytest.importorskip("torch")
    rows = [GOOD[i] for i in range(4)] + [torch.zeros(3, dtype=torch.float64)]
    raises(TypeError, name, CALLS[name], rows)


# ---------------------------------------------------------------- f and the bounds on n
F_OPS = {
    "trimmed_mean": bz.trimmed_mean,
    "krum_scores": bz.krum_scores,
    "krum": bz.krum,
    "multi_krum": bz.multi_krum,
    "nnm": bz.nnm,
}


@pytest.mark.parametrize("name", list(F_OPS))
def test_negative_f(name):
    msg = raises(ValueError, name, F_OPS[name], GOOD, -1)
    assert "f" in msg


@pytest.mark.parametrize("bad", [1.0, 1.5, "1", None, True, np.float64(1.0), [1]])
@pytest.mark.parametrize("name", list(F_OPS))
def test_f_must_be_an_integer(name, bad):
    raises(TypeError, name, F_OPS[name], GOOD, bad)


@pytest.mark.parametrize("name", list(F_OPS))
def test_f_numpy_integer_accepted(name):
    want = F_OPS[name](GOOD, 1)
    for f in (np.int64(1), np.int32(1), np.uint8(1), np.intp(1)):
        np.testing.assert_array_equal(F_OPS[name](GOOD, f), want)


@pytest.mark.parametrize("name", list(F_OPS))
def test_f_too_large_for_int64(name):
    raises(ValueError, name, F_OPS[name], GOOD, 2**70)


# (function, n that violates its bound, f) - docs/spec.md#rules: trimmed mean n > 2f, Krum n >= f + 3, NNM n > f
TOO_SMALL = [
    ("trimmed_mean", 4, 2), ("trimmed_mean", 2, 1), ("trimmed_mean", 1, 1),
    ("krum_scores", 4, 2), ("krum_scores", 2, 0),
    ("krum", 4, 2), ("krum", 1, 0), ("krum", 2, 0),
    ("multi_krum", 4, 2), ("multi_krum", 2, 0),
    ("nnm", 3, 3), ("nnm", 1, 1),
]


@pytest.mark.parametrize("name,n,f", TOO_SMALL)
def test_n_too_small(name, n, f):
    X = np.ones((n, 3))
    msg = raises(ValueError, name, F_OPS[name], X, f)
    assert "n" in msg
    raises(ValueError, name, F_OPS[name], [X[i] for i in range(n)], f)


@pytest.mark.parametrize("m", [0, -1, 6, 100])
def test_multi_krum_bad_m(m):
    raises(ValueError, "multi_krum", bz.multi_krum, GOOD, 1, m)


@pytest.mark.parametrize("m", [1.5, "2", True])
def test_multi_krum_m_type(m):
    raises(TypeError, "multi_krum", bz.multi_krum, GOOD, 1, m)


# ---------------------------------------------------------------- other arguments
@pytest.mark.parametrize("kwargs", [
    {"nu": 0.0}, {"nu": -1.0}, {"nu": math.nan}, {"max_iter": -1}, {"tol": -1e-3}, {"tol": math.nan},
    {"weights": [1, 1, 1]}, {"weights": [1, 1, 1, 1, 1, 1]}, {"weights": [1, -1, 1, 1, 1]},
    {"weights": [0, 0, 0, 0, 0]}, {"weights": [1, math.nan, 1, 1, 1]}, {"weights": [1, math.inf, 1, 1, 1]},
])
def test_geometric_median_bad_values(kwargs):
    raises(ValueError, "geometric_median", bz.geometric_median, GOOD, **kwargs)


@pytest.mark.parametrize("kwargs", [{"nu": "small"}, {"nu": None}, {"max_iter": 2.5}, {"max_iter": None},
                                    {"tol": "x"}, {"weights": ["a"] * 5}])
def test_geometric_median_bad_types(kwargs):
    raises(TypeError, "geometric_median", bz.geometric_median, GOOD, **kwargs)


def test_geometric_median_is_keyword_only():
    with pytest.raises(TypeError):
        bz.geometric_median(GOOD, 1e-6)


@pytest.mark.parametrize("threshold", [-1.0, math.nan])
def test_clip_bad_threshold(threshold):
    raises(ValueError, "clip", bz.clip, GOOD, threshold)
    raises(ValueError, "clip", bz.clip, GOOD[0], threshold)


@pytest.mark.parametrize("threshold", ["1", None, [1.0], True])
def test_clip_threshold_type(threshold):
    raises(TypeError, "clip", bz.clip, GOOD, threshold)


@pytest.mark.parametrize("k", [0, -1, 4])
def test_rand_k_bad_k(k):
    raises(ValueError, "rand_k", bz.rand_k, GOOD, k, seed=0)
    raises(ValueError, "rand_k", bz.rand_k, GOOD[0], k, seed=0)
    raises(ValueError, "rand_k_indices", bz.rand_k_indices, 3, k, seed=0)


@pytest.mark.parametrize("kwargs,exc", [
    ({"seed": None}, TypeError), ({"seed": 1.0}, TypeError), ({"seed": "1"}, TypeError),
    ({"seed": -1}, ValueError), ({"seed": 2**64}, ValueError),
])
def test_rand_k_bad_seed(kwargs, exc):
    raises(exc, "rand_k", bz.rand_k, GOOD, 1, **kwargs)
    raises(exc, "rand_k_indices", bz.rand_k_indices, 3, 1, **kwargs)


def test_rand_k_seed_required():
    with pytest.raises(TypeError):
        bz.rand_k(GOOD, 1)  # keyword-only and required


def test_rand_k_indices_bad_d():
    raises(ValueError, "rand_k_indices", bz.rand_k_indices, 0, 1, seed=0)
    raises(ValueError, "rand_k_indices", bz.rand_k_indices, -5, 1, seed=0)
    raises(TypeError, "rand_k_indices", bz.rand_k_indices, 3.0, 1, seed=0)


@pytest.mark.parametrize("kwargs,exc", [
    ({"tau": -1.0}, ValueError), ({"tau": math.nan}, ValueError), ({"tau": "1"}, TypeError),
    ({"tau": 1.0, "iters": 0}, ValueError), ({"tau": 1.0, "iters": 1.5}, TypeError),
    ({"tau": 1.0, "center": np.zeros(4)}, ValueError), ({"tau": 1.0, "center": np.zeros(3, dtype=np.int64)}, TypeError),
    ({"tau": 1.0, "center": np.zeros((2, 3))}, ValueError),
])
def test_centered_clipping_bad_args(kwargs, exc):
    tau = kwargs.pop("tau")
    raises(exc, "centered_clipping", bz.centered_clipping, GOOD, tau, **kwargs)


def test_centered_clipping_center_of_another_framework():
    """A center converted to the messages' framework is checked first: a string center with
    torch messages is a named TypeError (torch's converter said it unnamed); a bfloat16 torch
    center with NumPy messages is read in float32 (NumPy has no bfloat16)."""
    torch = pytest.importorskip("torch")
    for X in (torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.bfloat16)):
        raises(TypeError, "centered_clipping", bz.centered_clipping, X, 0.0, center="0")
        raises(TypeError, "centered_clipping", bz.centered_clipping, X, 0.0, center=np.array(["0"]))
    c = torch.tensor([0.5, -1.0, 2.0], dtype=torch.bfloat16)
    got = bz.centered_clipping(GOOD, 1e9, center=c)
    np.testing.assert_allclose(got, GOOD.mean(axis=0), rtol=1e-12)  # tau large: one step lands on the mean


@pytest.mark.parametrize("args,kwargs,exc", [
    ((0, bz.median), {"seed": 0}, ValueError), ((-2, bz.median), {"seed": 0}, ValueError),
    ((2.0, bz.median), {"seed": 0}, TypeError), ((2, "median"), {"seed": 0}, TypeError),
    ((2, None), {"seed": 0}, TypeError), ((2, bz.median), {"seed": None}, TypeError),
    ((2, bz.median), {"seed": -3}, ValueError),
])
def test_bucketing_bad_args(args, kwargs, exc):
    raises(exc, "bucketing", bz.bucketing, GOOD, *args, **kwargs)


def test_permutation_bad_args():
    raises(ValueError, "permutation", bz.permutation, -1, seed=0)
    raises(TypeError, "permutation", bz.permutation, 3, seed=None)
    raises(TypeError, "permutation", bz.permutation, 2.0, seed=0)


def test_ragged_nested_list_names_the_op_and_the_fix():
    msg = raises(ValueError, "median", bz.median, [[1.0, 2.0], [3.0]])
    assert "rectangular" in msg
    assert "list of arrays" in msg


def test_errors_say_the_fix():
    """Messages go beyond naming the problem: they say what to pass instead."""
    msg = raises(ValueError, "trimmed_mean", bz.trimmed_mean, np.ones((4, 3)), 2)
    assert "n > 2f" in msg
    assert "n = 4" in msg
    assert "f = 2" in msg
    msg = raises(TypeError, "median", bz.median, GOOD.astype(np.int64))
    assert "float32" in msg
    assert "int64" in msg
    msg = raises(ValueError, "krum", bz.krum, np.ones((3, 2)), 1)
    assert "n >= f + 3" in msg
