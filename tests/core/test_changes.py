"""Change: what an edit changed, and its JSON form (the server's answer, the client's result)."""

from __future__ import annotations

import json

import numpy as np

from volsam.core.changes import Change, bounding_region


def test_to_dict_is_the_servers_json_shape():
    change = Change((2, 5), (3, 9), (1, 2, 3, 4, 5, 9), frames_encoded=7, seconds=1.5, first_frame_seconds=0.25)
    assert change.to_dict() == {
        "labels": [2, 5],
        "frames": [3, 9],
        "box": [1, 2, 3, 4, 5, 9],
        "frames_encoded": 7,
        "seconds": 1.5,
        "first_frame_seconds": 0.25,
    }
    assert Change().to_dict() == {
        "labels": [],
        "frames": None,
        "box": None,
        "frames_encoded": 0,
        "seconds": 0.0,
        "first_frame_seconds": None,
    }


def test_a_change_comes_back_equal_through_json():
    for change in [
        Change(),
        Change((1,), None, None, 3, 0.5),
        Change((1, 4), (0, 2), (0, 1, 0, 5, 6, 2), 12, 2.25, 0.75),
    ]:
        back = Change.from_dict(json.loads(json.dumps(change.to_dict())))
        assert back == change
        assert isinstance(back.labels, tuple) and (back.box is None or isinstance(back.box, tuple))


def test_numpy_numbers_leave_as_plain_json_numbers():
    change = Change((np.int64(3),), (np.int64(1), np.int64(2)), tuple(np.arange(6)), np.int32(4), np.float32(0.5))
    text = json.dumps(change.to_dict())  # numpy scalars would raise here
    assert json.loads(text)["box"] == [0, 1, 2, 3, 4, 5]


def test_of_and_merged_and_bounding_region():
    diff = np.zeros((6, 5, 4), bool)  # [k, j, i]
    diff[2:4, 1, 3] = True
    assert bounding_region(diff) == (slice(2, 4), slice(1, 2), slice(3, 4))
    assert bounding_region(np.zeros((2, 2, 2), bool)) is None
    change = Change.of(diff, (1,), axis=2, frames_encoded=2)
    assert change == Change((1,), (2, 3), (3, 1, 2, 3, 1, 3), 2)
    assert Change.of(diff, (1,), axis=0).frames == (3, 3)
    other = Change((2,), (5, 5), (0, 0, 5, 0, 0, 5), 1)
    assert change.merged(other) == Change((1, 2), (2, 5), (0, 0, 2, 3, 1, 5), 3)
    assert Change.of(np.zeros((2, 2, 2), bool), (4,), axis=2).empty


def test_session_state_keeps_the_old_names():
    from volsam.session import state

    assert state.Change is Change and state.bounding_region is bounding_region
