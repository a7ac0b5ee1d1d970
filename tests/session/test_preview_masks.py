"""``Session.on_preview``: the slice masks a step makes reach the hook as they are made, placed on the
session's slice grid, and the last one of each slice is the step's result there -- with the real LiteMedSAM
weights on a cropped lesion of the MNI152 T1 (a walk whose window is widened once, then a correction), and
with SAM 2 (random-init weights: whole slices, a fresh track and a re-track). The lesion's 9 slices around its
middle box's (of 22; the lesion on every one of them, so each walk still runs to the volume's edge both ways)
keep LiteMedSAM's encodings to what these steps need."""

from __future__ import annotations

import numpy as np
import pytest

from tests.session.test_session_tracker import _volume as tracked_volume
from tests.session.test_session_tracker import engine  # noqa: F401 -- the random-init SAM 2 fixture
from tests.support.lesion_slices import middle_slices
from volsam.bench.clicks import next_click
from volsam.data.lesions import lesion_cases
from volsam.propagation import PropagationSettings
from volsam.propagation.frames import frames_view
from volsam.session import Session


@pytest.fixture(scope="module")
def case():
    whole = lesion_cases(n_per_kind=1, crop=True, variants=False)[0]  # dark-00, about 73 x 65 x 22 voxels
    return middle_slices(whole, 4)  # its slices 6..14 (the lesion is on slices 4..17)


def _collect(session: Session) -> tuple[dict[int, tuple[np.ndarray, tuple[int, int]]], list]:
    latest: dict[int, tuple[np.ndarray, tuple[int, int]]] = {}
    placed: list = []

    def hook(label: int, index: int, mask: np.ndarray, origin: tuple[int, int]) -> None:
        assert label == 1 and mask.dtype == bool
        latest[index] = (mask.copy(), origin)
        if (mask.shape, origin) not in placed:
            placed.append((mask.shape, origin))

    session.on_preview = hook
    return latest, placed


@pytest.mark.slow
def test_previewed_masks_are_the_steps_masks_on_the_slice_grid(case):
    # a tight window (1.1 x the box, no floor to speak of) so that the lesion reaches its edge and the walk
    # runs again in a wider one: the masks come in two window sizes at two offsets
    settings = PropagationSettings(roi_context=1.1, roi_min=16, roi_max_fraction=1.0)
    s = Session(case.image, engine="medsam-lite", device="cpu", modality="MR", settings=settings)
    latest, placed = _collect(s)
    obj = s.add_object(name="lesion")
    b = case.middle_box
    s.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    final = frames_view(s.mask(obj), s.axis)
    assert len(placed) >= 2 and placed[0][0] != placed[-1][0]  # the window was widened: two sizes
    y0, y1, x0, x1 = s._objects[obj].window
    assert placed[-1] == ((y1 - y0, x1 - x0), (y0, x0))  # the last masks sit in the object's final window
    present = set(np.flatnonzero(final.any(axis=(1, 2))).tolist())
    assert present <= set(latest)  # every slice of the result was previewed
    for k, (mask, (r, c)) in latest.items():
        whole = np.zeros(final.shape[1:], bool)
        whole[r : r + mask.shape[0], c : c + mask.shape[1]] = mask
        assert np.array_equal(whole, final[k]), k

    # a correction: the corrected slice and each re-propagated one, in the object's window
    latest.clear()
    click = next_click(s.mask(obj), case.label.array > 0)
    s.add_point(obj, click.ijk(), positive=click.positive)
    final = frames_view(s.mask(obj), s.axis)
    assert click.ijk()[s.axis] in latest
    for k, (mask, (r, c)) in latest.items():
        assert (r, c) == (y0, x0)
        assert np.array_equal(final[k, r : r + mask.shape[0], c : c + mask.shape[1]], mask), k
    # the model's next candidate on the box's slice, carried to the other slices by volsam's walk
    latest.clear()
    s.next_candidate(obj, b.slice)
    final = frames_view(s.mask(obj), s.axis)
    assert b.slice in latest and len(latest) > 1
    for k, (mask, (r, c)) in latest.items():
        assert np.array_equal(final[k, r : r + mask.shape[0], c : c + mask.shape[1]], mask), k
    latest.clear()
    s.undo()  # an undo runs no model: nothing is previewed
    assert not latest


def test_a_tracker_previews_whole_slices_that_are_its_result(engine):  # noqa: F811
    # SAM 2 with random-init weights (no SAM 2 weights exist offline): where the masks go, not what they are
    s = Session(tracked_volume(), engine=engine, modality="MR", absent_patience=None)
    latest, placed = _collect(s)
    obj = s.add_object()
    s.add_box(obj, 3, (8, 10, 30, 30))
    assert placed and all(p == ((40, 40), (0, 0)) for p in placed)  # whole slices, at the slice's origin
    final = frames_view(s.mask(obj), s.axis)
    assert sorted(latest) == list(range(10))
    for k, (mask, _) in latest.items():
        assert np.array_equal(mask, final[k]), k
    latest.clear()
    s.add_point(obj, (20, 20, 5), positive=False)  # a correction re-tracks from slice 5
    final = frames_view(s.mask(obj), s.axis)
    assert 5 in latest
    for k, (mask, _) in latest.items():
        assert np.array_equal(mask, final[k]), k
