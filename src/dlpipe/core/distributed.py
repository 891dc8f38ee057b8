"""torch.distributed state as the engine sees it: world size, rank, and the process group's life.

Ranks are started by torchrun (or ``dlpipe train --nproc N``, which uses torch's elastic launcher);
this module only reads the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) and initialises the process group: gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from datetime import timedelta

__all__ = [
    "world_size",
    "rank",
    "local_rank",
    "is_main_process",
    "init_distributed",
    "shutdown_distributed",
    "is_launched",
]


def is_launched() -> bool:
    """True when this process was started as one rank of several (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if is_launched() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def init_distributed(timeout_s: float = 120.0) -> bool:
    """Join the process group when launched as a rank; returns True if distributed."""
    if not is_launched():
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return True
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def shutdown_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
