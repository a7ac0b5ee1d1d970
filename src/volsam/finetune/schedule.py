"""Which samples each optimizer step takes, and the learning rate and optimizer of a run.

``epoch_batches`` deals a seeded permutation per epoch in whole steps of ``world x batch_size x grad_accum``
samples, every ``world``-th index per rank, so the global batch of a step is the same set of samples for any
process count; ``lr_factor`` is warm-up then cosine (or constant); ``build_optimizer`` is AdamW with the
recipe's parameter groups (a separate vision learning rate for SAM 2 recipes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np
import torch

from volsam.core.errors import InputError
from volsam.finetune.config import FinetuneConfig
from volsam.finetune.data import (
    ClipDataset,
)
from volsam.finetune.distributed import Dist
from volsam.finetune.models import TrainModel

log = logging.getLogger(__name__)


# -- sampling -----------------------------------------------------------------------------------------------
def epoch_batches(
    n: int, d: Dist, batch_size: int, grad_accum: int, seed: int, epoch: int
) -> list[list[tuple[int, int]]]:
    """This rank's micro-batches of ``epoch``: lists of ``(sample index, epoch)``; see the module notes."""
    per_step = d.world * batch_size * grad_accum
    steps = n // per_step
    perm = np.random.default_rng([seed, 31, epoch]).permutation(n)[: steps * per_step]
    mine = perm[d.rank :: d.world]
    return [[(int(i), epoch) for i in mine[m * batch_size : (m + 1) * batch_size]] for m in range(steps * grad_accum)]


def make_loader(dataset: ClipDataset, batches: list[list[tuple[int, int]]], workers: int, pin: bool) -> Iterator[dict]:
    # its own generator: a DataLoader iterator otherwise draws its base seed from the global torch RNG, and a
    # resumed run (which makes its iterator at another point) would then see other dropout masks
    generator = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=workers, generator=generator, pin_memory=pin
    )
    return iter(loader)


# -- schedule -----------------------------------------------------------------------------------------------
def lr_factor(step: int, total: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the base lr before optimizer step ``step`` (0-based): linear warm-up, then cosine/constant."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: TrainModel, config: FinetuneConfig) -> torch.optim.AdamW:
    o = config.optim
    groups = model.param_groups()
    param_groups = []
    if groups["other"]:
        param_groups.append({"params": groups["other"], "lr": o.lr, "name": "other"})
    if groups["vision"]:
        param_groups.append({"params": groups["vision"], "lr": o.vision_lr or o.lr, "name": "vision"})
    if not param_groups:
        raise InputError("nothing to train: every parameter is frozen (see model.freeze and the recipe)")
    return torch.optim.AdamW(param_groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, foreach=True)  # type: ignore[arg-type]


# -- the run ------------------------------------------------------------------------------------------------
