"""Multi-process data-parallel training: torchrun launch, process group, rank bookkeeping.

Two equivalent ways to train on N processes (one per GPU, or N CPU processes with gloo):

    skiptool train --nproc 2 --config ... --data ...            # relaunches itself via torchrun
    torchrun --nproc-per-node 2 -m skiptool.bin.main train --config ... --data ...

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; `init_distributed` reads them and joins the process
group (nccl on CUDA, gloo on CPU). Without them the run is a single process and nothing here
does any communication.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist

from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job; `world_size == 1` means no process group."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and plots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def resolve_device(device: str, ctx: DistContext | None = None) -> torch.device:
    """'auto' -> CUDA if available else CPU; 'cuda' without a GPU is a user error. Under
    torchrun each process on CUDA takes the GPU of its local rank."""
    ctx = ctx or DistContext()
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise SkiptoolError(f"--device {device}: unknown device; use auto, cpu or cuda")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SkiptoolError(f"--device {device}: no CUDA device is available to torch "
                                f"(torch.cuda.is_available() is False); use --device cpu or auto")
        if ctx.distributed:
            if ctx.local_rank >= torch.cuda.device_count():
                raise SkiptoolError(f"--nproc {ctx.world_size}: local rank {ctx.local_rank} has no GPU "
                                    f"({torch.cuda.device_count()} visible); use at most one process per GPU")
            device = f"cuda:{ctx.local_rank}"
    return torch.device(device)


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun process group if this process was started by torchrun."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext()
    ctx = DistContext(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                      world_size=int(os.environ["WORLD_SIZE"]))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx


def context_from_env() -> DistContext:
    """Rank and world size from torchrun's environment, without joining the group."""
    if not launched_by_torchrun():
        return DistContext()
    return DistContext(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                       world_size=int(os.environ["WORLD_SIZE"]))


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """`obj` from every rank, in rank order (a one-item list when not distributed)."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(ctx: DistContext, module: torch.nn.Module) -> None:
    """Rank 0's buffers (e.g. batch-norm running statistics, which each rank updates from its own
    batches) on every rank, as DDP does before each training forward."""
    if ctx.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def sum_across_ranks(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Element-wise sum of the same-keyed dict over all ranks."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.cpu().tolist()))


def launch_torchrun(nproc: int, cli_args: Sequence[str]) -> int:
    """Run `skiptool CLI_ARGS` on `nproc` local processes under torchrun; returns its exit code.

    `--standalone` picks a free rendezvous port, so several jobs can run on one machine.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "skiptool.bin.main", *cli_args]
    env = dict(os.environ)
    # One intra-op thread per process unless the user chose otherwise: N processes on N cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:
        return 130
