"""The stop button's route (``POST .../cancel``) and the label map as 3D Slicer's ``.seg.nrrd``, through
FastAPI's test client with the toy engine (a slowed one where a run must be caught in the middle)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support.toy_engine import ToyEngine
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore

BASE = "http://127.0.0.1:8000"


class SlowToy(ToyEngine):
    """The toy engine, 0.15 s per predicted slice: a walk over 20 slices takes ~3 s, long enough to stop."""

    def predict(self, embedding, **kw):
        time.sleep(0.15)
        return super().predict(embedding, **kw)


@pytest.fixture()
def scan(tmp_path):
    array = np.zeros((20, 48, 48), np.float32)
    array[:, 14:34, 10:38] = 300.0  # a bright block through every slice
    return write_volume(Volume(array, spacing=(0.8, 0.8, 2.0)), tmp_path / "scan.nii.gz")


def _client(engine) -> TestClient:
    store = SessionStore(4, 600.0, make_session=lambda volume, request: request.session(volume, engine))
    return TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE, raise_server_exceptions=False)


def _session(client, path):
    r = client.post("/api/sessions", files={"file": ("scan.nii.gz", path.read_bytes())}, data={"modality": "MR"})
    assert r.status_code == 201, r.text
    h = {"X-Session-Lease": r.json()["lease"]}
    base = f"/api/sessions/{r.json()['id']}"
    label = client.post(f"{base}/objects", json={"name": "block"}, headers=h).json()["label"]
    return base, h, label


def _events(client, base, h):
    text = client.get(f"{base}/events", params={"follow": "false"}, headers=h).text
    import json

    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_cancel_stops_a_running_walk_and_leaves_the_session_as_before(scan):
    client = _client(SlowToy())
    base, h, label = _session(client, scan)
    assert client.post(f"{base}/cancel", headers=h).json() == {"cancelling": False}  # nothing runs
    box = {"object": label, "type": "box", "slice": 10, "box": [10, 14, 37, 33]}
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(r=client.post(f"{base}/prompts", json=box, headers=h)))
    worker.start()
    for _ in range(200):  # wait for the walk's first slices
        if sum(e["type"] == "frame" for e in _events(client, base, h)) >= 2:
            break
        time.sleep(0.05)
    assert client.post(f"{base}/cancel", headers=h).json() == {"cancelling": True}
    worker.join(30)
    r = answer["r"]
    assert r.status_code == 409 and r.json()["error"] == "Cancelled", r.text
    events = _events(client, base, h)
    assert events[0] == {"type": "busy", "slices": 20}
    assert events[-1] == {"type": "idle", "stopped": True}
    assert 2 <= sum(e["type"] == "frame" for e in events) < 20  # it stopped in the middle
    labels = read_volume_bytes(client.get(f"{base}/labelmap", headers=h).content)
    assert not labels.any()  # the step was rolled back
    assert client.get(f"{base}", headers=h).json()["objects"][0]["prompts"] == 0
    # the session still works, and a stop asked before a run does not stop it
    client.post(f"{base}/cancel", headers=h)
    r = client.post(f"{base}/prompts", json=box, headers=h)
    assert r.status_code == 200 and r.json()["frames"] == [0, 19], r.text
    assert _events(client, base, h)[-1] == {"type": "idle", "stopped": False}


def read_volume_bytes(blob: bytes) -> np.ndarray:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.nii.gz"
        path.write_bytes(blob)
        return read_volume(path).array


def test_the_label_map_downloads_as_a_slicer_segmentation(scan, tmp_path):
    client = _client(ToyEngine())
    base, h, label = _session(client, scan)
    box = {"object": label, "type": "box", "slice": 10, "box": [10, 14, 37, 33]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    r = client.get(f"{base}/labelmap", params={"format": "seg-nrrd"}, headers=h)
    assert r.status_code == 200, r.text
    assert 'filename="labelmap.seg.nrrd"' in r.headers["content-disposition"]
    path = tmp_path / "got.seg.nrrd"
    path.write_bytes(r.content)
    header = r.content.split(b"\n\n", 1)[0].decode()  # NRRD: a text header, then the gzip voxels
    assert "Segment0_Name:=block" in header.splitlines() and "Segment0_LabelValue:=1" in header.splitlines()
    nifti = read_volume_bytes(client.get(f"{base}/labelmap", headers=h).content)
    got = read_volume(path)
    assert got.array.shape == nifti.shape and np.array_equal(got.array, nifti) and nifti.any()
