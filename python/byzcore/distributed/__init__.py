"""byzcore on ``torch.distributed``: a Byzantine-robust DDP communication hook and a
server-worker runtime (rank 0 aggregates with byzcore, the other ranks are workers).

- :func:`robust_hook` (also ``byzcore.torch.robust_hook``): one line makes DDP training robust.
- :func:`spawn`: start ranks on loopback the way torchrun does, with guaranteed cleanup.
- :mod:`byzcore.distributed.runtime`: ``byzcore run --backend torch-distributed``.

PyTorch is imported only when these are used. See docs/distributed.md.
"""

from __future__ import annotations

from .ddp_hook import RobustHook, robust_hook
from .launch import SpawnResult, spawn

__all__ = ["RobustHook", "SpawnResult", "robust_hook", "spawn"]
