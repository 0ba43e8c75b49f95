"""Data-parallel training over several processes with ``torch.distributed`` (under torchrun).

Semantics: ``State.batch_size`` is the clips of one step *across all processes*; each of the
``W`` processes takes a contiguous ``batch_size / W`` slice of every step's batch, so the
model sees the same batches in the same order as one process would, and the effective batch
(``batch_size * accumulation``) does not depend on ``W``. The curve then equals the
one-process curve up to float summation order, provided what depends on the local batch
agrees too: frozen BatchNorm (or SyncBatchNorm on GPU), and dropout off for a bit-level match.
When the training list is not a multiple of ``batch_size``, the last partial batch is dropped
with ``train.drop_last``; otherwise it is split as evenly as the processes allow (a tiny
weighting difference from one process), or dropped when it has fewer clips than processes.

Launch: ``torchrun --nproc_per_node=2 -m optplan train CONFIG --state STATE.yaml``; the
backend is NCCL on GPU and gloo on CPU. Without torchrun's environment everything here is a
no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from optplan.errors import OptplanError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and results; the others only compute."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(rank=int(os.environ["RANK"]), world_size=world,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if use_cuda:
            visible = torch.cuda.device_count()
            if info.local_rank >= visible:
                # NCCL gives each process a GPU of its own (it refuses two ranks on one GPU), so
                # more processes per node than visible GPUs cannot work: say so before CUDA does.
                raise OptplanError(
                    f"process {info.local_rank} of this node needs GPU {info.local_rank}, but only "
                    f"{visible} GPU(s) are visible: start at most {visible} processes per node "
                    f"(torchrun --nproc_per_node={visible}), or train on CPU with train.device=cpu")
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def all_reduce_sum(tensor: torch.Tensor) -> None:
    """Sum ``tensor`` over the group in place (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def sync_batchnorm(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``model`` with SyncBatchNorm in place of its BatchNorm layers when distributed on GPU
    (statistics over the whole step's batch, not one process's slice); else ``model`` as it is.

    The conversion replaces the layers in place (the root module stays the same object, the
    parameters and statistics are shared), so whatever was set on the old layers, such as the
    frozen-BN hooks of :func:`~optplan.models.set_frozen_bn`, is gone: freeze after this.
    """
    if info.active and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` when distributed (see :func:`sync_batchnorm`)."""
    if not info.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[info.local_rank])
    return DistributedDataParallel(model)


class ShardedBatchSampler(Sampler[list]):
    """Cuts an item sampler's sequence into global batches of ``global_batch`` items and yields
    this rank's contiguous slice of each (see the module docstring). Slices of a last partial
    batch follow ``numpy.array_split``; in training with ``drop_last`` it is dropped. A last
    batch with fewer items than processes would leave a rank out of a training step (and hang
    the others' gradient all-reduce): with ``training`` it is dropped; otherwise (evaluation)
    the ranks without items skip it."""

    def __init__(self, sampler: Sampler, global_batch: int, info: DistInfo, *, training: bool,
                 drop_last: bool = False) -> None:
        if global_batch % info.world_size:
            raise ValueError(f"batch_size {global_batch} must be a multiple of the "
                             f"{info.world_size} processes")
        self.sampler, self.global_batch, self.info, self.training = sampler, global_batch, info, training
        self.drop_last = drop_last

    def __len__(self) -> int:
        if self.training and self.drop_last:
            return len(self.sampler) // self.global_batch
        return -(-len(self.sampler) // self.global_batch)

    def __iter__(self):
        items = list(self.sampler)  # the sampler reads the dataset's epoch/clip once, here
        for start in range(0, len(items), self.global_batch):
            batch = items[start: start + self.global_batch]
            if self.training and len(batch) < (self.global_batch if self.drop_last else self.info.world_size):
                return
            part = np.array_split(np.arange(len(batch)), self.info.world_size)[self.info.rank]
            if len(part):
                yield [batch[i] for i in part]
