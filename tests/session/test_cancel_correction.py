"""Stopping a correction while it re-propagates (the server's Stop button reads ``Session.on_frame``), with the
real LiteMedSAM weights on a cropped lesion: the corrected slice and each neighbour the walk segments are
reported, a stop there raises :class:`~volsam.core.errors.Cancelled` (HTTP 409) and the step is rolled back."""

from __future__ import annotations

import numpy as np
import pytest

from volsam.core.errors import Cancelled
from volsam.data.lesions import lesion_cases
from volsam.server.store import Entry
from volsam.session import Session


@pytest.fixture(scope="module")
def case():
    return lesion_cases(n_per_kind=1, crop=True, variants=False)[0]  # dark-00, about 70 x 70 x 22 voxels


def _half_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The left half of the mask's box on one slice (u0, v0, u1, v1): a correction that changes the object."""
    ys, xs = np.nonzero(mask)
    u0, u1 = int(xs.min()), int(xs.max())
    return u0, int(ys.min()), (u0 + u1) // 2, int(ys.max())


def test_a_stop_during_a_corrections_repropagation_rolls_the_step_back(case):
    s = Session(case.image, engine="medsam-lite", device="cpu", modality="MR")
    obj = s.add_object(name="lesion")
    b = case.middle_box
    s.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    before, prompts_before = s.mask(obj), s.prompts(obj)
    k = b.slice + 2
    assert before[k].any()
    box = _half_box(before[k])

    # unstopped, the correction reports the corrected slice first, then the neighbours it re-segments
    seen: list[int] = []
    s.on_frame = seen.append
    s.add_box(obj, k, box)
    corrected = s.mask(obj)
    assert seen[0] == k and len(seen) >= 3, seen
    assert set(seen[1:]) <= set(np.flatnonzero((corrected ^ before).any(axis=(1, 2)))) | {k - 1, k + 1}
    s.undo()
    assert np.array_equal(s.mask(obj), before)

    # stopped at the first re-propagated neighbour, through the server's session entry
    entry = Entry("t", "lease", s, "medsam-lite", None, "cpu")
    entry.busy = True  # as SessionStore.using sets it while a run holds the session
    calls: list[int] = []

    def hook(index: int) -> None:
        calls.append(index)
        if len(calls) == 2:
            entry.cancel()
        entry.frame(index)

    s.on_frame = hook
    with pytest.raises(Cancelled) as stopped:
        s.add_box(obj, k, box)
    assert stopped.value.http_status == 409
    assert calls == seen[:2]
    assert [e["index"] for e in entry.events if e["type"] == "frame"] == seen[:2]
    assert np.array_equal(s.mask(obj), before)  # nothing of the stopped step is left
    assert s.prompts(obj) == prompts_before
    s.undo()  # the step never entered the history: undo takes back the box
    assert not s.mask(obj).any()
    s.redo()
    assert np.array_equal(s.mask(obj), before)

    # the session goes on: the same correction, unstopped, gives what it gave before
    entry.stop.clear()
    s.on_frame = None
    s.add_box(obj, k, box)
    assert np.array_equal(s.mask(obj), corrected)
