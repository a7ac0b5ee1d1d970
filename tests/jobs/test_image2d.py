"""2D images through the one prompt path: a colour picture reaches the engines as RGB frames (grey images as
grey), Session works on a one-slice image, the file job segments several objects and a CVPR .npz's boxes;
random-initialised SAM and MedSAM engines take a 2D colour image (plumbing, not accuracy)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import volsam
from tests.engines.sam.frames import disc_frame
from tests.engines.sam.meta_reference import meta_sam
from tests.support.toy_engine import ToyEngine
from volsam.core import Box2D, Point, Volume
from volsam.core.errors import PromptError
from volsam.engines.sam.convert import from_meta_state
from volsam.engines.sam.engine import MedSAMEngine, SamEngine
from volsam.io import read_image
from volsam.jobs.volume import segment_file

H, W = 40, 48


class RecordingToy(ToyEngine):
    """The toy engine (bright pixels in the box, on the frame's luma) keeping every frame it was given."""

    def __init__(self):
        super().__init__()
        self.frames: list[np.ndarray] = []

    def encode(self, frames):
        self.frames.extend(np.asarray(f).copy() for f in frames)
        return super().encode(frames)


def _photo() -> np.ndarray:
    """An orange disc (centre row 19, column 22, 149 pixels) and a 6 x 7 orange square (rows 32..37,
    columns 38..44) on a blue-green background, RGB uint8; luma 190 on the objects, 72 around them."""
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 19) ** 2 + (xx - 22) ** 2 <= 49
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (20, 90, 120)
    rgb[disc] = (250, 180, 90)
    rgb[32:38, 38:45] = (250, 180, 90)
    return rgb


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(path)
    return path


def test_colour_image_reaches_the_engine_as_rgb(photo):
    image = read_image(photo)
    engine = RecordingToy()
    seg = volsam.segment(image, Box2D(10, 8, 34, 30, slice=0), engine=engine)
    assert all(f.shape == (H, W, 3) for f in engine.frames) and engine.frames
    assert np.array_equal(engine.frames[0], _photo())  # display values, not normalised
    assert seg.same_grid(image) and seg.array[0].sum() == 149  # the disc: 149 pixels


def test_grey_image_reaches_the_engine_as_grey(tmp_path):
    Image.fromarray(_photo()[..., 0]).save(tmp_path / "grey.png")
    engine = RecordingToy()
    volsam.segment(read_image(tmp_path / "grey.png"), Box2D(10, 8, 34, 30, slice=0), engine=engine)
    assert engine.frames[0].shape == (H, W) and np.array_equal(engine.frames[0], _photo()[..., 0])


def test_session_on_a_2d_colour_image(photo):
    image = read_image(photo)
    engine = RecordingToy()
    session = volsam.Session(image, engine=engine)
    first = session.add_object()
    session.add_box(first, 0, (10, 8, 34, 30))
    assert session.mask(first)[0].sum() == 149
    second = session.add_object()
    session.add_box(second, 0, (36, 30, 46, 39))
    session.add_point(first, (22, 19, 0), positive=False)  # a correction on the only slice
    session.undo()
    labels = session.labelmap()
    assert labels.same_grid(image) and labels.colour is None
    assert int((labels.array == first).sum()) == 149 and int((labels.array == second).sum()) == 42
    assert all(f.ndim == 3 for f in engine.frames)


def test_file_job_several_boxes_and_npz_boxes(tmp_path, photo):
    out = tmp_path / "mask.png"
    objects = [[Box2D(10, 8, 34, 30, slice=0)], [Box2D(36, 30, 46, 39, slice=0)]]
    job = segment_file(photo, [], out, engine=RecordingToy(), objects=objects)
    assert job.objects == [(1, 149), (2, 42)]
    mask = np.asarray(Image.open(out))
    assert mask.shape == (H, W) and int((mask == 1).sum()) == 149
    npz = tmp_path / "2DBox_Dermoscopy_0001.npz"
    np.savez(npz, imgs=_photo(), boxes=np.array([[36, 30, 46, 39], [10, 8, 34, 30]]))
    segment_file(npz, [], tmp_path / "out.npz", engine=RecordingToy())
    with np.load(tmp_path / "out.npz") as data:
        segs = data["segs"]
    assert segs.shape == (H, W) and int((segs == 1).sum()) == 42 and int((segs == 2).sum()) == 149
    np.savez(tmp_path / "no_boxes.npz", imgs=_photo())
    with pytest.raises(PromptError, match="no 'boxes'"):
        segment_file(tmp_path / "no_boxes.npz", [], tmp_path / "x.npz", engine=RecordingToy())


def test_planar_prompts_are_refused_on_a_volume(tmp_path):
    volsam.write_volume(Volume(np.zeros((3, 8, 9), np.int16)), tmp_path / "v.nii.gz")
    with pytest.raises(PromptError, match="3 slices: a box or point without a slice applies to 2D images"):
        segment_file(tmp_path / "v.nii.gz", [Point(1, 1, 0)], tmp_path / "o.nii.gz", engine=ToyEngine(), planar=True)
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("cls", [SamEngine, MedSAMEngine], ids=["sam", "medsam"])
def test_random_sam_engines_on_a_2d_colour_image(cls):
    net = from_meta_state(meta_sam(seed=11).state_dict())[0]
    grey = disc_frame(H, W, seed=0, centre=(19, 22)).astype(np.uint8)
    rgb = np.stack([grey, grey // 2, 255 - grey], axis=-1)
    image = Volume(volsam.core.volume.luma(rgb)[None], colour=rgb[None])
    engine = cls(net=net)
    seen = []
    encode = engine.encode
    engine.encode = lambda frames: seen.append(np.asarray(frames).shape) or encode(frames)  # type: ignore[method-assign]
    seg = volsam.segment(image, Box2D(10, 8, 34, 30, slice=0), engine=engine, label=2)
    assert seen and all(s[1:] == (H, W, 3) for s in seen)
    assert seg.same_grid(image) and set(np.unique(seg.array)) <= {0, 2}


def test_a_png_mask_prompts_a_2d_dicom(tmp_path):
    from pydicom.data import get_testdata_file

    from volsam.jobs.volume import load_mask_prompt

    image = read_image(get_testdata_file("CT_small.dcm"))  # 0.66 mm pixels; a PNG has no spacing
    mask = np.zeros((128, 128), np.uint8)
    mask[40:60, 50:70] = 1
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert load_mask_prompt(tmp_path / "m.png", image).binary().sum() == 400
    Image.fromarray(mask[:100]).save(tmp_path / "small.png")
    with pytest.raises(volsam.InputError, match="not on the image grid"):
        load_mask_prompt(tmp_path / "small.png", image)
