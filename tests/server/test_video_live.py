"""The live view of a running video run: ``GET .../labelmap/frames/{n}`` shows each frame the running walk has
written with its new mask, and every other frame as before the run -- with the real LiteMedSAM weights on a
short generated clip, through FastAPI's test client. The walk is held inside the session's frame hook (after
a frame's PNG is written) while the test reads frames from its own thread; the masks are the model's."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.jobs.test_video_written import lite  # noqa: F401 -- the LiteMedSAM fixture
from tests.support.video import disc_frames, write_video
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore
from volsam.server.videos import VideoSession

BASE = "http://127.0.0.1:8000"
N, H, W = 10, 64, 80


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, truth = disc_frames(N, (H, W), speed=3.0)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames), truth


class Hold:
    """The session's frame hook, holding the run at its ``at``-th written frame until the test has looked."""

    def __init__(self, frame, at: int):
        self.frame, self.at = frame, at  # the store's hook (events and the stop check)
        self.indices: list[int] = []
        self.arrived, self.go = threading.Event(), threading.Event()

    def __call__(self, index: int) -> None:
        self.indices.append(index)
        if len(self.indices) == self.at:
            self.arrived.set()
            if not self.go.wait(120):
                raise TimeoutError("the test did not release the run")
        self.frame(index)


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def _frame(client, base, h, t: int) -> np.ndarray:
    r = client.get(f"{base}/labelmap/frames/{t}", headers=h)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def _frames(client, base, h) -> np.ndarray:
    return np.stack([_frame(client, base, h, t) for t in range(N)])


def _held(client, store, base, h, body, at: int, look, stop: bool = False):
    """POST ``body`` in a thread, hold the run at its ``at``-th written frame and call ``look(entry, hold)`` (the
    session's lock held by the run); then ``POST .../cancel`` when ``stop``, release. Returns (answer, hold)."""
    entry = store.get(base.rsplit("/", 1)[1], h["X-Session-Lease"])
    hold = Hold(entry.session.on_frame, at)
    entry.session.on_frame = hold
    answer: dict = {}
    worker = threading.Thread(target=lambda: answer.update(r=client.post(f"{base}/prompts", json=body, headers=h)))
    worker.start()
    try:
        assert hold.arrived.wait(300), "the run never reached the frame to hold"
        assert entry.lock.locked() and entry.busy  # the run holds the session
        look(entry, hold)
        if stop:
            assert client.post(f"{base}/cancel", headers=h).json() == {"cancelling": True}
    finally:
        hold.go.set()
        worker.join(300)
        entry.session.on_frame = hold.frame
    return answer["r"], hold


def _open(client, path, name="disc"):
    r = client.post("/api/sessions", files={"file": ("clip.mp4", path.read_bytes())})
    assert r.status_code == 201, r.text
    h = {"X-Session-Lease": r.json()["lease"]}
    base = f"/api/sessions/{r.json()['id']}"
    label = client.post(f"{base}/objects", json={"name": name}, headers=h).json()["label"]
    return base, h, label


