"""The walk sends a frame's box proposals to the engine in one ``predict_boxes`` call, and with LiteMedSAM's
batched decoder the masks of a whole lesion case are those of box-by-box prediction (real weights)."""

from __future__ import annotations

import numpy as np

from tests.support.toy_engine import ToyEngine
from volsam.data.lesions import lesion_case
from volsam.engines.cache import CachedEngine
from volsam.engines.medsam_lite.engine import MedSAMLiteEngine
from volsam.propagation import FrameStack, PropagationSettings, mask_box, propagate
from volsam.segmentation import segment


class CallLog(ToyEngine):
    """The toy engine; records how many boxes each ``predict_boxes`` call carried and counts ``predict``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.single = 0

    def predict_boxes(self, embedding, boxes):
        self.batches.append(len(boxes))
        return super().predict_boxes(embedding, boxes)

    def predict(self, *args, **kwargs):
        self.single += 1
        return super().predict(*args, **kwargs)


def test_each_walked_frame_is_one_call_with_every_proposal():
    k, j, i = np.ogrid[:30, :40, :40]
    obj = ((k - 15) / 6) ** 2 + ((j - 20) / 9) ** 2 + ((i - 20) / 9) ** 2 <= 1
    stack = FrameStack(np.where(obj, 200, 50).astype(np.uint8), 0, lambda f: f)
    engine = CallLog()
    settings = PropagationSettings(motion=False)
    out = list(propagate(engine, stack, 15, box=mask_box(obj[15]), settings=settings))
    walked = len(out) - 1  # the prompted frame comes from predict_seed
    assert walked >= 10 and engine.batches == [len(settings.proposal_ratios)] * walked
    baseline = CallLog()
    list(propagate(baseline, stack, 15, box=mask_box(obj[15]), settings=PropagationSettings.baseline()))
    assert baseline.batches and set(baseline.batches) == {1}


class Switchable(CachedEngine):
    """LiteMedSAM with its embeddings kept (both runs encode each frame once between them), proposals either
    batched (the engine's ``predict_boxes``) or one ``predict`` per box."""

    batched = True

    def predict_boxes(self, embedding, boxes):
        if self.batched:
            return self.inner.predict_boxes(embedding, boxes)
        return [self.inner.predict(embedding, box=box) for box in boxes]


def test_a_lesion_case_is_segmented_the_same_with_batched_proposals():
    case = lesion_case("small-00", crop=True)
    engine = Switchable(MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch"))
    maps = {}
    for batched in (False, True):
        engine.batched = batched
        labels = segment(case.image, case.middle_box, engine=engine, settings=PropagationSettings(), modality="MR")
        maps[batched] = labels.array
    assert engine.hits > 0 and np.count_nonzero(maps[True].any(axis=(1, 2))) >= 3  # walked several slices
    assert np.array_equal(maps[True], maps[False])


def test_the_video_walk_follows_a_clip_the_same_with_batched_proposals():
    """``follow`` (the video walk: box proposals plus appearance boxes) sends a frame's proposals in one call;
    on a generated ultrasound-like clip with real weights its masks equal box-by-box prediction."""
    from volsam.data.clips import ClipSpec, make_clip
    from volsam.propagation.follow import follow

    clip = make_clip(ClipSpec(name="batched", frames=10, size=(64, 64), speed=3.0, seed=2))
    stack = FrameStack(clip.frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    engine = Switchable(MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch"))
    runs = {}
    for batched in (False, True):
        engine.batched = batched
        out = list(follow(engine, stack, 0, box=clip.box(0), settings=PropagationSettings.video()))
        runs[batched] = {r.index: r.mask for r in out}
    assert len(runs[True]) >= 8 and runs[True].keys() == runs[False].keys()
    assert all(np.array_equal(runs[True][t], runs[False][t]) for t in runs[True])
