"""Shared helpers for the API tests: the input kinds docs/spec.md#inputs accepts, conversion of
any result back to float64 NumPy, and tolerances per dtype."""

from __future__ import annotations

import numpy as np
import pytest

# Input kinds: how one (n, d) float64 matrix is handed to byzcore.
NUMPY_KINDS = ["numpy", "numpy3d", "list_numpy", "dlpack", "np_colslice", "np_transposed", "np_reversed"]
TORCH_KINDS = ["torch", "list_torch", "torch_colslice", "torch_transposed", "dlpack_torch"]
ALL_KINDS = NUMPY_KINDS + TORCH_KINDS
# bfloat16 exists only through torch (NumPy has no bfloat16 without ml_dtypes).
NUMPY_DTYPES = ["float64", "float32", "float16"]
TORCH_DTYPES = ["float64", "float32", "float16", "bfloat16"]

ITEM_3D = (3, 4)  # the message shape used by the "numpy3d" kind (d = 12)


class DLPackOnly:
    """An object exposing nothing but the DLPack protocol (a generic producer)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, *args, **kwargs):
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def torch_or_skip():
    return pytest.importorskip("torch")


def kind_dtype_pairs():
    """Every (kind, dtype) pair that can be built: bfloat16 only for torch kinds."""
    pairs = []
    for kind in NUMPY_KINDS:
        pairs += [(kind, dt) for dt in NUMPY_DTYPES]
    for kind in TORCH_KINDS:
        pairs += [(kind, dt) for dt in TORCH_DTYPES if not (kind == "dlpack_torch" and dt == "bfloat16")]
    return pairs


def rounded(X64: np.ndarray, dtype: str) -> np.ndarray:
    """X as the caller's dtype sees it, back in float64 (the reference's input)."""
    if dtype == "bfloat16":
        torch = torch_or_skip()
        return torch.from_numpy(np.ascontiguousarray(X64)).to(torch.bfloat16).to(torch.float64).numpy()
    return X64.astype(dtype).astype(np.float64)


def make_input(X64: np.ndarray, kind: str, dtype: str):
    """(input object, item shape) for an (n, d) float64 matrix, in the given kind and dtype."""
    n, d = X64.shape
    if kind in NUMPY_KINDS:
        X = X64.astype(dtype)
        if kind == "numpy":
            return X, (d,)
        if kind == "numpy3d":
            assert d == ITEM_3D[0] * ITEM_3D[1]
            return X.reshape(n, *ITEM_3D), ITEM_3D
        if kind == "list_numpy":
            return [X[i].copy() for i in range(n)], (d,)
        if kind == "dlpack":
            return DLPackOnly(X), (d,)
        if kind == "np_colslice":  # every other column of a wider matrix: rows not contiguous
            wide = np.zeros((n, 2 * d), dtype=dtype)
            wide[:, ::2] = X
            view = wide[:, ::2]
            assert not view.flags.c_contiguous
            return view, (d,)
        if kind == "np_transposed":  # a column-major view
            view = np.ascontiguousarray(X.T).T
            assert not view.flags.c_contiguous or n == 1 or d == 1
            return view, (d,)
        if kind == "np_reversed":  # negative row stride
            view = np.ascontiguousarray(X[::-1])[::-1]
            assert view.strides[0] < 0 or n == 1
            return view, (d,)
    torch = torch_or_skip()
    T = torch.from_numpy(np.ascontiguousarray(X64)).to(getattr(torch, dtype))
    if kind == "torch":
        return T, (d,)
    if kind == "list_torch":
        return [T[i].clone() for i in range(n)], (d,)
    if kind == "torch_colslice":
        wide = torch.zeros((n, 2 * d), dtype=T.dtype)
        wide[:, ::2] = T
        return wide[:, ::2], (d,)
    if kind == "torch_transposed":
        return T.t().contiguous().t(), (d,)
    if kind == "dlpack_torch":
        return DLPackOnly(T), (d,)
    raise AssertionError(kind)


def result_framework(kind: str) -> str:
    """The array type a call must return for an input kind (generic DLPack objects read as NumPy)."""
    if kind.startswith("torch") or kind == "list_torch":
        return "torch"
    return "numpy"


def copy_input(X):
    """A deep copy of any input kind, to check byzcore never modifies its input."""
    if isinstance(X, (list, tuple)):
        return [copy_input(x) for x in X]
    if isinstance(X, DLPackOnly):
        return copy_input(X._array)
    if isinstance(X, np.ndarray):
        return X.copy()
    return X.clone()


def assert_same_input(before, after) -> None:
    if isinstance(before, (list, tuple)):
        assert len(before) == len(after)
        for b, a in zip(before, after):
            assert_same_input(b, a)
        return
    if isinstance(after, DLPackOnly):
        after = after._array
    b, a = to64(before), to64(after)
    np.testing.assert_array_equal(b, a)


def to64(x) -> np.ndarray:
    """Any result (NumPy, torch incl. bfloat16, list) as a float64 NumPy array."""
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def dtype_name(x) -> str:
    if isinstance(x, np.ndarray):
        return x.dtype.name
    return str(x.dtype).replace("torch.", "")


# Relative precision of results per caller dtype: the output is rounded to that dtype, and
# float16/bfloat16 are computed in float32. `eps` is a few units in the last place.
EPS = {"float64": 1e-12, "float32": 3e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


def assert_close(got, want, dtype: str, scale: float | None = None, factor: float = 1.0) -> None:
    """got ~ want to the dtype's precision, relative to `scale` (default: max |want|)."""
    got = to64(got)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if scale is None:
        scale = float(np.max(np.abs(want))) if want.size else 1.0
    tol = EPS[dtype] * factor
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(scale, 1e-30))
