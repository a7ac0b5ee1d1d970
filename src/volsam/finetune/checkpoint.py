"""Resumable fine-tuning checkpoints: ``checkpoints/step-N.pt`` in the run folder with the model, optimizer,
scheduler, the RNG states of every rank and the position inside the epoch; written atomically by rank 0,
the oldest beyond ``checkpoint.keep`` removed.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from volsam.finetune.config import FinetuneConfig
from volsam.finetune.distributed import Dist, barrier
from volsam.finetune.models import TrainModel
from volsam.io.atomic import atomic_target

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^step-(\d+)\.pt$")


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        torch.save(obj, tmp)


def checkpoints_of(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the run's checkpoints, oldest first."""
    folder = run_dir / "checkpoints"
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _CHECKPOINT.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as plain Python values (gathered across ranks, saved with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device).tolist()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8), device)


@dataclass
class State:
    """Where a run is: steps done, the epoch and position in it, the best validation Dice."""

    step: int = 0  # optimizer steps done
    saved: int = -1  # step of the newest checkpoint this process wrote or resumed from
    epoch: int = 0
    micro: int = 0  # micro-batches of ``epoch`` already consumed
    best_dice: float = -1.0
    last_val_step: int = -1


def save_checkpoint(
    run_dir: Path, model: TrainModel, optimizer: Any, scheduler: Any, state: State, config: FinetuneConfig, d: Dist
) -> None:
    rng = _rng_state(d.device)
    states: list[Any] = [rng]
    if d.world > 1:
        states = [None] * d.world
        dist.all_gather_object(states, rng)
    if d.main:
        payload = {
            "model": model.net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": states,
            "step": state.step,
            "epoch": state.epoch,
            "micro": state.micro,
            "best_dice": state.best_dice,
            "last_val_step": state.last_val_step,
            "world": d.world,
            "recipe": config.recipe,
        }
        _atomic_save(payload, run_dir / "checkpoints" / f"step-{state.step}.pt")
        for _, old in checkpoints_of(run_dir)[: -config.checkpoint.keep]:
            old.unlink(missing_ok=True)
        log.info("checkpoint step %d", state.step)
    state.saved = state.step
    barrier(d)


def load_checkpoint(path: Path, model: TrainModel, optimizer: Any, scheduler: Any, d: Dist) -> State:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload["world"] != d.world:
        log.warning(
            "%s was written by %d processes, resumed by %d: the sample order changes", path, payload["world"], d.world
        )
    model.net.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    states = payload["rng"]
    _set_rng_state(states[d.rank] if d.rank < len(states) else states[0], d.device)
    log.info("resumed from %s (step %d, epoch %d)", path, payload["step"], payload["epoch"])
    return State(
        step=payload["step"],
        saved=payload["step"],
        epoch=payload["epoch"],
        micro=payload["micro"],
        best_dice=payload["best_dice"],
        last_val_step=payload["last_val_step"],
    )
