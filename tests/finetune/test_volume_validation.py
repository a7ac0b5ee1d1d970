"""Validation in 3D: the model being trained segments the held-out objects as `volsam segment` would."""

from __future__ import annotations

import json

import pytest

from tests.finetune.helpers import small_config
from volsam.bench.datasets import open_dataset
from volsam.bench.protocols import run_protocol, session_factory
from volsam.core.errors import InputError
from volsam.finetune.runlog import read_log
from volsam.finetune.trainer import train


@pytest.mark.slow
def test_3d_validation_of_the_start_equals_the_benchmark(tmp_path):
    """Real LiteMedSAM weights: the step-0 validation score is the box-middle benchmark Dice of the stock
    model on the held-out case, and best/ says how it was chosen."""
    from volsam.engines.medsam_lite.engine import MedSAMLiteEngine

    config = small_config(
        tmp_path,
        "medsam-lite",
        # flat-00 held out (the split of these three): 12 slices, its box-middle walk about 2/3 of small-00's
        data={"cases": ["bright-00", "dark-00", "flat-00"], "clip_stride": 12, "augment": {"enabled": False}},
        model={"source": None, "image_size": None},
        optim={"lr": 1.0e-5},
        schedule={"max_steps": 1},
        validation={"mode": "volumes"},
        log={"validate_at_start": True},
    )
    run = train(config)
    records = [r for r in read_log(run) if "val_dice" in r]
    assert [r["step"] for r in records] == [0, 1]
    assert all(r["val_mode"] == "volumes" for r in records)

    held_out = json.loads((run / "split.json").read_text())["val"]
    assert held_out == ["flat-00"]
    case = next(c for c in open_dataset("builtin:lesions-crop").cases if c.case_id == held_out[0]).load()
    factory = session_factory(case.image, MedSAMLiteEngine(), case.modality)
    expected = run_protocol("box-middle", factory, case.truth(case.targets[0]), case.image.spacing)
    assert records[0]["val_dice"] == pytest.approx(expected.steps[-1].dice, abs=1e-9)
    assert 0.5 < records[0]["val_dice"] <= 1.0

    facts = json.loads((run / "best" / "training.json").read_text())
    assert facts["val_dice"] == max(r["val_dice"] for r in records)
    assert "3D" in (run / "best" / "README.md").read_text()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mode": "slices"}, "validation.mode"),
        ({"max_objects": 0}, "validation.max_objects"),
        ({"every_steps": 0}, "validation.every_steps"),
        ({"mode": "volumes"}, "model.image_size: 64 must be 256"),  # small_config's random LiteMedSAM is 64 px
    ],
)
def test_bad_validation_settings_are_refused(tmp_path, section, message):
    with pytest.raises(InputError, match=message):
        small_config(tmp_path, validation=section)


def test_3d_validation_runs_sam2_recipes_through_the_tracker(tmp_path):
    """seed-2024 on a tiny random SAM 2: the held-out object is tracked by a Sam2Engine on a copy of the
    weights (the score itself means nothing for random weights), and training goes on unaffected."""
    from tests.finetune.helpers import tiny_sam2_dir

    model_dir = tiny_sam2_dir(tmp_path / "model")
    config = small_config(
        tmp_path,
        "seed-2024",
        model={"source": str(model_dir), "freeze": [], "image_size": None},
        schedule={"max_steps": 3},
        validation={"mode": "volumes", "every_steps": 2},
    )
    run = train(config)
    records = [r for r in read_log(run) if "val_dice" in r]
    assert [r["step"] for r in records] == [2, 3] and records[0]["val_mode"] == "volumes"
    assert 0.0 <= records[0]["val_dice"] <= 1.0
    assert any("loss" in r for r in read_log(run))
