"""Data parallelism for the fine-tune: under torchrun (WORLD_SIZE > 1) every process builds the same micro-batch
schedule from the shared seed, runs its own share of each optimizer step's micro-batches, and the gradients
are summed across processes before the step. The result equals one process running every micro-batch (up to
summation order), so checkpoints, resume and the paper's batch semantics carry over unchanged."""
from __future__ import annotations

import os


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def local_device(device: str) -> str:
    """The device of this process: cuda:LOCAL_RANK under torchrun on GPUs."""
    if device == "cuda" and world()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def init(device: str) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPU) when launched by torchrun."""
    import torch.distributed as dist

    if world()[1] > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")


def share(items: list, rank: int, size: int) -> list:
    """This process's share of a step's micro-batches (round robin)."""
    return items[rank::size]


def sum_gradients(params: list, *scalars: float) -> list[float]:
    """Sum the parameters' gradients (in one flat buffer) and the given scalars over all processes."""
    import torch
    import torch.distributed as dist

    if world()[1] == 1:
        return list(scalars)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten().float() for g in grads] +
                     [torch.tensor(scalars, dtype=torch.float32, device=grads[0].device)])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(g).to(g.dtype)
        offset += g.numel()
    return flat[offset:].tolist()


def any_flag(flag: bool) -> bool:
    """Whether any process's flag is set (one small all-reduce under torchrun): every process stops at the same
    step."""
    if world()[1] == 1:
        return bool(flag)
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def gather(obj) -> list:
    """Every process's `obj`, in rank order (on every process)."""
    if world()[1] == 1:
        return [obj]
    import torch.distributed as dist

    found = [None] * world()[1]
    dist.all_gather_object(found, obj)
    return found


def barrier() -> None:
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()