def test_frames_done_show_the_running_walk_and_the_others_the_state_before(lite, clip):  # noqa: F811
    """A box on frame 0 (the whole clip walked), a correction box on frame 8 (walks 5..9 only), then a second
    object stopped mid-walk: while each run is held, the frames it has written are served with its masks (equal to
    the run's final result), the others as before the run; nothing is left after idle or after the stop; another
    session sees nothing of it and its lease is refused."""
    path, truth = clip
    store = SessionStore(4, 600.0, make_video=lambda upload, request: VideoSession(upload, request, lite))
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE, raise_server_exceptions=False)
    base, h, label = _open(client, path)
    other_base, other_h, _ = _open(client, path, "other")
    seen: dict = {}

    # 1. a fresh object: the frames written so far show it, the frames not reached show nothing yet
    def first(entry, hold):
        seen["done"] = list(hold.indices)
        assert entry.session.frames_done() == {label: sorted(hold.indices)}
        seen["live"] = _frames(client, base, h)
        # the lease is checked, another session sees nothing of this run
        for headers in (other_h, {}):
            assert client.get(f"{base}/labelmap/frames/{hold.indices[0]}", headers=headers).status_code == 403
        assert not _frame(client, other_base, other_h, hold.indices[0]).any()

    box0 = {"object": label, "type": "box", "slice": 0, "box": _bbox(truth[0])}
    r, hold = _held(client, store, base, h, box0, 4, first)
    assert r.status_code == 200, r.text
    assert seen["done"] == [0, 1, 2, 3]  # frame events carry the frame written (the walk goes forward from 0)
    assert sorted(hold.indices) == list(range(N))
    one = _frames(client, base, h)
    assert all(one[t].any() for t in range(N))  # the disc is found on every frame
    for t in range(N):
        assert np.array_equal(seen["live"][t], one[t] if t in seen["done"] else np.zeros((H, W), np.uint8)), t
    session = store.get(base.rsplit("/", 1)[1], h["X-Session-Lease"]).session
    assert session.frames_done() == {} and session._live == []  # forgotten at the end of the run

    # 2. a correction on frame 8 re-walks 5..9: frames written show the new masks, all others the first run's
    def second(entry, hold):
        seen["done"] = list(hold.indices)
        seen["live"] = _frames(client, base, h)

    box8 = {"object": label, "type": "box", "slice": 8, "box": _bbox(truth[8])}
    r, hold = _held(client, store, base, h, box8, 3, second)
    assert r.status_code == 200, r.text
    assert seen["done"] == [8, 9, 7] and sorted(hold.indices) == [5, 6, 7, 8, 9]  # only the frames it shows
    two = _frames(client, base, h)
    assert np.array_equal(two[:5], one[:5])  # the run of frame 0 still shows 0..4
    for t in range(N):
        assert np.array_equal(seen["live"][t], two[t] if t in seen["done"] else one[t]), t

    # 3. a second object, stopped at its third frame: it showed on the frames written, and goes with the stop
    label2 = client.post(f"{base}/objects", json={"name": "second"}, headers=h).json()["label"]

    def third(entry, hold):
        seen["done"] = list(hold.indices)
        seen["live"] = _frames(client, base, h)

    box2 = {"object": label2, "type": "box", "slice": 8, "box": _bbox(truth[8])}
    r, hold = _held(client, store, base, h, box2, 3, third, stop=True)
    assert r.status_code == 409 and r.json()["error"] == "Cancelled", r.text
    assert seen["done"] == [8, 9, 7]
    for t in range(N):
        live = seen["live"][t]
        assert (live == label2).any() == (t in seen["done"]), t  # the later object on top where written
        assert np.array_equal(live[live != label2], two[t][live != label2]), t
    assert np.array_equal(_frames(client, base, h), two)  # the state before the stopped run
    assert session.frames_done() == {} and session._live == []
    runs = {run.folder for state in session._objects.values() for run in state.runs}
    assert set((session.upload.folder / "runs").iterdir()) <= runs | {
        run.folder for step in session._history.undo for _l, a, b in step for s in (a, b) if s for run in s.runs
    }  # the stopped run's folder is gone
    events = [json.loads(line[6:]) for line in client.get(f"{base}/events?follow=false", headers=h).text.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    assert [e for e in events if e["type"] == "idle"][-1]["stopped"] is True


def test_a_tracker_run_shows_its_frames_as_they_are_tracked(clip):
    """A tracker (the toy SAM 2 stand-in: no SAM 2 weights offline) re-tracking the whole clip from a box on
    frame 2 and a click on frame 7, held at its seventh frame (8): the frames tracked so far show the new run's masks
    (its final ones), the others the box-only run's."""
    from tests.server.test_video_sessions import GreyTracker

    path, _truth = clip
    store = SessionStore(4, 600.0, make_video=lambda upload, request: VideoSession(upload, request, GreyTracker()))
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE, raise_server_exceptions=False)
    base, h, label = _open(client, path)
    box = {"object": label, "type": "box", "slice": 2, "box": [18, 18, 48, 48]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    before = _frames(client, base, h)
    seen: dict = {}

    def look(entry, hold):
        seen["done"] = list(hold.indices)
        assert entry.session.frames_done() == {label: sorted(hold.indices)}
        seen["live"] = _frames(client, base, h)

    click = {"object": label, "type": "point", "point": [50, 40, 7]}
    r, hold = _held(client, store, base, h, click, 7, look)
    assert r.status_code == 200, r.text
    after = _frames(client, base, h)
    assert seen["done"] == [2, 3, 4, 5, 6, 7, 8] and set(hold.indices) == set(range(N))  # forward from 2 first
    changed = [t for t in range(N) if not np.array_equal(after[t], before[t])]
    assert set(changed) & set(seen["done"]) and set(changed) - set(seen["done"]), (changed, seen["done"])
    for t in range(N):
        assert np.array_equal(seen["live"][t], after[t] if t in seen["done"] else before[t]), t
