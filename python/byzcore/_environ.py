"""Environment variables set for a block: what child processes started inside it inherit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["scoped_environ"]


@contextlib.contextmanager
def scoped_environ(values: dict) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` inside the block and restore the previous values (or
    their absence) after it. Processes started inside the block inherit them, which is how
    variables read when a library loads (``OMP_NUM_THREADS``) reach spawned children."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
