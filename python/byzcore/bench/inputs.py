"""The benchmark's input: one seeded cell of the ``n x d`` grid (:class:`Case`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Case", "default_f", "make_messages"]


@dataclass
class Case:
    """One cell of the grid: the input in every form a kernel needs and its parameters.

    The float64 references of :mod:`byzcore.bench.references` are computed lazily and
    cached in ``_cache``, shared by the kernels of the cell (none depends on ``f``, so
    :meth:`Kernel.case_for <byzcore.bench.kernels.Kernel.case_for>` may lower ``f`` and keep
    the cache).

    Attributes
    ----------
    X : numpy.ndarray
        The ``(n, d)`` messages in the benchmark dtype, on the host (see :func:`make_messages`).
    f : int
        The ``f`` the rules are called with.
    seed : int, default 0
        The seed of ``rand_k`` and ``dnc`` (and, plus 1, of the sample of
        :func:`~byzcore.bench.references.checked_columns`).
    device : str, default "cpu"
        Where byzcore and the torch baselines run: ``"cpu"`` or ``"cuda"``.
    gm_iters : int, default 5
        The Weiszfeld iterations timed for ``geometric_median``.
    beta : float
        ``0.2`` (a class attribute): ``trimmed_mean_beta`` trims ``int(0.2 n)`` values at each
        end, as Flower's FedTrimmedAvg does.
    """

    X: np.ndarray            # (n, d) in the benchmark dtype, on the host
    f: int
    seed: int = 0
    device: str = "cpu"
    gm_iters: int = 5
    _torch_X: Any = None
    _cache: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """The number of messages."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """The message length."""
        return int(self.X.shape[1])

    @property
    def eps(self) -> float:
        """The machine epsilon of the messages' dtype."""
        return float(np.finfo(self.X.dtype).eps)

    @property
    def nbytes(self) -> int:
        """The input's size in bytes."""
        return int(self.X.nbytes)

    @property
    def k(self) -> int:
        """rand_k keeps 1% of the coordinates (at least one)."""
        return max(1, self.d // 100)

    @property
    def m(self) -> int:
        """``n - f``: the messages multi-Krum averages."""
        return self.n - self.f

    @property
    def weights(self) -> np.ndarray:
        """Per-message weights of weighted_mean (example counts 1, 2, 3, 1, 2, 3, ...)."""
        return (1 + np.arange(self.n) % 3).astype(np.float64)

    beta = 0.2  # trimmed_mean_beta trims int(0.2 n) values at each end (Flower's FedTrimmedAvg)

    def torch_X(self) -> Any:
        """The input as a torch tensor on the bench device (CPU: shares NumPy's memory)."""
        if self._torch_X is None:
            import torch

            t = torch.from_numpy(self.X)
            self._torch_X = t.to(self.device) if self.device != "cpu" else t
        return self._torch_X

    def bz_X(self) -> Any:
        """What byzcore is called with: the NumPy array, or the CUDA tensor."""
        return self.X if self.device == "cpu" else self.torch_X()

    def threshold(self) -> float:
        """Clipping threshold / tau: the median row norm, so about half the rows are clipped."""
        from .references import sqnorms64

        return float(np.median(np.sqrt(sqnorms64(self))))


def default_f(n: int) -> int:
    """The number of Byzantine messages a cell holds by default: 20% of ``n``.

    Capped at ``(n - 3) // 2``, so that ``n > 2f`` and ``n >= f + 3`` hold (the bounds of
    every benchmarked rule but Bulyan's ``n >= 4f + 3``, for which the kernel lowers ``f``).

    Parameters
    ----------
    n : int
        The number of messages.

    Returns
    -------
    int
        ``max(0, min(n // 5, (n - 3) // 2))``.
    """
    return max(0, min(n // 5, (n - 3) // 2))


def make_messages(n: int, d: int, dtype: Any = np.float32, *, f: int | None = None, seed: int = 0) -> np.ndarray:
    """A seeded ``(n, d)`` input like one round of robust aggregation.

    The first ``n - f`` rows are honest, ``g + sigma_i * noise_i``, the last ``f`` Byzantine,
    ``-3 g + sigma_i * noise_i`` (far from the honest ones), with ``g`` a standard normal
    vector and ``sigma_i`` spread evenly over ``[0.5, 1.5]`` (so distances and scores are
    well separated and the checks are meaningful). The noise is uniform with unit variance
    (drawing it is twice as fast as Gaussian noise, which matters at 10^8 entries). Every
    entry is finite: NumPy's references have no non-finite policy to compare with.

    Parameters
    ----------
    n : int
        The number of messages.
    d : int
        The message length.
    dtype : numpy dtype, default numpy.float32
        The dtype of the messages, drawn in it: float32 or float64.
    f : int, optional
        The number of Byzantine rows (``0 <= f <= n``); :func:`default_f` of ``n`` by default.
    seed : int, default 0
        The seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        The ``(n, d)`` messages in ``dtype``.

    Raises
    ------
    TypeError
        For a ``dtype`` NumPy's generator cannot draw in (anything but float32 and float64).
    """
    f = default_f(n) if f is None else f
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    X = rng.random((n, d), dtype=dt)
    X -= dt.type(0.5)
    X *= (2 * math.sqrt(3) * np.linspace(0.5, 1.5, n)).astype(dt)[:, None]
    g = rng.standard_normal(d, dtype=dt)
    X[: n - f] += g
    X[n - f:] -= 3 * g
    return X
