"""Exported models load in the real engines and segment; model cards; the Meta-format .pt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.finetune.helpers import small_config, tiny_sam2_dir
from volsam.bench.datasets import open_dataset
from volsam.cli.main import run as cli
from volsam.finetune.trainer import train


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def _case(name: str):
    case = next(c for c in open_dataset("builtin:lesions-crop").cases if c.case_id == name).load()
    return case.image, case.truth(case.targets[0])


def test_medsam_lite_export_loads_in_the_engine_and_segments(tmp_path):
    """Real LiteMedSAM weights (image encoder frozen), 1 step; the exported folder is a --model for the engine."""
    from volsam.engines.medsam_lite.engine import MedSAMLiteEngine
    from volsam.preprocess import fit_normalizer

    config = small_config(
        tmp_path,
        "medsam-lite",
        data={"clip_stride": 12, "max_val_samples": 1, "augment": {"enabled": False}},
        model={"source": None, "image_size": None},
        optim={"lr": 1.0e-5},
        schedule={"max_steps": 1},
    )
    run = train(config)
    card = (run / "best" / "README.md").read_text()
    assert "medsam-lite" in card and "validation Dice" in card and "Apache-2.0" in card
    facts = json.loads((run / "best" / "training.json").read_text())
    assert 0.0 <= facts["val_dice"] <= 1.0 and facts["files"] == ["lite_medsam.pth"]
    assert facts["split"]["val"] == ["small-00"]

    image, truth = _case("small-00")  # the validation case
    k = int(np.argmax(truth.sum(axis=(1, 2))))
    rows, cols = np.nonzero(truth[k])
    frame = fit_normalizer(image, "MR").apply(image.array[k])
    engine = MedSAMLiteEngine(model=run / "best")  # the folder, as `volsam segment --model DIR` passes it
    box = (cols.min(), rows.min(), cols.max(), rows.max())
    mask = engine.predict(engine.encode(frame)[0], box=box).mask
    assert _dice(mask, truth[k]) > 0.7


def test_sam2_export_segments_through_the_cli(tmp_path):
    """A fine-tuned (tiny, random-init) SAM 2 folder works as `volsam segment --engine sam2 --model DIR`."""
    import SimpleITK as sitk

    from volsam.io import write_volume

    model_dir = tiny_sam2_dir(tmp_path / "start")
    config = small_config(tmp_path, "seed-2024", model={"source": str(model_dir), "freeze": [], "image_size": None},
                          schedule={"max_steps": 2})  # fmt: skip
    run = train(config)
    assert (run / "last" / "config.json").is_file() and "Apache-2.0" in (run / "last" / "README.md").read_text()
    image, truth = _case("small-00")
    path = write_volume(image, tmp_path / "image.nii.gz")
    k = int(np.argmax(truth.sum(axis=(1, 2))))
    rows, cols = np.nonzero(truth[k])
    out = tmp_path / "seg.nii.gz"
    box = f"{cols.min()},{rows.min()},{cols.max()},{rows.max()}"
    args = ["segment", str(path), "--engine", "sam2", "--model", str(run / "last"), "--device", "cpu",
            "--box", box, "--slice", str(k), "-o", str(out)]  # fmt: skip
    assert cli(args) == 0
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert seg.shape == truth.shape  # a random model: the shape and the run are what is checked, not Dice


def test_meta_pt_export_round_trips(tmp_path):
    """export.meta_pt: a SAM 2.1-tiny layout (random init, 64 px) also exported as Meta's .pt; reading it back
    through the Meta -> transformers conversion gives the exported weights."""
    from safetensors.torch import load_file

    from volsam.engines.sam2.convert import load_meta_checkpoint

    config = small_config(
        tmp_path,
        "seed-2024",
        model={"source": "random", "variant": "sam2.1-hiera-tiny", "image_size": 64, "freeze": []},
        optim={"batch_size": 1},
        schedule={"max_steps": 1},
        export={"meta_pt": True},
        data={"val_fraction": 0.0, "clip_stride": 10},
    )
    run = train(config)
    assert not (run / "best").exists()  # no validation cases: no best model
    net, variant = load_meta_checkpoint(run / "last" / "model.pt")
    assert variant.size.name == "tiny" and variant.version == "2.1"
    exported = load_file(run / "last" / "model.safetensors")
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in exported.items())


def test_training_a_frozen_model_is_refused(tmp_path):
    from volsam.core.errors import InputError

    config = small_config(tmp_path, model={"freeze": ["image_encoder", "prompt_encoder", "mask_decoder"]})
    with pytest.raises(InputError, match="nothing to train"):
        train(config)
