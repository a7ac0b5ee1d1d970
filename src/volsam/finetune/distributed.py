"""Where this process stands in a fine-tuning run: torchrun's environment, the process group, the device.

``WORLD_SIZE > 1`` (set by torchrun) starts a process group from torchrun's environment (env://): gloo on the
CPU, nccl on CUDA, where the device is ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from volsam.core.errors import EngineError, InputError
from volsam.finetune.config import FinetuneConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    """This process's place: rank, world size, device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(wanted: str, local_rank: int) -> torch.device:
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(wanted)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {wanted!r} is not a torch device") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(f"device {wanted!r}: CUDA is not available here")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type not in ("cpu", "mps"):
        raise InputError(f"device {wanted!r}: choose auto, cpu, cuda, cuda:N or mps")
    return device


def setup_distributed(config: FinetuneConfig, device: str | None = None) -> Dist:
    """Join torchrun's process group when ``WORLD_SIZE > 1`` (env://), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device or config.device, local_rank)
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        backend = config.distributed.backend
        if backend == "auto":
            backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(
            backend,
            timeout=timedelta(seconds=config.distributed.timeout_s),
            device_id=dev if backend == "nccl" else None,
        )
        log.info("rank %d of %d on %s (%s)", rank, world, dev, backend)
    return Dist(rank, world, local_rank, dev)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def all_mean(d: Dist, values: dict[str, float]) -> dict[str, float]:
    if d.world == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=comm_device(d))
    dist.all_reduce(t)
    return {k: float(v) / d.world for k, v in zip(keys, t.tolist(), strict=True)}


def comm_device(d: Dist) -> torch.device:
    return d.device if dist.get_backend() == "nccl" else torch.device("cpu")


def mean_over_ranks(d: Dist, total: float, count: int) -> float:
    """``sum(total) / sum(count)`` over every rank (NaN when the counts sum to 0); every rank must call it."""
    sums = torch.tensor([total, float(count)], dtype=torch.float64)
    if d.world > 1:
        sums = sums.to(comm_device(d))
        dist.all_reduce(sums)
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")
