"""Aggregator objects, their composition, the name registry, and build_info()."""

from __future__ import annotations

import re

import numpy as np
import pytest

import byzcore as bz
import reference as ref
from byzcore import aggregators

rng = np.random.default_rng(3)
X = 1.0 + rng.standard_normal((9, 5))
X[7] = 50.0
X[8] = -40.0
F = 2


@pytest.mark.parametrize("agg,fn", [
    (bz.Mean(), lambda X: ref.mean(X)),
    (bz.Median(F), ref.median),
    (bz.TrimmedMean(F), lambda X: ref.trimmed_mean(X, F)),
    (bz.Krum(F), lambda X: ref.krum(X, F)),
    (bz.MultiKrum(F), lambda X: ref.multi_krum(X, F)),
    (bz.MultiKrum(F, m=3), lambda X: ref.multi_krum(X, F, 3)),
    (bz.GeometricMedian(F, max_iter=5, tol=0.0), lambda X: ref.geometric_median(X, max_iter=5, tol=0.0)),
    (bz.CenteredClipping(F, tau=2.0, iters=2, use_previous=False),
     lambda X: ref.centered_clipping(X, 2.0, iters=2)),
], ids=lambda v: getattr(v, "name", ""))
def test_objects_match_functions(agg, fn):
    assert isinstance(agg, bz.Aggregator)
    assert agg.f in (0, F)
    np.testing.assert_allclose(agg(X), fn(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(agg([X[i] for i in range(len(X))]), fn(X), rtol=1e-12, atol=1e-12)


def test_names_and_f():
    assert bz.Median().name == "median"
    assert bz.Krum(3).f == 3
    b = bz.Bucketing(bz.Median(2), s=2)
    assert b.name == "bucketing:2+median" and b.f == 2
    chain = bz.NNM(2) >> bz.Krum(2)
    assert chain.name == "nnm+krum" and chain.f == 2


def test_bucketing_object():
    b = bz.Bucketing(bz.Median(), s=2, seed=10)
    first = b(X)
    np.testing.assert_allclose(first, ref.bucketing(X, 2, ref.median, ref.permutation(len(X), 10)), rtol=1e-12)
    # Each call draws a new shuffle (call t uses seed + t), reproducibly.
    second = b(X)
    np.testing.assert_allclose(second, ref.bucketing(X, 2, ref.median, ref.permutation(len(X), 11)), rtol=1e-12)
    again = bz.Bucketing(bz.Median(), s=2, seed=10)
    np.testing.assert_array_equal(again(X), first)


def test_bucketing_as_pre_aggregator():
    pre = bz.Bucketing(None, s=3, seed=4)
    assert not pre.reduces
    means = pre(X)
    assert np.shape(means) == (3, 5)
    np.testing.assert_allclose(means, ref.bucket_means(X, 3, ref.permutation(9, 4)), rtol=1e-12)
    chain = bz.Bucketing(None, s=3, seed=4) >> bz.Median()
    np.testing.assert_allclose(chain(X), ref.median(ref.bucket_means(X, 3, ref.permutation(9, 4))), rtol=1e-12)


def test_nnm_then_krum():
    agg = bz.NNM(F) >> bz.Krum(F)
    np.testing.assert_allclose(agg(X), ref.krum(ref.nnm(X, F), F), rtol=1e-12)
    agg = bz.NNM(F) >> bz.TrimmedMean(F)
    np.testing.assert_allclose(agg(X), ref.trimmed_mean(ref.nnm(X, F), F), rtol=1e-12)


def test_rule_cannot_be_followed():
    with pytest.raises(ValueError, match=r"\[aggregator\]"):
        bz.Krum(1) >> bz.Median()


def test_centered_clipping_uses_previous_aggregate():
    cc = bz.CenteredClipping(tau=1.0)
    v1 = cc(X)
    np.testing.assert_allclose(v1, ref.centered_clipping(X, 1.0), rtol=1e-12)
    v2 = cc(X)
    np.testing.assert_allclose(v2, ref.centered_clipping(X, 1.0, center=v1), rtol=1e-12)


def test_rules_clamp_f_to_the_input():
    """Objects built for f keep working when given fewer messages (e.g. after bucketing)."""
    small = X[:4]
    bz.Krum(5)(small)
    bz.TrimmedMean(5)(small)
    bz.NNM(5)(small)


def test_torch_through_objects():
    torch = pytest.importorskip("torch")
    T = torch.tensor(X, dtype=torch.float32)
    for agg in (bz.Median(), bz.Bucketing(bz.Median(), s=2), bz.NNM(F) >> bz.Krum(F), bz.TrimmedMean(F)):
        out = agg(T)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (5,)


# ---------------------------------------------------------------- registry
@pytest.mark.parametrize("spec,want", [
    ("mean", lambda: ref.mean(X)),
    ("median", lambda: ref.median(X)),
    ("cwmed", lambda: ref.median(X)),
    ("trimmed_mean", lambda: ref.trimmed_mean(X, F)),
    ("tm:1", lambda: ref.trimmed_mean(X, 1)),
    ("krum", lambda: ref.krum(X, F)),
    ("mkrum:m=3", lambda: ref.multi_krum(X, F, 3)),
    ("multi_krum", lambda: ref.multi_krum(X, F)),
    ("gm:max_iter=4,tol=0", lambda: ref.geometric_median(X, max_iter=4, tol=0.0)),
    ("cc:tau=0.5,iters=3", lambda: ref.centered_clipping(X, 0.5, iters=3)),
    ("nnm+krum", lambda: ref.krum(ref.nnm(X, F), F)),
    ("nnm+median", lambda: ref.median(ref.nnm(X, F))),
    ("bucketing:2+median", lambda: ref.bucketing(X, 2, ref.median, ref.permutation(9, 6))),
    ("bucketing:3+mean", lambda: ref.mean(X)),
    (" Median ", lambda: ref.median(X)),
])
def test_make_aggregator(spec, want):
    agg = bz.make_aggregator(spec, f=F, seed=6)
    assert isinstance(agg, bz.Aggregator)
    np.testing.assert_allclose(agg(X), want(), rtol=1e-12, atol=1e-12)


def test_make_aggregator_names_and_passthrough():
    agg = bz.make_aggregator("bucketing:2+median", f=3, seed=0)
    assert agg.name == "bucketing:2+median" and agg.f == 3
    assert bz.make_aggregator("nnm+krum", f=1).name == "nnm+krum"
    obj = bz.Median()
    assert bz.make_aggregator(obj) is obj
    for name in ("mean", "median", "trimmed_mean", "krum", "multi_krum", "geometric_median",
                 "centered_clipping", "nnm", "bucketing"):
        assert name in aggregators.available()


@pytest.mark.parametrize("spec", ["unknown", "median+frobnicate", "nnm", "bucketing:2", "median:3",
                                  "krum:f=x=y,oops", "gm:bogus=1", "median+krum"])
def test_make_aggregator_bad_names(spec):
    with pytest.raises(ValueError, match=r"\[(make_aggregator|aggregator)\]"):
        bz.make_aggregator(spec, f=1)


@pytest.mark.parametrize("spec", ["", "   ", None, 3])
def test_make_aggregator_bad_types(spec):
    with pytest.raises(TypeError, match=r"\[make_aggregator\]"):
        bz.make_aggregator(spec)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        bz.make_aggregator("kurm")
    assert "krum" in str(info.value)


# ---------------------------------------------------------------- build_info
def test_build_info():
    info = bz.build_info()
    assert {"version", "cuda", "simd", "threads"} <= set(info)
    assert info["version"] == bz.__version__ and isinstance(info["version"], str)
    assert isinstance(info["cuda"], bool)
    assert info["simd"] in ("generic", "avx2", "avx512")
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    assert isinstance(info.get("openmp", False), bool)
    assert isinstance(info.get("cuda_devices", 0), int)


def test_build_info_says_what_the_build_contains():
    info = bz.build_info()
    levels = ["generic", "avx2", "avx512"]
    modules = info["isa_modules"]
    assert modules[0] == "generic" and info["simd"] in modules
    assert modules == [m for m in levels if m in modules]  # known names, in level order
    archs = info["cuda_architectures"]
    if archs is not None:  # written by CMake: present in any pip-installed build
        assert isinstance(archs, list) and bool(archs) == info["cuda"]
        assert all(re.fullmatch(r"\d+(-real|-virtual)?", a) for a in archs), archs
        assert info["build_type"] and isinstance(info["lto"], bool)
    if info["wheel_tag"] is not None:
        assert archs is not None, "an installed wheel must carry _build_config.py"
        assert re.fullmatch(r"cp\d+-cp\d+t?-\S+", info["wheel_tag"]), info["wheel_tag"]


def test_public_names():
    for name in ("mean", "median", "trimmed_mean", "pairwise_distances", "krum_scores", "krum",
                 "multi_krum", "geometric_median", "clip", "rand_k", "rand_k_indices", "rand_k_sparse",
                 "rand_k_dense", "centered_clipping", "bucketing", "nnm", "build_info", "make_aggregator",
                 "Bucketing", "Median", "NNM", "Krum"):
        assert name in bz.__all__ and callable(getattr(bz, name))
