"""Shared test helpers: the devices the suite runs on.

``devices()`` is ``["cpu"]`` plus ``"cuda"`` when a GPU is usable (through PyTorch or CuPy)
and byzcore was built with its CUDA kernels. Tests parametrised with the ``device`` fixture
run once per device; ``on_device`` moves a NumPy array there and ``to_numpy`` brings a result
back, so one test body compares every device with the same NumPy reference.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profile "fuzz": the long search of tests/test_fuzz.py,
# `pytest --hypothesis-profile=fuzz tests/test_fuzz.py` (BYZCORE_FUZZ_EXAMPLES sets the number
# of examples per test; .ci/sanitize runs it under ASan/UBSan with a time limit, shared out among
# the tests by BYZCORE_FUZZ_DEADLINE: tests/test_fuzz.py and the hook below). Without it
# the fuzz tests run their small fixed budget (test_fuzz.BUDGET) and the other property tests
# their own settings.
settings.register_profile("fuzz", max_examples=int(os.environ.get("BYZCORE_FUZZ_EXAMPLES", "3000")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@functools.cache
def torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.cache
def cupy_cuda() -> bool:
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver: CuPy imports but sees no device
        return False


@functools.cache
def cuda_available() -> bool:
    """A GPU usable from Python and byzcore's CUDA kernels compiled in."""
    import byzcore

    return (torch_cuda() or cupy_cuda()) and byzcore.build_info()["cuda"]


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if cuda_available() else [])


@pytest.fixture(params=devices())
def device(request: pytest.FixtureRequest) -> str:
    return request.param


def on_device(x: np.ndarray, device: str) -> Any:
    """x on `device`: NumPy for "cpu", a torch CUDA tensor (or CuPy array) for "cuda"."""
    if device == "cpu":
        return x
    if torch_cuda():
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")
    import cupy

    return cupy.asarray(x)


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if type(x).__module__.split(".", 1)[0] == "cupy":
        return x.get()
    return np.asarray(x)


def pytest_configure(config):
    # When a hypothesis test fails, hypothesis imports libcst to suggest a patch; libcst's import
    # emits a DeprecationWarning (mypy_extensions.TypedDict) that `filterwarnings = error` would
    # turn into an INTERNALERROR hiding the real failure. It is not our code's warning.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With ``BYZCORE_FUZZ_DEADLINE`` (a Unix time; .ci/sanitize): once it has passed, stop
    *between* tests (pytest's "interrupted", exit status 2) and write the reason to
    ``BYZCORE_FUZZ_STOP_FILE``, so the caller can tell that stop from a hang or a failure."""
    result = yield
    deadline = float(os.environ.get("BYZCORE_FUZZ_DEADLINE") or 0)
    if deadline and nextitem is not None and time.time() > deadline and not item.session.shouldfail:
        reason = f"[fuzz] time limit reached between tests, before {nextitem.nodeid}"
        item.session.shouldstop = reason
        if os.environ.get("BYZCORE_FUZZ_STOP_FILE"):
            with open(os.environ["BYZCORE_FUZZ_STOP_FILE"], "w", encoding="utf-8") as fh:
                fh.write(reason + "\n")
    return result


def write_wide_libsvm(path, rows: int, d: int, per_row: int, seed: int, valued: bool) -> None:
    """A LIBSVM file of ``rows`` rows with ``per_row`` random non-zeros among ``d`` features
    (values in [0.5, 2) or all 1), labels about 40% positive; the last row also holds
    feature ``d``, so the file's width is ``d``."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(rows):
        cols = np.sort(rng.choice(d, size=per_row, replace=False)) + 1
        vals = rng.uniform(0.5, 2.0, size=per_row) if valued else np.ones(per_row)
        lines.append(("+1 " if rng.random() < 0.4 else "-1 ") + " ".join(f"{c}:{v:.3f}" for c, v in zip(cols, vals)))
    lines[-1] += f" {d}:1"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
