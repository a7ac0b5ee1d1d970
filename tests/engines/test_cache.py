"""The embedding cache: frames are encoded once, least recently used ones leave first, the budget holds."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import EngineError
from volsam.engines.cache import CachedEngine


def _frames(n: int, side: int = 32) -> np.ndarray:
    return np.stack([np.full((side, side), 10 * t, np.uint8) for t in range(n)])


def test_frames_are_encoded_once_and_looked_up_by_their_pixels():
    toy = ToyEngine()
    cached = CachedEngine(toy)
    frames = _frames(3)
    first = cached.encode(frames)
    again = cached.encode(frames[[2, 0]].copy())  # other arrays, same pixels
    assert sum(toy.encoded) == 3 and cached.frames_encoded == 3 and cached.hits == 2
    assert again[0] is first[2] and again[1] is first[0]
    assert cached.encode(frames[:1, :16, :16])[0] is not first[0]  # another shape is another frame


def test_the_least_recently_used_embeddings_leave_when_the_budget_is_full():
    toy = ToyEngine()
    one_frame_mb = 32 * 32 / 2**20  # the toy keeps the uint8 frame itself
    cached = CachedEngine(toy, budget_mb=2.5 * one_frame_mb)
    f = _frames(3)
    cached.encode(f[:2])
    cached.encode(f[:1])  # frame 0 is now the most recent
    cached.encode(f[2:3])  # frame 1 leaves
    assert f[0] in cached and f[2] in cached and f[1] not in cached
    assert cached.size_mb <= 2.5 * one_frame_mb
    with pytest.raises(EngineError, match="budget"):
        CachedEngine(toy, budget_mb=0)


def test_box_batches_reach_the_wrapped_engine_in_one_call():
    """A session's walk hands a frame's box proposals over in one call; the cache must pass that call on
    (LiteMedSAM answers it with one decoder forward) rather than fall back to the box-by-box default."""

    class Counting(ToyEngine):
        def __init__(self):
            super().__init__()
            self.batches: list[int] = []

        def predict_boxes(self, embedding, boxes):
            self.batches.append(len(boxes))
            return super().predict_boxes(embedding, boxes)

    toy = Counting()
    cached = CachedEngine(toy)
    frame = np.zeros((1, 32, 32), np.uint8)
    frame[0, 8:20, 8:20] = 200
    (emb,) = cached.encode(frame)
    boxes = [(6.0, 6.0, 21.0, 21.0), (8.0, 8.0, 12.0, 12.0), (0.0, 0.0, 31.0, 31.0)]
    preds = cached.predict_boxes(emb, boxes)
    assert toy.batches == [3]
    for box, pred in zip(boxes, preds, strict=True):
        assert np.array_equal(pred.mask, toy.predict(emb, box=box).mask)
