"""Candidate masks: Session.next_candidate cycles through the model's masks for a slice's prompt, the object
follows the choice, undo takes it back; the server route and the client call do the same; LiteMedSAM gives
four candidates, the first being its usual answer."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support.toy_engine import ToyEngine, ToyTracker
from volsam.core.errors import PromptError
from volsam.core.prompts import MaskPrompt
from volsam.core.volume import Volume
from volsam.session import Session

SHAPE = (40, 48, 48)  # k, j, i
BLOCK = (slice(8, 32), slice(14, 34), slice(10, 38))
BOX = (8, 12, 39, 35)  # i0, j0, i1, j1 around the block, on slice 20


class CandidateToy(ToyEngine):
    """The toy engine with three candidates: the bright pixels in the box (its answer), those of the box's left
    half, and the whole box."""

    def predict_candidates(self, embedding, box=None, points=None, point_labels=None, mask_logits=None):
        first = self.predict(embedding, box=box, points=points, point_labels=point_labels)
        left, whole = np.zeros_like(first.mask), np.zeros_like(first.mask)
        x0, y0, x1, y1 = (int(round(c)) for c in box)
        mid = (x0 + x1) // 2
        left[y0 : y1 + 1, x0 : mid + 1] = first.mask[y0 : y1 + 1, x0 : mid + 1]
        whole[y0 : y1 + 1, x0 : x1 + 1] = True
        return [first, *(type(first)(mask=m, score=0.5, logits=first.logits) for m in (left, whole))]


def _volume() -> Volume:
    array = np.full(SHAPE, 10.0, np.float32)
    array[BLOCK] = 300.0
    return Volume(array)


def _session() -> tuple[Session, int]:
    s = Session(_volume(), engine=CandidateToy(), modality="MR")
    obj = s.add_object(name="block")
    s.add_box(obj, 20, BOX)
    return s, obj


def test_next_candidate_cycles_the_slice_and_the_object_follows_then_comes_back():
    s, obj = _session()
    original = s.labelmap().array.copy()
    block = np.zeros(SHAPE, bool)
    block[BLOCK] = True
    assert np.array_equal(original > 0, block)
    mid = (BOX[0] + BOX[2]) // 2

    change = s.next_candidate(obj, 20)  # the left half of the bright block
    assert s.last_candidate == (1, 3) and change.labels == (obj,)
    left = block.copy()
    left[:, :, mid + 1 :] = False
    assert np.array_equal(s.mask(obj)[20], left[20])
    # the neighbours follow the choice (the default carry rule, walk: volsam's walk from the chosen mask, both
    # ways, each slice prompted from the previous one's box, a little wider each slice)
    for k in (21, 22):
        assert s.mask(obj)[k].sum() < block[k].sum() and not (s.mask(obj)[k] & ~block[k]).any()

    s.next_candidate(obj, 20)  # the whole box on slice 20; its neighbours take the block again
    assert s.last_candidate == (2, 3)
    whole = np.zeros((SHAPE[1], SHAPE[2]), bool)
    whole[BOX[1] : BOX[3] + 1, BOX[0] : BOX[2] + 1] = True
    assert np.array_equal(s.mask(obj)[20], whole)
    masks = [p for p in s.prompts(obj) if isinstance(p, MaskPrompt)]
    assert len(masks) == 1  # a new choice replaces the earlier one on the slice

    s.next_candidate(obj, 20)  # back to the model's first answer
    assert s.last_candidate == (0, 3)
    assert np.array_equal(s.labelmap().array, original)

    for _ in range(3):
        s.undo()
    assert np.array_equal(s.labelmap().array, original)
    assert not [p for p in s.prompts(obj) if isinstance(p, MaskPrompt)]
    s.redo()
    assert np.array_equal(s.mask(obj)[20], left[20])


def test_after_an_undo_the_next_candidate_is_the_one_after_the_candidate_shown():
    """The cycle follows what the slice shows: undoing a choice and pressing C again shows the same candidate,
    not the one after it; a new box on the slice starts again from the model's first answer."""
    s, obj = _session()
    s.next_candidate(obj, 20)
    s.next_candidate(obj, 20)
    assert s.last_candidate == (2, 3)
    s.undo()  # the slice shows candidate 1 again
    s.next_candidate(obj, 20)
    assert s.last_candidate == (2, 3)
    s.undo()
    s.undo()  # no choice left: the model's first answer
    s.next_candidate(obj, 20)
    assert s.last_candidate == (1, 3)
    s.add_box(obj, 20, BOX)
    s.next_candidate(obj, 20)
    assert s.last_candidate == (1, 3)


