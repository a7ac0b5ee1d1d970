"""The generated ultrasound-like clips (volsam.data.clips): determinism, and each factor doing what it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from volsam.data.clips import ClipSpec, clip_family, dice, make_clip

SMALL = ClipSpec(frames=12, size=(64, 80))


def test_the_same_spec_gives_the_same_clip_and_another_seed_another():
    a, b = make_clip(SMALL), make_clip(SMALL)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert a.frames.shape == (12, 64, 80) and a.frames.dtype == np.uint8 and a.masks.dtype == bool
    assert not np.array_equal(a.frames, make_clip(SMALL.varied("other", seed=1)).frames)


@pytest.mark.parametrize("contrast", [0.3, 0.6, 0.9])
def test_contrast_sets_the_objects_echo_against_the_tissue_at_the_same_place(contrast):
    clip = make_clip(SMALL.varied("c", contrast=contrast, speckle=0.0))
    tissue = make_clip(SMALL.varied("c", contrast=0.0, speckle=0.0))  # same seed: same tissue, no object
    inner = ndimage.binary_erosion(clip.masks, iterations=2, structure=np.ones((1, 3, 3)))
    ratio = clip.frames[inner].astype(float) / tissue.frames[inner]
    assert abs(np.median(ratio) - (1 - contrast)) < 0.03, np.median(ratio)
    out = ~ndimage.binary_dilation(clip.masks, iterations=3, structure=np.ones((1, 3, 3)))
    assert np.array_equal(clip.frames[out], tissue.frames[out])


def test_speckle_makes_the_background_grainy():
    clean = make_clip(SMALL.varied("clean", speckle=0.0))
    full = make_clip(SMALL.varied("full", speckle=1.0))

    def grain(clip):  # mean step between neighbouring pixels of the background
        out = ~ndimage.binary_dilation(clip.masks, iterations=3, structure=np.ones((1, 3, 3)))
        steps = np.abs(np.diff(clip.frames.astype(float), axis=2))
        return steps[out[:, :, 1:] & out[:, :, :-1]].mean()

    assert grain(clean) < 3 < 20 < grain(full), (grain(clean), grain(full))


def test_speed_rotation_and_deformation_move_turn_and_reshape_the_object():
    still = make_clip(SMALL.varied("still", speed=0.0, rotation=0.0, deform=0.0))
    assert all(np.array_equal(m, still.masks[0]) for m in still.masks)
    fast = make_clip(SMALL.varied("fast", speed=3.0, rotation=0.0, deform=0.0))
    centres = np.array([ndimage.center_of_mass(m) for m in fast.masks])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert np.median(steps) == pytest.approx(3.0, abs=0.5)
    turning = make_clip(SMALL.varied("turn", speed=0.0, rotation=10.0, deform=0.0))
    assert dice(turning.masks[0], turning.masks[9]) < 0.9  # 90 degrees later the ellipse lies across
    breathing = make_clip(SMALL.varied("breathe", speed=0.0, rotation=0.0, deform=0.3, period=8))
    areas = breathing.masks.sum(axis=(1, 2))
    assert areas.max() > 1.3 * areas.min()


def test_an_exiting_object_leaves_through_the_right_edge_and_comes_back():
    clip = make_clip(ClipSpec(frames=40, exit=6, speed=4.0))
    areas = clip.masks.sum(axis=(1, 2))
    gone = np.flatnonzero(areas == 0)
    assert len(gone) >= 6 and areas[0] > 0 and areas[-1] > 0.5 * areas[0]
    assert np.array_equal(gone, np.arange(gone[0], gone[-1] + 1))  # one stretch away
    partial = areas[gone[0] - 1]
    assert 0 < partial < areas[0] and clip.masks[gone[0] - 1][:, -1].any()  # it went out on the right


def test_dice_and_the_box():
    clip = make_clip(SMALL)
    assert dice(clip.masks[0], clip.masks[0]) == 1.0 and dice(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    x0, y0, x1, y1 = clip.box(0)
    ys, xs = np.nonzero(clip.masks[0])
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
    names = [s.name for s in clip_family(frames=8)]
    assert len(names) == len(set(names)) >= 8
    with pytest.raises(ValueError):
        ClipSpec(contrast=1.5)


def test_frames_without_the_object_score_an_empty_answer_1_and_a_false_mask_0():
    absent = np.zeros((8, 8), bool)
    false_mask = absent.copy()
    false_mask[2, 2] = True  # one pixel where nothing is
    assert dice(absent, absent) == 1.0  # absence correctly reported
    assert dice(false_mask, absent) == 0.0 and dice(absent, false_mask) == 0.0  # a false mask, a missed object
