"""Running one configuration: on a backend, into a folder, with a printed summary.

:func:`run_experiment` runs a :class:`~byzcore.algorithms.RunConfig` on the single-process
simulation or on the torch-distributed runtime; :func:`save_result` writes its files
(``metrics.jsonl``, ``summary.json``, ``curves.png``); :func:`summary_lines` says what
happened in three lines. ``byzcore run`` is these three calls.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..algorithms import Result, RunConfig, algorithm_name, run
from .plots import have_matplotlib, note_no_matplotlib, plot_curves

__all__ = ["BACKENDS", "default_out_dir", "run_experiment", "save_result", "summary_lines"]

BACKENDS = ("simulation", "torch-distributed")


def default_out_dir(cfg: RunConfig) -> str:
    """The folder ``byzcore run`` writes a run into by default.

    Parameters
    ----------
    cfg : RunConfig
        The run.

    Returns
    -------
    str
        ``runs/<algorithm>_<problem>_<attack>_s<seed>``, relative to the working directory:
        the algorithm's canonical name, the problem with path separators and ``:`` made
        ``-``, and the attack's name without its options.
    """
    problem = cfg.problem.replace(":", "-").replace(os.sep, "-")
    return os.path.join("runs", f"{algorithm_name(cfg.algorithm)}_{problem}_{cfg.attack.split(':')[0]}_s{cfg.seed}")


def run_experiment(cfg: RunConfig, *, backend: str = "simulation", nprocs: int | None = None,
                   timeout_s: float = 30.0, progress: bool = False) -> Result:
    """Run ``cfg`` on a backend and return its :class:`~byzcore.algorithms.Result`.

    With no faults both backends give the same run for the same seed (the algorithms of
    docs/spec.md#algorithms; docs/distributed.md for the runtime).

    Parameters
    ----------
    cfg : RunConfig
        The run.
    backend : str, optional
        ``"simulation"`` (default: one process, :func:`byzcore.algorithms.run`) or
        ``"torch-distributed"`` (a server and worker processes on loopback,
        :func:`byzcore.distributed.runtime.run_distributed`; needs PyTorch).
    nprocs : int or None, optional
        torch-distributed only: processes, the server included (default ``workers + 1``).
    timeout_s : float, optional
        torch-distributed only: the per-round deadline for the workers' messages, in seconds
        (default 30).
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    Result
        The run's metrics, final values and model (the server's, on torch-distributed).

    Raises
    ------
    ValueError
        ``[run] ...`` for a bad configuration or an unknown backend, and on
        torch-distributed for ``optimality_gap`` or an ``attack_space`` other than
        ``"difference"`` (not supported there yet).
    RuntimeError
        torch-distributed: the server failed or did not finish in time.
    """
    if backend == "torch-distributed":
        from ..distributed.runtime import run_distributed

        if cfg.optimality_gap or cfg.attack_space != "difference":
            # the runtime does not build these yet: refuse rather than run another experiment
            raise ValueError("[run] --optimality-gap and --attack-space estimator are not yet supported "
                             "with --backend torch-distributed; use the simulation backend")

        return run_distributed(cfg, nprocs=nprocs, timeout_s=timeout_s, progress=progress)
    if backend != "simulation":
        raise ValueError(f"[run] unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return run(cfg, progress=progress)


def save_result(result: Result, out: str, *, plot: bool = True) -> list[str]:
    """Write ``out/metrics.jsonl``, ``out/summary.json`` and, when matplotlib is installed
    (and ``plot``), ``out/curves.png``; with ``plot`` and no matplotlib, one line on stderr
    says that no figure was written (:func:`~byzcore.experiments.plots.note_no_matplotlib`).

    Parameters
    ----------
    result : Result
        A finished run (:func:`run_experiment`).
    out : str
        The folder (created if missing).
    plot : bool, optional
        Also draw ``curves.png`` (:func:`~byzcore.experiments.plots.plot_curves`; default True).

    Returns
    -------
    list of str
        The paths written.
    """
    paths = result.save(out)
    if plot and not have_matplotlib():
        note_no_matplotlib()
    elif plot:
        png = os.path.join(out, "curves.png")
        if plot_curves([(result.label(), result)], png):
            paths.append(png)
    return paths


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a (diverged)"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def summary_lines(result: Result) -> list[str]:
    """What ``byzcore run`` prints about a finished run.

    Parameters
    ----------
    result : Result
        A finished run.

    Returns
    -------
    list of str
        Three lines: the setting (algorithm, problem, split, workers, Byzantine workers,
        attack, aggregator, and Byz-VR-MARINA-PP's clipping), the first and final loss and
        gradient norm (and the final accuracy when recorded; ``n/a (diverged)`` where
        missing), and the MiB sent by the clients and the seconds taken, with
        ``[DIVERGED]`` when the run diverged.
    """
    c, f = result.config, result.final
    alpha = "" if c["algorithm"] != "byz_vr_marina_pp" else (
        ", no clipping" if c["alpha"] is None or (isinstance(c["alpha"], float) and math.isinf(c["alpha"]))
        else f", alpha={c['alpha']}")
    first = result.metrics[0]
    return [
        f"{c['algorithm']} on {c['problem']} ({c['split']}): {c['workers']} workers, {c['byzantine']} Byzantine "
        f"({c['attack']}), aggregator {result.algorithm.get('aggregator')}{alpha}",
        f"  rounds {c['rounds']}: loss {_fmt(first.get('loss'))} -> {_fmt(f.get('loss'))}, "
        f"grad norm {_fmt(first.get('grad_norm'))} -> {_fmt(f.get('grad_norm'))}"
        + (f", accuracy {_fmt(f.get('accuracy'))}" if f.get("accuracy") is not None else ""),
        f"  {result.metrics[-1]['bytes_sent'] / 2**20:.2f} MiB sent by clients, {result.seconds:.1f} s"
        + ("  [DIVERGED]" if result.diverged else ""),
    ]
