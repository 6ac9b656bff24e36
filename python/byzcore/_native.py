"""Loads the compiled core built for the best instruction set this CPU supports.

The extension is built three times (``_core_generic``, ``_core_avx2``, ``_core_avx512``) so one
wheel runs on any x86-64 machine and still uses AVX2 / AVX-512 where present. Set
``BYZCORE_ISA=generic|avx2|avx512`` to force one (tests use this to cover every build).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def build_contents() -> dict[str, Any]:
    """What the compiled part of this installation contains.

    Returns
    -------
    dict
        ``isa_modules``: the ISA modules present (``generic`` first, then ``avx2``, ``avx512``),
        found on disk, so true for any build; ``cuda_architectures``: the CUDA code compiled in
        (``["80-real", "90-real", "90-virtual"]``; ``[]`` without CUDA; ``None`` when unknown);
        ``build_type`` and ``lto``: the CMake configuration (``None`` when unknown); and
        ``wheel_tag``: the tag of the wheel this package was installed from (a repaired
        wheel's ``manylinux_*`` tag, or ``linux_x86_64`` for a source install), ``None`` when
        byzcore runs from a source tree that pip did not install. The last four come from
        ``byzcore/_build_config.py``, which CMake writes at configure time.
    """
    isa_modules = [level for level in reversed(_LEVELS)
                   if importlib.util.find_spec(f"byzcore._core_{level}") is not None]
    try:
        from ._build_config import BUILD_TYPE, CUDA_ARCHITECTURES, LTO
    except ImportError:  # a source tree with copied modules: only what is on disk is known
        return {"isa_modules": isa_modules, "cuda_architectures": None, "build_type": None,
                "lto": None, "wheel_tag": _wheel_tag()}
    return {
        "isa_modules": isa_modules,
        "cuda_architectures": list(CUDA_ARCHITECTURES),
        "build_type": BUILD_TYPE,
        "lto": bool(LTO),
        "wheel_tag": _wheel_tag(),
    }


def _wheel_tag() -> str | None:
    """The ``Tag`` of the installed wheel, if this very package is the installed one."""
    from importlib import metadata

    try:
        dist = metadata.distribution("byzcore")
        installed = Path(str(dist.locate_file("byzcore/__init__.py"))).resolve()
        wheel = dist.read_text("WHEEL") or ""
    except (metadata.PackageNotFoundError, OSError):
        return None
    if installed != (Path(__file__).parent / "__init__.py").resolve():  # another copy is installed
        return None
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    return ".".join(tags) or None


if TYPE_CHECKING:  # the three builds share one interface, typed in _core_generic.pyi
    from . import _core_generic as core
else:
    core = _load()
