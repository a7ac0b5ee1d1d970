"""A deterministic stand-in slice engine for testing the propagation walk (not a model).

It "segments" the bright pixels (>= 128 after normalisation) inside the prompt box, or the bright connected
region under the positive points. Integration tests use the real LiteMedSAM weights; this double only lets
the walk's bookkeeping (directions, limits, seeds, stop rules, axes) be tested in milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from volsam.core.volume import luma
from volsam.engines.base import (
    Capabilities,
    SliceEmbedding,
    SliceEngine,
    SlicePrediction,
    TrackedFrame,
    TrackerEngine,
)


class ToyEngine(SliceEngine):
    name = "toy"
    capabilities = Capabilities(box=True, points=True, mask=False, memory=False, input_size=0, devices=("cpu",))

    def __init__(self, score: float = 0.9):
        self.score = score
        self.encoded: list[int] = []

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        """Grey frames as they are; RGB frames ``(n, H, W, 3)`` (a colour image) by their BT.601 luma."""
        self.encoded.append(len(frames))
        grey = [luma(f) if f.ndim == 3 else f for f in frames]
        return [SliceEmbedding(features=f.copy(), frame_shape=f.shape) for f in grey]

    def predict(self, embedding, box=None, points=None, point_labels=None, mask_logits=None) -> SlicePrediction:
        bright = embedding.features >= 128
        mask = np.zeros_like(bright)
        if box is not None:
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            mask[y0 : y1 + 1, x0 : x1 + 1] = bright[y0 : y1 + 1, x0 : x1 + 1]
        if points is not None:
            labels, _ = ndimage.label(bright)
            for (x, y), lab in zip(points, point_labels):
                region = labels == labels[int(y), int(x)] if labels[int(y), int(x)] else np.zeros_like(mask)
                mask = mask | region if lab == 1 else mask & ~region
        return SlicePrediction(mask=mask, score=self.score, logits=np.zeros((4, 4), np.float32))


class ToyTracker(TrackerEngine):
    """A stand-in tracker for the plumbing of :func:`volsam.segmentation.segment` (not a model): a prompted
    frame gives the bright pixels in its box (or its mask); each next frame keeps the bright pixels within
    2 px of the previous mask. Records the prompts and limits it was given."""

    name = "toy-tracker"
    capabilities = Capabilities(box=True, points=True, mask=True, memory=True, input_size=0, devices=("cpu",))

    def __init__(self):
        self.calls: list[dict] = []

    def track(self, frames, prompts, *, limit=None, absent_patience=3, start=None):
        self.calls.append({"prompts": prompts, "limit": limit, "absent_patience": absent_patience, "start": start})
        lo, hi = limit if limit is not None else (0, len(frames) - 1)
        first = min(prompts) if start is None else start  # the frame it tracks from
        ids = sorted({o for per in prompts.values() for o in per})

        def bright(s: int) -> np.ndarray:
            return frames.frames([s])[0] >= 128

        def prompted(s: int, obj: int, prev: np.ndarray) -> np.ndarray:
            p = prompts[s].get(obj)
            if p is None:
                return bright(s) & ndimage.binary_dilation(prev, iterations=2)
            mask = np.asarray(p.mask, bool).copy() if p.mask is not None else np.zeros(frames.frame_shape, bool)
            if p.box is not None:
                x0, y0, x1, y1 = (int(round(c)) for c in p.box)
                mask[y0 : y1 + 1, x0 : x1 + 1] = bright(s)[y0 : y1 + 1, x0 : x1 + 1]
            return mask

        empty = np.zeros(frames.frame_shape, bool)
        seed = np.stack([prompted(first, o, empty) for o in ids])
        yield TrackedFrame(first, seed, np.where(seed.any(axis=(1, 2)), 5.0, -5.0))
        for walk in (range(first + 1, hi + 1), range(first - 1, lo - 1, -1)):
            prev = seed
            for s in walk:
                if s in prompts:
                    masks = np.stack([prompted(s, o, prev[n]) for n, o in enumerate(ids)])
                else:
                    masks = np.stack([bright(s) & ndimage.binary_dilation(m, iterations=2) for m in prev])
                prev = masks
                yield TrackedFrame(s, masks, np.where(masks.any(axis=(1, 2)), 5.0, -5.0))
