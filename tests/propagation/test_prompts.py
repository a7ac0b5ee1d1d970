"""Voxel prompts -> frame prompts: grouping, windows, label images, the 3D box (volsam.propagation.prompts),
and the typed FramePrompt they produce (volsam.engines.base)."""

from __future__ import annotations

import numpy as np
import pytest

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point
from volsam.engines.base import FramePrompt
from volsam.propagation.prompts import (
    clip_to_box3d,
    frame_prompts,
    label_image_objects,
    split_label_images,
    tracker_prompts,
    volume_label_objects,
)

SIZE = (10, 8, 6)  # (i, j, k): arrays [k, j, i] = (6, 8, 10)


def test_frame_prompt_moves_into_a_window_and_scales_like_sam2():
    p = FramePrompt(box=(4, 5, 8, 9), points=np.array([[6.0, 7.0]], np.float32), point_labels=np.array([1]))
    moved = p.shifted(-2, -3)
    assert moved.box == (2, 2, 6, 6) and all(isinstance(c, int) for c in moved.box)  # integers stay integers
    assert moved.points.dtype == np.float32 and moved.points.tolist() == [[4.0, 4.0]]
    mask = np.zeros((12, 12), bool)
    mask[5:8, 4:7] = True
    windowed = FramePrompt(mask=mask).in_window((3, 11, 2, 10))
    assert windowed.mask.shape == (8, 8) and np.array_equal(windowed.mask, mask[3:11, 2:10])
    scaled = p.scaled(1024 / 12, 1024 / 12)
    scale = np.float32(1024 / 12)
    assert scaled.box == tuple(float(np.float32(c) * scale) for c in p.box)
    assert np.array_equal(scaled.points, p.points * scale)
    assert p.clicked and p.can_start
    negative = FramePrompt(points=np.array([[1.0, 1.0]], np.float32), point_labels=np.array([0]))
    assert negative.clicked and not negative.can_start
    assert not FramePrompt(mask=mask).clicked


def test_frame_prompts_group_by_frame_in_prompt_order():
    mask = np.zeros((6, 8, 10), bool)
    mask[2, 1:3, 1:3] = True
    mask[4, 5, 5] = True
    prompts = [
        Point(3, 3, 4),
        Box2D(1, 1, 6, 6, slice=2),
        Point(2, 2, 4, positive=False),
        MaskPrompt(mask),
    ]
    got = frame_prompts(prompts, SIZE, axis=2)
    assert list(got.frames) == [4, 2]  # the frames with a box or clicks, in prompt order; masks on them join
    assert got.frames[4].points.tolist() == [[3.0, 3.0], [2.0, 2.0]] and got.frames[4].point_labels.tolist() == [1, 0]
    assert got.frames[2].box == (1, 1, 6, 6) and np.array_equal(got.frames[2].mask, mask[2])
    assert set(got.masks) == {2, 4} and got.box3d is None
    assert got.extent() == (1, 1, 6, 6)
    with pytest.raises(PromptError, match="two boxes on slice 2"):
        frame_prompts([Box2D(1, 1, 2, 2, slice=2), Box2D(0, 0, 3, 3, slice=2)], SIZE, 2)
    with pytest.raises(PromptError, match="outside the image"):
        frame_prompts([Point(10, 0, 0)], SIZE, 2)


def test_a_3d_box_gives_its_middle_box_a_limit_and_a_clip():
    b3 = Box3D(1, 2, 1, 5, 6, 4)
    got = frame_prompts([b3], SIZE, axis=2)
    assert list(got.frames) == [2] and got.frames[2].box == (1, 2, 5, 6) and got.limit() == (1, 4)
    kept = frame_prompts([Box2D(2, 2, 4, 4, slice=2), b3], SIZE, axis=2)
    assert kept.frames[2].box == (2, 2, 4, 4)  # the user's box on that slice wins
    labels = np.ones((6, 8, 10), np.int32)
    clip_to_box3d(labels, b3, axis=2)
    expected = np.zeros_like(labels)
    expected[1:5, 2:7, 1:6] = 1
    assert np.array_equal(labels, expected)
    along_j = np.ones((6, 8, 10), np.int32)
    clip_to_box3d(along_j, b3, axis=1)
    assert np.array_equal(along_j, expected)  # the same box, whatever the frames' axis


def test_label_images_are_objects_of_their_own():
    image = np.zeros((6, 8, 10), np.uint16)
    image[1, 2:4, 2:4] = 7
    image[3, 5, 5] = 300
    single = np.zeros_like(image)
    single[2, 1, 1] = 9
    others, images = split_label_images([Box2D(0, 0, 2, 2, slice=1), MaskPrompt(image), MaskPrompt(single)])
    assert len(others) == 2 and len(images) == 1  # one value only: an ordinary mask prompt
    objects = volume_label_objects(images, axis=2)
    assert list(objects) == [7, 300] and list(objects[7]) == [1] and objects[300][3][5, 5]
    frame = np.array([[0, 4], [4, 0]])
    assert list(label_image_objects({0: frame}, label=2)) == [2]  # one value: object `label`
    assert list(label_image_objects({0: np.array([[1, 4]])}, label=2)) == [1, 4]
    with pytest.raises(PromptError, match="1..65535, found 70000"):
        label_image_objects({0: np.array([[70000]])})


def test_tracker_prompts_give_a_frames_mask_alone():
    mask = np.zeros((6, 8, 10), bool)
    mask[2, 1:3, 1:3] = True
    main = frame_prompts([Box2D(1, 1, 6, 6, slice=2), Point(3, 3, 4), MaskPrompt(mask)], SIZE, axis=2)
    extra = {5: {4: np.ones((8, 10), bool)}}
    prompts = tracker_prompts(main, 1, extra)
    assert prompts[2][1].box is None and np.array_equal(prompts[2][1].mask, mask[2])  # the mask replaces the box
    assert prompts[4][1].points.tolist() == [[3.0, 3.0]] and prompts[4][1].mask is None
    assert list(prompts[4]) == [1, 5]  # object `label` first, the label image's objects after it
