"""Problems: gradients against finite differences and a plain float64 reference, splits,
the LIBSVM loader, the datasets, separability (one worker alone gets the batched bits)."""

import builtins

import numpy as np
import pytest
import reference as ref64
from conftest import write_wide_libsvm

from byzcore import problems as P


def _data(N=60, d=20, seed=0, binary=True):
    rng = np.random.default_rng(seed)
    if binary:
        X = (rng.random((N, d)) < 0.15).astype(np.float64)
    else:
        X = rng.normal(size=(N, d))
    y = np.where(rng.random(N) < 0.4, 1.0, -1.0)
    return X, y


def _fd_grad(fun, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


LAYOUTS = [("dense", True), ("sparse", True), ("dense", False), ("sparse-valued", True), ("csr", True),
           ("csr-valued", True)]


def _problem(layout, binary, split="homogeneous", n_workers=4, lam=0.05):
    X, y = _data(binary=binary)
    if layout.endswith("-valued"):
        X = X * np.arange(1, X.shape[1] + 1) / 7.0
        layout = layout[: -len("-valued")]
    if layout == "csr":  # sparse input: kept in CSR form, never densified
        prob = P.LogisticRegression(P.sparse.CSRMatrix.from_dense(X), y, n_workers, split=split, lam=lam, seed=3)
        assert prob.layout == "csr"
        return prob, X, y
    prob = P.LogisticRegression(X, y, n_workers, split=split, lam=lam, seed=3, layout=layout)
    return prob, X, y


@pytest.mark.parametrize("layout,binary",
                         [case for case in LAYOUTS if not (case[0].startswith("sparse") and not case[1])])
def test_full_gradients_match_finite_differences_and_reference(layout, binary):
    prob, X, y = _problem(layout, binary)
    parts = P.split_indices(np.where(y > 0, 1.0, -1.0), 4, "homogeneous", 3)
    x = np.random.default_rng(1).normal(size=X.shape[1]) * 0.5
    G = prob.full_gradients(x, np.arange(4))
    L = prob.losses(x)
    for i, idx in enumerate(parts):
        def ref(z, idx=idx):
            return ref64.logistic_loss(X[idx], y[idx], z, 0.05)

        assert L[i] == pytest.approx(ref(x), rel=1e-12)
        np.testing.assert_allclose(G[i], _fd_grad(ref, x), rtol=1e-5, atol=1e-8)
    ev = prob.evaluate(x, [0, 2, 3])
    assert ev["loss"] == pytest.approx(np.mean(L[[0, 2, 3]]), rel=1e-12)
    assert ev["grad_norm"] == pytest.approx(np.linalg.norm(G[[0, 2, 3]].mean(axis=0)), rel=1e-10)
    acc = np.mean([np.mean((y[idx] > 0) == (X[idx] @ x > 0)) for idx in (parts[0], parts[2], parts[3])])
    assert ev["accuracy"] == pytest.approx(acc)


@pytest.mark.parametrize("layout,binary", [("dense", True), ("sparse", True), ("sparse-valued", True), ("csr", True),
                                           ("csr-valued", True)])
def test_minibatch_quantities_agree_with_full_gradients_of_the_sample(layout, binary):
    prob, X, y = _problem(layout, binary)
    x, x2 = np.full(X.shape[1], 0.3), np.full(X.shape[1], -0.2)
    wk = np.array([3, 1])
    G = prob.minibatch_gradients(x, wk, 7, seed=5, round_=2)
    D = prob.minibatch_gradient_differences(x, x2, wk, 7, seed=5, round_=2)
    G2 = prob.minibatch_gradients(x2, wk, 7, seed=5, round_=2)
    np.testing.assert_allclose(D, G - G2, atol=1e-14)          # same samples at both points
    # the sample is the keyed stream's: recompute it and the gradient by hand
    from byzcore import _streams

    parts = P.split_indices(np.where(y > 0, 1.0, -1.0), 4, "homogeneous", 3)
    for r, w in enumerate(wk):
        rows = parts[w][_streams.integers(5, _streams.MINIBATCH, 2, [w], 7, len(parts[w]))[0]]
        def ref(z, rows=rows):
            return ref64.logistic_loss(X[rows], y[rows], z, 0.05)

        np.testing.assert_allclose(G[r], _fd_grad(ref, x), rtol=1e-5, atol=1e-8)
    # per-worker models
    xs = np.stack([x, x2])
    np.testing.assert_allclose(prob.minibatch_gradients(xs, wk, 7, 5, 2)[1], G2[1], atol=1e-15)
    np.testing.assert_allclose(prob.full_gradients(xs, wk)[0], prob.full_gradients(x, [3])[0], atol=1e-15)


@pytest.mark.parametrize("layout", ["dense", "sparse", "csr", "csr-valued"])
def test_one_worker_alone_gets_the_batched_bits(layout):
    prob, X, _ = _problem(layout, True, n_workers=6)
    x, x2 = np.linspace(-1, 1, X.shape[1]), np.linspace(1, -1, X.shape[1])
    all_ = np.arange(6)
    F = prob.full_gradients(x, all_)
    D = prob.minibatch_gradient_differences(x, x2, all_, 5, 9, 4)
    for i in all_:
        assert np.array_equal(F[i], prob.full_gradients(x, [i])[0])
        assert np.array_equal(D[i], prob.minibatch_gradient_differences(x, x2, [i], 5, 9, 4)[0])


def test_metrics_pass_without_scipy():
    prob, X, _ = _problem("sparse-valued", True)
    x = np.linspace(-0.5, 0.5, X.shape[1])
    with_scipy = prob.evaluate(x, [0, 1, 3])
    prob._csr_cache = None                                   # as if SciPy were not installed
    without = prob.evaluate(x, [0, 1, 3])
    for key in ("loss", "grad_norm", "accuracy"):
        assert with_scipy[key] == pytest.approx(without[key], rel=1e-12)


@pytest.mark.parametrize("layout", ["sparse", "csr-valued"])
def test_validation_losses_and_gradient(layout):
    prob, X, y = _problem(layout, True)
    rng = np.random.default_rng(0)
    idx = prob.validation_indices(rng, 11)
    b, r = idx
    parts = P.split_indices(np.where(y > 0, 1.0, -1.0), 4, "homogeneous", 3)
    rows = np.array([parts[bi][ri] for bi, ri in zip(b, r)])
    pts = np.random.default_rng(2).normal(size=(3, X.shape[1]))
    ref = [ref64.logistic_loss(X[rows], y[rows], p, 0.05) for p in pts]
    np.testing.assert_allclose(prob.validation_losses(pts, idx), ref, rtol=1e-12)
    np.testing.assert_allclose(prob.validation_gradient(pts[0], idx),
                               _fd_grad(lambda z: ref64.logistic_loss(X[rows], y[rows], z, 0.05), pts[0]),
                               rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("layout", ["sparse", "csr"])
def test_flipped_labels(layout):
    prob, X, y = _problem(layout, True)
    x = np.full(X.shape[1], 0.1)
    flipped = prob.with_flipped_labels([1])
    parts = P.split_indices(np.where(y > 0, 1.0, -1.0), 4, "homogeneous", 3)
    def ref(z):
        return ref64.logistic_loss(X[parts[1]], -y[parts[1]], z, 0.05)

    np.testing.assert_allclose(flipped.full_gradients(x, [1])[0], _fd_grad(ref, x), rtol=1e-5, atol=1e-8)
    assert np.array_equal(flipped.full_gradients(x, [0]), prob.full_gradients(x, [0]))
    assert flipped.evaluate(x) == prob.evaluate(x)              # evaluation uses the true labels


def test_splits():
    y = np.array([1, -1, 1, -1, -1, 1, -1, -1, 1, -1], dtype=float)
    hom = P.split_indices(y, 3, "homogeneous", 0)
    assert sorted(np.concatenate(hom).tolist()) == list(range(10))
    assert [len(p) for p in hom] == [4, 3, 3]
    het = P.split_indices(y, 2, "heterogeneous", 0)
    assert np.all(y[het[0]] == -1)
    assert np.sum(y[het[1]] == 1) == 4
    ident = P.split_indices(y, 3, "identical", 0)
    assert all(np.array_equal(p, np.arange(10)) for p in ident)
    with pytest.raises(ValueError, match=r"^\[problem\] unknown split"):
        P.split_indices(y, 2, "random", 0)
    with pytest.raises(ValueError, match=r"^\[problem\]"):
        P.split_indices(y, 11, "homogeneous", 0)
    # identical split: every worker computes on all data, workers agree
    X, yy = _data()
    prob = P.LogisticRegression(X, yy, 3, split="identical", layout="sparse")
    G = prob.full_gradients(np.full(X.shape[1], 0.2), np.arange(3))
    assert np.array_equal(G[0], G[2])


def test_synthetic_a9a_shape():
    X, y = P.synthetic_a9a(seed=4)
    assert X.shape == (32561, 123)
    assert set(np.unique(X)) == {0.0, 1.0}
    assert np.all(X.sum(axis=1) == 14)                            # one-hot in 14 attributes, like a9a
    assert 0.2 < np.mean(y > 0) < 0.3
    X2, y2 = P.synthetic_a9a(2000, seed=4)
    X3, y3 = P.synthetic_a9a(2000, seed=4)
    assert np.array_equal(X2, X3)
    assert np.array_equal(y2, y3)
    prob = P.make_problem("a9a-synthetic", 5, n_samples=2000)
    assert prob.layout == "sparse"
    assert prob.d == 123
    assert prob.n_samples == 2000


LIBSVM = """# a comment
+1 1:0.5 3:1 7:-2
-1 2:1.5
+1 1:1 5:3 # trailing comment
-1 7:1
"""


def test_libsvm_loader(tmp_path, monkeypatch):
    path = tmp_path / "tiny.libsvm"
    path.write_text(LIBSVM)
    expect = np.zeros((4, 7))
    expect[0, [0, 2, 6]] = [0.5, 1, -2]
    expect[1, 1] = 1.5
    expect[2, [0, 4]] = [1, 3]
    expect[3, 6] = 1
    labels = np.array([1, -1, 1, -1.0])
    # the NumPy-only fallback (as if scikit-learn were not installed)
    real_import = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(builtins, "__import__", no_sklearn)
        X, y = P.load_libsvm(str(path))
        assert isinstance(X, P.sparse.CSRMatrix)  # sparse, with NumPy only
        np.testing.assert_array_equal(X.toarray(), expect)
        np.testing.assert_array_equal(y, labels)
        X3, _ = P.load_libsvm(str(path), n_features=9)
        assert X3.shape == (4, 9)
        prob = P.make_problem(f"libsvm:{path}", 2)
        assert prob.d == 7
        assert prob.n_samples == 4
        assert prob.layout == "csr"
    # scikit-learn's reader, when installed, reads the same
    pytest.importorskip("sklearn")
    X2, y2 = P.load_libsvm(str(path))
    np.testing.assert_array_equal(X2.toarray(), expect)
    np.testing.assert_array_equal(y2, labels)


def test_csr_input_is_normalised_and_matches_the_dense_problem():
    # unsorted columns and a repeated entry (summed), as a hand-written CSR may hold
    A = P.sparse.CSRMatrix([0, 3, 3, 5], [4, 1, 4, 0, 2], [1.0, 2.0, 0.5, -1.0, 3.0], (3, 6))
    expect = np.zeros((3, 6))
    expect[0, [1, 4]] = [2.0, 1.5]
    expect[2, [0, 2]] = [-1.0, 3.0]
    np.testing.assert_array_equal(A.toarray(), expect)
    C = P.sparse.as_csr(A)
    assert C.indices.tolist() == [1, 4, 0, 2]
    assert C.data.tolist() == [2.0, 1.5, -1.0, 3.0]
    y = np.array([1.0, -1.0, 1.0])
    sparse = P.LogisticRegression(A, y, 1, lam=0.1)
    dense = P.LogisticRegression(expect, y, 1, lam=0.1, layout="dense")
    x = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(sparse.full_gradients(x, [0]), dense.full_gradients(x, [0]), rtol=1e-14)
    assert sparse.evaluate(x)["loss"] == pytest.approx(dense.evaluate(x)["loss"], rel=1e-14)
    assert P.LogisticRegression(A, y, 1, layout="dense").layout == "dense"


def test_libsvm_file_with_millions_of_features_stays_sparse(tmp_path):
    # 2,000 rows x 3,000,000 features: densified it would ask for 44.7 GiB
    N, d = 2000, 3_000_000
    path = tmp_path / "wide.libsvm"
    write_wide_libsvm(path, N, d, 12, seed=0, valued=False)
    prob = P.make_problem(f"libsvm:{path}", 4, split="homogeneous")
    assert prob.layout == "csr"
    assert prob.d == d
    assert prob.n_samples == N
    assert prob.rows.indices.nbytes < 2 * 8 * 13 * N  # memory in proportion to the non-zeros
    x = np.zeros(d)
    x[::7] = 0.01
    G = prob.full_gradients(x, [1, 3])
    assert G.shape == (2, d)
    assert np.all(np.isfinite(G))
    ev = prob.evaluate(x)
    assert np.isfinite(ev["loss"])
    assert 0.0 <= ev["accuracy"] <= 1.0


def test_libsvm_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^\[load_libsvm\] no such file"):
        P.load_libsvm(str(tmp_path / "missing"))
    bad = tmp_path / "bad.libsvm"
    bad.write_text("+1 1:0.5 x\n")
    with pytest.raises(ValueError, match=r"^\[load_libsvm\]"):
        P.data._parse_libsvm(str(bad), None)


def test_sklearn_dataset():
    pytest.importorskip("sklearn")
    prob = P.make_problem("breast_cancer", 4, split="heterogeneous")
    assert prob.d == 30
    assert prob.n_samples == 569
    assert prob.layout == "dense"
    ev = prob.evaluate(prob.x0())
    assert ev["loss"] == pytest.approx(np.log(2))
    _, y = P.sklearn_dataset("breast_cancer")
    parts = P.split_indices(np.where(y > 0, 1.0, -1.0), 4, "heterogeneous", 0)
    # x = 0 predicts the class mapped to -1; accuracy is the mean of the workers' accuracies
    assert ev["accuracy"] == pytest.approx(np.mean([np.mean(y[p] == 0) for p in parts]))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"^\[LogisticRegression\]"):
        P.LogisticRegression(np.zeros((3, 2)), np.array([0, 1, 2]), 1)
    with pytest.raises(ValueError, match=r"^\[problem\] unknown problem"):
        P.make_problem("imagenet", 2)


def test_torch_mlp_gradients():
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    prob = P.mlp_digits(3, seed=1, hidden=8)
    x = prob.x0()
    assert x.shape == (prob.d,)
    assert prob.d == 64 * 8 + 8 + 8 * 10 + 10
    g = prob.full_gradients(x, [1])[0]
    rng = np.random.default_rng(0)
    coords = rng.choice(prob.d, 6, replace=False)
    w = 1
    Xw = prob.X[w]
    Yw = prob.Y[w]

    def loss(z):
        return prob._loss_grad(z, Xw, Yw, need_grad=False)[0]

    for j in coords:
        e = np.zeros(prob.d)
        e[j] = 1e-6
        assert g[j] == pytest.approx((loss(x + e) - loss(x - e)) / 2e-6, rel=1e-4, abs=1e-8)
    D = prob.minibatch_gradient_differences(x, x * 0.5, [0, 2], 16, 0, 1)
    G1 = prob.minibatch_gradients(x, [0, 2], 16, 0, 1)
    G2 = prob.minibatch_gradients(x * 0.5, [0, 2], 16, 0, 1)
    np.testing.assert_allclose(D, G1 - G2, atol=1e-12)
    ev = prob.evaluate(x)
    assert 0 <= ev["accuracy"] <= 1
    assert ev["loss"] > 0
    flipped = prob.with_flipped_labels([0])
    assert not np.array_equal(flipped.full_gradients(x, [0]), prob.full_gradients(x, [0]))
    assert torch.get_default_dtype() == torch.float32                  # global state untouched


def _tiny_torch_problem(torch, n_workers=4, threads=1):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    module = torch.nn.Linear(5, 2)
    return module, P.TorchProblem(module, torch.nn.functional.cross_entropy, X, y, n_workers, threads=threads)


def test_torch_problem_leaves_the_callers_module_alone():
    torch = pytest.importorskip("torch")
    module = torch.nn.Linear(5, 2)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    prob = P.TorchProblem(module, torch.nn.functional.cross_entropy, X, (X[:, 0] > 0).astype(np.int64), 2)
    x = prob.x0() + 0.5
    prob.full_gradients(x, [0, 1])
    prob.evaluate(x)
    assert all(p.dtype == torch.float32 for p in module.parameters())          # not converted in place
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])                                        # nor moved
    np.testing.assert_array_equal(prob.x0(), torch.cat([before["weight"].reshape(-1), before["bias"]]).double())
    assert prob.module is not module


