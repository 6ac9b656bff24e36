"""The benchmark library behind ``byzcore bench``: time every kernel against NumPy and PyTorch
on the same input.

For each kernel and each cell of an ``n x d`` grid the command

1. builds one seeded input shaped like a round of robust aggregation (honest messages around
   a common mean with a different noise level each, plus ``f`` Byzantine outliers);
2. checks byzcore's result against a float64 NumPy reference with a tolerance derived from
   rounding-error bounds for the dtype, and refuses to time a cell that disagrees;
3. times byzcore, the NumPy equivalent (what a user would write: ``np.median(X, axis=0)``,
   a sort-based trimmed mean, ``X @ X.T``-based distances, a plain Weiszfeld loop, ...) and
   the PyTorch equivalent (``torch.median(T, dim=0).values``, ``torch.cdist``, ...) on that
   same input, in the same process: the median of repeats after one warm-up call;

and prints the time, the effective bandwidth (bytes of the input read once / time), its
fraction of the machine's read bandwidth (measured at start: a NumPy sum over a large array,
on one thread and on all cores, the better of the two), and the speed-ups.

The kernel registry :data:`KERNELS` and :class:`Case` are also used by ``bench/`` (the
pytest-benchmark suite), so both check and time exactly the same thing.

Layout, one job a module: :mod:`~byzcore.bench.inputs` (the seeded cell),
:mod:`~byzcore.bench.references` (float64 references), :mod:`~byzcore.bench.tolerances`
(error bounds and checks), :mod:`~byzcore.bench.baselines` (the NumPy and PyTorch
equivalents), :mod:`~byzcore.bench.kernels` (the registry), :mod:`~byzcore.bench.timing`,
:mod:`~byzcore.bench.environment` (machine, build, bandwidth), :mod:`~byzcore.bench.formatting`
(the table) and :mod:`~byzcore.bench.grid` (the command without its argument parsing, which is
:mod:`byzcore.cli.bench`).
"""

from __future__ import annotations

from .grid import DEFAULT_D, DEFAULT_MAX_BYTES, DEFAULT_N, DEFAULT_OPS, command_line, run
from .inputs import Case, default_f, make_messages
from .kernels import KERNELS, Kernel, gm_iterations, unavailable_reason
from .timing import time_call

__all__ = ["DEFAULT_D", "DEFAULT_MAX_BYTES", "DEFAULT_N", "DEFAULT_OPS", "KERNELS", "Case", "Kernel",
           "command_line", "default_f", "gm_iterations", "make_messages", "run", "time_call", "unavailable_reason"]
