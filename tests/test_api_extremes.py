"""Every integer argument of every public function at its extremes (the catalogue rules included).

A bound such as ``n > 2f`` computed as ``2 * f`` wraps in int64 for ``f = 2**62`` and used to
let ``trimmed_mean(X, 2**62)`` return garbage; each value below must give the documented
result, a ``ValueError`` or a ``TypeError`` naming the function, never anything else.

What is accepted (``byzcore._arrays.as_index`` / ``as_seed``): Python ints and NumPy integers
in int64 (seeds: in ``0..2**64-1``); ``bool``, whole floats (``3.0``), strings, ``None`` and
complex numbers are refused with ``TypeError``; integers outside the range with ``ValueError``.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import reference as ref

import byzcore as bz

GOOD = np.arange(15, dtype=np.float64).reshape(5, 3) ** 1.5  # n = 5, d = 3, distinct distances
N, D = GOOD.shape

INTS = [0, 1, -1, 2, 3, 5, 2**31, 2**62, 2**63 - 1, -2**63, 2**63, 2**64 - 1, 2**64, -2**64,
        np.int64(1), np.int32(-1), np.int8(2), np.uint64(2**63), np.uint64(2**64 - 1), np.int64(2**63 - 1)]
NOT_INTS = [3.0, 1.5, True, False, np.float64(1.0), np.bool_(True), "1", b"1", 1 + 0j, [1]]

BIG = 2**32  # the cap on d (rand_k): the draw scans every coordinate
MAX_MESSAGES = 2**31 - 1  # the cap on permutation's n


def _ident(v):
    return v


# (op, argument, call(v), valid(v), want(v) -> the expected result; seed: the argument is a uint64)
ARGS = [
    ("trimmed_mean", "f", lambda v: bz.trimmed_mean(GOOD, v), lambda v: 0 <= v <= 2,
     lambda v: ref.trimmed_mean(GOOD, v), False),
    ("krum_scores", "f", lambda v: bz.krum_scores(GOOD, v), lambda v: 0 <= v <= 2,
     lambda v: ref.krum_scores(GOOD, v), False),
    ("krum", "f", lambda v: bz.krum(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.krum(GOOD, v), False),
    ("multi_krum", "f", lambda v: bz.multi_krum(GOOD, v), lambda v: 0 <= v <= 2,
     lambda v: ref.multi_krum(GOOD, v), False),
    ("multi_krum", "m", lambda v: bz.multi_krum(GOOD, 1, v), lambda v: 1 <= v <= N,
     lambda v: ref.multi_krum(GOOD, 1, v), False),
    ("nnm", "f", lambda v: bz.nnm(GOOD, v), lambda v: 0 <= v <= N - 1, lambda v: ref.nnm(GOOD, v), False),
    ("geometric_median", "max_iter", lambda v: bz.geometric_median(GOOD, max_iter=v), lambda v: 0 <= v <= 10**6,
     lambda v: ref.geometric_median(GOOD, max_iter=v), False),
    ("centered_clipping", "iters", lambda v: bz.centered_clipping(GOOD, 2.0, iters=v), lambda v: 1 <= v <= 10**6,
     lambda v: ref.centered_clipping(GOOD, 2.0, iters=v), False),
    ("bucketing", "s", lambda v: bz.bucketing(GOOD, v, bz.median, seed=4), lambda v: v >= 1,
     lambda v: ref.bucketing(GOOD, min(v, N), ref.median, ref.permutation(N, 4)), False),
    ("bucketing", "seed", lambda v: bz.bucketing(GOOD, 2, bz.median, seed=v), lambda v: True,
     lambda v: ref.bucketing(GOOD, 2, ref.median, ref.permutation(N, v)), True),
    ("rand_k", "k", lambda v: bz.rand_k(GOOD, v, seed=1), lambda v: 1 <= v <= D,
     lambda v: ref.rand_k(GOOD, ref.rand_k_indices(D, v, 1)), False),
    ("rand_k", "seed", lambda v: bz.rand_k(GOOD, 2, seed=v), lambda v: True,
     lambda v: ref.rand_k(GOOD, ref.rand_k_indices(D, 2, v)), True),
    ("rand_k_indices", "d", lambda v: bz.rand_k_indices(v, 1, seed=2), lambda v: 1 <= v <= BIG,
     lambda v: ref.rand_k_indices(v, 1, 2) if v < 2**20 else None, False),
    ("rand_k_indices", "k", lambda v: bz.rand_k_indices(D, v, seed=2), lambda v: 1 <= v <= D,
     lambda v: ref.rand_k_indices(D, v, 2), False),
    ("rand_k_indices", "seed", lambda v: bz.rand_k_indices(D, 2, seed=v), lambda v: True,
     lambda v: ref.rand_k_indices(D, 2, v), True),
    ("rand_k_sparse", "seed", lambda v: bz.rand_k_sparse(GOOD[1], 2, seed=v)[0], lambda v: True,
     lambda v: ref.rand_k_indices(D, 2, v), True),
    ("rand_k_dense", "d", lambda v: bz.rand_k_dense(np.array([0]), np.array([7.0]), v), lambda v: 1 <= v <= BIG,
     lambda v: np.eye(1, v)[0] * 7.0 if v < 2**20 else None, False),  # None: checked without reading 2**31 zeros
    ("permutation", "n", lambda v: bz.permutation(v, seed=3), lambda v: 0 <= v <= MAX_MESSAGES,
     lambda v: ref.permutation(v, 3), False),
    ("permutation", "seed", lambda v: bz.permutation(N, seed=v), lambda v: True, lambda v: ref.permutation(N, v), True),
]


def _least_budget(call) -> int:
    """The smallest search budget with which ``call(budget)`` finishes on GOOD (a few steps)."""
    for b in range(1, 10_000):
        try:
            call(b)
        except ValueError:
            continue
        return b
    raise AssertionError("no budget up to 10,000 suffices")


MDA_STEPS = _least_budget(lambda b: bz.mda(GOOD, 1, max_steps=b))
SMEA_SUBSETS = _least_budget(lambda b: bz.smea(GOOD, 1, max_subsets=b))
MAX_ITERS = 10**6  # the documented cap on iteration counts (max_iter, iters)
CHILD_SECONDS = 20


def _dnc_iters(f: int, c: float):
    """dnc(GOOD, f, iters=v, c=c). With floor(c f) = 0 no round removes a message, so nothing
    bounds iters but its cap: an in-range count past the cap must raise ``[dnc]``, not run
    2**62 rounds. Such a count runs in a child process killed after CHILD_SECONDS, so that a
    library that loops fails this test instead of hanging the suite."""
    def call(v):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not MAX_ITERS < int(v) < 2**63:
            return bz.dnc(GOOD, f, iters=v, c=c)
        child = ("import pickle, sys\nimport byzcore as bz\nX, f, v, c = pickle.load(sys.stdin.buffer)\n"
                 "try:\n    out = ('ok', bz.dnc(X, f, iters=v, c=c))\n"
                 "except (ValueError, TypeError) as exc:\n    out = (type(exc).__name__, str(exc))\n"
                 "pickle.dump(out, sys.stdout.buffer)\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            done = subprocess.run([sys.executable, "-c", child], input=pickle.dumps((GOOD, f, v, c)),
                                  capture_output=True, timeout=CHILD_SECONDS, env=env, check=True)
        except subprocess.TimeoutExpired:
            pytest.fail(f"[dnc] iters={v!r} (f={f}, c={c}) did not return within {CHILD_SECONDS} s")
        kind, value = pickle.loads(done.stdout)  # our own child's output
        if kind != "ok":
            raise {"ValueError": ValueError, "TypeError": TypeError}[kind](value)
        return value
    return call


# The catalogue rules (docs/rules.md): n = 5, so n > 2f means f <= 2 and Bulyan's n >= 4f + 3
# means f = 0. dnc removes floor(c f) messages per round: with f = 1, c = 1 it needs iters <= 4.
ARGS += [
    ("meamed", "f", lambda v: bz.meamed(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.meamed(GOOD, v), False),
    ("bulyan", "f", lambda v: bz.bulyan(GOOD, v), lambda v: v == 0, lambda v: ref.bulyan(GOOD, v), False),
    ("monna", "f", lambda v: bz.monna(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.monna(GOOD, v), False),
    ("monna", "pivot", lambda v: bz.monna(GOOD, 1, v), lambda v: 0 <= v <= N - 1,
     lambda v: ref.monna(GOOD, 1, v), False),
    ("cge", "f", lambda v: bz.cge(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.cge(GOOD, v), False),
    ("arc", "f", lambda v: bz.arc(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.arc(GOOD, v), False),
    ("mda", "f", lambda v: bz.mda(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.mda(GOOD, v), False),
    ("mda", "max_steps", lambda v: bz.mda(GOOD, 1, max_steps=v), lambda v: v >= MDA_STEPS,
     lambda v: ref.mda(GOOD, 1), False),
    ("smea", "f", lambda v: bz.smea(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.smea(GOOD, v), False),
    ("smea", "max_subsets", lambda v: bz.smea(GOOD, 1, max_subsets=v), lambda v: v >= SMEA_SUBSETS,
     lambda v: ref.smea(GOOD, 1), False),
    ("caf", "f", lambda v: bz.caf(GOOD, v), lambda v: 0 <= v <= 2, lambda v: ref.caf(GOOD, v), False),
    ("dnc", "f", lambda v: bz.dnc(GOOD, v, sub_dim=2, seed=3), lambda v: 0 <= v <= 2,
     lambda v: ref.dnc(GOOD, v, sub_dim=2, seed=3), False),
    ("dnc", "iters", lambda v: bz.dnc(GOOD, 1, iters=v, sub_dim=2, seed=3), lambda v: 1 <= v <= 4,
     lambda v: ref.dnc(GOOD, 1, iters=v, sub_dim=2, seed=3), False),
    ("dnc", "iters(f=0)", _dnc_iters(0, 1.0), lambda v: 1 <= v <= MAX_ITERS,
     lambda v: ref.dnc(GOOD, 0, iters=v), False),
    ("dnc", "iters(c=0)", _dnc_iters(1, 0.0), lambda v: 1 <= v <= MAX_ITERS,
     lambda v: ref.dnc(GOOD, 1, iters=v, c=0.0), False),
    ("dnc", "sub_dim", lambda v: bz.dnc(GOOD, 1, sub_dim=v, seed=3), lambda v: v >= 1,
     lambda v: ref.dnc(GOOD, 1, sub_dim=v, seed=3), False),
    ("dnc", "seed", lambda v: bz.dnc(GOOD, 1, sub_dim=2, seed=v), lambda v: True,
     lambda v: ref.dnc(GOOD, 1, sub_dim=2, seed=v), True),
]
ARGS.append(("rand_k_sparse", "k", lambda v: bz.rand_k_sparse(GOOD[1], v, seed=2)[0],
             lambda v: 1 <= v <= D, lambda v: ref.rand_k_indices(D, v, 2), False))

# Valid but too slow for the normal suite: the draw scans 2**31 keys (~10 s on two cores).
SLOW = {("rand_k_indices", "d", 2**31)}


def _cases():
    for op, arg, call, valid, want, seed in ARGS:
        for v in INTS:
            marks = [pytest.mark.slow] if (op, arg, int(v)) in SLOW else []
            yield pytest.param(op, arg, call, valid, want, seed, v, marks=marks,
                               id=f"{op}-{arg}-{type(v).__name__}({v})")


def _expect_error(exc, op, call, v):
    with pytest.raises(exc) as info:
        call(v)
    assert str(info.value).startswith(f"[{op}] "), str(info.value)


@pytest.mark.parametrize("op,arg,call,valid,want,seed,v", list(_cases()))
def test_integer_argument_extremes(op, arg, call, valid, want, seed, v):
    i = int(v)
    in_range = 0 <= i < 2**64 if seed else -2**63 <= i < 2**63
    if not in_range or not valid(i):
        _expect_error(ValueError, op, call, v)
        return
    got = np.asarray(call(v))
    expected = want(i)
    if expected is None:  # too large for the reference: the documented shape, a sample of values
        assert got.ndim == 1
        assert got.dtype.kind in "iuf"
        assert np.all(np.isfinite(got[:16]))
        assert (got.dtype.kind in "iu" or got[0] == 7.0)
        return
    if got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("v", NOT_INTS, ids=repr)
@pytest.mark.parametrize("op,arg,call", [(a[0], a[1], a[2]) for a in ARGS],
                         ids=lambda x: x if isinstance(x, str) else "")
def test_integer_arguments_refuse_non_integers(op, arg, call, v):
    _expect_error(TypeError, op, call, v)


def test_the_overflow_regressions():
    """The three calls that returned garbage before the bound checks were made overflow-free."""
    X = np.random.default_rng(0).standard_normal((6, 4))
    for call, op, needs in [(lambda: bz.trimmed_mean(X, 2**62), "trimmed_mean", "n > 2f"),
                            (lambda: bz.krum(X, 2**63 - 1), "krum", "n >= f + 3"),
                            (lambda: bz.krum_scores(X, 2**63 - 2), "krum_scores", "n >= f + 3"),
                            (lambda: bz.multi_krum(X, 2**63 - 3), "multi_krum", "n >= f + 3"),
                            (lambda: bz.nnm(X, 2**63 - 1), "nnm", "n > f")]:
        with pytest.raises(ValueError, match=rf"^\[{op}\] needs {needs.replace('+', '[+]')}"):
            call()


def test_multi_krum_most_negative_f_names_f():
    with pytest.raises(ValueError, match=r"^\[multi_krum\] f must be >= 0"):
        bz.multi_krum(GOOD, -2**63)


@pytest.mark.parametrize("name,call", [
    ("clip", lambda v: bz.clip(GOOD, v)), ("centered_clipping", lambda v: bz.centered_clipping(GOOD, v)),
    ("geometric_median", lambda v: bz.geometric_median(GOOD, nu=v)),
    ("geometric_median", lambda v: bz.geometric_median(GOOD, tol=v)),
])
def test_real_arguments_refuse_bool_complex_and_huge_ints(name, call):
    for bad in (True, 1 + 2j, "1.0", None):
        _expect_error(TypeError, name, call, bad)
    _expect_error(ValueError, name, call, 2**1100)  # not representable as a float


def test_subnormal_weights_give_the_weighted_mean():
    """Subnormal weights are valid (finite, >= 0, not all zero): the result is the weighted mean,
    not the Inf or NaN that 1 / sum(w) overflowing gave."""
    X = np.random.default_rng(5).standard_normal((7, 4))
    cases = [
        (lambda w: bz.mean(X, weights=w), [1e-320] * 7, X.mean(axis=0)),
        (lambda w: bz.mean(X, weights=w), [5e-324] + [0.0] * 6, X[0]),
        (lambda w: bz.mean(X, weights=w), [3e-320, 1e-320, 0.0, 2e-320, 1e-320, 0.0, 1e-320],
         ref.weighted_mean(X, [3.0, 1.0, 0.0, 2.0, 1.0, 0.0, 1.0])),
        (lambda w: bz.multi_krum(X, 1, weights=w), [1e-320] * 7, ref.multi_krum(X, 1)),
        (lambda w: bz.geometric_median(X, weights=w), [1e-309] * 7, ref.geometric_median(X)),
    ]
    for call, w, want in cases:
        got = call(w)
        assert np.all(np.isfinite(got)), (w, got)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(w))
    # Far apart: the selected messages' weights are subnormal, a left-out outlier's huge.
    Y = np.vstack([X[:6], np.full((1, 4), 1e3)])
    np.testing.assert_allclose(bz.multi_krum(Y, 1, weights=[1e-320] * 6 + [1e300]), Y[:6].mean(axis=0),
                               rtol=1e-12, atol=1e-12)
    # The scaling is by a power of two: normal weights give bit for bit the unscaled result.
    w = [1.0, 2.0, 3.0, 0.5, 0.0, 7.0, 1.25]
    for shift in (-1000, -60, 60, 1000):
        for dtype in (np.float64, np.float32):
            Xd = X.astype(dtype)
            np.testing.assert_array_equal(bz.mean(Xd, weights=[math.ldexp(v, shift) for v in w]),
                                          bz.mean(Xd, weights=w))