def test_torch_problem_leaves_torchs_thread_count_alone_unless_asked():
    torch = pytest.importorskip("torch")
    start = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = []

        def loss(out, y):  # records the thread count torch runs the problem's computation with
            seen.append(torch.get_num_threads())
            return torch.nn.functional.cross_entropy(out, y)

        X = np.random.default_rng(1).normal(size=(40, 5))
        y = (X[:, 0] > 0).astype(np.int64)
        P.TorchProblem(torch.nn.Linear(5, 2), loss, X, y, 2).full_gradients(np.zeros(12), [0, 1])
        assert set(seen) == {2}                                  # default: the caller's setting
        seen.clear()
        P.TorchProblem(torch.nn.Linear(5, 2), loss, X, y, 2, threads=1).full_gradients(np.zeros(12), [0, 1])
        assert set(seen) == {1}                                  # asked for: held while computing
        assert torch.get_num_threads() == 2                      # and restored
    finally:
        torch.set_num_threads(start)


def test_built_in_small_torch_models_ask_for_one_thread():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    assert P.mlp_digits(2).threads == 1


def test_torch_threads_are_restored_under_concurrent_calls():
    """Many threads computing at once (no scope held by the caller) leave torch's thread count
    as it was; during the computations it is the problem's."""
    import threading

    torch = pytest.importorskip("torch")
    start = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        _, prob = _tiny_torch_problem(torch, threads=1)
        seen, errors = set(), []
        real = prob._loss_grad_impl

        def spy(*a, **k):
            seen.add(torch.get_num_threads())
            return real(*a, **k)

        prob._loss_grad_impl = spy

        def work(w):
            try:
                for _ in range(30):
                    prob.full_gradients(prob.x0(), [w % prob.n_workers])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        # The scope sets the problem's count (1). With OpenMP builds of torch the count is a
        # per-thread setting, so a worker thread that entered while another held the scope can
        # read its own (inherited) value: the property is that the count is set and restored.
        assert 1 in seen
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(start)


def test_zeno_pp_worker_threads_never_set_torch_threads(monkeypatch):
    """Zeno++'s threads mode: only the calling thread sets torch's (process-wide) thread count."""
    import threading

    import byzcore.algorithms as A

    torch = pytest.importorskip("torch")
    start = torch.get_num_threads()
    torch.set_num_threads(2)
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(threading.current_thread()), real(n)))
    try:
        _, prob = _tiny_torch_problem(torch, n_workers=4, threads=1)
        res = A.run(algorithm="zeno_pp", mode="threads", problem=prob, byzantine=1, attack="sign-flip", rounds=30,
                    aggregator="mean", batch=8, eval_every=10)
        assert len(res.metrics) >= 2
        assert not res.diverged
        assert calls
        assert all(t is threading.main_thread() for t in calls)
        assert torch.get_num_threads() == 2
    finally:
        real(start)
