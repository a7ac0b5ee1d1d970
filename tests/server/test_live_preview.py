"""``GET /api/sessions/{sid}/preview``: the running step's slice masks, answered while the walk holds the
session's lock -- with the real LiteMedSAM weights on a cropped lesion of the MNI152 T1, through FastAPI's
test client. The walk is held at each slice by a hook on the session's progress (the masks are the model's)
while the test reads the preview from its own thread."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.server.test_cancel_and_downloads import _session, read_volume_bytes
from volsam.core.errors import Cancelled
from volsam.data.lesions import lesion_cases
from volsam.io import write_volume
from volsam.propagation.frames import frames_view
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.preview import Preview
from volsam.server.store import SessionStore

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def case():
    return lesion_cases(n_per_kind=1, crop=True, variants=False)[0]  # dark-00, about 73 x 65 x 22 voxels


@pytest.fixture()
def served(case, tmp_path):
    path = write_volume(case.image, tmp_path / "case.nii.gz")
    store = SessionStore(4, 600.0)
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE, raise_server_exceptions=False)

    return client, store, lambda: _session(client, path)  # an MR upload with one object


class Held:
    """Holds the walk at each segmented slice (the session's ``on_frame``) until the test has looked."""

    def __init__(self, frame):
        self.frame = frame  # the store's hook (events, and the stop check)
        self.arrived = threading.Event()
        self.go = threading.Event()
        self.count = 0

    def __call__(self, index: int) -> None:
        self.count += 1
        self.arrived.set()
        if not self.go.wait(60):
            raise TimeoutError("the test did not release the walk")
        self.go.clear()
        self.frame(index)


def _paint(slices: list[dict], into: np.ndarray, label: int) -> None:
    """Apply preview answers to slice stack ``into`` ``(n, rows, cols)`` as the page does."""
    for p in slices:
        r0, r1, c0, c1 = p["region"]
        plane = into[p["index"]]
        plane[r0:r1, c0:c1][plane[r0:r1, c0:c1] == label] = 0
        if p["box"]:
            b0, b1, d0, d1 = p["box"]
            bits = np.frombuffer(base64.b64decode(p["bits"]), np.uint8)
            mask = np.unpackbits(bits)[: (b1 - b0) * (d1 - d0)].reshape(b1 - b0, d1 - d0).astype(bool)
            plane[b0:b1, d0:d1][mask] = label


def _labels(client, base, h) -> np.ndarray:
    return read_volume_bytes(client.get(f"{base}/labelmap", headers=h).content)


def _run_held(client, store, base, h, body, on_each):
    """POST ``body`` in a thread with the walk held at each slice; ``on_each(n)`` runs in this thread while
    slice n (1-based) is held. Returns the POST's answer."""
    entry = store.get(base.rsplit("/", 1)[1], h["X-Session-Lease"])
    held = Held(entry.session.on_frame)
    entry.session.on_frame = held
    answer: dict = {}
    worker = threading.Thread(target=lambda: answer.update(r=client.post(f"{base}/prompts", json=body, headers=h)))
    worker.start()
    try:
        while worker.is_alive():
            if held.arrived.wait(0.05):
                held.arrived.clear()
                assert entry.lock.locked()  # the walk holds the session
                on_each(held.count)
                held.go.set()
        worker.join(60)
    finally:
        held.go.set()
        entry.session.on_frame = held.frame
    return answer["r"], entry


def test_the_preview_answers_during_the_walk_and_is_the_result(served, case):
    client, store, open_session = served
    base, h, label = open_session()
    other_base, other_h, _ = open_session()
    b = case.middle_box
    box = {"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]}
    axis = 2  # the session's default (slices along k)
    shape = frames_view(np.zeros(case.image.array.shape, np.uint8), axis).shape
    painted = np.zeros(shape, np.uint8)
    seen = {"after": 0, "slices": 0, "seconds": []}

    def look(n: int) -> None:
        t0 = time.perf_counter()
        r = client.get(f"{base}/preview", params={"after": seen["after"]}, headers=h)
        seen["seconds"].append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["running"] and answer["complete"]
        assert answer["slices"], n  # the slice held now was reported before its frame event
        _paint(answer["slices"], painted, label)
        seen["after"], seen["slices"] = answer["next"], seen["slices"] + len(answer["slices"])
        # another session's lease is refused, and so is none
        assert client.get(f"{base}/preview", headers=other_h).status_code == 403
        assert client.get(f"{base}/preview", headers={}).status_code == 403
        assert client.get(f"{other_base}/preview", headers=other_h).json()["slices"] == []

    r, entry = _run_held(client, store, base, h, box, look)
    assert r.status_code == 200, r.text
    assert seen["slices"] >= 10  # measured: 16 slices on dark-00
    assert max(seen["seconds"]) < 5.0  # answered while the lock was held (a lock wait would hang here)
    final = frames_view(_labels(client, base, h), axis)
    # every slice the preview painted is the final label map's slice (this case: no 3D clean-up change)
    previewed = sorted({int(k) for k in np.flatnonzero(painted.any(axis=(1, 2)))})
    assert previewed and np.array_equal(painted, final), [
        k for k in range(len(final)) if not np.array_equal(painted[k], final[k])
    ]
    # emptied when the step ended
    after = client.get(f"{base}/preview", params={"after": 0}, headers=h).json()
    assert after["slices"] == [] and not after["running"] and after["next"] == seen["after"]
    assert len(entry.preview) == 0 and entry.preview.nbytes == 0


def test_a_stopped_step_leaves_no_preview(served, case):
    client, store, open_session = served
    base, h, label = open_session()
    b = case.middle_box
    box = {"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]}
    counts = []

    def stop_at_third(n: int) -> None:
        counts.append(len(client.get(f"{base}/preview", headers=h).json()["slices"]))
        if n == 3:
            assert client.post(f"{base}/cancel", headers=h).json() == {"cancelling": True}

    r, entry = _run_held(client, store, base, h, box, stop_at_third)
    assert r.status_code == 409 and r.json()["error"] == Cancelled.__name__, r.text
    assert counts[:3] == [1, 2, 3]  # one more slice at each frame
    assert client.get(f"{base}/preview", headers=h).json() == {
        "running": False,
        "next": entry.preview.since(0)["next"],
        "complete": True,
        "more": False,
        "slices": [],
    }
    assert len(entry.preview) == 0 and entry.preview.nbytes == 0
    assert not _labels(client, base, h).any()  # rolled back: the page's reload shows nothing


def test_the_preview_keeps_one_entry_per_slice_within_its_byte_bound():
    preview = Preview(max_bytes=600, answer_bytes=250)
    mask = np.zeros((64, 64), bool)
    mask[10:30, 5:45] = True  # 20 x 40 px: 100 bytes packed
    preview.add(1, 3, mask, (0, 0))  # not running: ignored
    assert len(preview) == 0
    preview.start()
    for k in range(5):
        preview.add(1, k, mask, (100, 200))
    preview.add(1, 2, mask, (100, 200))  # slice 2 again: replaces its entry
    assert len(preview) == 5 and preview.nbytes == 500
    answer = preview.since(0)  # 250 bytes an answer: two slices, then the rest
    assert [p["index"] for p in answer["slices"]] == [0, 1] and answer["more"] and answer["complete"]
    assert answer["slices"][0]["region"] == [100, 164, 200, 264] and answer["slices"][0]["box"] == [110, 130, 205, 245]
    answer = preview.since(answer["next"])
    assert [p["index"] for p in answer["slices"]] == [3, 4] and answer["more"]
    answer = preview.since(answer["next"])
    assert [p["index"] for p in answer["slices"]] == [2] and not answer["more"]
    preview.add(2, 0, mask, (0, 0))  # 600 bytes: still inside
    preview.add(2, 1, mask, (0, 0))  # would be 700: dropped
    answer = preview.since(answer["next"])
    assert [p["label"] for p in answer["slices"]] == [2] and not answer["complete"]
    assert preview.nbytes == 600
    preview.add(1, 7, np.zeros((64, 64), bool), (0, 0))  # an empty mask: no bits, its region cleared
    assert preview.since(answer["next"])["slices"][0]["box"] == []
    preview.clear()
    assert len(preview) == 0 and preview.nbytes == 0 and not preview.since(0)["running"]
