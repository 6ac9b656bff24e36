"""byzcore: fast, exact Byzantine-robust aggregation for NumPy, PyTorch and CuPy.

The aggregation functions (docs/spec.md#rules) live at the top level; aggregator objects in
:mod:`byzcore.aggregators`; training algorithms, attacks and problems in
:mod:`byzcore.algorithms`, :mod:`byzcore.attacks` and :mod:`byzcore.problems`.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from ._native import core as _core
from ._ops import (
    arc,
    bucketing,
    bulyan,
    cge,
    centered_clipping,
    clip,
    geometric_median,
    krum,
    krum_scores,
    mean,
    meamed,
    median,
    monna,
    multi_krum,
    nnm,
    pairwise_distances,
    permutation,
    rand_k,
    rand_k_dense,
    rand_k_indices,
    rand_k_sparse,
    trimmed_mean,
)
from .aggregators import (
    ARC,
    CGE,
    NNM,
    Aggregator,
    Bucketing,
    Bulyan,
    CenteredClipping,
    Clipping,
    FedTrimmedAvg,
    GeometricMedian,
    Krum,
    Mean,
    MeaMed,
    Median,
    MoNNA,
    MultiKrum,
    TrimmedMean,
    make_aggregator,
)
from ._ops import caf, dnc, mda, smea  # the subset rules (docs/rules.md#subset-rules-mda-smea-caf-dnc)
from .aggregators import CAF, MDA, SMEA, DnC

try:
    __version__ = _metadata.version("byzcore")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = _core.__version__


def build_info() -> dict:
    """How this byzcore was built and what it uses on this machine.

    Keys: ``version``, ``cuda`` (CUDA kernels compiled in), ``cuda_devices`` (GPUs visible),
    ``cuda_build`` (toolkit and architectures), ``simd`` (the ISA module in use: ``generic``,
    ``avx2`` or ``avx512``), ``threads`` (CPU threads the kernels use), ``openmp``.
    """
    return {
        "version": __version__,
        "cuda": bool(_core.cuda_compiled()),
        "cuda_devices": int(_core.cuda_device_count()),
        "cuda_build": _core.cuda_describe(),
        "simd": _core.isa,
        "threads": int(_core.num_threads()),
        "openmp": bool(_core.openmp),
    }


__all__ = [
    "Aggregator", "Bucketing", "CenteredClipping", "GeometricMedian", "Krum", "Mean", "Median",
    "MultiKrum", "NNM", "TrimmedMean", "bucketing", "build_info", "centered_clipping", "clip",
    "geometric_median", "krum", "krum_scores", "make_aggregator", "mean", "median", "multi_krum",
    "nnm", "pairwise_distances", "permutation", "rand_k", "rand_k_dense", "rand_k_indices",
    "rand_k_sparse", "trimmed_mean", "__version__",
    # catalogue rules (issue 9)
    "ARC", "Bulyan", "CGE", "Clipping", "FedTrimmedAvg", "MeaMed", "MoNNA", "arc", "bulyan", "cge",
    "meamed", "monna",
]
__all__ += ["CAF", "DnC", "MDA", "SMEA", "caf", "dnc", "mda", "smea"]
