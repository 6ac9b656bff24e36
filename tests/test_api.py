"""Every public function of docs/spec.md#rules against the float64 reference (tests/reference.py),
over every input kind (NumPy 2-D, (n, a, b) messages, lists, torch, generic DLPack objects,
non-contiguous views) and dtype (float64, float32, float16, bfloat16): the values, the
result's type / dtype / shape, and that the input is never modified."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import byzcore as bz
import reference as ref
from api_helpers import (
    EPS,
    ITEM_3D,
    assert_close,
    assert_same_input,
    copy_input,
    dtype_name,
    kind_dtype_pairs,
    make_input,
    result_framework,
    rounded,
    to64,
)

N, D, F = 7, ITEM_3D[0] * ITEM_3D[1], 2
SEED_RANDK, K = 7, 5
SEED_BUCKET = 3
CENTER = np.linspace(-0.5, 0.5, D)


def _min_gap(values) -> float:
    """Smallest relative gap between consecutive sorted values."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(np.min(np.diff(v)) / max(np.max(np.abs(v)), 1e-300))


def _well_separated(X: np.ndarray) -> bool:
    """Krum scores and nearest-neighbour distances far enough apart that float32 rounding cannot
    change which messages a selection rule picks (so comparing with the reference is fair)."""
    if _min_gap(ref.krum_scores(X, F)) < 1e-3:
        return False
    Dm = ref.pairwise_distances(X)
    for i in range(N):
        if _min_gap(np.delete(Dm[i], i)) < 1e-3:
            return False
    return True


