"""Array interop: turns whatever the caller passed into a view the compiled core reads.

Accepted inputs (docs/spec.md#inputs): a NumPy array, a PyTorch tensor (CPU or CUDA), a CuPy
array, any object with ``__dlpack__``, or a sequence of ``n`` such arrays of one shape. The
core reads ``n`` row pointers, so a list of per-worker arrays is read in place; a copy is made
only where an input is not contiguous within a message or needs a dtype conversion
(float16/bfloat16 are computed in float32). Results are allocated by the caller's framework
on the caller's device, so they come back as the caller's array type.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._native import core

_FLOAT_NAMES = {"float16", "bfloat16", "float32", "float64"}
# The dtypes the core computes in natively: such an input is read without a conversion.
_NUMPY_COMPUTE = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
# Messages at most this many bytes long are copied into one block rather than addressed one by
# one: reading a NumPy array's address from Python costs about as much as copying 4 KiB.
_COPY_ROWS_BYTES = 4096
# type -> framework, for the types whose framework the type alone decides (the rules call
# this every round: probing a type's module name each call is a measurable part of a call).
_TYPE_FRAMEWORK: dict[type, str] = {}


def _framework(x: Any) -> str | None:
    fw = _TYPE_FRAMEWORK.get(type(x))
    if fw is not None:
        return fw
    if isinstance(x, np.ndarray):
        _TYPE_FRAMEWORK[type(x)] = "numpy"
        return "numpy"
    root = type(x).__module__.split(".", 1)[0]
    if root == "torch" and hasattr(type(x), "data_ptr"):
        _TYPE_FRAMEWORK[type(x)] = "torch"
        return "torch"
    if root == "cupy" and hasattr(type(x), "data"):
        _TYPE_FRAMEWORK[type(x)] = "cupy"
        return "cupy"
    if isinstance(x, np.generic):
        return "numpy"
    if hasattr(x, "__dlpack__"):
        return "dlpack"
    if hasattr(x, "__cuda_array_interface__"):
        return "cuda_array_interface"
    if hasattr(x, "__array_interface__") or hasattr(x, "__array__"):
        return "numpy"
    return None


def _from_foreign(op: str, x: Any, kind: str) -> tuple[Any, str]:
    """An object of another framework, viewed (no copy) as NumPy, CuPy or torch."""
    if kind == "dlpack":
        dev_type = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
        if dev_type in (1, 3):  # kDLCPU, kDLCUDAHost
            try:
                return np.from_dlpack(x), "numpy"
            except (RuntimeError, TypeError, ValueError, BufferError) as exc:
                # NumPy has no bfloat16: such a producer is read (and answered) through torch.
                try:
                    import torch
                except ImportError:
                    raise TypeError(f"[{op}] NumPy cannot read this __dlpack__ object ({exc}); "
                                    "install PyTorch for bfloat16 inputs") from None
                return torch.from_dlpack(x), "torch"
        if dev_type == 2:  # kDLCUDA
            try:
                import cupy

                return cupy.from_dlpack(x), "cupy"
            except ImportError:
                pass
            try:
                import torch

                return torch.from_dlpack(x), "torch"
            except ImportError:
                pass
            raise TypeError(f"[{op}] a CUDA __dlpack__ input needs CuPy or PyTorch installed to be read")
        raise TypeError(f"[{op}] unsupported __dlpack__ device type {dev_type}; move the data to CPU or CUDA")
    try:
        import cupy

        return cupy.asarray(x), "cupy"
    except ImportError:
        raise TypeError(f"[{op}] a __cuda_array_interface__ input needs CuPy installed") from None


def _dtype_name(x: Any, fw: str) -> str:
    if fw == "torch":
        return str(x.dtype).replace("torch.", "")
    return np.dtype(x.dtype).name if fw != "cupy" else str(x.dtype)


def _check_float(op: str, name: str) -> None:
    if name not in _FLOAT_NAMES:
        raise TypeError(
            f"[{op}] messages must be floating point (float32, float64, float16 or bfloat16), got "
            f"{name}; convert first, e.g. x.astype(np.float32) or t.float()"
        )


class Batch:
    """The ``n`` messages of one call, as the core reads them.

    Attributes: ``n``, ``d``, ``item_shape`` (shape of one message), ``dtype`` (the caller's
    dtype name), ``compute`` (``float32``/``float64``), ``fw`` (framework of the result),
    ``device`` (``cpu``/``cuda``), ``messages`` (the core view).
    """

    __slots__ = (
        "_keep",
        "_ptrs",
        "compute",
        "d",
        "device",
        "device_index",
        "dtype",
        "fw",
        "item_shape",
        "messages",
        "n",
        "op",
        "stream",
    )

    def __init__(self, op: str, X: Any):
        self.op = op
        if not self._init_fast(X):
            if isinstance(X, (list, tuple)):
                self._init_sequence(X)
            else:
                self._init_array(X)
        self.messages = core.Messages(
            self._ptrs, self.d, self.compute, self.device,
            self.device_index, self.stream)

    # ---------------------------------------------------------------- the common cases
    def _init_fast(self, X: Any) -> bool:
        """The inputs of every round, read with a handful of attribute lookups: a C-contiguous
        float32/float64 NumPy array or CPU tensor of ``n >= 1`` messages of ``d >= 1``
        coordinates, or a list of equal NumPy messages. False leaves the general path to
        decide (and to raise); what it builds is what the general path would build."""
        kind = type(X)
        if kind is np.ndarray:
            compute = _NUMPY_COMPUTE.get(X.dtype)
            if compute is None or X.ndim < 2 or X.size == 0 or not X.flags.c_contiguous:
                return False
            base, size = X.ctypes.data, X.size
            self.fw = "numpy"
        elif kind is list or kind is tuple:
            return self._init_fast_rows(X)
        else:
            torch = sys.modules.get("torch")
            if torch is None or kind is not torch.Tensor or not X.is_cpu or X.dim() < 2 or X.numel() == 0:
                return False
            dtype = X.dtype
            compute = "float32" if dtype is torch.float32 else "float64" if dtype is torch.float64 else None
            if compute is None or not X.is_contiguous():
                return False
            base, size = X.data_ptr(), X.numel()
            self.fw = "torch"
        shape = X.shape
        n = shape[0]
        self._set_cpu(compute, n, size // n, tuple(shape[1:]), [X], base)
        return True

    def _init_fast_rows(self, X: Sequence[Any]) -> bool:
        """A short list of NumPy messages of one float32/float64 dtype and shape: copied into
        one block (cheaper than reading each address) when each is at most 4 KiB."""
        if not X:
            return False
        first = X[0]
        if type(first) is not np.ndarray:
            return False
        dtype, shape = first.dtype, first.shape
        compute = _NUMPY_COMPUTE.get(dtype)
        if compute is None or not shape or first.size == 0 or first.size * first.itemsize > _COPY_ROWS_BYTES:
            return False
        for x in X:
            if type(x) is not np.ndarray or x.dtype is not dtype or x.shape != shape:
                return False
        block = np.concatenate(X) if len(shape) == 1 else np.concatenate([x.reshape(-1) for x in X])
        self.fw = "numpy"
        self._set_cpu(compute, len(X), first.size, shape, [block], block.ctypes.data)
        return True

    def _set_cpu(self, compute: str, n: int, d: int, item_shape: tuple, keep: list, base: int) -> None:
        self.dtype = self.compute = compute
        self.device, self.device_index, self.stream = "cpu", 0, 0
        self.n, self.d, self.item_shape = n, d, item_shape
        self._keep = keep
        step = d * (8 if compute == "float64" else 4)
        self._ptrs = list(range(base, base + n * step, step))

    # ---------------------------------------------------------------- parsing
    def _init_array(self, X: Any) -> None:
        fw = _framework(X)
        if fw is None:
            raise TypeError(f"[{self.op}] expected an array, a tensor or a list of them, got {type(X).__name__}")
        if fw in ("dlpack", "cuda_array_interface"):
            X, fw = _from_foreign(self.op, X, fw)
        elif fw == "numpy" and not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(
                f"[{self.op}] expects n messages as a 2-D (n, d) array or a list of arrays, got "
                f"shape {tuple(X.shape)}; for one vector per worker of length 1 use X.reshape(-1, 1)")
        self._setup(fw, X, _dtype_name(X, fw))
        self.n = int(X.shape[0])
        self.item_shape = tuple(int(s) for s in X.shape[1:])
        self.d = math.prod(self.item_shape)
        self._check_sizes()
        X = self._to_compute(X)
        if not self._rows_contiguous(X):
            X = self._contiguous(X)
        # Row i starts at base + i * stride0: rows may be strided apart, each is contiguous.
        base = self._ptr(X)
        step = X.stride(0) * X.element_size() if fw == "torch" else X.strides[0]
        self._ptrs = [base + i * step for i in range(self.n)]
        self._keep = [X]

    def _init_sequence(self, X: Sequence[Any]) -> None:
        if len(X) == 0:
            raise ValueError(f"[{self.op}] got no messages (empty sequence); pass at least one worker's message")
        first = X[0]
        fw = _framework(first)
        if fw is None:  # nested lists of numbers
            self._init_array(self._nested(X))
            return
        items: list[tuple[str, Any]] = []
        for message in X:
            k = _framework(message)
            x = message
            if k in ("dlpack", "cuda_array_interface"):
                x, k = _from_foreign(self.op, message, k)
            elif k == "numpy" and not isinstance(message, np.ndarray):
                x = np.asarray(message)
            if k is None:
                raise TypeError(f"[{self.op}] message {len(items)} is a {type(x).__name__}, not an array")
            items.append((k, x))
        fw = items[0][0]
        names = []
        for k, x in items:
            if k != fw:
                raise TypeError(f"[{self.op}] messages mix array types ({fw} and {k}); pass one framework's arrays")
            names.append(_dtype_name(x, k))
            _check_float(self.op, names[-1])
        self.item_shape = tuple(int(s) for s in items[0][1].shape)
        for i, (_, x) in enumerate(items):
            if tuple(x.shape) != self.item_shape:
                raise ValueError(
                    f"[{self.op}] messages must share one shape: message 0 has shape {self.item_shape}, "
                    f"message {i} has {tuple(x.shape)}")
        # Mixed precisions promote like NumPy does: float64 if any message is float64.
        dtype = names[0] if len(set(names)) == 1 else ("float64" if "float64" in names else "float32")
        self._setup(fw, items[0][1], dtype)
        for i, (_, x) in enumerate(items):
            if self._device_of(x) != (self.device, self.device_index):
                raise ValueError(f"[{self.op}] message {i} is on another device than message 0; "
                                 "move all messages to one device")
        self.n = len(items)
        self.d = math.prod(self.item_shape)
        self._check_sizes()
        self._keep = [self._contiguous(self._to_compute(x)).reshape(self.d) for _, x in items]
        self._ptrs = [self._ptr(x) for x in self._keep]

    def _nested(self, X: Sequence[Any]) -> np.ndarray:
        """Nested lists of numbers as one array; ragged or non-numeric lists answer with the op."""
        try:
            return np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"[{self.op}] nested lists must be rectangular, one list of d numbers per "
                             f"message ({exc}); pad or trim the messages, or pass a list of arrays") from None

    def _setup(self, fw: str, x: Any, dtype: str) -> None:
        _check_float(self.op, dtype)
        self.fw = fw
        self.dtype = dtype
        self.compute = "float64" if dtype == "float64" else "float32"
        self.device, self.device_index = self._device_of(x)
        self.stream = 0
        if self.device == "cuda":
            if fw == "torch":
                import torch

                self.stream = torch.cuda.current_stream(x.device).cuda_stream
            elif fw == "cupy":
                import cupy

                with cupy.cuda.Device(self.device_index):
                    self.stream = cupy.cuda.get_current_stream().ptr

    def _device_of(self, x: Any) -> tuple[str, int]:
        root = type(x).__module__.split(".", 1)[0]
        if root == "torch":
            t = x.device.type
            if t not in ("cpu", "cuda"):
                raise TypeError(f"[{self.op}] tensors on device '{t}' are not supported; move them to CPU or CUDA")
            return t, (x.device.index or 0) if t == "cuda" else 0
        if root == "cupy":
            return "cuda", int(x.device.id)
        return "cpu", 0

    def _check_sizes(self) -> None:
        if self.n == 0:
            raise ValueError(f"[{self.op}] got no messages (n = 0); pass at least one worker's message")
        if self.d == 0:
            raise ValueError(f"[{self.op}] got empty messages (shape {self.item_shape}); "
                             "each needs at least one coordinate")

    # ---------------------------------------------------------------- conversions
    def _to_compute(self, x: Any) -> Any:
        # A byte-swapped NumPy array has the dtype name of a native one but not its bytes.
        if _dtype_name(x, self.fw) == self.compute and (self.fw != "numpy" or x.dtype.isnative):
            return x
        if self.fw == "torch":
            import torch

            return x.detach().to(getattr(torch, self.compute))
        return x.astype(self.compute)

    def _contiguous(self, x: Any) -> Any:
        if self.fw == "torch":
            return x.detach().contiguous()
        if self.fw == "cupy":
            import cupy

            return cupy.ascontiguousarray(x)
        return np.ascontiguousarray(x)

    def _rows_contiguous(self, X: Any) -> bool:
        """True when each message X[i] is one contiguous block (rows may be strided apart)."""
        itemsize = 8 if self.compute == "float64" else 4
        strides = X.stride() if self.fw == "torch" else tuple(s // itemsize for s in X.strides)
        expected = 1
        for size, stride in zip(reversed(X.shape[1:]), reversed(strides[1:])):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True

    def _ptr(self, x: Any) -> int:
        if self.fw == "torch":
            return x.data_ptr()
        if self.fw == "cupy":
            return x.data.ptr
        return x.__array_interface__["data"][0]

    # ---------------------------------------------------------------- results
    def empty(self, shape: tuple[int, ...], dtype: str | None = None) -> tuple[Any, int]:
        """A new array of the caller's framework on the caller's device, and its pointer."""
        dtype = dtype or self.compute
        if self.fw == "numpy":
            out = np.empty(shape, dtype=dtype)
            return out, out.ctypes.data
        if self.fw == "torch":
            import torch

            if self.device == "cuda":
                out = torch.empty(shape, dtype=getattr(torch, dtype), device=torch.device("cuda", self.device_index))
            else:
                out = torch.empty(shape, dtype=getattr(torch, dtype))
        else:
            import cupy

            with cupy.cuda.Device(self.device_index):
                out = cupy.empty(shape, dtype=dtype)
        return out, self._ptr(out)

    def result(self, out: Any, shape: tuple[int, ...] | None = None) -> Any:
        """Cast back to the caller's dtype (float16/bfloat16 inputs) and shape."""
        if shape is not None and shape != out.shape:
            out = out.reshape(shape)
        if self.dtype != self.compute:
            if self.fw == "torch":
                import torch

                out = out.to(getattr(torch, self.dtype))
            else:
                out = out.astype(self._numpy_dtype(self.dtype))
        return out

    def _numpy_dtype(self, name: str) -> Any:
        if name == "bfloat16":
            import ml_dtypes  # only reachable when the caller already passed an ml_dtypes array

            return ml_dtypes.bfloat16
        return np.dtype(name)

    def like(self, x: Any, what: str) -> Any:
        """Another input of the same call (a center, a weight vector) on this batch's device/dtype."""
        fw = _framework(x)
        if fw in ("dlpack", "cuda_array_interface"):
            x, fw = _from_foreign(self.op, x, fw)
        elif fw is None or (fw == "numpy" and not isinstance(x, np.ndarray)):
            x, fw = np.asarray(x), "numpy"
        # Before any conversion: torch takes no NumPy string or object array (and says so unnamed).
        _check_float(self.op, _dtype_name(x, fw))
        if fw != self.fw:
            if self.fw == "torch" and fw == "numpy":
                import torch

                where = self.device if self.device == "cpu" else f"cuda:{self.device_index}"
                x = torch.from_numpy(np.ascontiguousarray(x)).to(where)
            elif self.fw == "numpy" and fw == "torch" and x.device.type == "cpu":
                x = x.detach()
                x = (x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy()  # NumPy has no bfloat16
            elif self.fw == "cupy" and fw == "numpy":
                import cupy

                x = cupy.asarray(x)
            else:
                raise TypeError(f"[{self.op}] {what} must be the same array type as the messages ({self.fw}), got {fw}")
            fw = self.fw
        if tuple(x.shape) != self.item_shape and math.prod(tuple(x.shape)) != self.d:
            raise ValueError(f"[{self.op}] {what} must have the messages' shape {self.item_shape}, "
                             f"got {tuple(x.shape)}")
        if self._device_of(x) != (self.device, self.device_index):
            raise ValueError(f"[{self.op}] {what} must be on the messages' device")
        x = self._contiguous(self._to_compute(x)).reshape(self.d)
        self._keep.append(x)  # alive for the call
        return x, self._ptr(x)


def as_index(op: str, name: str, value: Any, *, unsigned: bool = False) -> int:
    """An integer argument (``f``, ``m``, ``k``, ``s``, ``d``, ``n``, ``iters``, ``max_iter``).

    Accepted: a Python ``int`` or anything with ``__index__`` (NumPy integers, 0-d integer
    tensors). Refused with ``TypeError``: ``bool`` (``True`` is almost always a slip, not a
    count), floats even when whole (``3.0``), strings, ``None``. Refused with ``ValueError``:
    a value outside int64 (the compiled core's type), unless ``unsigned`` (seeds, checked by
    :func:`as_seed`). The rule's own range (``f >= 0``, ``1 <= m <= n``, ...) is checked by the
    core without arithmetic that can wrap.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"[{op}] {name} must be an integer, got bool {value!r}; pass e.g. {int(value)}")
    try:
        v = operator.index(value)
    except TypeError:
        hint = f"; pass {int(value)}" if isinstance(value, (float, np.floating)) and float(value).is_integer() else ""
        raise TypeError(f"[{op}] {name} must be an integer, got {type(value).__name__} {value!r}{hint}") from None
    if not unsigned and not -2**63 <= v < 2**63:  # the core takes int64
        raise ValueError(f"[{op}] {name} = {v} is outside the 64-bit integer range -2**63..2**63-1")
    return v


def as_seed(op: str, seed: Any) -> int:
    """A seed: an integer (as :func:`as_index` reads it) in ``0..2**64-1`` (the core's uint64)."""
    if seed is None:
        raise TypeError(f"[{op}] seed is required (an integer in 0..2**64-1) so the draw is reproducible")
    s = as_index(op, "seed", seed, unsigned=True)
    if not 0 <= s < 2**64:
        raise ValueError(f"[{op}] seed must be in 0..2**64-1, got {s}; reduce it, e.g. seed % 2**64")
    return s


def as_number(op: str, name: str, value: Any) -> float:
    """A real argument (``threshold``, ``tau``, ``nu``, ``tol``, weights): an ``int``, ``float`` or
    NumPy/torch real scalar. ``bool``, strings, complex numbers and ``None`` are refused with
    ``TypeError``; an integer too large for a float with ``ValueError``. Whether NaN or Inf is
    allowed is the rule's check."""
    if isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
        raise TypeError(f"[{op}] {name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"[{op}] {name} = {value!r} is too large for a float") from None
    except (TypeError, ValueError):
        raise TypeError(f"[{op}] {name} must be a real number, got {type(value).__name__}") from None
