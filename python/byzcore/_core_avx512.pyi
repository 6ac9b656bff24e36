"""Type stub of the avx512 build of the compiled core: the interface of ``_core_generic``."""

from ._core_generic import *  # noqa: F403
from ._core_generic import __version__ as __version__
