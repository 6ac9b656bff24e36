"""Loads the compiled core built for the best instruction set this CPU supports.

The extension is built three times (``_core_generic``, ``_core_avx2``, ``_core_avx512``) so one
wheel runs on any x86-64 machine and still uses AVX2 / AVX-512 where present. Set
``BYZCORE_ISA=generic|avx2|avx512`` to force one (tests use this to cover every build).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

_LEVELS = ("avx512", "avx2", "generic")


def _load():
    try:
        generic = importlib.import_module("byzcore._core_generic")
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise ImportError(
            "byzcore's compiled core (byzcore._core_generic) could not be imported. "
            "Install byzcore with `pip install .` from the source tree (a C++17 compiler and "
            "CMake are needed), not by putting python/ on sys.path."
        ) from exc
    forced = os.environ.get("BYZCORE_ISA", "").strip().lower()
    if forced:
        if forced not in _LEVELS:
            raise ImportError(f"BYZCORE_ISA must be one of {_LEVELS}, got {forced!r}")
        if not generic.cpu_supports(forced):
            raise ImportError(f"BYZCORE_ISA={forced} but this CPU does not support it")
        return importlib.import_module(f"byzcore._core_{forced}")
    for level in _LEVELS:
        if generic.cpu_supports(level):
            try:
                return importlib.import_module(f"byzcore._core_{level}")
            except ModuleNotFoundError:  # a build for a platform without that module
                continue
    return generic


if TYPE_CHECKING:  # the three builds share one interface, typed in _core_generic.pyi
    from . import _core_generic as core
else:
    core = _load()
