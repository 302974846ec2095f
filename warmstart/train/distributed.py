"""Data-parallel training with torch.distributed, as launched by ``torchrun``.

``torchrun --nproc-per-node N -m warmstart.cli train ...`` starts N processes and gives each the environment
variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_distributed` reads them. Without
them (a plain ``warmstart train``) everything here is a no-op for a world of one process, so the training loop
has a single code path. No home-made communication: the process group is torch's (gloo on CPU, nccl on GPU), the
model is wrapped in torch's DistributedDataParallel, and batches are sharded by `LengthGroupedBatchSampler`'s
`num_replicas` / `rank` (every rank takes every `world_size`-th length-grouped batch, as DistributedSampler does
for single examples).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "init_distributed", "wrap_model", "unwrap_model", "all_reduce_sum", "gather_to_main",
           "broadcast_object", "barrier", "shutdown"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among `world_size` processes and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: no process group (a single process)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (torchrun sets it), got {value!r}") from None


def init_distributed(device: str | None = None) -> DistEnv:
    """Join the process group torchrun describes (if any) and pick this process's device.

    `device`: "cpu", "cuda" or None (CUDA when available). Under torchrun with CUDA each process takes the GPU
    of its LOCAL_RANK and the nccl backend; on CPU the gloo backend. Calling it twice is harmless.
    """
    world_size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE), got RANK={rank}, WORLD_SIZE={world_size}")
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for, but torch sees no CUDA device")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                             f"start at most that many processes per node")
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    if world_size == 1:
        return DistEnv(device=where)
    backend = "nccl" if kind == "cuda" else "gloo"
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise ValueError(f"WORLD_SIZE={world_size} but {name} is not set; start the run with torchrun")
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=where, backend=backend)


def wrap_model(model: torch.nn.Module, env: DistEnv) -> torch.nn.Module:
    """The model as the training step calls it: DistributedDataParallel across ranks, else the model itself."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [env.device.index] if env.device.type == "cuda" else None
    # find_unused_parameters stays off (it costs a graph walk per step): the one part of an encoder-decoder that
    # never reaches the loss, the encoder's pooler, is frozen by the loop before wrapping.
    return DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def all_reduce_sum(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """The sum of `value` over all ranks (a copy; `value` itself is left alone)."""
    if not env.distributed:
        return value.clone()
    out = value.detach().clone().to(env.device)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def gather_to_main(obj: Any, env: DistEnv) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere). Used for per-rank RNG states."""
    if not env.distributed:
        return [obj]
    out = [None] * env.world_size if env.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's `obj` on every rank (for decisions only rank 0 can make, such as an error found in a file)."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
