"""``MedSAMLiteEngine.predict_boxes``: several boxes on one encoded frame in one decoder forward give what
``predict`` gives for each box alone (real weights, real MNI152 slices); the engine protocol's default loops."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import PromptError
from volsam.data.lesions import lesion_case
from volsam.engines.medsam_lite import engine as lite
from volsam.engines.medsam_lite.engine import MedSAMLiteEngine
from volsam.io.samples import mni152_path
from volsam.preprocess import fit_normalizer
from volsam.propagation.frames import expand_box

RATIOS = (0.0, 0.05, 0.1)  # the walk's default proposal ratios, on a 1 px margin


def proposals(box: tuple[int, int, int, int], frame_shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The walk's three proposals around ``box`` (the previous box grown by 1 px + ratio x its longer side)."""
    side = max(box[2] - box[0] + 1, box[3] - box[1] + 1)
    return [expand_box(box, 1.0 + r * side, frame_shape) for r in RATIOS]


@pytest.fixture(scope="module")
def engine() -> MedSAMLiteEngine:
    return MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch")


@pytest.fixture(scope="module")
def frames() -> dict[str, tuple[np.ndarray, list[tuple[float, float, float, float]]]]:
    """Real slices and boxes: the MNI152 T1's caudate (axial 95) and a lesion case's prompted slice."""
    t1 = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("t1"))))[95]
    t1 = np.clip(t1, 0, 255).astype(np.uint8)
    caudate = proposals((74, 95, 95, 144), t1.shape) + [(20.5, 30.0, 180.25, 200.0), (100, 100, 100, 100)]
    case = lesion_case("ring-00")
    k = case.middle_box.slice
    lesion = np.asarray(fit_normalizer(case.image, "MR").apply(case.image.array[k : k + 1]))[0]
    b = case.middle_box
    return {
        "caudate": (t1, caudate),
        "lesion": (lesion, proposals((b.u0, b.v0, b.u1, b.v1), lesion.shape)),
    }


@pytest.mark.parametrize("name", ["caudate", "lesion"])
def test_batched_boxes_give_the_masks_of_one_by_one(engine, frames, name):
    frame, boxes = frames[name]
    emb = engine.encode(frame)[0]
    alone = [engine.predict(emb, box=box) for box in boxes]
    together = engine.predict_boxes(emb, boxes)
    assert len(together) == len(boxes)
    for a, b in zip(alone, together, strict=True):
        assert b.mask.shape == frame.shape and b.mask.dtype == bool
        assert np.array_equal(a.mask, b.mask)
        assert b.score == pytest.approx(a.score, abs=1e-5)
        np.testing.assert_allclose(b.logits, a.logits, atol=1e-3, rtol=0)
    assert any(p.mask.any() for p in together)  # something was segmented: the comparison means something
    # different boxes gave different answers, so rows were not mixed up
    assert len({p.mask.tobytes() for p in together}) > 1


def test_more_boxes_than_one_forward_are_chunked(engine, frames, monkeypatch):
    frame, boxes = frames["caudate"]
    emb = engine.encode(frame)[0]
    whole = engine.predict_boxes(emb, boxes)
    monkeypatch.setattr(lite, "MAX_BOX_BATCH", 2)
    chunked = engine.predict_boxes(emb, boxes)
    assert [p.mask.tobytes() for p in chunked] == [p.mask.tobytes() for p in whole]


def test_every_box_is_checked_and_no_box_is_no_prediction(engine, frames):
    frame, boxes = frames["caudate"]
    emb = engine.encode(frame)[0]
    assert engine.predict_boxes(emb, []) == []
    with pytest.raises(PromptError, match="outside"):
        engine.predict_boxes(emb, [boxes[0], (500, 500, 600, 600)])
    with pytest.raises(PromptError, match="x0 <= x1"):
        engine.predict_boxes(emb, [(10, 10, 5, 20)])


def test_the_protocol_default_loops_over_predict():
    frame = np.zeros((20, 30), np.uint8)
    frame[5:15, 8:20] = 200
    toy = ToyEngine()
    emb = toy.encode(frame[None])[0]
    boxes = [(0, 0, 29, 19), (10, 6, 12, 9), (25, 0, 29, 3)]
    got = toy.predict_boxes(emb, boxes)
    want = [toy.predict(emb, box=box) for box in boxes]
    assert [g.mask.sum() for g in got] == [w.mask.sum() for w in want] == [120, 12, 0]