def test_next_candidate_refusals():
    s, obj = _session()
    with pytest.raises(PromptError, match="no box or object click of this object on slice 5"):
        s.next_candidate(obj, 5)
    with pytest.raises(PromptError, match="outside the volume"):
        s.next_candidate(obj, 40)
    empty = s.add_object()
    with pytest.raises(PromptError, match="no voxels yet"):
        s.next_candidate(empty, 20)
    tracked = Session(_volume(), engine=ToyTracker(), modality="MR")
    t = tracked.add_object()
    tracked.add_box(t, 20, BOX)
    with pytest.raises(PromptError, match="need a slice engine"):
        tracked.next_candidate(t, 20)


def test_an_engine_without_candidates_offers_one_and_the_cycle_stays_put():
    s = Session(_volume(), engine=ToyEngine(), modality="MR")
    obj = s.add_object()
    s.add_box(obj, 20, BOX)
    before = s.labelmap().array.copy()
    s.next_candidate(obj, 20)
    assert s.last_candidate == (0, 1) and np.array_equal(s.labelmap().array, before)


def test_the_server_route_and_the_client_call(tmp_path):
    from volsam.client import RemoteSession
    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig
    from volsam.server.store import SessionStore

    store = SessionStore(2, 600.0, make_session=lambda volume, request: request.session(volume, CandidateToy()))
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url="http://127.0.0.1:8000")
    remote = RemoteSession.__new__(RemoteSession)  # the client's methods over the in-process app
    remote._http = client
    with _serve_volume(client, tmp_path) as (sid, lease):
        remote.id, remote.last_candidate = sid, None
        client.headers["X-Session-Lease"] = lease
        obj = remote.add_object(name="block")
        remote.add_box(obj, 20, BOX)
        original = remote.labelmap().array.copy()
        change = remote.next_candidate(obj, 20)
        assert remote.last_candidate == (1, 3) and change.frames is not None
        assert not np.array_equal(remote.labelmap().array, original)
        r = client.post(f"/api/sessions/{sid}/objects/{obj}/candidate", json={"slice": 20})
        assert r.status_code == 200 and (r.json()["candidate"], r.json()["candidates"]) == (2, 3)
        remote.next_candidate(obj, 20)
        assert remote.last_candidate == (0, 3) and np.array_equal(remote.labelmap().array, original)
        # the choice is a mask prompt: the prompts download becomes a zip, its document alone stays JSON
        assert client.get(f"/api/sessions/{sid}/prompts").headers["content-type"] == "application/zip"
        doc = client.get(f"/api/sessions/{sid}/prompts", params={"document": "true"}).json()
        assert [sorted(p) for p in doc["objects"][0]["prompts"]] == [["box", "slice"], ["mask"]]
        r = client.post(f"/api/sessions/{sid}/objects/{obj}/candidate", json={"slice": 3})
        assert r.status_code == 400 and r.json()["error"] == "PromptError"


class _serve_volume:
    def __init__(self, client, tmp_path):
        from volsam.io import write_volume

        self.client, self.path = client, write_volume(_volume(), tmp_path / "scan.nii.gz")

    def __enter__(self):
        r = self.client.post(
            "/api/sessions", files={"file": ("scan.nii.gz", self.path.read_bytes())}, data={"modality": "MR"}
        )
        assert r.status_code == 201, r.text
        return r.json()["id"], r.json()["lease"]

    def __exit__(self, *exc):
        return False


def test_litemedsam_gives_four_candidates_its_answer_first():
    from volsam.engines import get as get_engine

    engine = get_engine("medsam-lite", device="cpu")
    frame = np.zeros((1, 96, 96), np.uint8)
    frame[0, 30:60, 20:70] = 200
    frame[0, 40:50, 35:55] = 60  # a dark hole: an ambiguous prompt
    embedding = engine.encode(frame)[0]
    candidates = engine.predict_candidates(embedding, box=(18, 28, 72, 62))
    answer = engine.predict(embedding, box=(18, 28, 72, 62))
    assert len(candidates) == 4 and np.array_equal(candidates[0].mask, answer.mask)
    assert candidates[0].score == pytest.approx(answer.score)
    assert len({c.mask.tobytes() for c in candidates}) == 4  # four different masks