def _make_data() -> np.ndarray:
    """5 honest messages around 1 and 2 Byzantine ones far away; the first seed whose rounded
    versions (every dtype) are well separated."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        X = 1.0 + rng.standard_normal((N, D))
        X[5] = 6.0 + 3 * rng.standard_normal(D)
        X[6] = -5.0 + 2 * rng.standard_normal(D)
        if all(_well_separated(rounded(X, dt)) for dt in ("float64", "float32", "float16")) and \
                _well_separated(_bf16_or_same(X)):
            return X
    raise AssertionError("no well separated data set found")


def _bf16_or_same(X):
    try:
        return rounded(X, "bfloat16")
    except pytest.skip.Exception:
        return X


X64 = _make_data()


@dataclass
class Op:
    name: str
    call: Callable[[Any], Any]  # byzcore call on the input
    reference: Callable[[np.ndarray], np.ndarray]  # on the rounded float64 (n, d) matrix
    shape: str  # "item", "nn", "n", "rows"
    factor: float = 1.0  # tolerance multiplier (accumulated rounding)
    scale: Callable[[np.ndarray], float] = field(default=lambda X: float(np.max(np.abs(X))))
    floor: float = 0.0  # smallest relative tolerance (a stopping rule, not rounding, limits it)


def _median_bucket(means):
    return bz.median(means)


OPS = [
    Op("mean", bz.mean, ref.mean, "item", 4),
    Op("median", bz.median, ref.median, "item"),
    Op("trimmed_mean", lambda X: bz.trimmed_mean(X, F), lambda X: ref.trimmed_mean(X, F), "item", 4),
    Op("pairwise_distances", bz.pairwise_distances, ref.pairwise_distances, "nn", 40,
       lambda X: float(np.max(ref.pairwise_distances(X)))),
    Op("pairwise_distances_sqrt", lambda X: bz.pairwise_distances(X, squared=False),
       lambda X: ref.pairwise_distances(X, squared=False), "nn", 40,
       lambda X: float(np.max(ref.pairwise_distances(X, squared=False)))),
    Op("krum_scores", lambda X: bz.krum_scores(X, F), lambda X: ref.krum_scores(X, F), "n", 40,
       lambda X: float(np.max(ref.krum_scores(X, F)))),
    Op("krum", lambda X: bz.krum(X, F), lambda X: ref.krum(X, F), "item"),
    Op("multi_krum", lambda X: bz.multi_krum(X, F), lambda X: ref.multi_krum(X, F), "item", 4),
    Op("multi_krum_m3", lambda X: bz.multi_krum(X, F, m=3), lambda X: ref.multi_krum(X, F, 3), "item", 4),
    # Three exact Weiszfeld steps (tol=0 never stops early), then the default stopping rule.
    Op("geometric_median_3it", lambda X: bz.geometric_median(X, max_iter=3, tol=0.0),
       lambda X: ref.geometric_median(X, max_iter=3, tol=0.0), "item", 20),
    # The default stopping rule ("relative change below tol") leaves ~tol of slack.
    Op("geometric_median", bz.geometric_median, ref.geometric_median, "item", 50, floor=1e-6),
    Op("geometric_median_weights",
       lambda X: bz.geometric_median(X, weights=[1, 2, 3, 1, 1, 0.5, 0.25], max_iter=4, tol=0.0),
       lambda X: ref.geometric_median(X, weights=[1, 2, 3, 1, 1, 0.5, 0.25], max_iter=4, tol=0.0),
       "item", 20),
    Op("clip", lambda X: bz.clip(X, 4.0), lambda X: ref.clip(X, 4.0), "rows", 4),
    Op("rand_k", lambda X: bz.rand_k(X, K, seed=SEED_RANDK),
       lambda X: ref.rand_k(X, bz.rand_k_indices(D, K, seed=SEED_RANDK)), "rows", 2),
    Op("centered_clipping", lambda X: bz.centered_clipping(X, 1.5, iters=3),
       lambda X: ref.centered_clipping(X, 1.5, iters=3), "item", 10),
    Op("centered_clipping_center", lambda X: bz.centered_clipping(X, 2.0, center=CENTER),
       lambda X: ref.centered_clipping(X, 2.0, center=CENTER), "item", 10),
    Op("bucketing", lambda X: bz.bucketing(X, 2, _median_bucket, seed=SEED_BUCKET),
       lambda X: ref.bucketing(X, 2, ref.median, bz.permutation(N, seed=SEED_BUCKET)), "item", 4),
    Op("nnm", lambda X: bz.nnm(X, F), lambda X: ref.nnm(X, F), "rows", 4),
]
OP_IDS = [op.name for op in OPS]


def _expected_shape(op: Op, item: tuple[int, ...]) -> tuple[int, ...]:
    return {"item": item, "nn": (N, N), "n": (N,), "rows": (N, *item)}[op.shape]


@pytest.mark.parametrize("kind,dtype", kind_dtype_pairs())
@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_matches_reference(op: Op, kind: str, dtype: str):
    X, item = make_input(X64, kind, dtype)
    before = copy_input(X)
    got = op.call(X)

    # The caller's array type, dtype and shape.
    if result_framework(kind) == "torch":
        import torch

        assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
    else:
        assert isinstance(got, np.ndarray)
    assert dtype_name(got) == dtype
    assert tuple(got.shape) == _expected_shape(op, item)

    # Never modifies its input.
    assert_same_input(before, X)

    Xr = rounded(X64, dtype)
    want = op.reference(Xr).reshape(_expected_shape(op, item))
    assert_close(got, want, dtype, scale=op.scale(Xr), factor=max(op.factor, op.floor / EPS[dtype]))


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_float64_tight(op: Op):
    """float64 in, float64 out: agreement to ~1e-12 relative (1e-9 for the iterative rule)."""
    got = to64(op.call(X64))
    want = op.reference(X64).reshape(got.shape)
    scale = op.scale(X64)
    tol = max(1e-12 * op.factor, op.floor)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def test_geometric_median_near_optimal():
    """The default stopping rule lands where the smoothed objective is minimal (to 1e-9)."""
    z = bz.geometric_median(X64)
    best = ref.smoothed_objective(X64, z)
    rng = np.random.default_rng(0)
    for _ in range(20):
        step = 1e-3 * rng.standard_normal(D)
        assert ref.smoothed_objective(X64, z + step) >= best * (1 - 1e-9)


def test_eps_table_covers_dtypes():
    assert set(EPS) == {"float64", "float32", "float16", "bfloat16"}


# ---------------------------------------------------------------- mixed inputs
def test_list_of_mixed_precisions_promotes_like_numpy():
    rows = [X64[i].astype(np.float32) for i in range(N)]
    rows[3] = X64[3]  # one float64 message: the whole call is float64
    got = bz.median(rows)
    assert got.dtype == np.float64
    want = ref.median(np.stack([r.astype(np.float64) for r in rows]))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_list_of_shaped_messages_keeps_shape():
    rows = [X64[i].reshape(ITEM_3D) for i in range(N)]
    got = bz.trimmed_mean(rows, F)
    assert got.shape == ITEM_3D
    np.testing.assert_allclose(got.reshape(-1), ref.trimmed_mean(X64, F), rtol=1e-12)
    out = bz.clip(rows, 4.0)
    assert out.shape == (N, *ITEM_3D)


def test_list_of_noncontiguous_messages():
    wide = np.zeros((N, 2 * D))
    wide[:, 1::2] = X64
    rows = [wide[i, 1::2] for i in range(N)]
    np.testing.assert_allclose(bz.median(rows), ref.median(X64), rtol=1e-12)
    np.testing.assert_allclose(bz.pairwise_distances(rows), ref.pairwise_distances(X64), rtol=1e-9,
                               atol=1e-9 * np.max(ref.pairwise_distances(X64)))


def test_nested_python_lists_are_read_as_float64():
    got = bz.median(X64.tolist())
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref.median(X64), rtol=1e-12)


def test_torch_requires_grad_input():
    torch = pytest.importorskip("torch")
    T = torch.tensor(X64, dtype=torch.float32, requires_grad=True)
    got = bz.median(T)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(to64(got), ref.median(rounded(X64, "float32")), rtol=1e-6)


def test_torch_center_and_weights():
    torch = pytest.importorskip("torch")
    T = torch.tensor(X64)
    got = bz.centered_clipping(T, 2.0, center=torch.tensor(CENTER))
    np.testing.assert_allclose(to64(got), ref.centered_clipping(X64, 2.0, center=CENTER), rtol=1e-12)
    w = [1, 2, 3, 1, 1, 0.5, 0.25]
    got = bz.geometric_median(T, weights=torch.tensor(w), max_iter=2, tol=0.0)
    np.testing.assert_allclose(to64(got), ref.geometric_median(X64, weights=w, max_iter=2, tol=0.0),
                               rtol=1e-12)


def test_generic_dlpack_bfloat16():
    """A bfloat16 tensor behind a bare __dlpack__ object: accepted (computed in float32) or a
    clear TypeError naming the function; never a crash or a silent wrong answer."""
    torch = pytest.importorskip("torch")
    from api_helpers import DLPackOnly

    T = torch.tensor(X64, dtype=torch.bfloat16)
    try:
        got = bz.median(DLPackOnly(T))
    except TypeError as exc:
        assert "[median]" in str(exc)
        return
    np.testing.assert_allclose(to64(got), ref.median(rounded(X64, "bfloat16")), rtol=1.6e-2)


# ---------------------------------------------------------------- the small-call fast paths
@pytest.mark.parametrize("d", [511, 512, 513, 1024])  # float64 messages around the 4 KiB copy limit
def test_list_of_numpy_messages_around_the_copy_limit(d):
    rng = np.random.default_rng(d)
    X = rng.standard_normal((N, d))
    rows = [X[i].copy() for i in range(N)]
    before = [r.copy() for r in rows]
    np.testing.assert_allclose(bz.median(rows), ref.median(X), rtol=1e-12)
    np.testing.assert_allclose(bz.krum(rows, F), ref.krum(X, F), rtol=1e-12)
    out = bz.clip(rows, 1.0)
    assert out.shape == (N, d)
    np.testing.assert_allclose(out, ref.clip(X, 1.0), rtol=1e-12)
    for r, b in zip(rows, before):
        np.testing.assert_array_equal(r, b)


def test_list_with_one_message_of_another_shape_or_type_is_refused():
    rows = [X64[i].copy() for i in range(N)]
    with pytest.raises(ValueError, match=r"^\[median\] messages must share one shape"):
        bz.median(rows[:-1] + [X64[-1][:-1].copy()])
    with pytest.raises(TypeError, match=r"^\[median\] messages must be floating point"):
        bz.median(rows[:-1] + [X64[-1].astype(np.int64)])
    with pytest.raises(TypeError, match=r"^\[median\] message 6 is a list"):
        bz.median(rows[:-1] + [X64[-1].tolist()])


def test_fast_and_general_paths_agree():
    """A C-contiguous float array takes the short path; the same values through a view that
    the general path reads (a non-contiguous copy, a big-endian array) give the same result."""
    for dtype in ("float64", "float32"):
        X = X64.astype(dtype)
        wide = np.zeros((N, 2 * D), dtype=dtype)
        wide[:, ::2] = X
        big_endian = X.astype(np.dtype(dtype).newbyteorder(">"))
        for call in (bz.median, bz.mean, lambda A: bz.trimmed_mean(A, F), lambda A: bz.krum(A, F)):
            fast = call(X)
            assert fast.dtype == np.dtype(dtype) and fast.shape == (D,)
            np.testing.assert_array_equal(call(wide[:, ::2]), fast)
            np.testing.assert_array_equal(call(big_endian), fast)
