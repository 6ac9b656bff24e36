"""The benchmarked kernels (:data:`KERNELS`): byzcore's call, its NumPy and PyTorch
equivalents and the check of byzcore's result, for ``byzcore bench`` and the
pytest-benchmark suite in ``bench/`` alike (both check and time exactly the same thing)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import baselines as B
from .inputs import Case
from .references import closest_to_median64
from .tolerances import (
    DNC_ITERS,
    DNC_SUB_DIM,
    GM_CHECK_ITERS,
    check_arc,
    check_bulyan,
    check_caf,
    check_centered_clipping,
    check_cge,
    check_clip,
    check_dnc,
    check_geometric_median,
    check_krum,
    check_mda,
    check_meamed,
    check_mean,
    check_median,
    check_monna,
    check_multi_krum,
    check_nnm,
    check_pairwise_distances,
    check_rand_k,
    check_smea,
    check_trimmed_mean,
    check_trimmed_mean_beta,
    check_weighted_mean,
    to_host,
)

__all__ = ["KERNELS", "Kernel", "gm_iterations", "unavailable_reason"]


def _torch():
    import torch

    return torch


@dataclass
class Kernel:
    """One benchmarked kernel: byzcore's call, its NumPy and PyTorch baselines and the check.

    Each call is a ``case -> thunk`` maker: the arguments are taken from the
    :class:`~byzcore.bench.inputs.Case` before timing starts, so the thunk times the call alone.

    Attributes
    ----------
    name : str
        The kernel's name, its key in :data:`KERNELS` and in ``byzcore bench --ops``.
    bz : callable
        ``case -> thunk`` of byzcore's call, the one timed.
    numpy : callable or None
        ``case -> thunk`` of the NumPy baseline (:mod:`byzcore.bench.baselines`); None where there is none.
    torch : callable or None
        ``case -> thunk`` of the PyTorch baseline; None where there is none.
    check : callable
        ``(case, result) -> float``, the check of :mod:`byzcore.bench.tolerances` (at most 1 passes).
    n_power : int, default 1
        The cost grows like ``n**n_power * d`` (how a baseline's time is predicted on a bigger cell).
    per_iteration : bool, default False
        Times are reported per Weiszfeld iteration (``geometric_median``).
    check_call : callable or None, default None
        ``case -> result``: the byzcore call that is checked, where it is not ``bz``'s.
    max_f : callable or None, default None
        ``n -> max_f(n)``, the largest ``f`` the rule takes for ``n`` (Bulyan's ``(n - 3) // 4``),
        to which :meth:`case_for` lowers ``f``; None: ``f`` is used as given.
    passes : int, default 1
        The least traffic, in passes over the ``n x d`` input, behind the GB/s column (2 for
        ``clip`` and ``arc``, which read and write ``n`` rows).
    """

    name: str
    bz: Callable[[Case], Callable[[], Any]]
    numpy: Callable[[Case], Callable[[], Any]] | None
    torch: Callable[[Case], Callable[[], Any]] | None
    check: Callable[[Case, Any], float]
    n_power: int = 1          # cost ~ n**n_power * d (for the baseline-time prediction)
    per_iteration: bool = False
    check_call: Callable[[Case], Any] | None = None  # byzcore call checked, if not bz's
    max_f: Callable[[int], int] | None = None  # the rule's bound: the largest f it takes for n
    passes: int = 1           # n*d*itemsize passes of the least traffic (2: read and write n rows)

    def case_for(self, case: Case) -> Case:
        """The case with ``f`` lowered to the rule's bound where it is over it.

        The cached references are shared with the returned case: none of them depends on ``f``.

        Parameters
        ----------
        case : Case
            The benchmark cell.

        Returns
        -------
        Case
            ``case`` itself, or a copy with ``f = max(0, max_f(n))``.
        """
        if self.max_f is None or case.f <= self.max_f(case.n):
            return case
        return dataclasses.replace(case, f=max(0, self.max_f(case.n)))

    def checked_result(self, case: Case) -> Any:
        """The result of the call that is checked against the reference (before it is timed).

        Parameters
        ----------
        case : Case
            The benchmark cell.

        Returns
        -------
        array or tensor
            ``check_call(case)`` if it is set, else the result of ``bz(case)()``.
        """
        return self.check_call(case) if self.check_call else self.bz(case)()


def _bz():
    import byzcore

    return byzcore


def gm_iterations(X: Any, max_iter: int) -> int:
    """The number of Weiszfeld iterations byzcore's ``geometric_median`` runs with ``tol=0``.

    Read from the compiled core, which returns the count that the public function drops, with
    the rule's defaults ``nu = 1e-6`` and no weights; an exact fixed point may stop it before
    ``max_iter``.

    Parameters
    ----------
    X : array or tensor
        The ``(n, d)`` messages, as byzcore is called with them (a NumPy array or a CUDA tensor).
    max_iter : int
        The iteration limit.

    Returns
    -------
    int
        The iterations run, at most ``max_iter``.
    """
    from .._arrays import Batch
    from .._native import core

    b = Batch("geometric_median", X)
    _, ptr = b.empty((b.d,))
    return int(core.geometric_median(b.messages, [], 1e-6, max_iter, 0.0, ptr))


def _call(fn: Callable[..., Any], *getters: Callable[[Case], Any]) -> Callable[[Case], Callable[[], Any]]:
    """``case -> thunk``: the arguments are taken from the case before timing starts (a
    threshold, a tensor view), so the thunk times ``fn`` alone."""

    def make(c: Case) -> Callable[[], Any]:
        args = [g(c) for g in getters]
        return lambda: fn(*args)

    return make


def _gm_start(c: Case) -> np.ndarray:
    """The baselines' Weiszfeld start (byzcore's median; not part of what they time)."""
    if "z0" not in c._cache:
        c._cache["z0"] = to_host(_bz().median(c.bz_X())).astype(c.X.dtype)
    return c._cache["z0"]


def _gm_start_torch(c: Case) -> Any:
    return _torch().from_numpy(_gm_start(c)).to(c.torch_X().device)


# What each library is called with: byzcore's input, the NumPy array, the torch tensor.
BZ, NP, TO = Case.bz_X, (lambda c: c.X), Case.torch_X
F, K, SEED, THR, GMI = (lambda c: c.f), (lambda c: c.k), (lambda c: c.seed), Case.threshold, (lambda c: c.gm_iters)
W, BETA = (lambda c: c.weights), (lambda c: c.beta)


KERNELS: dict[str, Kernel] = {k.name: k for k in [
    Kernel("median",
           _call(lambda X: _bz().median(X), BZ),
           _call(lambda X: np.median(X, axis=0), NP),
           _call(lambda T: _torch().median(T, dim=0).values, TO),
           check_median),
    Kernel("trimmed_mean",
           _call(lambda X, f: _bz().trimmed_mean(X, f), BZ, F),
           _call(B.np_trimmed, NP, F),
           _call(B.torch_trimmed, TO, F),
           check_trimmed_mean),
    Kernel("mean",
           _call(lambda X: _bz().mean(X), BZ),
           _call(lambda X: X.mean(axis=0), NP),
           _call(lambda T: T.mean(0), TO),
           check_mean),
    Kernel("pairwise_distances",
           _call(lambda X: _bz().pairwise_distances(X, squared=False), BZ),
           _call(lambda X: np.sqrt(B.np_gram_dist2(X)), NP),
           _call(lambda T: _torch().cdist(T, T), TO),
           check_pairwise_distances, n_power=2),
    Kernel("krum",
           _call(lambda X, f: _bz().krum(X, f), BZ, F),
           _call(B.np_krum, NP, F),
           _call(B.torch_krum, TO, F),
           check_krum, n_power=2),
    Kernel("multi_krum",
           _call(lambda X, f: _bz().multi_krum(X, f), BZ, F),
           _call(B.np_multi_krum, NP, F),
           _call(B.torch_multi_krum, TO, F),
           check_multi_krum, n_power=2),
    Kernel("geometric_median",
           _call(lambda X, it: _bz().geometric_median(X, max_iter=it, tol=0.0), BZ, GMI),
           _call(B.np_weiszfeld, NP, _gm_start, GMI),
           _call(B.torch_weiszfeld, TO, _gm_start_torch, GMI),
           check_geometric_median, per_iteration=True,
           check_call=lambda c: _bz().geometric_median(c.bz_X(), max_iter=GM_CHECK_ITERS, tol=0.0)),
    Kernel("clip",
           _call(lambda X, thr: _bz().clip(X, thr), BZ, THR),
           _call(B.np_clip, NP, THR),
           _call(B.torch_clip, TO, THR),
           check_clip, passes=2),
    Kernel("centered_clipping",
           _call(lambda X, tau: _bz().centered_clipping(X, tau), BZ, THR),
           _call(lambda X, tau: B.np_clip(X, tau).mean(axis=0), NP, THR),
           _call(lambda T, tau: B.torch_clip(T, tau).mean(0), TO, THR),
           check_centered_clipping),
    Kernel("nnm",
           _call(lambda X, f: _bz().nnm(X, f), BZ, F),
           _call(B.np_nnm, NP, F),
           _call(B.torch_nnm, TO, F),
           check_nnm, n_power=2),
    Kernel("rand_k",
           _call(lambda X, k, seed: _bz().rand_k(X, k, seed=seed), BZ, K, SEED),
           _call(B.np_rand_k, NP, K, SEED),
           _call(B.torch_rand_k, TO, K),
           check_rand_k),
    # The catalogue rules (issue 9). NumPy baselines where a vectorised one is short to write;
    # the comparison that matters is the peer column (``--peers``, :mod:`byzcore.bench.peers`).
    Kernel("meamed",
           _call(lambda X, f: _bz().meamed(X, f), BZ, F),
           _call(lambda X, f: closest_to_median64(X, len(X) - f), NP, F),
           None, check_meamed),
    Kernel("bulyan",
           _call(lambda X, f: _bz().bulyan(X, f), BZ, F),
           None, None, check_bulyan, n_power=2, max_f=lambda n: (n - 3) // 4),
    Kernel("monna",
           _call(lambda X, f: _bz().monna(X, f), BZ, F),
           _call(B.np_monna, NP, F), None, check_monna),
    Kernel("cge",
           _call(lambda X, f: _bz().cge(X, f), BZ, F),
           _call(B.np_cge, NP, F), None, check_cge),
    Kernel("arc",
           _call(lambda X, f: _bz().arc(X, f), BZ, F),
           _call(B.np_arc, NP, F), None, check_arc, passes=2),
    Kernel("mda",
           _call(lambda X, f: _bz().mda(X, f), BZ, F),
           None, None, check_mda, n_power=2),
    Kernel("smea",
           _call(lambda X, f: _bz().smea(X, f), BZ, F),
           None, None, check_smea, n_power=2),
    Kernel("caf",
           _call(lambda X, f: _bz().caf(X, f), BZ, F),
           None, None, check_caf, n_power=2),
    Kernel("dnc",
           _call(lambda X, f, seed: _bz().dnc(X, f, iters=DNC_ITERS, sub_dim=DNC_SUB_DIM, seed=seed), BZ, F, SEED),
           None, None, check_dnc, n_power=2),
    Kernel("weighted_mean",
           _call(lambda X, w: _bz().mean(X, weights=w), BZ, W),
           _call(lambda X, w: (w / w.sum()).astype(X.dtype) @ X, NP, W), None, check_weighted_mean),
    Kernel("trimmed_mean_beta",
           _call(lambda X, beta: _bz().trimmed_mean(X, beta=beta), BZ, BETA),
           _call(lambda X, beta: B.np_trimmed(X, int(beta * len(X))), NP, BETA),
           None, check_trimmed_mean_beta),
]}


def unavailable_reason(exc: BaseException) -> str | None:
    """The reason a kernel cannot run in this build (not a bug in the cell), or None.

    Parameters
    ----------
    exc : BaseException
        What byzcore's call raised.

    Returns
    -------
    str or None
        The exception's message when it says that the kernel is not written yet or that byzcore
        or torch was built without CUDA, else None.
    """
    msg = str(exc)
    for marker in ("not written yet", "built without CUDA", "not compiled with CUDA"):
        if marker in msg:
            return msg
    return None
