"""The video walk's search for an object lost inside the view (:func:`volsam.propagation.follow.follow`): where
it was lost is prompted first (``search_last_place``), and a region the search takes must lie within
``search_reach`` px a frame of its last mask. The stand-in engine (bright pixels inside the box) shows the
rules; their effect with the real LiteMedSAM is measured by benchmarks/bench_video_tracking.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.propagation.test_follow import H, W, _frames  # the 40 x 120 px frames of grey 200 on 40, with noise
from tests.support.toy_engine import ToyEngine
from volsam.core.errors import SettingsError
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import follow

N = 12
# one rule at a time: no smoothing, no regrowth, and neither of the rules under test
PLAIN = replace(
    PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=0, regrow_px=0, despeckle=0,
    search_last_place=False, search_reach=0,
)  # fmt: skip
DOUBT = 3  # the frame whose answer the "model" doubts (score 0.3 < min_score)


class Doubtful(ToyEngine):
    """The toy engine, doubting its answer on the frames marked by a 255 in their corner pixel."""

    def predict(self, embedding, box=None, points=None, point_labels=None, mask_logits=None):
        pred = super().predict(embedding, box=box, points=points, point_labels=point_labels)
        return replace(pred, score=0.3) if embedding.features[0, 0] == 255 else pred


def _clip(distractor_from: int, object_until: int = N) -> tuple[np.ndarray, np.ndarray]:
    """A still 12 x 12 px object (grey 200) at x 20-31 until ``object_until``, and from ``distractor_from`` a
    larger 12 x 16 px patch of its grey at x 80-95 (48 px away): the search's first choice by size."""
    truth = np.zeros((N, H, W), bool)
    truth[:object_until, 14:26, 20:32] = True
    patch = np.zeros_like(truth)
    patch[distractor_from:, 14:26, 80:96] = True
    frames = _frames(truth, patch, extra_value=200)
    frames[DOUBT, 0, 0] = 255
    return frames, truth


def _masks(frames: np.ndarray, settings: PropagationSettings) -> list[np.ndarray]:
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    got = {r.index: r.mask for r in follow(Doubtful(), stack, 0, box=(20, 14, 31, 25), settings=settings)}
    return [got[t] for t in range(N)]


def _on_object(masks: list[np.ndarray], truth: np.ndarray) -> list[bool]:
    return [bool(m.any()) and np.array_equal(m, g) for m, g in zip(masks, truth)]


def test_the_place_where_the_object_was_lost_is_prompted_before_the_larger_regions():
    frames, truth = _clip(distractor_from=DOUBT)
    plain = _masks(frames, PLAIN)
    assert not plain[DOUBT].any()  # the doubted answer is refused: lost inside the view
    assert all(m[:, 80:].any() and not m[:, :40].any() for m in plain[DOUBT + 1 :])  # the larger patch is taken
    resumed = _masks(frames, replace(PLAIN, search_last_place=True))
    assert not resumed[DOUBT].any()
    assert all(_on_object(resumed[DOUBT + 1 :], truth[DOUBT + 1 :]))  # followed on from where it was


def test_the_search_takes_no_region_beyond_the_reach_of_the_last_mask():
    frames, truth = _clip(distractor_from=DOUBT)
    near = _masks(frames, replace(PLAIN, search_reach=8))
    assert all(_on_object(near[DOUBT + 1 :], truth[DOUBT + 1 :]))  # the patch, 48 px away, is out of reach


def test_the_reach_grows_with_the_frames_the_object_has_been_lost():
    frames, truth = _clip(distractor_from=DOUBT, object_until=DOUBT)  # the object is gone at the doubted frame
    found = _masks(frames, replace(PLAIN, search_reach=8, search_last_place=True))
    taken = [t for t in range(N) if found[t][:, 80:].any()]
    # the last mask is frame 2's; 48 px of background lie between it and the patch: reached 7 frames later
    assert taken == list(range(2 + 7, N)), taken
    assert not any(m[:, :40].any() for m in found[DOUBT:])  # nothing is made up where the object was


def test_the_settings_are_checked():
    assert PropagationSettings().search_reach == 0 and not PropagationSettings().search_last_place  # volumes
    video = PropagationSettings.video()
    assert video.search_last_place and video.search_reach == 8
    with pytest.raises(SettingsError, match="search_reach"):
        PropagationSettings(search_reach=-1)
