"""``byzcore bench``: its options (the benchmark itself is :mod:`byzcore.bench`)."""

from __future__ import annotations

import argparse

from ..bench.grid import DEFAULT_D, DEFAULT_MAX_BYTES, DEFAULT_N, DEFAULT_OPS, run
from ..bench.kernels import KERNELS

__all__ = ["EPILOG", "add_arguments"]

EPILOG = """\
columns:
  time      median of the timed repeats (after one warm-up call) of the byzcore call on
            the cell's input; for geometric_median the time of ONE Weiszfeld iteration
            ((t(max_iter=I) - t(max_iter=0)) / I, so the median start is not counted)
  GB/s      n * d * itemsize / time: the input read once (a kernel that reads it twice,
            or is compute-bound like pairwise_distances, shows less); twice that for clip
            and arc, which also write the n clipped messages
  %BW       GB/s as a fraction of the machine's read bandwidth printed in the header
            (over 100% where the input fits in the CPU caches)
  numpy     time of the NumPy equivalent on the same input (per iteration for
            geometric_median); "-" where it was not run: predicted over --baseline-cap
            seconds, or --device cuda
  x-np      numpy time / byzcore time (higher is better for byzcore)
  torch     time of the PyTorch equivalent on the same input; "-" where not installed
  x-torch   torch time / byzcore time
  note      with --peers: each peer's time, byzcore's speed-up over it and whether the
            results are equal (where the definitions agree; "rel" gives the relative distance
            where they do not, e.g. the peers' random power steps in SMEA and CAF)
            pairwise_distances also shows the BLAS Gram X @ X.T alone (NumPy on the CPU,
            cuBLAS via torch on the GPU) and byzcore's time as a multiple of it

Every cell is checked against a float64 NumPy reference before it is timed; a cell that
disagrees is reported as MISMATCH without timings, and the command then exits with 1.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: some machines set these so that old OpenBLAS builds
run safely; they make a current NumPy's OpenBLAS pick a slower kernel (this matters for
the X @ X.T baseline of pairwise_distances, krum and nnm). To compare against a current
NumPy fairly, unset both for the bench command only:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE byzcore bench
The header shows which BLAS kernel NumPy runs (threadpoolctl, when installed). Do not
change them for tests or CI.

On a machine busier than its core count (the header warns), OpenBLAS's thread pool can be
1000x slower than one thread: OPENBLAS_NUM_THREADS=1 keeps the NumPy baselines fair there.
"""


def _size(text: str) -> int:
    """512MiB, 2GB, 1e9 -> bytes."""
    t = text.strip()
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6,
             "gb": 10**9, "tb": 10**12, "b": 1}
    for u, s in units.items():
        if t.lower().endswith(u):
            return int(float(t[: -len(u)]) * s)
    return int(float(t))


def _count(text: str) -> int:
    """1e6 -> 1000000."""
    v = float(text)
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return int(v)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``byzcore bench`` options to ``parser`` and set ``func``.

    Parameters
    ----------
    parser
        The ``bench`` subcommand's parser.
    """
    parser.formatter_class = _HelpFormatter
    parser.description = ("Time byzcore's kernels against NumPy and PyTorch on the same inputs, after checking "
                          "each result against a float64 NumPy reference.")
    parser.epilog = EPILOG
    parser.add_argument("--ops", nargs="+", default=list(DEFAULT_OPS), choices=list(KERNELS), metavar="OP",
                        help=f"kernels to run, from: {' '.join(KERNELS)}")
    parser.add_argument("--n", nargs="+", type=_count, default=list(DEFAULT_N), help="numbers of messages")
    parser.add_argument("--d", nargs="+", type=_count, default=list(DEFAULT_D), help="message dimensions (1e6 works)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: inputs are torch CUDA tensors, baselines are torch on the GPU")
    parser.add_argument("--max-bytes", type=_size, default=None,
                        help="skip cells whose input n*d*itemsize exceeds this (e.g. 512MiB, 4GB); "
                             f"default {DEFAULT_MAX_BYTES['cpu'] >> 20}MiB on cpu, "
                             f"{DEFAULT_MAX_BYTES['cuda'] >> 30}GiB on cuda")
    parser.add_argument("--baseline-cap", type=float, default=3.0,
                        help="do not run a NumPy/PyTorch baseline predicted (from the smaller cells) to take "
                             "longer than this many seconds per call; shown as '-'")
    parser.add_argument("--f", type=int, default=None, help="Byzantine messages per cell (default 20%% of n)")
    parser.add_argument("--gm-iters", type=int, default=5, help="Weiszfeld iterations timed for geometric_median")
    parser.add_argument("--bw-bytes", type=_size, default=1 << 30, help="array size for the read-bandwidth measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baselines")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for byzcore's kernels, NumPy's BLAS, torch and the peers (default: all)")
    parser.add_argument("--peers", action="store_true",
                        help="also run ByzFL, byzpy and Flower on the same input where they have the rule "
                        "(see --peer-python)")
    parser.add_argument("--peer-python", default="/work/peers/bin/python",
                        help="the interpreter that has the peers installed; each peer call runs in a subprocess of it")
    parser.add_argument("--peer-timeout", type=float, default=30.0,
                        help="seconds a peer call may take after its imports; then it is killed and shown as a timeout")
    parser.add_argument("--peer-repeat", type=int, default=1, help="timed calls per peer (the best is reported)")
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write every figure and the environment to this JSON file")
    parser.set_defaults(func=run)
