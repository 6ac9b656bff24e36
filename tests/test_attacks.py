"""Attacks of docs/spec.md#attacks against hand-computed messages."""

import math

import numpy as np
import pytest
from byzcore import attacks as A


def _ctx(f=2, target=None, honest_ids=None, seed=0):
    honest = np.array([[1.0, 2.0, -1.0], [3.0, 0.0, -1.0], [2.0, 4.0, -4.0]])
    own = np.array([[9.0, 9.0, 9.0]] * f)
    return A.AttackContext(honest=honest, own=own, n=len(honest) + f, f=f, round=3,
                           rng=np.random.default_rng(seed), target=target,
                           honest_ids=np.array([4, 1, 7]) if honest_ids is None else honest_ids)


MEAN = np.array([2.0, 2.0, -2.0])


def test_sign_flip_and_ipm():
    np.testing.assert_allclose(A.SignFlip()(_ctx()), [-MEAN, -MEAN])
    np.testing.assert_allclose(A.make_attack("sign-flip:s=4")(_ctx(f=1)), [-4 * MEAN])
    np.testing.assert_allclose(A.IPM()(_ctx()), [-0.1 * MEAN] * 2)
    np.testing.assert_allclose(A.make_attack("ipm:eps=2")(_ctx()), [-2 * MEAN] * 2)


def test_alie_z_formula():
    # n = 10, f = 3: s = floor(6) - 3 = 3, z = PhiInverse(7/10)
    assert A.alie_z(10, 3) == pytest.approx(0.5244005127080407)
    # n = 5, f = 2: s = floor(3.5) - 2 = 1, z = PhiInverse(4/5)
    assert A.alie_z(5, 2) == pytest.approx(0.8416212335729143)
    ctx = _ctx(f=2)                                            # n = 5, f = 2
    std = np.array([np.std([1, 3, 2]), np.std([2, 0, 4]), np.std([-1, -1, -4])])
    np.testing.assert_allclose(A.ALIE()(ctx), [MEAN - 0.8416212335729143 * std] * 2)
    np.testing.assert_allclose(A.make_attack("alie:z=1.5")(ctx), [MEAN - 1.5 * std] * 2)
    assert math.isfinite(A.alie_z(4, 3))                      # Byzantine majority: z is clamped


def test_gaussian_is_seeded():
    a = A.Gaussian(sigma=2.0)(_ctx(seed=5))
    b = A.Gaussian(sigma=2.0)(_ctx(seed=5))
    assert a.shape == (2, 3) and np.array_equal(a, b)
    big = A.Gaussian(sigma=3.0)(A.AttackContext(honest=np.zeros((1, 4000)), own=np.zeros((2, 4000)), n=3, f=2,
                                               round=0, rng=np.random.default_rng(0)))
    assert np.std(big) == pytest.approx(3.0, rel=0.05)
    assert A.Gaussian().sigma == pytest.approx(math.sqrt(200))


def test_label_flip_none_nan_inf():
    ctx = _ctx()
    assert A.LabelFlip.flips_labels and not A.SignFlip.flips_labels
    np.testing.assert_array_equal(A.LabelFlip()(ctx), ctx.own)
    np.testing.assert_array_equal(A.make_attack("none")(ctx), ctx.own)
    assert np.all(np.isnan(A.make_attack("nan")(ctx)))
    out = A.make_attack("inf")(ctx)
    assert out.shape == (2, 3) and np.all(np.isposinf(out))


def test_mimic():
    ctx = _ctx()
    np.testing.assert_array_equal(A.Mimic()(ctx), [ctx.honest[1]] * 2)          # lowest id (1)
    np.testing.assert_array_equal(A.make_attack("mimic:target=7")(ctx), [ctx.honest[2]] * 2)
    np.testing.assert_array_equal(A.Mimic(target=99)(ctx), [ctx.honest[1]] * 2)  # absent: first row


def test_shift_back():
    t = np.array([5.0, -5.0, 1.0])
    # Byzantines at least half of the sampled set: send the target
    ctx = A.AttackContext(honest=np.ones((2, 3)), own=np.zeros((2, 3)), n=4, f=2, round=1,
                          rng=np.random.default_rng(0), target=lambda: t)
    np.testing.assert_array_equal(A.ShiftBack()(ctx), [t, t])
    # a minority behaves honestly
    ctx = A.AttackContext(honest=np.ones((3, 3)), own=np.full((2, 3), 7.0), n=5, f=2, round=1,
                          rng=np.random.default_rng(0), target=lambda: t)
    np.testing.assert_array_equal(A.ShiftBack()(ctx), ctx.own)
    with pytest.raises(ValueError, match=r"^\[shift-back\]"):
        A.ShiftBack()(_ctx(f=2, target=None))


def test_no_honest_client_in_the_round():
    ctx = A.AttackContext(honest=np.zeros((0, 2)), own=np.array([[1.0, 3.0], [3.0, 5.0]]), n=2, f=2, round=0,
                          rng=np.random.default_rng(0))
    np.testing.assert_allclose(A.SignFlip()(ctx), [[-2.0, -4.0]] * 2)   # falls back on the own messages
    np.testing.assert_array_equal(A.Mimic()(ctx), ctx.own)


def test_registry():
    assert set(A.available_attacks()) >= {"shift-back", "sign-flip", "ipm", "alie", "gaussian", "label-flip", "nan",
                                          "inf", "mimic", "none"}
    assert isinstance(A.make_attack("shift_back"), A.ShiftBack)
    assert isinstance(A.make_attack("SignFlip"), A.SignFlip)
    assert isinstance(A.make_attack("label_flip"), A.LabelFlip)
    assert isinstance(A.make_attack(None), A.NoAttack)
    atk = A.IPM(0.3)
    assert A.make_attack(atk) is atk
    with pytest.raises(ValueError, match=r"^\[make_attack\] unknown attack"):
        A.make_attack("foo")
    with pytest.raises(ValueError, match=r"^\[make_attack\] bad options"):
        A.make_attack("ipm:sigma=1")
    with pytest.raises(ValueError, match=r"^\[make_attack\] cannot read"):
        A.make_attack("ipm:0.5")
    with pytest.raises(TypeError, match=r"^\[make_attack\]"):
        A.make_attack(3)
