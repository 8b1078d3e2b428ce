"""Multi-process training with torch.distributed, launched by torchrun.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE > 1 each process joins a process
group (NCCL on CUDA, gloo on the CPU) and trains a DistributedDataParallel copy of the model on its
share of every batch. Without torchrun everything runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


ONE_PROCESS = ProcessGroup()


def start_process_group(device: torch.device, timeout_s: float | None = None) -> tuple[ProcessGroup, torch.device]:
    """Join torchrun's process group when there is one (a no-op when this process has joined it
    already); returns the group and this process's device (cuda:LOCAL_RANK when ``device`` is CUDA).
    ``timeout_s``: how long a collective waits for the slowest process (torch's default if None)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return ProcessGroup(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        timeout = None if timeout_s is None else timedelta(seconds=timeout_s)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return ProcessGroup(dist.get_rank(), dist.get_world_size()), device


def joined() -> bool:
    """Whether this process is in a torch.distributed process group now."""
    return dist.is_initialized()


def all_reduce_sum(values: list[float], device: torch.device, group: ProcessGroup) -> list[float]:
    """Sum of ``values`` over all processes (identity in one process)."""
    if group.world_size == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_arrays(arrays: dict[str, np.ndarray], device: torch.device, group: ProcessGroup) -> dict:
    """Element-wise sum of each float32 array over all processes (the arrays themselves in one)."""
    if group.world_size == 1:
        return arrays
    summed = {}
    for name, values in arrays.items():
        tensor = torch.from_numpy(np.ascontiguousarray(values)).to(device)
        dist.all_reduce(tensor)
        summed[name] = tensor.cpu().numpy()
    return summed


def barrier(group: ProcessGroup) -> None:
    if group.world_size > 1:
        dist.barrier()


def end_process_group(group: ProcessGroup) -> None:
    if group.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
