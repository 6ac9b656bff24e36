"""Timing: the median of repeats after one warm-up call, and the prediction that skips
baselines too slow to wait for."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

__all__ = ["BaselinePredictor", "device_sync", "time_call"]


def device_sync(device: str) -> Callable[[], None]:
    """The function that waits for ``device``'s queued work before a clock is read.

    Parameters
    ----------
    device : str
        ``"cpu"`` (nothing to wait for) or ``"cuda"``.

    Returns
    -------
    Callable[[], None]
        A no-op on the CPU, ``torch.cuda.synchronize`` on CUDA.
    """
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_call(fn: Callable[[], Any], *, repeat: int, budget: float, sync: Callable[[], None] = lambda: None,
              reduce: Callable[[list[float]], float] = statistics.median,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``fn``: the median (by default) of repeated samples after one warm-up call.

    The warm-up call also measures one call. Fast calls are looped so that a sample lasts about
    a millisecond (at most 10,000 calls a sample); the number of samples is ``repeat`` or fewer,
    so that a sample set costs about ``budget`` seconds, and at least one.

    Parameters
    ----------
    fn : callable
        The thunk to time.
    repeat : int
        The most samples taken.
    budget : float
        About how many seconds the samples may take together.
    sync : callable, optional
        Waits for a device's queued work before each clock reading (:func:`device_sync`); a
        no-op by default.
    reduce : callable, default statistics.median
        Reduces the per-call times of the samples to one; ``min`` gives the best sample (the
        quick scripts in ``bench/`` report that).
    clock : callable, default time.perf_counter
        The clock, in seconds (``time.process_time`` on a loaded machine).

    Returns
    -------
    float
        ``reduce`` of the samples' seconds per call.
    """
    sync()
    t0 = clock()
    fn()
    sync()
    first = clock() - t0
    loops = max(1, min(10_000, int(1e-3 / max(first, 1e-9))))
    samples = max(1, min(repeat, int(budget / max(first * loops, 1e-9))))
    times = []
    for _ in range(samples):
        sync()
        t0 = clock()
        for _ in range(loops):
            fn()
        sync()
        times.append((clock() - t0) / loops)
    return reduce(times)


class BaselinePredictor:
    """Predicts a baseline's time from the last cell it ran on (cost ~ n**p * d)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[int, int, float]] = {}

    def predict(self, key: tuple[str, str], n: int, d: int, p: int) -> float | None:
        """The predicted seconds of ``key`` at ``(n, d)``, scaled from its last recorded time.

        Parameters
        ----------
        key : tuple of str
            ``(kernel name, library)``.
        n, d : int
            The cell's shape.
        p : int
            The kernel's ``n_power``: the time scales as ``t0 (n / n0)**p (d / d0)``.

        Returns
        -------
        float or None
            The prediction, or None before any time was recorded for ``key``.
        """
        if key not in self.last:
            return None
        n0, d0, t0 = self.last[key]
        return t0 * (n / n0) ** p * (d / d0)

    def record(self, key: tuple[str, str], n: int, d: int, t: float) -> None:
        """Record that ``key`` took ``t`` seconds at ``(n, d)``.

        Times under 20 ms are not kept: call overhead and scheduling noise dominate them, no basis
        to scale from.

        Parameters
        ----------
        key : tuple of str
            ``(kernel name, library)``.
        n, d : int
            The cell's shape.
        t : float
            The measured seconds (for a whole call, not per iteration).
        """
        if t >= 0.02:
            self.last[key] = (n, d, t)
