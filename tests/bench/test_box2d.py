"""The ``box2d`` protocol on 2D images: one box per ground-truth object, scored in 2D (DSC, NSD with the
pixel spacing); 2D CVPR .npz files (modality from the name) and images/ + masks/ folders of pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.support.toy_engine import ToyEngine
from volsam.bench.datasets import open_dataset
from volsam.bench.protocols import run_protocol, session_factory
from volsam.core.errors import InputError
from volsam.metrics import dice, surface_dice


def _picture() -> tuple[np.ndarray, np.ndarray]:
    """RGB (30, 40, 3) with a bright 8 x 10 block and its label 1 five columns wider than the block."""
    rgb = np.full((30, 40, 3), (20, 60, 90), np.uint8)
    rgb[10:18, 12:22] = (240, 200, 120)
    gts = np.zeros((30, 40), np.uint8)
    gts[10:18, 12:27] = 1
    return rgb, gts


def test_box2d_on_a_cvpr_2d_file(tmp_path):
    rgb, gts = _picture()
    np.savez(tmp_path / "2DBox_Dermoscopy_0001.npz", imgs=rgb, gts=gts, boxes=np.array([[12, 10, 26, 17]]))
    dataset = open_dataset(tmp_path)
    (case,) = dataset.cases
    assert case.modality == "Dermoscopy"
    loaded = case.load()
    assert loaded.image.shape == (1, 30, 40) and loaded.image.colour is not None
    truth = loaded.truth(loaded.targets[0])
    factory = session_factory(loaded.image, ToyEngine(), case.modality)
    result = run_protocol("box2d", factory, truth, loaded.image.spacing)
    (step,) = result.steps
    pred = np.zeros((30, 40), bool)
    pred[10:18, 12:22] = True  # the toy engine keeps the bright block inside the box
    assert step.dice == pytest.approx(dice(pred, gts > 0))
    nsd_2d = surface_dice(pred, gts > 0, (1.0, 1.0), 2.0)
    assert step.nsd == pytest.approx(nsd_2d) and step.dice < 1.0 and nsd_2d < 1.0
    one_slice_3d = surface_dice(pred[None], gts[None] > 0, (1.0, 1.0, 1.0), 2.0)
    assert one_slice_3d != pytest.approx(nsd_2d)  # scored as an image, not as a one-slice volume


def test_box2d_on_image_and_mask_folders(tmp_path):
    rgb, gts = _picture()
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(rgb).save(tmp_path / "images" / "a.png")
    Image.fromarray(gts * 2).save(tmp_path / "masks" / "a.png")
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "pairs" and [c.case_id for c in dataset.cases] == ["a"]
    loaded = dataset.cases[0].load()
    assert [t.values for t in loaded.targets] == [(2,)]
    factory = session_factory(loaded.image, ToyEngine(), "auto")
    result = run_protocol("box2d", factory, loaded.truth(loaded.targets[0]), loaded.image.spacing)
    assert 0.7 < result.steps[0].dice < 0.9  # the block (80 px) inside its 120-px label


def test_box2d_refuses_a_volume():
    with pytest.raises(InputError, match="box2d is for 2D images; this one has 3 slices"):
        run_protocol("box2d", lambda: None, np.ones((3, 4, 4), bool), (1.0, 1.0, 1.0))


def test_builtin_2d_set():
    dataset = open_dataset("builtin:lesions-2d")
    assert len(dataset.cases) == 40 and dataset.cases[0].case_id.endswith("-grey")
    grey, colour = dataset.cases[0].load(), dataset.cases[1].load()
    assert grey.image.is_2d and grey.image.colour is None and colour.image.colour is not None
    assert np.array_equal(grey.label.array, colour.label.array) and grey.label.array.any()
    assert np.array_equal(colour.image.colour[0, ..., 0], grey.image.array[0])  # red = the grey slice


def _two_lesions() -> tuple[np.ndarray, np.ndarray]:
    """Grey (30, 40): two bright 6 x 6 lesions under label 1, and a bright distractor (not labelled) between
    them, inside the box of the whole label but outside each lesion's own box."""
    grey = np.full((30, 40), 30, np.uint8)
    grey[4:10, 4:10] = 220
    grey[20:26, 30:36] = 220
    grey[13:17, 18:22] = 220  # the distractor
    gts = np.zeros((30, 40), np.uint8)
    gts[4:10, 4:10] = 1
    gts[20:26, 30:36] = 1
    return grey, gts


@pytest.mark.parametrize(
    ("objects", "prompt", "expected"), [("labels", "box", 72 / 80), ("components", "2 boxes", 1.0)]
)
def test_box2d_one_box_per_component(tmp_path, objects, prompt, expected):
    grey, gts = _two_lesions()
    np.savez(tmp_path / "2DBox_Fundus_0001.npz", imgs=np.stack([grey] * 3, axis=-1), gts=gts)
    loaded = open_dataset(tmp_path).cases[0].load()
    factory = session_factory(loaded.image, ToyEngine(), "Fundus")
    result = run_protocol("box2d", factory, loaded.truth(loaded.targets[0]), loaded.image.spacing, objects=objects)
    (step,) = result.steps
    assert step.prompt == prompt
    assert step.dice == pytest.approx(expected)  # one box takes the distractor too (72 true of 88 predicted)


def test_box2d_unknown_objects():
    with pytest.raises(InputError, match="unknown objects 'blobs'"):
        run_protocol("box2d", lambda: None, np.ones((1, 4, 4), bool), (1.0, 1.0, 1.0), objects="blobs")
