"""Data-parallel training under ``torchrun``: process group, rank-0 duties, sharded data.

``torchrun --nproc-per-node N -m edge_snn train ...`` starts N processes with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment. Each rank
trains a ``DistributedDataParallel`` replica on its shard of every epoch
(``DistributedSampler``, reshuffled per epoch from the run's seed); gradients
are averaged across ranks, so all replicas hold identical weights. Only rank 0
writes checkpoints and logs; every rank reads ``last.pt`` to resume. The
backend is NCCL when each rank has a GPU, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join the process group torchrun set up (a no-op for a plain single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device="cuda" if torch.cuda.is_available() else "cpu")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > local
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, f"cuda:{local}" if use_cuda else "cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """The module that trains: a DDP replica across ranks, the model itself otherwise."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[info.local_rank] if info.device.startswith("cuda") else None)


def epoch_indices(length: int, info: DistInfo, *, seed: int, epoch: int) -> list[int]:
    """This rank's sample order for ``epoch`` (the whole shuffled set when alone)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(length), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)
