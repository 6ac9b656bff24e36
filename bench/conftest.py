"""The pytest-benchmark suite: ``pytest bench/ --benchmark-only`` (not collected by the
default ``pytest`` run, whose testpaths is ``tests/``).

Every kernel of :data:`byzcore.bench.KERNELS` is benchmarked three times on one input per
size, in one benchmark group per (kernel, size): byzcore, its NumPy equivalent and its
PyTorch equivalent. Before any of them is timed, byzcore's result is checked against the
float64 NumPy reference of ``byzcore bench`` (same tolerances).

Sizes: ``BYZCORE_BENCH_SIZES="32x1e6,100x1e5"`` (n x d), dtype: ``BYZCORE_BENCH_DTYPE``.
Compare groups with ``--benchmark-group-by=group --benchmark-sort=mean``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from byzcore.bench import Case, default_f, make_messages

DEFAULT_SIZES = "32x1e5,32x1e6,100x1e6"


def _sizes() -> list[tuple[int, int]]:
    out = []
    for item in os.environ.get("BYZCORE_BENCH_SIZES", DEFAULT_SIZES).split(","):
        n, d = item.lower().split("x")
        out.append((int(float(n)), int(float(d))))
    return out


DTYPE = np.dtype(os.environ.get("BYZCORE_BENCH_DTYPE", "float32"))


@pytest.fixture(scope="session", params=_sizes(), ids=lambda s: f"n{s[0]}-d{s[1]:g}")
def case(request) -> Case:
    """One seeded input per size, shared by every kernel and library (the same bytes)."""
    n, d = request.param
    f = default_f(n)
    return Case(make_messages(n, d, DTYPE, f=f), f=f)
