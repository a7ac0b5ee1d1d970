"""No wasted encodes: a frame whose input did not change is encoded once per run, also when the walk runs
again in a wider window (counted with a toy engine that records every frame it encodes)."""

from __future__ import annotations

import hashlib

import numpy as np

from tests.support.toy_engine import ToyEngine
from volsam.core.prompts import Box2D
from volsam.core.volume import Volume
from volsam.engines.cache import CachedEngine
from volsam.propagation import PropagationSettings
from volsam.segmentation import segment
from volsam.session import Session


class CountingEngine(ToyEngine):
    """The toy engine; ``inputs`` lists a digest of every frame it was asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[str] = []
        self.shapes: list[tuple[int, int]] = []

    def encode(self, frames: np.ndarray) -> list:
        for f in frames:
            self.inputs.append(hashlib.blake2b(np.ascontiguousarray(f).tobytes() + repr(f.shape).encode()).hexdigest())
            self.shapes.append(f.shape)
        return super().encode(frames)


def _slab() -> tuple[Volume, Box2D]:
    """A bright 60x60 plate through 51 slices of a 120x120 frame; the user boxes 8x8 pixels of it: the walk
    grows past the 48 px window (3x and 6x the box give the same 48 px floor), then runs on whole frames."""
    image = np.random.default_rng(0).integers(30, 50, size=(51, 120, 120)).astype(np.int16)  # every frame differs
    image[:, 30:90, 30:90] += 180
    return Volume(image, spacing=(1.0, 1.0, 1.0)), Box2D(56, 56, 63, 63, slice=25)


def test_a_wider_window_that_is_the_same_window_encodes_nothing_again():
    volume, box = _slab()
    engine = CountingEngine()
    labels = segment(volume, box, engine=engine, settings=PropagationSettings(), modality="other")
    shapes = [s for n, s in enumerate(engine.shapes) if n == 0 or engine.shapes[n - 1] != s]
    assert (48, 48) in shapes and (120, 120) in shapes  # the walk did widen its window
    assert len(engine.inputs) == len(set(engine.inputs)), "a frame was encoded twice"
    assert labels.meta["report"].frames_encoded == len(engine.inputs)
    assert labels.array.sum() > 0


def test_the_session_and_its_walks_share_one_cache():
    """A session's first prompt encodes each frame once; the same box again encodes nothing (session cache)."""
    volume, box = _slab()
    inner = CountingEngine()
    cached = CachedEngine(inner)
    session = Session(volume, engine=cached, modality="other")
    session.add(session.add_object(), box)
    first = len(inner.inputs)
    assert first == len(set(inner.inputs)) > 0
    session.add(session.add_object(), box)  # a second object from the same box: every frame from the cache
    assert len(inner.inputs) == first
    assert cached.hits >= first
