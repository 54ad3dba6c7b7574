"""Multi-GPU / multi-node training through torch's DDP engine, launched with torchrun.

`torchrun --nproc-per-node N -m vla.cli train ...` sets RANK/WORLD_SIZE/MASTER_ADDR; we
join the process group (NCCL on GPUs, gloo on CPUs), shard the data by rank, and let
DDP average the gradients. Without torchrun everything is a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world


def device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but torch sees no CUDA GPU; use cpu or auto")
    return torch.device(name)


def wrap(model: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
    if not dist.is_initialized():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [dev.index] if dev.type == "cuda" else None
    # The unused decoder's parameters (queries vs token embeddings) get no gradient.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def replicas_identical(model: torch.nn.Module) -> bool:
    """Whether all ranks hold bit-identical parameters (a checksum compared across ranks)."""
    flat = torch.cat([p.detach().double().flatten().cpu() for p in model.parameters()])
    digest = torch.stack([flat.sum(), (flat * torch.arange(len(flat), dtype=flat.dtype)).sum()])
    gathered = [torch.zeros_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def cleanup() -> None:
    if dist.is_initialized():
        # Every rank past its last collective before the group goes: a rank that tears
        # gloo down while a peer's work is still in flight can abort at exit (SIGABRT,
        # "terminate called without an active exception"; seen once under heavy load).
        dist.barrier()
        dist.destroy_process_group()
