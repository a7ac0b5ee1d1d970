"""The ``total`` events of a running step (``Entry.total`` from ``Session.on_total``): the walk's extent for
the page's progress bar, through FastAPI's test client with the toy engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support.toy_engine import ToyEngine
from volsam.core.volume import Volume
from volsam.io import write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore

BASE = "http://127.0.0.1:8000"


@pytest.fixture()
def client_session(tmp_path):
    array = np.zeros((40, 48, 48), np.float32)
    array[8:32, 14:34, 10:38] = 300.0  # a bright block on slices 8..31 of 40
    path = write_volume(Volume(array, spacing=(0.8, 0.8, 2.0)), tmp_path / "scan.nii.gz")
    store = SessionStore(4, 600.0, make_session=lambda volume, request: request.session(volume, ToyEngine()))
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE)
    r = client.post("/api/sessions", files={"file": ("scan.nii.gz", path.read_bytes())}, data={"modality": "MR"})
    h = {"X-Session-Lease": r.json()["lease"]}
    base = f"/api/sessions/{r.json()['id']}"
    label = client.post(f"{base}/objects", json={"name": "block"}, headers=h).json()["label"]
    return client, base, h, label


def _step_events(client, base, h, seen: int) -> tuple[list[dict], int]:
    text = client.get(f"{base}/events", params={"follow": "false", "after": seen}, headers=h).text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    return events, seen + len(events)


def _check(events: list[dict]) -> list[int]:
    """The totals of one step; each no less than the frames reported before it."""
    assert events[0]["type"] == "busy" and events[-1]["type"] == "idle"
    totals, frames = [], 0
    for e in events:
        if e["type"] == "frame":
            frames += 1
        elif e["type"] == "total":
            totals.append(e["frames"])
            assert e["frames"] >= frames
    return totals


def test_a_box_reports_the_axis_then_less_once_a_direction_ends(client_session):
    client, base, h, label = client_session
    box = {"object": label, "type": "box", "slice": 20, "box": [10, 14, 37, 33]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    events, seen = _step_events(client, base, h, 0)
    totals = _check(events)
    frames = sum(e["type"] == "frame" for e in events)
    # 40 slices at first; once the backward walk ended at slice 7, slices 0..6 are out
    assert totals[0] == 40 and totals[-1] == 40 - 7 and frames <= totals[-1]
    # a correction on slice 26: its range is the span up to the object's other prompted slices (21..39 past
    # the box on 20); its re-propagation ends early (it agrees with the old result)
    click = {"object": label, "type": "point", "point": [24, 24, 26], "positive": True}
    assert client.post(f"{base}/prompts", json=click, headers=h).status_code == 200
    events, _ = _step_events(client, base, h, seen)
    totals = _check(events)
    assert totals[0] == 39 - 21 + 1 and sum(e["type"] == "frame" for e in events) >= 1


def test_a_3d_box_reports_its_own_range(client_session):
    client, base, h, label = client_session
    box3d = {"object": label, "type": "box3d", "box": [10, 14, 12, 37, 33, 27]}
    r = client.post(f"{base}/prompts", json=box3d, headers=h)
    assert r.status_code == 200, r.text
    totals = _check(_step_events(client, base, h, 0)[0])
    assert totals[0] == 27 - 12 + 1  # the box's slices, not the axis's 40
