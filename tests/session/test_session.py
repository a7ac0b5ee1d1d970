"""Session bookkeeping with the toy slice engine (a stand-in that segments bright pixels; see
tests/support/toy_engine.py): undo/redo, changed regions, several objects, cache hits, resume, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import PromptError
from volsam.core.volume import Volume
from volsam.engines.cache import CachedEngine
from volsam.session import Session

K, J, NI = 20, 40, 50


def _volume() -> Volume:
    """Two bright blocks on a dark background: A at k 4..14, j 8..18, i 6..20; B at k 6..12, j 24..34,
    i 30..44; and a bright bar touching A on slices 15..17 (a 'leak' for the walk)."""
    a = np.full((K, J, NI), 20.0, np.float32)
    a[4:15, 8:19, 6:21] = 200
    a[6:13, 24:35, 30:45] = 220
    a[15:18, 8:19, 6:21] = 190  # A continues: the walk from A goes on to slice 17
    return Volume(a, spacing=(1.0, 1.0, 2.0), meta={"modality": "MR"})


def _session(**kw) -> tuple[Session, ToyEngine]:
    toy = ToyEngine()
    settings = kw.pop("settings", None)
    from volsam.propagation import PropagationSettings

    kw.setdefault("click_prompts", True)  # the toy removes the bright region under a background click
    s = Session(
        _volume(),
        engine=CachedEngine(toy),
        modality="MR",
        settings=settings or PropagationSettings(appearance_stop=False, regrowth_after=0.0, roi_context=0.0),
        **kw,
    )
    return s, toy


def test_a_box_segments_the_object_through_the_volume_and_reports_the_change():
    s, _ = _session()
    obj = s.add_object(name="A")
    change = s.add_box(obj, slice=9, box=(6, 8, 20, 18))
    mask = s.mask(obj)
    assert mask[4:18, 8:19, 6:21].all() and mask.sum() == 14 * 11 * 15
    assert change.labels == (obj,) and change.frames == (4, 17)
    assert change.box == (6, 8, 4, 20, 18, 17)
    lab = s.labelmap()
    assert lab.array.dtype == np.uint8 and lab.same_grid(s.volume) and lab.meta["labels"] == {obj: "A"}


def test_a_background_click_corrects_locally_and_undo_redo_restore_exact_label_maps():
    s, _ = _session()
    obj = s.add_object()
    s.add_box(obj, slice=9, box=(6, 8, 20, 18))
    first = s.labelmap().array.copy()
    change = s.add_point(obj, (10, 12, 15), positive=False)  # the leak: slices 15..17
    after = s.labelmap().array.copy()
    assert not after[15:18].any() and (after[4:15] == first[4:15]).all()
    # only the reported region changed
    i0, j0, k0, i1, j1, k1 = change.box
    outside = np.ones(after.shape, bool)
    outside[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = False
    assert (after[outside] == first[outside]).all() and (after != first).any()
    assert change.frames == (15, 17)
    assert (s.undo().frames, (s.labelmap().array == first).all()) == ((15, 17), True)
    s.redo()
    assert (s.labelmap().array == after).all()
    s.undo()
    s.undo()  # the box
    assert not s.labelmap().array.any()
    s.undo()  # adding the object
    assert s.objects == [] and s.undo().empty


def test_two_objects_do_not_corrupt_each_other_and_overlap_follows_the_policy():
    for policy, winner in (("later", 2), ("keep", 1)):
        s, _ = _session(overlap=policy)
        a, b = s.add_object(), s.add_object()
        s.add_box(a, slice=9, box=(6, 8, 20, 18))
        s.add_box(b, slice=9, box=(30, 24, 44, 34))
        only_a = s.mask(a)
        assert not (only_a & s.mask(b)).any()
        s.add_point(b, (35, 30, 12), positive=False)  # a correction of B
        assert (s.mask(a) == only_a).all()
        s.add_mask(b, only_a & (np.arange(K) == 9)[:, None, None])  # B also claims slice 9 of A
        assert s.labelmap().array[9, 12, 10] == winner
        assert (s.mask(a) == only_a).all()


def test_box_only_edits_carve_around_a_background_click_the_model_keeps():
    s, _ = _session(click_prompts=False)  # the box alone: the toy returns the whole bright block again
    obj = s.add_object()
    s.add_box(obj, slice=9, box=(6, 8, 20, 18))
    before = s.mask(obj)
    s.add_point(obj, (13, 13, 16), positive=False)  # the middle of the leak's slice 16 (j 8..18, i 6..20)
    after = s.mask(obj)
    assert not after[16, 13, 13] and after[16].sum() < before[16].sum()
    assert (after[:16] == before[:16]).all()  # nothing nearer to the box changed


def test_a_correction_on_a_slice_seen_before_encodes_nothing():
    s, toy = _session()
    obj = s.add_object()
    first = s.add_box(obj, slice=9, box=(6, 8, 20, 18))
    assert first.first_frame_seconds is None and first.seconds > 0  # a fresh segmentation, not a correction
    before = sum(toy.encoded)
    change = s.add_point(obj, (10, 12, 15), positive=False)
    assert change.frames_encoded == 0 and sum(toy.encoded) == before
    assert 0 < change.first_frame_seconds <= change.seconds


def test_queued_prompts_run_together_as_one_undo_step():
    s, _ = _session()
    a, b = s.add_object(), s.add_object()
    assert s.add_box(a, slice=9, box=(6, 8, 20, 18), run=False).empty
    assert s.add_box(b, slice=9, box=(30, 24, 44, 34), run=False).empty
    change = s.run()
    assert set(change.labels) == {a, b} and s.mask(a).any() and s.mask(b).any()
    s.undo()
    assert not s.labelmap().array.any() and [lbl for lbl, _ in s.objects] == [a, b]


def test_remove_and_reset_are_undoable():
    s, _ = _session()
    a = s.add_object(name="A")
    s.add_box(a, slice=9, box=(6, 8, 20, 18))
    full = s.labelmap().array.copy()
    s.remove_object(a)
    assert s.objects == [] and not s.labelmap().array.any()
    s.undo()
    assert s.objects == [(a, "A")] and (s.labelmap().array == full).all()
    s.reset_object(a)
    assert not s.mask(a).any() and s.prompts(a) == []
    s.undo()
    assert (s.labelmap().array == full).all() and len(s.prompts(a)) == 1


def test_resume_from_a_label_map_reproduces_it():
    s, _ = _session()
    a, b = s.add_object(3), s.add_object(7)
    s.add_box(a, slice=9, box=(6, 8, 20, 18))
    s.add_box(b, slice=9, box=(30, 24, 44, 34))
    lab = s.labelmap()
    again = Session.from_labelmap(s.volume, lab, engine=CachedEngine(ToyEngine()), modality="MR")
    assert [lbl for lbl, _ in again.objects] == [3, 7]
    assert (again.labelmap().array == lab.array).all()
    assert again.undo().empty  # nothing to undo beyond the loaded state


def test_bad_prompts_are_refused_with_clear_messages():
    s, _ = _session()
    a = s.add_object()
    with pytest.raises(PromptError, match="no object 9"):
        s.add_box(9, slice=3, box=(1, 1, 5, 5))
    with pytest.raises(PromptError, match="slice 25 is outside"):
        s.add_box(a, slice=25, box=(1, 1, 5, 5))
    with pytest.raises(PromptError, match="point 60,1,1 is outside"):
        s.add_point(a, (60, 1, 1))
    with pytest.raises(PromptError, match="exists already"):
        s.add_object(a)
    with pytest.raises(PromptError, match="only background clicks"):
        s.add_point(a, (10, 12, 9), positive=False)
    with pytest.raises(PromptError, match="overlap must be"):
        Session(s.volume, engine=CachedEngine(ToyEngine()), overlap="sometimes")
