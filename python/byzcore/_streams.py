"""Keyed random streams for the training algorithms.

Every random draw of a run is a pure function of ``(seed, purpose, round, worker, j)``:
a counter-based hash (SplitMix64 finaliser), vectorised over workers. A worker process of a
distributed runtime therefore reproduces its own draws from the run seed, the round number
and its id alone, with no generator state to ship or to keep in step, and a simulation that
draws for all workers at once gets bit-for-bit the same numbers as workers drawing alone.

Draws that only the server makes (which clients take part, the coin of a full round, the
attack's noise) use a NumPy ``Generator`` keyed the same way (:func:`server_rng`).
"""

from __future__ import annotations

import numpy as np

# Purposes: one independent stream family each.
MINIBATCH = 1
COMPRESSOR = 2
SAMPLING = 3
ATTACK = 4
VALIDATION = 5
BYZANTINE_SET = 6
INIT = 7
ARRIVAL = 8
SPLIT = 9

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix(z: np.ndarray) -> np.ndarray:
    # Arrays only: NumPy wraps uint64 array arithmetic silently (scalars would warn).
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _u64(values) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype != np.uint64:
        a = np.asarray([int(v) % 2**64 for v in np.ravel(a)], dtype=np.uint64).reshape(a.shape)
    return np.atleast_1d(a)


def keys(seed: int, purpose: int, round_: int, workers) -> np.ndarray:
    """One 64-bit key per worker for ``(seed, purpose, round)``; shape ``(len(workers),)``."""
    w = _u64(np.asarray(workers, dtype=np.int64).astype(np.uint64))
    h = _mix(_u64([seed]))
    h = _mix(h ^ _u64([purpose]))
    h = _mix(h ^ _u64([round_]))
    return _mix(h ^ w)


def uniform(seed: int, purpose: int, round_: int, workers, size: int) -> np.ndarray:
    """Uniform floats in ``[0, 1)``, shape ``(len(workers), size)``; row ``r`` depends only on
    ``workers[r]`` (and the seed, purpose and round)."""
    k = keys(seed, purpose, round_, workers)
    j = np.arange(size, dtype=np.uint64)
    h = _mix(k[:, None] ^ _mix(j)[None, :])
    return (h >> _S11).astype(np.float64) * (1.0 / 2**53)


def integers(seed: int, purpose: int, round_: int, workers, size: int, high) -> np.ndarray:
    """Uniform integers in ``[0, high_r)`` (``high`` a scalar or one bound per worker),
    shape ``(len(workers), size)``, int64."""
    u = uniform(seed, purpose, round_, workers, size)
    high = np.asarray(high, dtype=np.float64).reshape(-1, 1) if np.ndim(high) else float(high)
    return np.minimum(np.floor(u * high), np.asarray(high) - 1).astype(np.int64)


def worker_seeds(seed: int, purpose: int, round_: int, workers) -> list[int]:
    """One integer seed per worker (for kernels that take a seed, e.g. ``byzcore.rand_k``)."""
    return [int(v) for v in keys(seed, purpose, round_, workers)]


def server_rng(seed: int, purpose: int, round_: int = 0) -> np.random.Generator:
    """A NumPy generator for the server's draws of one round."""
    return np.random.default_rng([int(seed) % 2**64, int(purpose), int(round_) % 2**63])
