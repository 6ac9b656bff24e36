"""``f*`` for the optimality gap ``f(x^k) - f*`` (docs/spec.md#metrics).

``f*`` is the minimum of ``f = mean of f_i over the honest workers``, found once per problem by a
deterministic solver and cached on disk keyed by a fingerprint of the problem's data and
parameters and of the honest set. The solver is SciPy's L-BFGS-B when SciPy is installed (it is
optional), else a plain NumPy L-BFGS with a backtracking line search; both stop when the
gradient norm is below ``gtol``. For the non-convex regulariser the result is the best
stationary value the solver finds from ``x = 0`` (the papers' reference value too).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from .base import Problem, WorkerIds, problem_error

__all__ = ["cache_dir", "minimise", "optimal_value"]


def cache_dir() -> str:
    """Where ``f*`` values are kept: ``$BYZCORE_CACHE``, or ``~/.cache/byzcore`` when unset or empty.

    Returns
    -------
    str
        The folder (it may not exist yet); the values go under its ``fstar/``.

    References
    ----------
    docs/spec.md#metrics
    """
    return os.environ.get("BYZCORE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "byzcore")


def _fingerprint(problem: Any, workers: np.ndarray, gtol: float) -> str:  # a LogisticRegression (its rows, y, w)
    h = hashlib.sha256()
    keys = ("name", "d", "n_workers", "n_samples", "lam", "reg", "split", "seed")
    meta = {k: getattr(problem, k, None) for k in keys}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(workers, dtype=np.int64).tobytes())
    h.update(repr(float(gtol)).encode())
    rows = problem.rows
    for a in (rows.A, rows.idx, rows.val, problem.y, problem.w):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def minimise(fun, x0: np.ndarray, *, gtol: float = 1e-8, max_iter: int = 5000, memory: int = 10) -> np.ndarray:
    """Minimise ``fun(x) -> (value, gradient)`` from ``x0`` by L-BFGS (NumPy, deterministic).

    Parameters
    ----------
    fun : callable
        ``x -> (value, gradient)``: the objective and its gradient.
    x0 : numpy.ndarray
        The start.
    gtol : float, default 1e-8
        Stop when ``||grad|| <= gtol``.
    max_iter : int, default 5000
        Stop after this many iterations.
    memory : int, default 10
        Curvature pairs kept.

    Returns
    -------
    numpy.ndarray
        The last iterate (also when the line search cannot make progress).
    """
    x = np.array(x0, dtype=np.float64)
    fx, g = fun(x)
    S: list[np.ndarray] = []
    Y: list[np.ndarray] = []
    for _ in range(max_iter):
        if np.linalg.norm(g) <= gtol:
            break
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(S), reversed(Y)):          # two-loop recursion
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q -= a * y
        if S:
            q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
        for (s, y), a in zip(zip(S, Y), reversed(alphas)):
            q += (a - (y @ q) / (y @ s)) * s
        step = -q
        if g @ step >= 0:                                      # not a descent direction: restart
            S.clear()
            Y.clear()
            step = -g
        t = 1.0
        while True:                                            # Armijo backtracking
            xn = x + t * step
            fn, gn = fun(xn)
            if np.isfinite(fn) and fn <= fx + 1e-4 * t * (g @ step):
                break
            t *= 0.5
            if t < 1e-20:
                return x
        s, y = xn - x, gn - g
        if s @ y > 1e-12 * (s @ s):
            S.append(s)
            Y.append(y)
            if len(S) > memory:
                S.pop(0)
                Y.pop(0)
        x, fx, g = xn, fn, gn
    return x


def optimal_value(problem: Problem, workers: WorkerIds | None = None, *, gtol: float = 1e-8,
                  use_cache: bool = True) -> float:
    """``f* = min_x mean_{i in workers} f_i(x)``, computed once and cached on disk.

    Parameters
    ----------
    problem : Problem
        A problem with ``objective(x, workers) -> (value, gradient)`` (logistic regression).
    workers : WorkerIds or None, default None
        The workers whose mean is minimised (the honest ones); ``None``: all.
    gtol : float, default 1e-8
        Gradient-norm tolerance of the solver.
    use_cache : bool, default True
        Read and write ``cache_dir()/fstar/<fingerprint>.json`` (a read-only cache is
        skipped silently).

    Returns
    -------
    float
        ``f*``.

    Raises
    ------
    ValueError
        ``[optimality_gap] ...`` for a problem without ``objective`` (e.g. PyTorch problems:
        no deterministic ``f*``).

    References
    ----------
    docs/spec.md#metrics
    """
    if not hasattr(problem, "objective"):
        raise problem_error("optimality_gap", f"problem {problem.name!r} has no deterministic f*; "
                            "use logistic regression or leave optimality_gap off")
    wk = np.arange(problem.n_workers) if workers is None else np.asarray(workers, dtype=np.int64).reshape(-1)
    path = None
    if use_cache:
        path = os.path.join(cache_dir(), "fstar", _fingerprint(problem, wk, gtol) + ".json")
        try:
            with open(path, encoding="utf-8") as fh:
                return float(json.load(fh)["f_star"])
        except (OSError, ValueError, KeyError):
            pass

    def fun(x):
        return problem.objective(x, wk)

    x0 = np.zeros(problem.d)
    try:
        from scipy.optimize import minimize
    except ImportError:
        x = minimise(fun, x0, gtol=gtol)
    else:
        x = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"gtol": gtol, "maxiter": 5000}).x
        x = minimise(fun, x, gtol=gtol)          # polish: the same stopping rule either way
    value = float(fun(x)[0])
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"f_star": value, "grad_norm": float(np.linalg.norm(fun(x)[1]))}, fh)
        except OSError:
            pass  # a read-only home: compute again next time
    return value
