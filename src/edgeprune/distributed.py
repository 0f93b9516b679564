"""torch.distributed under ``torchrun``: set up from its environment variables, who writes, clean-up.

``torchrun --nproc_per_node N -m edgeprune train …`` starts N processes with RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set. :func:`session` initialises the process group from them (gloo on CPU,
nccl when CUDA is available, one GPU per local rank) and destroys it at the end; outside torchrun it does
nothing, so the same command runs single-process. :func:`fit <edgeprune.train.fit>` notices the process
group and shards the data; callers write files only where :func:`is_rank0` is true.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
import torch.distributed as dist

from edgeprune.errors import ConfigError

_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True when this process was started by torchrun (its rendezvous variables are set)."""
    return all(name in os.environ for name in _ENV)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Global rank (0 outside a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if is_initialized() else 0


def is_rank0() -> bool:
    """True in the one process that writes files and prints (always true outside torchrun)."""
    return rank() == 0


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def init(backend: str | None = None) -> bool:
    """Join the process group torchrun set up; returns True if this call initialised it.

    Does nothing (returns False) outside torchrun, with WORLD_SIZE 1, or when already initialised.
    """
    if is_initialized() or not launched_by_torchrun():
        return False
    world = int(os.environ["WORLD_SIZE"])
    if world <= 1:
        return False
    backend = backend or default_backend()
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"distributed backend {backend!r} is not one of: gloo, nccl")
    if backend == "nccl":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local} has no GPU (this node has {torch.cuda.device_count()}); "
                f"use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def cleanup() -> None:
    """Leave the process group (no-op when none is initialised)."""
    if is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(backend: str | None = None) -> Iterator[bool]:
    """``with session() as distributed:`` — a process group for the block when run under torchrun."""
    started = init(backend)
    try:
        yield is_initialized()
        if started:
            dist.barrier()  # the other ranks wait until rank 0 has written its files
    finally:
        if started:
            cleanup()


def device() -> torch.device:
    """The device of this rank: its own GPU (LOCAL_RANK) under nccl, else CUDA if present, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank() if is_initialized() else torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_value(value: float, src: int = 0, device_: torch.device | None = None) -> float:
    """``value`` as rank ``src`` has it, on every rank (identity outside a process group)."""
    if not is_initialized():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=device_ or device())
    dist.broadcast(t, src)
    return float(t.item())


def all_reduce_sum(values: list[float], device_: torch.device | None = None) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (identity outside a process group)."""
    if not is_initialized():
        return list(values)
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device_ or device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()
