"""The SAM-family slice engines in volsam's pipeline: ``volsam.segment`` walks a small volume with them (as an
instance and by registry name with ``--model``), and a ``Session`` takes them (random-init models:
plumbing, not accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

import volsam
from tests.engines.sam.frames import disc_frame
from tests.engines.sam.meta_reference import meta_sam, save_meta
from volsam.core import Box2D, Volume
from volsam.engines import registry
from volsam.engines.sam.convert import from_meta_state
from volsam.engines.sam.engine import MedSAMEngine, SamEngine

SHAPE = (7, 40, 48)  # k, j, i
BOX = Box2D(10, 8, 34, 30, slice=3)  # (i0, j0, i1, j1) inclusive on slice k=3


@pytest.fixture(scope="module")
def volume() -> Volume:
    return Volume(np.stack([disc_frame(40, 48, seed=k, centre=(19, 22)) for k in range(SHAPE[0])]).astype(np.int16))


@pytest.fixture(scope="module")
def net():
    return from_meta_state(meta_sam(seed=11).state_dict())[0]


@pytest.mark.parametrize("cls", [SamEngine, MedSAMEngine], ids=["sam", "medsam"])
def test_segment_walks_the_volume(volume, net, cls):
    engine = cls(net=net)
    seg = volsam.segment(volume, BOX, engine=engine, modality="other", label=3)
    report = seg.meta["report"]
    assert seg.same_grid(volume) and seg.array.dtype == np.uint8
    assert set(np.unique(seg.array)) <= {0, 3}
    assert report.engine == engine.name and report.frames_segmented >= 1 and report.frames_encoded >= 1
    assert seg.array[3].any()  # the prompted slice has the object


def test_segment_by_registry_name_and_model_file(volume, tmp_path):
    registry.clear_cache()
    try:
        pth = save_meta(meta_sam(seed=12), tmp_path / "sam_random.pth")
        seg = volsam.segment(volume, BOX, engine="sam", model=str(pth), device="cpu", modality="other")
        assert seg.meta["report"].engine == "sam" and seg.same_grid(volume)
        assert isinstance(registry.get("sam", model=str(pth), device="cpu"), SamEngine)  # cached, same weights
    finally:
        registry.clear_cache()


def test_session_takes_the_engine(volume, net):
    session = volsam.Session(volume, engine=SamEngine(net=net), modality="other")
    obj = session.add_object()
    change = session.add_box(obj, 3, (10, 8, 34, 30))
    assert session.mask(obj)[3].any() and change is not None
    session.add_point(obj, (30, 20, 3), positive=False)  # a correction through the slice corrector
    session.undo()
    labels = session.labelmap()
    assert labels.same_grid(volume) and labels.array[3].any()
