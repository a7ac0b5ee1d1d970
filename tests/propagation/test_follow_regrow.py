"""The video walk's further regrowth up to the prompted frame's area (``regrow_more_px``): a stand-in "model"
that misses part of the object on every frame after the prompted one, as LiteMedSAM under-segments a
low-contrast object; the real model on generated clips is measured by benchmarks/bench_video_tracking.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tests.support.toy_engine import ToyEngine
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import follow, regrow

H, W = 40, 120
VIDEO = replace(PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=0)  # one rule at a time
MARK = 255  # pixel (0, 0) of the prompted frame: the stand-in answers it whole


class _Under(ToyEngine):
    """The bright pixels in the box, but on every frame other than the prompted one (marked) only left of
    column 38: the object's 12 right columns are missed."""

    def predict(self, embedding, box=None, points=None, point_labels=None, mask_logits=None):
        pred = super().predict(embedding, box=box, points=points, point_labels=point_labels)
        if embedding.features[0, 0] != MARK:
            pred.mask[:, 38:] = False
        return pred


def _clip(neighbour: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Four frames of a 20 x 30 px bright object (600 px); with ``neighbour`` a patch of the same grey touches
    its right side from frame 1 on (object-like tissue the growth could leak into)."""
    truth = np.zeros((4, H, W), bool)
    truth[:, 10:30, 20:50] = True
    rng = np.random.default_rng(0)
    frames = (np.where(truth, 200, 40) + rng.integers(0, 20, truth.shape)).astype(np.uint8)
    if neighbour:
        frames[1:, 10:30, 50:90] = 200
    frames[0, 0, 0] = MARK
    frames[1:, 0, 0] = 40
    return frames, truth


def _masks(frames: np.ndarray, settings: PropagationSettings) -> dict[int, np.ndarray]:
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    return {r.index: r.mask for r in follow(_Under(), stack, 0, box=(20, 10, 49, 29), settings=settings)}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_the_mask_grows_back_to_the_prompted_frames_area():
    frames, truth = _clip()
    more = _masks(frames, replace(VIDEO, regrow_px=4, regrow_more_px=12))
    plain = _masks(frames, replace(VIDEO, regrow_px=4, regrow_more_px=0))
    assert more[0].sum() == 600 and plain[0].sum() == 600  # the prompted frame: answered whole
    assert [_dice(more[t], truth[t]) for t in (1, 2, 3)] == [1.0] * 3
    assert all(plain[t].sum() == 20 * 22 for t in (1, 2, 3))  # 18 columns answered + 4 regrown


def test_the_further_growth_stops_at_the_prompted_frames_area():
    frames, truth = _clip(neighbour=True)
    more = _masks(frames, replace(VIDEO, regrow_px=4, regrow_more_px=12))
    wide = _masks(frames, replace(VIDEO, regrow_px=16, regrow_more_px=0))  # the same reach, no area bound
    for t in (1, 2, 3):
        assert 600 <= more[t].sum() <= 620, more[t].sum()  # the ring that reaches 600 px is taken whole
        assert wide[t].sum() == 20 * 34  # 18 + 16 columns: 4 columns into the neighbour
    assert _dice(more[1], truth[1]) > _dice(wide[1], truth[1])


def test_regrow_without_an_area_takes_only_the_fixed_steps():
    mask = np.zeros((10, 30), bool)
    mask[2:8, 2:6] = True
    like = np.zeros((10, 30), bool)
    like[2:8, 2:28] = True
    assert regrow(mask, like, 2).sum() == 6 * 6
    assert regrow(mask, like, 2, more=10).sum() == 6 * 6  # no area given: no further growth
    assert regrow(mask, like, 2, more=10, area=60).sum() == 6 * 10  # grows until it covers 60 px
    assert regrow(mask, like, 2, more=3, area=1000).sum() == 6 * 9  # at most ``more`` steps
