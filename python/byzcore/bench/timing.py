"""Timing: the median of repeats after one warm-up call, and the prediction that skips
baselines too slow to wait for."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

__all__ = ["BaselinePredictor", "device_sync", "time_call"]


def device_sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_call(fn: Callable[[], Any], *, repeat: int, budget: float, sync: Callable[[], None] = lambda: None,
              reduce: Callable[[list[float]], float] = statistics.median,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds per call: one warm-up call, then up to ``repeat`` samples (fewer when
    one call is slow, so a sample set costs about ``budget`` seconds); fast calls are looped
    so that each sample lasts about a millisecond. ``reduce=min`` gives the best sample
    instead (the quick scripts in ``bench/`` report that); ``sync`` waits for a device;
    ``clock`` is the wall clock unless given (``time.process_time`` on a loaded machine)."""
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
        if key not in self.last:
            return None
        n0, d0, t0 = self.last[key]
        return t0 * (n / n0) ** p * (d / d0)

    def record(self, key: tuple[str, str], n: int, d: int, t: float) -> None:
        # Below ~20 ms, call overhead and scheduling noise dominate: no basis to scale from.
        if t >= 0.02:
            self.last[key] = (n, d, t)
