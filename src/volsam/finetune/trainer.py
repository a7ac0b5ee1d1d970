"""The training loop, one for every recipe: single process or DDP under ``torchrun``.

Run folder ``output/name`` (``runs/NAME`` unless the config or ``-o`` says otherwise)::

    config.yaml              the validated config (all defaults filled in)
    split.json               the fixed train/validation split by case
    status.json              the run's state: running, done, stopped (--stop-after), interrupted, failed;
                             the newest complete checkpoint's step
    log.jsonl                rank 0: one line per logged step (loss parts, lr, samples/s) and per validation;
                             an {"event": "interrupted" | "stopped" | "failed"} line where a run left early
    checkpoints/step-N.pt    resumable: model, optimizer, scheduler, RNG states of every rank, position
    best/                    the exported model with the best validation Dice (with a README.md model card)
    last/                    the exported model at the end

A start is checked whole before the run folder is made -- the config, existing checkpoints (``--resume``
or another folder), the dataset and its cases, the split, the model and its ``freeze`` entries, the
training clips, the precision and the optimizer's parameters -- so a refused start leaves no folder behind.

Distributed: ``WORLD_SIZE > 1`` (set by torchrun) starts a process group from torchrun's environment (gloo on
the CPU, nccl on CUDA; the device is ``cuda:LOCAL_RANK``). Each optimizer step takes
``world x batch_size x grad_accum`` samples: a seeded permutation per epoch, cut to whole steps, every
``world``-th index per rank -- so the global batch of a step is the same set of samples for any process count.
Gradients are averaged by DDP (``no_sync`` on accumulation micro-batches), clipped by global norm, then AdamW
steps. bf16 autocast on CUDA only. Only rank 0 writes files; every rank's RNG state goes into checkpoints.

Resume: the newest ``checkpoints/step-N.pt`` restores everything including the position inside the epoch;
because each sample draws its randomness from ``(seed, epoch, index)``, the resumed run computes the same
losses as an uninterrupted one. ``log.jsonl`` is appended to: steps done after the last checkpoint of an
interrupted run appear twice (the later line is the one that counts). A resume whose config differs from
the folder's ``config.yaml`` says what changed (``schedule.max_steps 4 -> 6``) and continues with the new one.

Interruptions (Ctrl-C; SIGTERM, which the command line turns into the same ``KeyboardInterrupt``) are not
swallowed: rank 0 marks the run ``interrupted`` (``status.json``, ``log.jsonl``) and the interrupt goes on
to the caller. Checkpoints are written to a temporary file and renamed, so the newest ``step-N.pt`` is
always complete, and ``--resume`` continues from it; an exported ``best/`` or ``last/`` is replaced whole.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from volsam.core.errors import InputError
from volsam.finetune.checkpoint import State, checkpoints_of, load_checkpoint, save_checkpoint
from volsam.finetune.config import FinetuneConfig
from volsam.finetune.data import (
    ClipDataset,
    Split,
    open_training_dataset,
    select_cases,
)
from volsam.finetune.distributed import Dist, all_mean, barrier, mean_over_ranks, setup_distributed
from volsam.finetune.losses import compute_loss, dice_score
from volsam.finetune.models import TrainModel, build_model
from volsam.finetune.rundir import fixed_split, newest_checkpoint, open_run_dir, refuse_existing_run
from volsam.finetune.runlog import JsonLog, write_status
from volsam.finetune.schedule import build_optimizer, epoch_batches, lr_factor, make_loader
from volsam.finetune.volume_validation import VolumeValidator

log = logging.getLogger(__name__)


def _autocast(config: FinetuneConfig, device: torch.device) -> AbstractContextManager[Any]:
    precision = config.optim.precision
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        raise InputError(f"optim.precision bf16 is for CUDA GPUs (autocast); this run is on {device}: use fp32")
    return nullcontext()


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _losses(config: FinetuneConfig, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> Any:
    s = out["logits"].shape[-1]
    return compute_loss(
        config.loss,
        out["logits"].reshape(-1, s, s),
        batch["masks"].reshape(-1, s, s),
        iou_pred=out["iou"].reshape(-1),
        object_logit=out["object_logit"].reshape(-1) if "object_logit" in out else None,
        present=batch["present"].reshape(-1),
        multi_logits=out["multi_logits"].flatten(0, 1) if "multi_logits" in out else None,
        multi_iou=out["multi_iou"].flatten(0, 1) if "multi_iou" in out else None,
    )


@torch.no_grad()
def validate(model: torch.nn.Module, dataset: ClipDataset, config: FinetuneConfig, d: Dist) -> float:
    """Mean hard Dice per clip (all frames, image part only) over up to ``max_val_samples`` evenly spread clips."""
    n = len(dataset)
    count = min(n, config.data.max_val_samples)
    picks = np.unique(np.linspace(0, n - 1, count).round().astype(int))[d.rank :: d.world]
    was_training = model.training
    model.eval()
    total, seen = 0.0, 0
    batch_size = config.optim.batch_size
    for start in range(0, len(picks), batch_size):
        items = [dataset[int(i)] for i in picks[start : start + batch_size]]
        batch = _to(torch.utils.data.default_collate(items), d.device)
        with _autocast(config, d.device):
            out = model(batch)
        for b in range(out["logits"].shape[0]):
            h, w = (int(v) for v in batch["valid"][b])
            total += float(dice_score(out["logits"][b, :, :h, :w].float(), batch["masks"][b, :, :h, :w]))
            seen += 1
    model.train(was_training)
    return mean_over_ranks(d, total, seen)


def train(
    config: FinetuneConfig,
    *,
    resume: bool = False,
    device: str | None = None,
    stop_after: int | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_phase: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    """Fine-tune as ``config`` says; returns the run folder.

    Args:
        resume: continue from the newest checkpoint of the run folder (a fresh start when there is none).
        device: overrides ``config.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        stop_after: stop after this optimizer step as if interrupted (no final checkpoint or export): for
            time-boxed jobs that ``--resume`` later, and for tests of resuming.
        on_step: called on rank 0 with each log record: a step's (``step``, ``loss``, ...) and a validation's
            (``step``, ``val_dice``, ``val_mode``).
        on_phase: called on rank 0 with ``("start", {"step", "total_steps"})`` once the run folder is ready
            (``step`` > 0 when resumed) and ``("validation", {"step"})`` as each validation begins: for
            progress displays.

    Raises:
        InputError: a refused start (nothing is created); KeyboardInterrupt: Ctrl-C or SIGTERM, after the
            run was marked ``interrupted`` (resumable from its newest checkpoint).
    """
    from volsam.finetune.export import export_model

    d = setup_distributed(config, device)
    run_dir = config.run_dir
    # -- every check of the start, before anything is written ----------------------------------------------
    refuse_existing_run(run_dir, resume)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)

    dataset = open_training_dataset(config.data)
    cases = select_cases(dataset, config.data)
    split, new_split = fixed_split(config, run_dir, [c.case_id for c in cases])
    model = build_model(config).to(d.device)  # refuses unknown model.freeze entries
    by_id = {c.case_id: c for c in cases}
    train_set = ClipDataset([by_id[i] for i in split.train], config.data, model.size, model.resize, config.seed,
                            train=True, prompt_kinds=model.prompt_kinds)  # fmt: skip
    val_set, volumes = None, None
    if split.val and config.validation.mode == "volumes":
        volumes = VolumeValidator([by_id[i] for i in split.val], config)
    elif split.val:
        val_set = ClipDataset([by_id[i] for i in split.val], config.data, model.size, model.resize, config.seed,
                              train=False, prompt_kinds=model.prompt_kinds)  # fmt: skip
    o = config.optim
    per_step = d.world * o.batch_size * o.grad_accum
    steps_per_epoch = len(train_set) // per_step
    if steps_per_epoch == 0:
        raise InputError(
            f"{len(train_set)} training clips make no full step of {per_step} samples "
            f"({d.world} processes x batch_size {o.batch_size} x grad_accum {o.grad_accum})"
        )
    _autocast(config, d.device)  # refuses bf16 off CUDA
    sc = config.schedule
    total = sc.max_steps or sc.epochs * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)
    optimizer = build_optimizer(model, config)  # refuses a model with nothing left to train
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, sc.warmup_steps, sc.kind, sc.min_lr_ratio)
    )
    # -- the run folder -----------------------------------------------------------------------------------
    open_run_dir(config, d, resume, split, new_split)
    jlog = JsonLog(run_dir, d.main, config.log.tensorboard)
    state = State()

    def mark(status: str, **facts: Any) -> None:
        if d.main:
            write_status(run_dir, status, step=state.step, total_steps=total,
                         checkpoint=newest_checkpoint(run_dir), **facts)  # fmt: skip

    try:
        found = checkpoints_of(run_dir) if resume else []
        if found:
            state = load_checkpoint(found[-1][1], model, optimizer, scheduler, d)
        elif resume:
            log.info("no checkpoint in %s: starting from step 0", run_dir)
        mark("running")
        stopped = _run(config, d, run_dir, model, optimizer, scheduler, state, total, epochs,
                       train_set, val_set, volumes, split, jlog, stop_after, on_step, on_phase, mark)  # fmt: skip
        if stopped:
            jlog.write({"event": "stopped", "step": state.step, "checkpoint": newest_checkpoint(run_dir)})
            mark("stopped", note=f"stopped after step {state.step} (--stop-after): --resume continues")
        else:
            if d.main:
                export_model(model, config, run_dir / "last", {"dataset": config.data.dataset,
                             "split": split.to_json(), "total_steps": total, "step": state.step,
                             "val_dice": state.best_dice if state.best_dice >= 0 else None})  # fmt: skip
            barrier(d)
            mark("done", best_val_dice=state.best_dice if state.best_dice >= 0 else None)
    except KeyboardInterrupt:
        _left_early(jlog, mark, run_dir, state, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
        raise
    except Exception as exc:
        _left_early(jlog, mark, run_dir, state, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        jlog.close()
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
    return run_dir


def _left_early(jlog: JsonLog, mark: Callable[..., None], run_dir: Path, state: State, status: str, why: str) -> None:
    """Record in the run folder that the run ended early (best effort: a second Ctrl-C or a full disk here
    must not hide the first error) and where ``--resume`` continues from."""
    checkpoint = newest_checkpoint(run_dir)
    where = f"checkpoints/step-{checkpoint}.pt" if checkpoint is not None else "step 0 (no checkpoint yet)"
    note = f"{why} at step {state.step}: --resume continues from {where}"
    try:
        jlog.write({"event": status, "step": state.step, "checkpoint": checkpoint, "note": note})
        mark(status, note=note)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- best effort, see above
        log.debug("could not mark %s as %s: %s", run_dir, status, exc)
    log.info("%s", note)


def _run(
    config: FinetuneConfig,
    d: Dist,
    run_dir: Path,
    model: TrainModel,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: State,
    total: int,
    epochs: int,
    train_set: ClipDataset,
    val_set: ClipDataset | None,
    volumes: VolumeValidator | None,
    split: Split,
    jlog: JsonLog,
    stop_after: int | None,
    on_step: Callable[[dict[str, Any]], None] | None,
    on_phase: Callable[[str, dict[str, Any]], None] | None,
    mark: Callable[..., None],
) -> bool:
    """The training loop from ``state`` to ``total`` steps (validations, checkpoints, ``best/``); True when
    ``stop_after`` ended it early."""
    from volsam.finetune.export import export_model

    o = config.optim
    per_step = d.world * o.batch_size * o.grad_accum
    net: torch.nn.Module = model
    if d.world > 1:
        ids = [d.device.index] if d.device.type == "cuda" else None
        # buffers are constants here (BatchNorm statistics stay frozen): no broadcast at every forward
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=True, broadcast_buffers=False
        )
    if d.main:
        log.info(
            "%s: %d training clips (%d cases), %d validation %s (%d cases); %d steps of %d samples, %d epochs",
            config.recipe, len(train_set), len(split.train), len(volumes or val_set or ()),
            "objects in 3D" if volumes is not None else "clips", len(split.val), total, per_step, epochs,
        )  # fmt: skip
        if on_phase is not None:
            on_phase("start", {"step": state.step, "total_steps": total})
    model_card = {"dataset": config.data.dataset, "split": split.to_json(), "total_steps": total}

    def run_validation() -> None:
        if (val_set is None and volumes is None) or state.last_val_step == state.step:
            return
        if on_phase is not None and d.main:
            on_phase("validation", {"step": state.step})
        # not through DDP: ranks may run different numbers of batches
        dice = volumes.dice(model, d) if volumes is not None else validate(model, val_set, config, d)
        state.last_val_step = state.step
        record = {"step": state.step, "epoch": state.epoch, "val_dice": dice, "val_mode": config.validation.mode}
        jlog.write(record)
        if on_step is not None and d.main:
            on_step(record)
        if d.main:
            log.info(
                "epoch %d step %d: validation Dice %.4f (%s)", state.epoch, state.step, dice, config.validation.mode
            )
        if dice > state.best_dice:
            state.best_dice = dice
            if d.main:
                export_model(model, config, run_dir / "best", {**model_card, "step": state.step, "val_dice": dice})
        barrier(d)

    def checkpoint() -> None:
        save_checkpoint(run_dir, model, optimizer, scheduler, state, config, d)
        mark("running")

    if config.log.validate_at_start and state.step == 0:
        run_validation()
    stopped = False
    while state.epoch < epochs and state.step < total:
        batches = epoch_batches(len(train_set), d, o.batch_size, o.grad_accum, config.seed, state.epoch)
        remaining = batches[state.micro :]
        loader = make_loader(train_set, remaining, config.data.num_workers, pin=d.device.type == "cuda")
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        for n, batch in enumerate(loader, start=1):
            last_micro = n % o.grad_accum == 0
            batch = _to(batch, d.device)
            sync = nullcontext() if (last_micro or d.world == 1) else net.no_sync()  # type: ignore[operator]
            with sync:
                with _autocast(config, d.device):
                    out = net(batch)
                parts = _losses(config, out, batch)
                (parts.total / o.grad_accum).backward()
            sums["loss"] = sums.get("loss", 0.0) + float(parts.total.detach()) / o.grad_accum
            for k, v in parts.parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / o.grad_accum
            state.micro += 1
            if not last_micro:
                continue
            grad_norm = 0.0
            if o.clip_grad > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad))
            lrs = {f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            elapsed = time.perf_counter() - t0
            means = all_mean(d, sums)
            record = {"step": state.step, "epoch": state.epoch, **means, "grad_norm": grad_norm, **lrs,
                      "samples_per_s": per_step / max(elapsed, 1e-9)}  # fmt: skip
            if d.device.type == "cuda":
                record["max_memory_gb"] = torch.cuda.max_memory_allocated(d.device) / 1e9
            if state.step % config.log.every_steps == 0 or state.step == total:
                jlog.write(record)
                if d.main:
                    log.info("step %d/%d loss %.4f %s", state.step, total, means["loss"],
                             " ".join(f"{k} {v:.3g}" for k, v in record.items() if k.startswith("lr_")))  # fmt: skip
            if on_step is not None and d.main:
                on_step(record)
            sums = {}
            every = config.validation.every_steps
            if every and state.step % every == 0 and state.step < total:
                run_validation()  # before the checkpoint, which records that this step was validated
            t0 = time.perf_counter()
            if state.step % config.checkpoint.every_steps == 0:
                checkpoint()
            if stop_after is not None and state.step >= stop_after:
                stopped = True
                break
            if state.step >= total:
                break
        if stopped:
            break
        if state.micro >= len(batches):  # the epoch is complete
            run_validation()
            state.epoch += 1
            state.micro = 0
        elif state.step >= total:
            break
    if not stopped:
        run_validation()  # a run cut short inside an epoch is validated at its end too
        if state.saved != state.step:
            checkpoint()
    return stopped


def run_finetune(
    config: str | Path,
    *,
    resume: bool = False,
    output: str | Path | None = None,
    device: str | None = None,
    max_steps: int | None = None,
    stop_after: int | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_phase: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    """``volsam finetune``: load ``config`` (a YAML file or a shipped recipe name), apply the command-line
    overrides (``output`` = the run folder itself, ``max_steps``), and :func:`train`. Returns the run folder."""
    from volsam.finetune.config import load_config

    cfg = load_config(config)
    if output is not None:
        out = Path(output).expanduser()
        cfg = cfg.replace(output=str(out.parent), name=out.name)
    if max_steps is not None:
        if max_steps < 1:
            raise InputError(f"--max-steps {max_steps}: must be >= 1")
        import dataclasses

        cfg = cfg.replace(schedule=dataclasses.replace(cfg.schedule, max_steps=max_steps))
    if stop_after is not None and stop_after < 1:
        raise InputError(f"--stop-after {stop_after}: must be >= 1")
    return train(cfg, resume=resume, device=device, stop_after=stop_after, on_step=on_step, on_phase=on_phase)
