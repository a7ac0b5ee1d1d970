"""A video session (in process, FastAPI's test client) on a real video whose stream changes its picture size at
frame 3, which the upload check cannot see (the header declares the first size): the upload is a session, the
frames before the change are served, the changed frame is a 400 naming both sizes (no server path), a track
run that reaches it is a 400 with the session left as it was, the server keeps answering, and closing the
session deletes its folder."""

from __future__ import annotations

from tests.server.test_video_sessions import _client, _open
from tests.support.bombs import resizing_video
from tests.support.toy_engine import ToyEngine
from tests.support.video import disc_frames

CHANGED = "<server path>: frame 3 is 96x72 pixels but the video was opened as 64x48 (W x H)"


def test_a_frame_of_another_size_is_a_clean_400_and_the_session_stays_usable(tmp_path):
    path = resizing_video(tmp_path / "resized.webm", [disc_frames(3, (48, 64))[0], disc_frames(3, (72, 96))[0]])
    client, store = _client(ToyEngine())
    base, h, label, geo = _open(client, path)
    assert geo["size"] == [64, 48, 6]
    folder = next(iter(store._entries.values())).session.upload.folder
    assert client.get(f"{base}/frames/2", headers=h).status_code == 200
    for t in (3, 5):
        r = client.get(f"{base}/frames/{t}", headers=h)
        assert r.status_code == 400 and r.json()["error"] == "InputError", r.text
        assert r.json()["detail"].startswith(CHANGED) and "volsam-upload" not in r.json()["detail"], r.text

    box = {"object": label, "type": "box", "slice": 0, "box": [10, 12, 34, 34]}
    r = client.post(f"{base}/prompts", json=box, headers=h)
    assert r.status_code == 400 and CHANGED in r.json()["detail"], r.text
    events = client.get(f"{base}/events?follow=false", headers=h).text
    assert '"frame"' in events  # the run did start, and walked the frames before the change
    assert not any((folder / "runs").glob("*")), "the failed run's folder is deleted"
    assert client.get(base, headers=h).json()["objects"][0]["prompts"] == 0
    r = client.get(f"{base}/overlay", headers=h)  # the overlay video decodes every frame
    assert r.status_code == 400 and r.json()["detail"].startswith(CHANGED), r.text

    assert client.get("/api/health").json()["sessions"] == 1
    assert client.get(f"{base}/frames/0", headers=h).status_code == 200
    assert client.delete(base, headers=h).status_code == 204
    assert not folder.exists() and len(store) == 0
