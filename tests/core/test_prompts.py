import numpy as np
import pytest

from volsam.core import Box2D, Box3D, MaskPrompt, Point, PromptError, in_plane_axes

SIZE = (30, 20, 10)  # i, j, k


def test_box2d_inside_and_outside():
    Box2D(0, 0, 29, 19, slice=9).validate(SIZE)
    with pytest.raises(PromptError, match="outside the slice"):
        Box2D(0, 0, 30, 19, slice=9).validate(SIZE)
    with pytest.raises(PromptError, match="slice 10 is outside"):
        Box2D(0, 0, 5, 5, slice=10).validate(SIZE)


def test_box2d_other_axes_use_the_remaining_axes():
    assert in_plane_axes(0) == (1, 2) and in_plane_axes(1) == (0, 2) and in_plane_axes(2) == (0, 1)
    Box2D(0, 0, 19, 9, slice=29).validate(SIZE, axis=0)  # (j, k) plane, slice along i
    with pytest.raises(PromptError):
        Box2D(0, 0, 19, 10, slice=29).validate(SIZE, axis=0)


def test_empty_and_non_integer_boxes_are_refused():
    with pytest.raises(PromptError, match="empty box"):
        Box2D(5, 5, 4, 9, slice=0)
    with pytest.raises(PromptError, match="integer"):
        Box2D(1.5, 0, 3, 3, slice=0)
    with pytest.raises(PromptError, match="empty 3D box"):
        Box3D(0, 0, 5, 3, 3, 4)


def test_box3d_middle_box_is_the_challenge_start():
    b = Box3D(2, 3, 4, 12, 13, 9)
    assert b.middle_box() == Box2D(2, 3, 12, 13, slice=6)
    assert b.middle_box(axis=0) == Box2D(3, 4, 13, 9, slice=7)
    with pytest.raises(PromptError, match="outside the image"):
        Box3D(0, 0, 0, 30, 5, 5).validate(SIZE)


def test_point_and_mask_validation():
    Point(29, 19, 9, positive=False).validate(SIZE)
    with pytest.raises(PromptError, match="outside"):
        Point(-1, 0, 0).validate(SIZE)
    mask = np.zeros((10, 20, 30), np.uint8)
    with pytest.raises(PromptError, match="empty"):
        MaskPrompt(mask).validate(SIZE)
    mask[3, 4, 5] = 2
    MaskPrompt(mask).validate(SIZE)
    with pytest.raises(PromptError, match="label 1"):
        MaskPrompt(mask, label=1).validate(SIZE)
    with pytest.raises(PromptError, match="does not match"):
        MaskPrompt(mask[:5]).validate(SIZE)
