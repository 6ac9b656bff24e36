"""Aggregator objects, their composition, the name registry, and build_info()."""

from __future__ import annotations

import re

import numpy as np
import pytest
import reference as ref

import byzcore as bz
from byzcore import aggregators

rng = np.random.default_rng(3)
X = 1.0 + rng.standard_normal((9, 5))
X[7] = 50.0
X[8] = -40.0
F = 2


@pytest.mark.parametrize("agg,fn", [
    (bz.Mean(), ref.mean),
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
    assert b.name == "bucketing:2+median"
    assert b.f == 2
    chain = bz.NNM(2) >> bz.Krum(2)
    assert chain.name == "nnm+krum"
    assert chain.f == 2


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


SMALL = X[:4]  # 4 messages: below every bound for f = 5


@pytest.mark.parametrize("agg,bound,clamped_f", [
    (bz.Krum(5), "n >= f + 3", 1), (bz.MultiKrum(5), "n >= f + 3", 1), (bz.TrimmedMean(5), "n > 2f", 1),
    (bz.Median(5), "n > 2f", 1), (bz.GeometricMedian(5), "n > 2f", 1), (bz.NNM(5), "n > f", 3),
], ids=lambda v: getattr(v, "name", str(v)))
def test_rules_refuse_fewer_messages_than_their_bound(agg, bound, clamped_f):
    """Krum(5) on 4 messages would tolerate fewer than 5 Byzantine messages: it raises."""
    with pytest.raises(ValueError, match=rf"^\[{agg.name}\] needs {re.escape(bound)}, got n = 4, f = 5"):
        agg(SMALL)
    assert agg.clamped == 0


@pytest.mark.parametrize("agg,want", [
    (bz.Krum(5), lambda: ref.krum(SMALL, 1)),
    (bz.MultiKrum(5), lambda: ref.multi_krum(SMALL, 1)),
    (bz.TrimmedMean(5), lambda: ref.trimmed_mean(SMALL, 1)),
    (bz.Median(5), lambda: ref.median(SMALL)),
    (bz.GeometricMedian(5), lambda: ref.geometric_median(SMALL)),
    (bz.NNM(5), lambda: ref.nnm(SMALL, 3)),
], ids=lambda v: getattr(v, "name", ""))
def test_rules_clamp_f_to_the_input(agg, want):
    """Only on request (with_clamp): f drops to the largest value the bound allows, each call counted."""
    clamping = agg.with_clamp()
    assert clamping is not agg
    assert clamping.on_small == "clamp"
    assert agg.on_small == "raise"
    np.testing.assert_allclose(clamping(SMALL), want(), rtol=1e-9, atol=1e-12)
    clamping(SMALL)
    clamping(np.vstack([X, X]))  # 18 messages meet every bound for f = 5: no clamping
    assert clamping.clamped == 2
    assert clamping.state["clamped"] == 2
    assert agg.clamped == 0
    clamping.reset()
    assert clamping.clamped == 0


def test_clamp_counts_every_stage_and_make_aggregator_asks_for_it():
    agg = bz.make_aggregator("nnm+krum", f=5, on_small="clamp")
    np.testing.assert_allclose(agg(SMALL), ref.krum(ref.nnm(SMALL, 3), 1), rtol=1e-12)
    assert agg.clamped == 2
    assert agg.state["stages"][0]["clamped"] == 1
    with pytest.raises(ValueError, match=r"\[nnm\] needs n > f"):
        bz.make_aggregator("nnm+krum", f=5)(SMALL)
    # After bucketing 9 messages into 5 buckets, Krum(3) has too few: raise, or clamp on request.
    with pytest.raises(ValueError, match=r"\[krum\] needs n >= f \+ 3, got n = 5, f = 3"):
        bz.make_aggregator("bucketing:2+krum", f=3)(X)
    b = bz.make_aggregator("bucketing:2+krum", f=3, on_small="clamp")
    b(X)
    assert b.clamped == 1
    obj = bz.Krum(5)
    assert bz.make_aggregator(obj, on_small="clamp") is not obj
    assert obj.on_small == "raise"
    with pytest.raises(ValueError, match=r"\[make_aggregator\] on_small"):
        bz.make_aggregator("krum", on_small="ignore")


def test_rules_below_the_bound_without_f_never_clamp():
    """f = 0 needs nothing of n beyond the rule's own minimum (Krum: 3 messages)."""
    np.testing.assert_allclose(bz.Median()(X[:1]), X[0])
    with pytest.raises(ValueError, match=r"\[krum\] needs n >= f \+ 3, got n = 2, f = 0"):
        bz.Krum(0).with_clamp()(X[:2])


# ---------------------------------------------------------------- state
def test_centered_clipping_state_is_explicit():
    a, b = bz.CenteredClipping(tau=1.0), bz.CenteredClipping(tau=1.0)
    assert a.state == {"clamped": 0, "center": None}
    first = a(X)
    np.testing.assert_array_equal(b(X), first)  # two fresh objects agree
    assert a.state["center"] is not None
    np.testing.assert_array_equal(a.center, first)
    second = a(X)
    assert not np.array_equal(second, first)  # the centre moved: the object has state
    a.reset()
    assert a.center is None
    np.testing.assert_array_equal(a(X), first)  # reset restores the first result


def test_centered_clipping_result_and_state_are_copies():
    # out used to be cc.center itself: writing into a result moved the next call's centre.
    cc, fresh = bz.CenteredClipping(tau=1.0), bz.CenteredClipping(tau=1.0)
    out = cc(X)
    fresh(X)
    assert out is not cc.center
    out[:] = 1e6  # the caller owns its result
    cc.state["center"][:] = -1e6  # and the state it was handed
    np.testing.assert_array_equal(cc.center, fresh.center)
    v1 = ref.centered_clipping(X, 1.0)
    np.testing.assert_allclose(cc(X), ref.centered_clipping(X, 1.0, center=v1), rtol=1e-12)
    np.testing.assert_array_equal(cc.center, fresh(X))


def test_bucketing_state_is_explicit():
    a, b = bz.Bucketing(bz.Median(), s=2, seed=3), bz.Bucketing(bz.Median(), s=2, seed=3)
    first = a(X)
    np.testing.assert_array_equal(b(X), first)
    assert a.calls == 1
    assert a.state == {"clamped": 0, "calls": 1, "stages": [{"clamped": 0}]}
    assert not np.array_equal(a(X), first)
    a.reset()
    assert a.calls == 0
    np.testing.assert_array_equal(a(X), first)
    chain = bz.make_aggregator("bucketing:2+cc", seed=3)
    r1 = chain(X)
    chain(X)
    chain.reset()
    assert chain.state == {"clamped": 0, "calls": 0, "stages": [{"clamped": 0, "center": None}]}
    np.testing.assert_array_equal(chain(X), r1)


def test_with_clamp_copies_start_fresh():
    cc = bz.CenteredClipping(tau=1.0)
    first = cc(X)
    copy = cc.with_clamp()
    assert copy.center is None
    assert cc.center is not None
    np.testing.assert_array_equal(copy(X), first)


@pytest.mark.parametrize("make,exc", [
    (lambda: bz.Krum(-1), ValueError), (lambda: bz.Krum(1.0), TypeError), (lambda: bz.Krum(True), TypeError),
    (lambda: bz.Krum(2**63), ValueError), (lambda: bz.MultiKrum(1, m=0), ValueError),
    (lambda: bz.Bucketing(bz.Median(), s=0), ValueError), (lambda: bz.Bucketing(bz.Median(), seed=-1), ValueError),
    (lambda: bz.Bucketing("median"), TypeError), (lambda: bz.CenteredClipping(tau=-1.0), ValueError),
    (lambda: bz.CenteredClipping(iters=0), ValueError), (lambda: bz.GeometricMedian(nu=0.0), ValueError),
    (lambda: bz.GeometricMedian(max_iter=-1), ValueError), (lambda: bz.NNM(2**63 - 1 + 1), ValueError),
])
def test_objects_check_their_arguments_when_built(make, exc):
    with pytest.raises(exc, match=r"^\[\w+\] "):
        make()


def test_torch_through_objects():
    torch = pytest.importorskip("torch")
    T = torch.tensor(X, dtype=torch.float32)
    for agg in (bz.Median(), bz.Bucketing(bz.Median(), s=2), bz.NNM(F) >> bz.Krum(F), bz.TrimmedMean(F)):
        out = agg(T)
        assert isinstance(out, torch.Tensor)
        assert out.dtype == torch.float32
        assert out.shape == (5,)


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
    assert agg.name == "bucketing:2+median"
    assert agg.f == 3
    assert bz.make_aggregator("nnm+krum", f=1).name == "nnm+krum"
    obj = bz.Median()
    assert bz.make_aggregator(obj) is obj
    for name in ("mean", "median", "trimmed_mean", "krum", "multi_krum", "geometric_median",
                 "centered_clipping", "nnm", "bucketing"):
        assert name in aggregators.available()


@pytest.mark.parametrize("spec,says", [
    ("unknown", "unknown aggregator 'unknown'"), ("median+frobnicate", "unknown aggregator 'frobnicate'"),
    ("nnm", "ends with a pre-aggregator"), ("bucketing:2", "ends with a pre-aggregator"),
    ("median:3", "median takes no positional option"), ("krum:f=x=y,oops", "cannot read option"),
    ("gm:bogus=1", "unknown option 'bogus' for gm"), ("median+krum", "median reduces to one vector"),
    ("krum:f=-3", "[krum] f must be >= 0"), ("krum:f=1.5", "must be a whole number"),
    ("krum:f=99999999999999999999", "outside the 64-bit integer range"), ("tm:1,f=2", "given twice"),
    ("gm:nu=x", "option nu='x' of 'gm'"), ("gm:nu=-1", "[geometric_median] nu must be"),
    ("cc:iters=0", "[centered_clipping] iters must be"), ("cc:use_previous=maybe", "boolean"),
    ("bucketing:0+median", "[bucketing] bucket size s must be >= 1"), ("bucketing:seed=-1+median", "seed must be"),
    ("mkrum:m=0", "[multi_krum] m must be >= 1"), ("krum+", "empty part"), ("mean:f=1", "unknown option 'f'"),
    # refused when built, not on the first call
    ("dnc:iters=0", "[dnc] iters must be in 1..1000000, got 0"),
    ("dnc:iters=4611686018427387904,c=0", "[dnc] iters must be in 1..1000000, got 4611686018427387904"),
    ("dnc:c=nan", "[dnc] c must be a finite number >= 0"), ("dnc:c=-1", "[dnc] c must be a finite number >= 0"),
    ("dnc:sub_dim=0", "[dnc] sub_dim must be >= 1"), ("monna:-1", "[monna] pivot must be a message index"),
    ("clipping:-1+median", "[clipping] tau must be >= 0"), ("clipping:nan+median", "[clipping] tau must be >= 0"),
    ("smea:max_subsets=0", "[smea] max_subsets must be >= 1"),
])
def test_make_aggregator_bad_specs(spec, says):
    """Each error names make_aggregator first and says what is wrong (never a Python internals message)."""
    with pytest.raises(ValueError, match=r"^\[make_aggregator\] ") as info:
        bz.make_aggregator(spec, f=1)
    assert says in str(info.value)
    assert "<lambda>" not in str(info.value)


@pytest.mark.parametrize("build,says", [
    (lambda: bz.DnC(1, iters=0), "[dnc] iters must be in 1..1000000"),
    (lambda: bz.DnC(0, iters=2**62), "[dnc] iters must be in 1..1000000"),
    (lambda: bz.DnC(1, c=float("inf")), "[dnc] c must be a finite number >= 0"),
    (lambda: bz.DnC(1, sub_dim=-5), "[dnc] sub_dim must be >= 1"),
    (lambda: bz.MoNNA(1, pivot=-1), "[monna] pivot must be a message index in 0..n-1, got -1"),
    (lambda: bz.Clipping(-0.5), "[clipping] tau must be >= 0"),
    (lambda: bz.SMEA(1, max_subsets=-1), "[smea] max_subsets must be >= 1"),
])
def test_aggregator_objects_check_options_when_built(build, says):
    with pytest.raises(ValueError, match=r"^\[(dnc|monna|clipping|smea)\] ") as info:
        build()
    assert str(info.value).startswith(says)


def test_aggregator_objects_with_valid_options_still_run():
    X = np.random.default_rng(2).standard_normal((7, 5))
    np.testing.assert_allclose(bz.DnC(1, iters=10**6, c=0.5)(X), X.mean(axis=0), rtol=1e-12)  # floor(0.5) = 0
    np.testing.assert_allclose(bz.MoNNA(1, pivot=6)(X), bz.monna(X, 1, 6))
    np.testing.assert_allclose((bz.Clipping(0.0) >> bz.Mean())(X), np.zeros(5))
    np.testing.assert_allclose(bz.SMEA(1, max_subsets=10**6)(X), bz.smea(X, 1))


@pytest.mark.parametrize("f,seed,exc", [(-1, 0, ValueError), (1.0, 0, TypeError), (True, 0, TypeError),
                                        (2**63, 0, ValueError), (0, -1, ValueError), (0, 2**64, ValueError)])
def test_make_aggregator_bad_f_and_seed(f, seed, exc):
    with pytest.raises(exc, match=r"^\[make_aggregator\] "):
        bz.make_aggregator("median", f=f, seed=seed)


def test_spec_options_override_and_convert():
    assert bz.make_aggregator("krum:f=2", f=5).f == 2
    cc = bz.make_aggregator("cc:0.5,iters=3,use_previous=false")
    assert (cc.tau, cc.iters, cc.use_previous) == (0.5, 3, False)
    assert bz.make_aggregator("bucketing:s=3,seed=7+median").seed == 7
    assert bz.make_aggregator("bucketing:3+median", seed=2**64 - 1).seed == 2**64 - 1


@pytest.mark.parametrize("spec", ["", "   ", None, 3])
def test_make_aggregator_bad_types(spec):
    with pytest.raises(TypeError, match=r"\[make_aggregator\]"):
        bz.make_aggregator(spec)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="kurm") as info:
        bz.make_aggregator("kurm")
    assert "krum" in str(info.value)


# ---------------------------------------------------------------- build_info
def test_build_info():
    info = bz.build_info()
    assert {"version", "cuda", "simd", "threads"} <= set(info)
    assert info["version"] == bz.__version__
    assert isinstance(info["version"], str)
    assert isinstance(info["cuda"], bool)
    assert info["simd"] in ("generic", "avx2", "avx512")
    assert isinstance(info["threads"], int)
    assert info["threads"] >= 1
    assert isinstance(info.get("openmp", False), bool)
    assert isinstance(info.get("cuda_devices", 0), int)


def test_build_info_says_what_the_build_contains():
    info = bz.build_info()
    levels = ["generic", "avx2", "avx512"]
    modules = info["isa_modules"]
    assert modules[0] == "generic"
    assert info["simd"] in modules
    assert modules == [m for m in levels if m in modules]  # known names, in level order
    archs = info["cuda_architectures"]
    if archs is not None:  # written by CMake: present in any pip-installed build
        assert isinstance(archs, list)
        assert bool(archs) == info["cuda"]
        assert all(re.fullmatch(r"\d+(-real|-virtual)?", a) for a in archs), archs
        assert info["build_type"]
        assert isinstance(info["lto"], bool)
    if info["wheel_tag"] is not None:
        assert archs is not None, "an installed wheel must carry _build_config.py"
        assert re.fullmatch(r"cp\d+-cp\d+t?-\S+", info["wheel_tag"]), info["wheel_tag"]


def test_public_names():
    for name in ("mean", "median", "trimmed_mean", "pairwise_distances", "krum_scores", "krum",
                 "multi_krum", "geometric_median", "clip", "rand_k", "rand_k_indices", "rand_k_sparse",
                 "rand_k_dense", "centered_clipping", "bucketing", "nnm", "build_info", "make_aggregator",
                 "Bucketing", "Median", "NNM", "Krum"):
        assert name in bz.__all__
        assert callable(getattr(bz, name))


def test_fed_trimmed_avg_checks_beta_as_trimmed_mean_does():
    X = np.random.default_rng(4).standard_normal((10, 3))
    for bad in [None, 1 + 0j, False, True, "0.1", b"0.1", [0.1]]:
        with pytest.raises(TypeError, match=r"^\[fed_trimmed_avg\] beta must be a real number"):
            bz.FedTrimmedAvg(bad)
        if bad is not None:  # trimmed_mean(X, beta=None) gives neither f nor beta
            with pytest.raises(TypeError, match=r"^\[trimmed_mean\] beta must be a real number"):
                bz.trimmed_mean(X, beta=bad)
    with pytest.raises(ValueError, match=r"^\[fed_trimmed_avg\] beta = .* is too large for a float"):
        bz.FedTrimmedAvg(2**1100)
    for bad in [-0.1, 0.5, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match=r"^\[fed_trimmed_avg\] beta must be in \[0, 0\.5\)"):
            bz.FedTrimmedAvg(bad)
    # NumPy reals are numbers; the result is trimmed_mean's, int(beta * n) = 2 trimmed at each end
    agg = bz.FedTrimmedAvg(np.float32(0.25))
    np.testing.assert_allclose(agg(X), np.sort(X, axis=0)[2:8].mean(axis=0), rtol=1e-12)
    assert bz.FedTrimmedAvg(0).beta == 0.0
