"""byzcore: fast, exact Byzantine-robust aggregation for NumPy, PyTorch and CuPy.

The aggregation functions (docs/spec.md#rules) live at the top level; aggregator objects in
:mod:`byzcore.aggregators`; training algorithms, attacks and problems in
:mod:`byzcore.algorithms`, :mod:`byzcore.attacks` and :mod:`byzcore.problems`.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from ._native import build_contents as _build_contents
from ._native import core as _core
from ._ops import (  # the subset rules (docs/rules.md#subset-rules-mda-smea-caf-dnc)
    arc,
    bucketing,
    bulyan,
    caf,
    centered_clipping,
    cge,
    clip,
    dnc,
    geometric_median,
    krum,
    krum_scores,
    mda,
    mda_default_budget,
    meamed,
    mean,
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
    smea,
    smea_default_budget,
    trimmed_mean,
)
from .aggregators import (
    ARC,
    CAF,
    CGE,
    MDA,
    NNM,
    SMEA,
    Aggregator,
    Bucketing,
    Bulyan,
    CenteredClipping,
    Clipping,
    DnC,
    FedTrimmedAvg,
    GeometricMedian,
    Krum,
    MeaMed,
    Mean,
    Median,
    MoNNA,
    MultiKrum,
    TrimmedMean,
    make_aggregator,
)

try:
    __version__ = _metadata.version("byzcore")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = _core.__version__


def build_info() -> dict:
    """How this byzcore was built and what it uses on this machine.

    Returns
    -------
    dict
        ``version``, ``cuda`` (CUDA kernels compiled in), ``cuda_devices`` (GPUs visible),
        ``cuda_build`` (toolkit version), ``simd`` (the ISA module in use: ``generic``,
        ``avx2`` or ``avx512``), ``threads`` (CPU threads the kernels use), ``openmp``, and
        what the build contains: ``isa_modules``, ``cuda_architectures``, ``build_type``,
        ``lto``, ``wheel_tag`` (see :func:`byzcore._native.build_contents`).
    """
    return {
        "version": __version__,
        "cuda": bool(_core.cuda_compiled()),
        "cuda_devices": int(_core.cuda_device_count()),
        "cuda_build": _core.cuda_describe(),
        "simd": _core.isa,
        "threads": int(_core.num_threads()),
        "openmp": bool(_core.openmp),
        **_build_contents(),
    }


__all__ = [
    # catalogue rules (issue 9)
    "ARC",
    "CGE",
    "NNM",
    "Aggregator",
    "Bucketing",
    "Bulyan",
    "CenteredClipping",
    "Clipping",
    "FedTrimmedAvg",
    "GeometricMedian",
    "Krum",
    "MeaMed",
    "Mean",
    "Median",
    "MoNNA",
    "MultiKrum",
    "TrimmedMean",
    "__version__",
    "arc",
    "bucketing",
    "build_info",
    "bulyan",
    "centered_clipping",
    "cge",
    "clip",
    "geometric_median",
    "krum",
    "krum_scores",
    "make_aggregator",
    "meamed",
    "mean",
    "median",
    "monna",
    "multi_krum",
    "nnm",
    "pairwise_distances",
    "permutation",
    "rand_k",
    "rand_k_dense",
    "rand_k_indices",
    "rand_k_sparse",
    "trimmed_mean",
]
__all__ += ["CAF", "MDA", "SMEA", "DnC", "caf", "dnc", "mda", "mda_default_budget", "smea", "smea_default_budget"]
