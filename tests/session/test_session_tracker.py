"""Session corrections with the SAM 2 engine (random-init weights at 256 px: no SAM 2 weights exist offline;
the bookkeeping, not the masks, is under test): a correction resumes tracking from its slice, keeps every
prompted slice as a conditioning frame, and leaves slices beyond the neighbouring prompted slices alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from volsam.core import Volume
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.engine import Sam2Engine
from volsam.engines.sam2.variants import SIZES, Variant
from volsam.session import Session


class Spy(Sam2Engine):
    """The real engine, recording each ``track`` call's prompted frames, limit and start."""

    def __init__(self, net):
        super().__init__(net=net, device="cpu")
        self.calls: list[dict] = []

    def track(self, frames, prompts, **kw):
        self.calls.append({"prompted": sorted(prompts), "limit": kw.get("limit"), "start": kw.get("start")})
        yield from super().track(frames, prompts, **kw)


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    net = build_model(Variant(SIZES["tiny"], "2.1", 256))
    with torch.no_grad():
        net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0  # "present" everywhere: every slice is tracked
    return Spy(net)


def _volume() -> Volume:
    k, j, i = np.mgrid[:10, :40, :40]
    disc = (j - 20) ** 2 + (i - 18 - k // 2) ** 2 <= 64
    rng = np.random.default_rng(0)
    return Volume((np.where(disc, 180.0, 60.0) + rng.normal(0, 5, disc.shape)).astype(np.float32))


def test_a_correction_resumes_from_its_slice_between_the_prompted_slices(engine):
    session = Session(_volume(), engine=engine, modality="MR", absent_patience=None)
    obj = session.add_object()
    session.add_box(obj, 3, (8, 10, 30, 30))
    assert engine.calls[-1] == {"prompted": [3], "limit": None, "start": None}  # a first prompt tracks everything
    assert np.moveaxis(session.mask(obj), 0, 0).any(axis=(1, 2)).all()

    session.add_box(obj, 8, (10, 10, 34, 30))
    assert [c["limit"] for c in engine.calls[-2:]] == [(8, 9), (4, 8)]
    assert {c["start"] for c in engine.calls[-2:]} == {8}
    before = session.mask(obj).copy()

    change = session.add_point(obj, (20, 20, 5), positive=False)
    forward, backward = engine.calls[-2:]
    assert forward["prompted"] == backward["prompted"] == [3, 5, 8]  # every prompted slice conditions the memory
    assert (forward["limit"], backward["limit"], forward["start"]) == ((5, 7), (4, 5), 5)
    after = session.mask(obj)
    assert np.array_equal(after[:4], before[:4]) and np.array_equal(after[8:], before[8:])
    if change.frames is not None:
        assert 4 <= change.frames[0] and change.frames[1] <= 7
    assert change.first_frame_seconds is not None

    session.undo()
    assert np.array_equal(session.mask(obj), before)


def test_prompts_on_several_slices_at_once_retrack_everything(engine):
    session = Session(_volume(), engine=engine, modality="MR")
    obj = session.add_object()
    session.add_box(obj, 3, (8, 10, 30, 30))
    session.add_point(obj, (20, 20, 5), run=False)
    session.add_point(obj, (22, 20, 7), run=False)
    session.run()
    assert engine.calls[-1]["start"] is None and engine.calls[-1]["prompted"] == [3, 5, 7]
