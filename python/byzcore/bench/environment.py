"""What the figures depend on: the machine, the build, the libraries, the read bandwidth,
and whether the requested device can run at all."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from .timing import time_call

__all__ = ["check_device", "environment", "measure_read_bandwidth"]


def measure_read_bandwidth(nbytes: int, device: str = "cpu") -> dict:
    """The machine's read bandwidth in GB/s: timed sums over an ``nbytes`` float64 array.

    Each figure is the median of up to 3 timed sums (5 on CUDA) after a warm-up (:func:`time_call`).
    On the CPU, NumPy's sum runs on one thread; the same sum split over every core in a thread
    pool (NumPy releases the GIL in reductions) shows what all cores read, which is what the
    multi-threaded kernels are compared to: ``best_gbps`` is the larger of the two. On CUDA it
    is a torch sum on the GPU.

    Parameters
    ----------
    nbytes : int
        The array's size in bytes.
    device : str, default "cpu"
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    dict
        ``bytes``, ``best_gbps`` and, on the CPU, ``numpy_sum_1thread_gbps``,
        ``numpy_sum_all_cores_gbps`` and ``threads``; on CUDA, ``torch_sum_gbps``.
    """
    if device == "cuda":
        import torch

        a = torch.ones(nbytes // 8, dtype=torch.float64, device="cuda")
        t = time_call(a.sum, repeat=5, budget=2.0, sync=torch.cuda.synchronize)
        gbps = nbytes / t / 1e9
        return {"bytes": nbytes, "torch_sum_gbps": gbps, "best_gbps": gbps}
    from concurrent.futures import ThreadPoolExecutor

    a = np.ones(nbytes // 8)
    t1 = time_call(a.sum, repeat=3, budget=2.0, sync=lambda: None)
    workers = os.cpu_count() or 1
    parts = np.array_split(a, workers)
    with ThreadPoolExecutor(workers) as pool:
        tn = time_call(lambda: list(pool.map(np.sum, parts)), repeat=3, budget=2.0, sync=lambda: None)
    one, alln = nbytes / t1 / 1e9, nbytes / tn / 1e9
    return {"bytes": nbytes, "numpy_sum_1thread_gbps": one, "numpy_sum_all_cores_gbps": alln,
            "threads": workers, "best_gbps": max(one, alln)}


def environment(device: str) -> dict:
    """What the figures depend on: the CPU, the build, the library versions, BLAS, threads.

    Parameters
    ----------
    device : str
        The bench device, ``"cpu"`` or ``"cuda"`` (the GPU's name is recorded for ``"cuda"``).

    Returns
    -------
    dict
        ``python``, ``machine``, ``cpu``, ``cores``, ``device``, ``byzcore``
        (:func:`byzcore.build_info`), ``numpy``, ``load_average``, ``openblas_env``
        (``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, where set), ``blas`` (from
        threadpoolctl, None without it), ``torch`` (its version, None without it) and, with
        torch, ``torch_threads`` and on CUDA ``gpu``.
    """
    import byzcore

    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                           "cpu": _cpu_model(), "cores": os.cpu_count(), "device": device,
                           "byzcore": byzcore.build_info(), "numpy": np.__version__}
    env["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env["openblas_env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                       for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        env["blas"] = None
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if device == "cuda" and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        env["torch"] = None
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def check_device(device: str) -> None:
    """Check that ``device`` can be benchmarked here (the CPU always can).

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    SystemExit
        For ``"cuda"`` without PyTorch, without a visible GPU, or with a byzcore built
        without CUDA; the message names the fix.
    """
    if device != "cuda":
        return
    try:
        import torch
    except ImportError:
        raise SystemExit("byzcore bench --device cuda needs PyTorch with CUDA (it runs on torch CUDA tensors); "
                         "install torch, or use --device cpu") from None
    if not torch.cuda.is_available():
        raise SystemExit("byzcore bench --device cuda: no CUDA GPU is visible to PyTorch "
                         "(torch.cuda.is_available() is False); run it on a machine with a GPU, or use --device cpu")
    import byzcore

    if not byzcore.build_info()["cuda"]:
        raise SystemExit("byzcore bench --device cuda: this byzcore was built without CUDA support; "
                         "reinstall with `BYZCORE_CUDA=1 pip install .` on a machine with the CUDA toolkit")
