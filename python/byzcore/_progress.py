"""The one progress bar and the one timer of byzcore (runs, distributed runs, benchmarks).

:class:`Progress` is tqdm's bar on stderr when tqdm is installed, else a counter line on
stderr (rewritten in place on a terminal, one line per tenth of the work otherwise); lines
of results go to stdout through :meth:`Progress.write` without breaking the bar.
:class:`Timer` adds up the wall-clock seconds spent inside ``with timer:`` blocks.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress", "Timer"]


class Progress:
    """A progress bar over ``total`` steps.

    Parameters
    ----------
    total
        Number of steps (rounds, benchmark cells).
    desc
        What is counted, shown first (e.g. the algorithm's name, ``"bench"``).
    unit
        The step's name for tqdm (``"round"``, ``"cell"``).
    enabled
        ``False`` shows nothing (:meth:`write` still prints).
    """

    def __init__(self, total: int, desc: str, *, unit: str = "it", enabled: bool = True):
        self.total, self.desc, self.enabled = int(total), desc, bool(enabled)
        self.done, self.detail, self.postfix = 0, "", ""
        self.bar: Any = None
        self.tty = sys.stderr.isatty()
        self._next_line = 0.1
        if self.enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                                file=sys.stderr)

    def describe(self, detail: str) -> None:
        """Say what the current step is (e.g. ``"median n=32 d=1e+06"``)."""
        self.detail = detail
        if self.bar is not None:
            self.bar.set_description(f"{self.desc} {detail}", refresh=False)

    def show(self, **values: Any) -> None:
        """Values shown after the count (e.g. ``loss=0.31``)."""
        self.postfix = " ".join(f"{k} {v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix({k: str(v) for k, v in values.items()}, refresh=False)

    def update(self, step: int = 1) -> None:
        """Advance by ``step`` steps."""
        self.update_to(self.done + step)

    def update_to(self, done: int) -> None:
        """Advance to ``done`` steps in all."""
        step, self.done = done - self.done, done
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(step)
            return
        line = " ".join(part for part in (self.desc, f"{self.done}/{self.total}", self.detail, self.postfix) if part)
        if self.tty:
            sys.stderr.write(line.ljust(60) + "\r")
        elif self.total and self.done / self.total >= self._next_line:
            sys.stderr.write(line + "\n")
            while self._next_line <= self.done / self.total:
                self._next_line += 0.1
        sys.stderr.flush()

    def write(self, line: str) -> None:
        """Print ``line`` on stdout without breaking the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
            sys.stdout.flush()
        else:
            print(line, flush=True)

    def close(self) -> None:
        """Remove the bar (end the counter line on a terminal)."""
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.tty and self.done:
            sys.stderr.write("\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Timer:
    """Wall-clock seconds (``time.perf_counter``) spent inside ``with timer:`` blocks.

    ``Timer(started=True)`` also counts from its creation until :attr:`elapsed` is read.
    """

    def __init__(self, *, started: bool = False):
        self.seconds = 0.0
        self._t0: float | None = time.perf_counter() if started else None

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._t0 is not None, "Timer.__exit__ without __enter__"
        self.seconds += time.perf_counter() - self._t0
        self._t0 = None

    @property
    def elapsed(self) -> float:
        """The seconds counted so far, including a block (or the start) still running."""
        return self.seconds + (0.0 if self._t0 is None else time.perf_counter() - self._t0)
