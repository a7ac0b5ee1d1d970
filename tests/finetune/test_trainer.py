"""The training loop on the CPU: learning, DDP parity, exact resume, frozen parts, checkpoints and logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.finetune.helpers import small_config, tiny_sam2_dir
from volsam.core.errors import InputError
from volsam.finetune.checkpoint import checkpoints_of
from volsam.finetune.runlog import read_log, read_status
from volsam.finetune.trainer import train

ROOT = Path(__file__).resolve().parents[2]
# Two processes sum their gradients in another order than one process does (all-reduce of two halves);
# measured differences are ~1e-7 on these losses, 1e-4 leaves room for other BLAS builds.
DDP_TOLERANCE = 1e-4


def _losses(run: Path) -> dict[int, float]:
    """Loss per step (the last record of a step wins: a resumed run repeats the steps after its checkpoint)."""
    return {r["step"]: r["loss"] for r in read_log(run) if "loss" in r}


@pytest.fixture(scope="module")
def sam2_dir(tmp_path_factory):
    return tiny_sam2_dir(tmp_path_factory.mktemp("tiny-sam2") / "model")


def test_loss_decreases_over_a_few_dozen_steps(tmp_path, sam2_dir):
    """seed-2024 on a tiny random SAM 2 (image encoder + mask decoder trained), the same 4 clips every step."""
    config = small_config(
        tmp_path,
        "seed-2024",
        data={"clip_stride": 6, "augment": {"enabled": False}},
        model={"source": str(sam2_dir), "freeze": [], "image_size": None},
        optim={"batch_size": 4, "lr": 5.0e-4},
        schedule={"max_steps": 30, "warmup_steps": 2, "kind": "constant"},
        checkpoint={"every_steps": 100},
    )
    losses = list(_losses(train(config)).values())
    assert len(losses) == 30
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.75 * first, f"loss {first:.3f} -> {last:.3f}"


def test_two_process_torchrun_matches_one_process(tmp_path, sam2_dir):
    """Same global batch (2 x 1 sample vs 1 x 2 samples), same per-sample augmentation: same losses."""
    common = {
        "model": {"source": str(sam2_dir), "freeze": [], "image_size": None},
        "schedule": {"max_steps": 3, "warmup_steps": 1},
        "checkpoint": {"every_steps": 10},
    }
    single = small_config(tmp_path / "one", "seed-2024", optim={"batch_size": 2}, **common)
    one = _losses(train(single))
    double = small_config(tmp_path / "two", "seed-2024", optim={"batch_size": 1}, **common)
    config_file = tmp_path / "two.yaml"
    config_file.write_text(yaml.safe_dump(double.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "volsam", "finetune", str(config_file), "--device", "cpu"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    two = _losses(double.run_dir)
    assert sorted(two) == sorted(one) == [1, 2, 3]
    for step in one:
        assert abs(one[step] - two[step]) <= DDP_TOLERANCE * max(1.0, abs(one[step])), (step, one[step], two[step])
    assert (double.run_dir / "last" / "config.json").is_file()
    assert not (double.run_dir / "log.jsonl.rank1").exists()  # only rank 0 writes


def test_resume_after_interruption_continues_exactly(tmp_path, sam2_dir):
    """Clips through memory (medsam2-2025) with augmentation on: an interrupted and resumed run computes the
    same losses and ends with the same weights as an uninterrupted one."""
    kwargs = {
        "data": {"clip_length": 3, "clip_stride": 4},
        "model": {"source": str(sam2_dir), "freeze": [], "image_size": None},
        "optim": {"batch_size": 1},
        "schedule": {"max_steps": 6, "warmup_steps": 1},
        "checkpoint": {"every_steps": 3},
    }
    whole = train(small_config(tmp_path / "whole", "medsam2-2025", **kwargs))
    config = small_config(tmp_path / "cut", "medsam2-2025", **kwargs)
    cut = train(config, stop_after=4)  # step 4 is lost: the newest checkpoint is step 3
    assert [s for s, _ in checkpoints_of(cut)] == [3]
    assert not (cut / "last").exists()
    assert (read_status(cut)["state"], read_status(cut)["checkpoint"]) == ("stopped", 3)
    with pytest.raises(InputError, match="--resume"):
        train(config)
    train(config, resume=True)
    a, b = _losses(whole), _losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, 7))
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    wa = load_file(whole / "last" / "model.safetensors")
    wb = load_file(cut / "last" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_seed2024_keeps_the_prompt_encoder_and_memory_frozen(tmp_path, sam2_dir):
    config = small_config(
        tmp_path,
        "seed-2024",
        model={"source": str(sam2_dir), "freeze": [], "image_size": None},
        schedule={"max_steps": 2},
    )
    run = train(config)
    before, after = load_file(sam2_dir / "model.safetensors"), load_file(run / "last" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trained = ("vision_encoder.", "mask_decoder.")
    frozen = [k for k in before if not k.startswith(trained)]
    assert any(k.startswith("prompt_encoder.") for k in frozen) and any(k.startswith("memory_") for k in frozen)
    assert not changed.intersection(frozen), sorted(changed.intersection(frozen))[:3]
    assert any(k.startswith("vision_encoder.") for k in changed)
    assert any(k.startswith("mask_decoder.") for k in changed)


def test_run_folder_log_checkpoints_and_split(tmp_path):
    """medsam-lite (tiny random LiteMedSAM, frozen encoder): the run folder's files and their contents."""
    config = small_config(tmp_path, "medsam-lite", checkpoint={"every_steps": 2, "keep": 1},
                          log={"validate_at_start": True})  # fmt: skip
    run = train(config)
    assert sorted(p.name for p in run.iterdir()) == ["best", "checkpoints", "config.yaml", "last", "log.jsonl",
                                                     "split.json", "status.json"]  # fmt: skip
    status = read_status(run)
    assert (status["state"], status["step"], status["total_steps"], status["checkpoint"]) == ("done", 4, 4, 4)
    assert [s for s, _ in checkpoints_of(run)] == [4]  # keep: 1
    payload = torch.load(run / "checkpoints" / "step-4.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "step", "epoch", "micro"} <= payload.keys()
    records = read_log(run)
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all({"mask", "dice", "lr_other", "samples_per_s", "grad_norm"} <= r.keys() for r in steps)
    assert "lr_vision" not in steps[0]  # the image encoder is frozen: no vision group
    assert steps[0]["lr_other"] == pytest.approx(1e-3)  # warm-up of 1 step
    vals = [r["step"] for r in records if "val_dice" in r]
    assert vals[0] == 0 and vals[-1] == 4  # the starting model's baseline, then after training
    split = yaml.safe_load((run / "split.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["recipe"] == "medsam-lite"
    # the image encoder was frozen: its weights in the export are the random init's
    exported = torch.load(run / "last" / "lite_medsam.pth", weights_only=True)
    torch.manual_seed(config.seed)
    from volsam.finetune.models import litemedsam_net

    init = litemedsam_net(64).state_dict()
    enc = [k for k in init if k.startswith("image_encoder.")]
    assert all(torch.equal(init[k], exported[k]) for k in enc)
    assert not all(torch.equal(init[k], exported[k]) for k in init if k.startswith("mask_decoder."))
