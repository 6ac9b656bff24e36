"""byzcore against NumPy and PyTorch, kernel by kernel, on the same input.

Each benchmark first checks byzcore's result against the float64 NumPy reference (a
mismatch fails the benchmark, an unbuilt kernel skips it), then times one library.
geometric_median runs ``gm_iters`` Weiszfeld iterations with ``tol=0``; byzcore's time also
includes its coordinate-wise-median start, which the NumPy and PyTorch loops are given for
free (so the comparison is conservative for byzcore).
"""

from __future__ import annotations

import pytest

from byzcore.bench import KERNELS, Case, unavailable_reason

LIBS = ("byzcore", "numpy", "torch")


def _checked(case: Case, op: str) -> None:
    """Checks byzcore's result on this case once; later benchmarks reuse the verdict."""
    key = ("checked", op)
    if key not in case._cache:
        kernel = KERNELS[op]
        try:
            out = kernel.checked_result(case)
        except Exception as exc:
            reason = unavailable_reason(exc)
            if not reason:
                raise
            case._cache[key] = ("skip", reason)
        else:
            ratio = kernel.check(case, out)
            case._cache[key] = ("ok", ratio) if ratio <= 1 else ("fail", ratio)
    verdict, detail = case._cache[key]
    if verdict == "skip":
        pytest.skip(f"{op}: {detail}")
    assert verdict == "ok", f"{op}: byzcore differs from the NumPy reference (max error / tolerance = {detail:.3g})"


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("op", list(KERNELS))
def test_kernel(benchmark, case: Case, op: str, lib: str) -> None:
    kernel = KERNELS[op]
    case = kernel.case_for(case)
    _checked(case, op)
    if lib == "torch":
        pytest.importorskip("torch")
    maker = {"byzcore": kernel.bz, "numpy": kernel.numpy, "torch": kernel.torch}[lib]
    if maker is None:
        pytest.skip(f"{op}: no {lib} baseline (the peers are compared by `byzcore bench --peers`)")
    fn = maker(case)
    benchmark.group = f"{op} n={case.n} d={case.d:g} {case.X.dtype}"
    benchmark.extra_info.update(lib=lib, n=case.n, d=case.d, bytes=case.nbytes)
    benchmark(fn)
