"""PyTorch integration: ``byzcore.torch.robust_hook`` for ``DistributedDataParallel``.

This module is named after the framework it serves; byzcore imports PyTorch with absolute
imports only, so it never shadows ``torch``. The implementation lives in
:mod:`byzcore.distributed.ddp_hook`.
"""

from __future__ import annotations

from .distributed.ddp_hook import RobustHook, robust_hook

__all__ = ["RobustHook", "robust_hook"]
