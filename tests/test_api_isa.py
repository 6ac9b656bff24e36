"""Every ISA build of the core (generic, avx2, avx512) gives the same results: a fresh
interpreter with BYZCORE_ISA forced computes a few ops, and we compare with this process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import byzcore as bz
from byzcore._native import core

SCRIPT = r"""
import json, sys
import numpy as np
import byzcore as bz
rng = np.random.default_rng(0)
out = {"simd": bz.build_info()["simd"]}
for dtype in ("float64", "float32"):
    X = (1.0 + rng.standard_normal((11, 3000))).astype(dtype)
    X[9] *= 40
    X[10, 5] = np.nan
    r = {
        "mean": bz.mean(X[:10]),
        "median": bz.median(X),
        "trimmed_mean": bz.trimmed_mean(X, 3),
        "pairwise_distances": bz.pairwise_distances(X[:10]),
        "krum_scores": bz.krum_scores(X, 3),
        "krum": bz.krum(X, 3),
        "multi_krum": bz.multi_krum(X, 3),
        "geometric_median": bz.geometric_median(X, max_iter=5, tol=0.0),
        "clip": bz.clip(X, 30.0),
        "rand_k": bz.rand_k(X[0], 100, seed=3),
        "centered_clipping": bz.centered_clipping(X, 5.0, iters=2),
        "bucketing": bz.bucketing(X, 2, bz.median, seed=1),
        "nnm": bz.nnm(X, 3),
    }
    out[dtype] = {k: np.asarray(v, dtype=np.float64).tolist() for k, v in r.items()}
json.dump(out, sys.stdout)
"""


def _run(isa: str | None) -> dict:
    env = dict(os.environ)
    env.pop("BYZCORE_ISA", None)
    if isa is not None:
        env["BYZCORE_ISA"] = isa
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _available(isa: str) -> bool:
    return core.cpu_supports(isa) and importlib.util.find_spec(f"byzcore._core_{isa}") is not None


@pytest.fixture(scope="module")
def default_results():
    return _run(None)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_isa_builds_agree(isa, default_results):
    if not _available(isa):
        pytest.skip(f"{isa} module not built or not supported by this CPU")
    got = _run(isa)
    assert got["simd"] == isa
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        for name, want in default_results[dtype].items():
            want_a = np.array(want, dtype=np.float64)
            got_a = np.array(got[dtype][name], dtype=np.float64)
            scale = np.max(np.abs(want_a[np.isfinite(want_a)]))
            np.testing.assert_allclose(got_a, want_a, rtol=rtol, atol=rtol * scale, err_msg=f"{isa} {dtype} {name}")


def test_default_is_best_supported():
    best = next(i for i in ("avx512", "avx2", "generic") if _available(i))
    assert bz.build_info()["simd"] == best


def test_unknown_isa_is_refused():
    env = dict(os.environ, BYZCORE_ISA="sse1")
    proc = subprocess.run([sys.executable, "-c", "import byzcore"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0
    assert "BYZCORE_ISA" in proc.stderr
