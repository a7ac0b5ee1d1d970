"""segment(): prompts in voxel indices -> label map on the input grid (toy engine; real weights in
tests/test_propagate_accuracy.py and tests/cli)."""

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core import Box2D, Box3D, Point, PromptError, Volume
from volsam.propagation import PropagationSettings, focus_window
from volsam.segmentation import present_labels, resolve_axis, segment

WINDOW = "400,800"  # CT level,width: the toy engine (>= 128) sees the object only


class RecordingToy(ToyEngine):
    """The toy engine, remembering the shape of every frame it encoded."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def encode(self, frames):
        self.shapes += [f.shape for f in frames]
        return super().encode(frames)


def _volume(obj: np.ndarray) -> Volume:
    image = np.where(obj, 600, 60).astype(np.int16)  # with WINDOW: 191 and 19 of 0..255
    return Volume(image, spacing=(0.8, 0.8, 2.0), origin=(10.0, -5.0, 3.0))


def _blob(shape=(30, 200, 220), centre=(15, 90, 120), radius=(6, 8, 10)) -> np.ndarray:
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((k - centre[0]) / radius[0]) ** 2 + ((j - centre[1]) / radius[1]) ** 2 + (
        (i - centre[2]) / radius[2]
    ) ** 2 <= 1


def _middle_box(obj: np.ndarray, k: int) -> Box2D:
    jj, ii = np.nonzero(obj[k])
    return Box2D(int(ii.min()), int(jj.min()), int(ii.max()), int(jj.max()), slice=k)


def test_focus_window_is_square_centred_and_inside_the_frame():
    assert focus_window((100, 50, 119, 59), (200, 220), 3.0, 64) == (23, 87, 78, 142)
    # near the corner it is shifted inside, keeping its side
    assert focus_window((0, 0, 9, 9), (200, 220), 3.0, 64) == (0, 64, 0, 64)
    # a window that would cover most of the frame is no window; context 0 turns it off
    assert focus_window((10, 10, 150, 150), (200, 220), 3.0, 64) is None
    assert focus_window((100, 50, 119, 59), (200, 220), 0.0, 64) is None


def test_small_object_is_segmented_in_a_window_and_put_back_on_the_grid():
    obj = _blob()
    engine = RecordingToy()
    seg = segment(_volume(obj), _middle_box(obj, 15), engine=engine, window=WINDOW)
    assert seg.same_grid(_volume(obj)) and seg.array.dtype == np.uint8
    assert np.array_equal(seg.array > 0, obj)
    box = _middle_box(obj, 15)
    side = max(PropagationSettings().roi_min, 3 * (max(box.u1 - box.u0, box.v1 - box.v0) + 1))
    assert set(engine.shapes) == {(side, side)} and side < 100  # never the whole 200x220 frame
    base = RecordingToy()
    seg = segment(
        _volume(obj), _middle_box(obj, 15), engine=base, settings=PropagationSettings.baseline(), window=WINDOW
    )
    assert set(base.shapes) == {(200, 220)}


def test_object_reaching_the_window_edge_is_rerun_in_a_wider_window():
    # a cone: tiny on its prompted end slice, wide at the other end -> outgrows the first window
    k, j, i = np.ogrid[:30, :200, :220]
    radius = 3 + 1.5 * (29 - k)
    obj = ((j - 100) ** 2 + (i - 110) ** 2 <= radius**2) & (k >= 5)
    engine = RecordingToy()
    settings = PropagationSettings(growth_limit=0, max_area_ratio=10.0, regrowth_after=0.0)
    seg = segment(_volume(obj), _middle_box(obj, 29), engine=engine, settings=settings, window=WINDOW)
    assert np.array_equal(seg.array > 0, obj)
    assert len(set(engine.shapes)) > 1 and max(engine.shapes) > (64, 64)


def test_box3d_bounds_the_walk_and_clips_the_result():
    obj = _blob()
    box3d = Box3D(112, 84, 12, 130, 96, 18)  # cuts through the blob
    seg = segment(_volume(obj), box3d, engine=ToyEngine(), window=WINDOW)
    out = seg.array > 0
    expect = np.zeros_like(obj)
    expect[12:19, 84:97, 112:131] = obj[12:19, 84:97, 112:131]
    assert np.array_equal(out, expect)


def test_label_value_and_refusals():
    obj = _blob()
    seg = segment(_volume(obj), _middle_box(obj, 15), engine=ToyEngine(), label=300, window=WINDOW)
    assert seg.array.dtype == np.uint16 and set(np.unique(seg.array)) == {0, 300}
    with pytest.raises(PromptError, match="no prompt"):
        segment(_volume(obj), [], engine=ToyEngine())
    with pytest.raises(PromptError, match="label"):
        segment(_volume(obj), _middle_box(obj, 15), engine=ToyEngine(), label=0)
    with pytest.raises(PromptError, match="only negative"):
        segment(_volume(obj), Point(120, 90, 15, positive=False), engine=ToyEngine(), window=WINDOW)


def test_axis_names_follow_the_direction():
    vol = _volume(_blob())
    assert [resolve_axis(vol, a) for a in ("axial", "coronal", "sagittal", "i", 1)] == [2, 1, 0, 0, 1]
    with pytest.raises(PromptError, match="axis"):
        resolve_axis(vol, "diagonal")


def test_tracker_engines_get_frame_prompts_and_their_masks_land_on_the_grid():
    from tests.support.toy_engine import ToyTracker

    obj = _blob()
    engine = ToyTracker()
    box = _middle_box(obj, 15)
    seg = segment(_volume(obj), [box, Point(120, 90, 15, positive=False)], engine=engine, window=WINDOW)
    assert np.array_equal(seg.array > 0, obj) and seg.meta["report"].strategy == "memory"
    call = engine.calls[-1]
    prompt = call["prompts"][15][1]
    assert prompt.box == (box.u0, box.v0, box.u1, box.v1)  # whole frames: no window for trackers
    assert prompt.points.tolist() == [[120.0, 90.0]] and prompt.point_labels.tolist() == [0]
    assert call["limit"] is None and call["absent_patience"] == 3
    segment(_volume(obj), Box3D(112, 84, 12, 130, 96, 18), engine=engine, window=WINDOW, absent_patience=None)
    assert engine.calls[-1]["limit"] == (12, 18) and engine.calls[-1]["absent_patience"] is None


def test_a_label_image_gives_one_tracked_object_per_label():
    from tests.support.toy_engine import ToyTracker
    from volsam.core import MaskPrompt

    left = _blob(centre=(15, 90, 60), radius=(6, 8, 10))
    right = _blob(centre=(15, 90, 160), radius=(6, 8, 10))
    seeds = np.zeros(left.shape, np.uint16)
    seeds[15][left[15]] = 3
    seeds[15][right[15]] = 300
    engine = ToyTracker()
    seg = segment(_volume(left | right), MaskPrompt(seeds), engine=engine, window=WINDOW)
    assert set(engine.calls[-1]["prompts"][15]) == {3, 300}
    assert seg.array.dtype == np.uint16 and seg.meta["labels"] == [3, 300]
    assert np.array_equal(seg.array == 3, left) and np.array_equal(seg.array == 300, right)
    # a plain mask beside the label image is object `label` (1)
    middle = _blob(centre=(15, 150, 110), radius=(4, 6, 6))
    on_15 = np.zeros_like(middle)
    on_15[15] = middle[15]
    both = segment(
        _volume(left | right | middle), [MaskPrompt(seeds), MaskPrompt(on_15)], engine=ToyTracker(), window=WINDOW
    )
    assert both.meta["labels"] == [1, 3, 300] and np.array_equal(both.array == 1, middle)
    # every object must be prompted on the first prompted slice (SAM 2 in transformers fails otherwise)
    with pytest.raises(PromptError, match=r"objects \[3, 300\] are not prompted on frame 11"):
        segment(_volume(left | right | middle), [MaskPrompt(seeds), MaskPrompt(middle)], engine=ToyTracker())
    # a slice engine takes the same mask as one object
    one = segment(_volume(left | right), MaskPrompt(seeds), engine=ToyEngine(), window=WINDOW)
    assert one.meta["labels"] == [1]


def test_present_labels_reads_the_map_block_by_block_and_finds_every_value():
    labelmap = np.zeros((40, 6, 6), np.uint16)
    labelmap[3, 1, 1] = 7  # first block
    labelmap[17, 2, 2] = 300  # second block
    labelmap[39, 5, 5] = 2  # last, partial block
    assert present_labels(labelmap) == [2, 7, 300] == [int(v) for v in np.unique(labelmap) if v]
    assert present_labels(np.zeros((5, 3, 3), np.uint8)) == []


def test_label_maps_are_built_in_their_own_type():
    """label 1 and 200 give a uint8 map of 0 / label and the same voxels (no int32 volume on the way)."""
    obj = _blob()
    one = segment(_volume(obj), _middle_box(obj, 15), engine=ToyEngine(), window=WINDOW)
    other = segment(_volume(obj), _middle_box(obj, 15), engine=ToyEngine(), label=200, window=WINDOW)
    assert one.array.dtype == other.array.dtype == np.uint8
    assert one.meta["labels"] == [1] and other.meta["labels"] == [200]
    assert np.array_equal(one.array * 200, other.array)
