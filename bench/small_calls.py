"""Per-call cost of byzcore's rules on small inputs (n = 15, d = 123: the default experiment).

The simulation and the DDP hook call a rule every round, so at small sizes the Python wrapper
(reading the input, allocating the result) matters as much as the kernel. For every rule and
input kind this prints, in one run, the median over many repeats of:

* ``call``: the public function, e.g. ``byzcore.median(X)``;
* ``kernel``: the bare compiled call on a prebuilt view, e.g. ``byzcore._native.core.median(M, out)``;
* ``overhead = call - kernel``: what the wrapper costs;

and, for the median, ``torch.median(T, dim=0)`` and ``np.median(X, axis=0)`` beside it::

    python bench/small_calls.py
    python bench/small_calls.py --n 15 --d 123 --number 2000 --repeat 31
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit

import numpy as np


def _time_us(fn, number: int, repeat: int, stat: str = "median") -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return 1e6 * (min(times) if stat == "min" else statistics.median(times)) / number


def _rules(bz, core, f: int):
    """(name, public call on X, bare kernel call on (messages, out pointer), result shape of (n, d))."""
    return [
        ("mean", bz.mean, lambda M, p: core.mean(M, p), "d"),
        ("median", bz.median, lambda M, p: core.median(M, p), "d"),
        ("trimmed_mean", lambda X: bz.trimmed_mean(X, f), lambda M, p: core.trimmed_mean(M, f, p), "d"),
        ("krum", lambda X: bz.krum(X, f), lambda M, p: core.krum(M, f, p), "d"),
        ("multi_krum", lambda X: bz.multi_krum(X, f), lambda M, p: core.multi_krum(M, f, M.n - f, p), "d"),
        ("pairwise_distances", bz.pairwise_distances, lambda M, p: core.pairwise_distances(M, True, p), "nn"),
        ("geometric_median", bz.geometric_median,
         lambda M, p: core.geometric_median(M, [], 1e-6, 100, 1e-7, p), "d"),
        ("clip", lambda X: bz.clip(X, 1.0), lambda M, p: core.clip(M, 1.0, p), "nd"),
        ("centered_clipping", lambda X: bz.centered_clipping(X, 1.0),
         lambda M, p: core.centered_clipping(M, 1.0, 0, 1, p), "d"),
        ("nnm", lambda X: bz.nnm(X, f), lambda M, p: core.nnm(M, f, p), "nd"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=15)
    p.add_argument("--d", type=int, default=123)
    p.add_argument("--f", type=int, default=3)
    p.add_argument("--number", type=int, default=1000, help="calls per timing")
    p.add_argument("--repeat", type=int, default=21, help="timings; the median is reported")
    p.add_argument("--rules", nargs="*", default=None, help="subset of rules (default: all)")
    p.add_argument("--stat", choices=["median", "min"], default="median",
                   help="statistic of the timings (min: the least disturbed by other jobs on a busy machine)")
    args = p.parse_args(argv)

    import byzcore as bz
    from byzcore._arrays import Batch
    from byzcore._native import core

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        torch = None
    rng = np.random.default_rng(0)
    X64 = rng.standard_normal((args.n, args.d))
    inputs = {"numpy float64": X64, "numpy float32": X64.astype(np.float32),
              "list of numpy float64": [x.copy() for x in X64]}
    if torch is not None:
        inputs["torch cpu float64"] = torch.from_numpy(X64.copy())
        inputs["torch cpu float32"] = torch.from_numpy(X64.astype(np.float32))
    rules = [r for r in _rules(bz, core, args.f) if args.rules is None or r[0] in args.rules]
    t = lambda fn: _time_us(fn, args.number, args.repeat, args.stat)  # noqa: E731

    print(f"n = {args.n}, d = {args.d}, f = {args.f}; {args.stat} of {args.repeat} timings of {args.number} calls, "
          "us per call")
    for kind, X in inputs.items():
        print(f"\n{kind}")
        if torch is not None:
            T = X if torch.is_tensor(X) else torch.from_numpy(np.stack(X) if isinstance(X, list) else X)
            print(f"  {'torch.median(dim=0)':<22} {t(lambda: torch.median(T, dim=0)):8.2f}")
        A = np.stack(X) if isinstance(X, list) else np.asarray(X)
        print(f"  {'np.median(axis=0)':<22} {t(lambda: np.median(A, axis=0)):8.2f}")
        print(f"  {'rule':<22} {'call':>8} {'kernel':>8} {'overhead':>9}")
        for name, call, kernel, shape in rules:
            b = Batch(name, X)
            size = {"d": (b.d,), "nn": (b.n, b.n), "nd": (b.n, b.d)}[shape]
            out = np.empty(size, dtype=b.compute)
            M, ptr = b.messages, out.ctypes.data
            t_call = t(lambda: call(X))
            t_kernel = t(lambda: kernel(M, ptr))
            print(f"  {name:<22} {t_call:8.2f} {t_kernel:8.2f} {t_call - t_kernel:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
