"""The HTTP API end to end through FastAPI's test client (httpx), with the real LiteMedSAM weights on a
cropped lesion of the MNI152 T1: every endpoint, every refusal, and results equal to a local Session.

The server's sessions and the local one share one LiteMedSAM encoder (tests/support/shared_encoder.py, patched
where the server's requests load their engine): a slice of the same pixels is encoded once for the module, not
once per session; what each session prompts, decodes and keeps stays its own, and a slice whose pixels differ
(another normalisation, another grid) is encoded again. The whole session and the progress events run on the
lesion's 9 slices around its middle box's slice (the lesion on all of them; the walks reach both ends), the
refusals and uploads on the whole crop (its size is what the upload limit refuses)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

import volsam.jobs.request
from tests.support.lesion_slices import middle_slices
from tests.support.shared_encoder import SharedEncoder, sharing_litemedsam
from volsam.core.volume import Volume
from volsam.data.lesions import lesion_case
from volsam.io import read_volume, write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore
from volsam.session import Session

TOKEN = "t" * 32
BASE = "http://127.0.0.1:8000"  # the server answers to its own names only (Host header)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    lesion = lesion_case("dark-00", crop=True)
    path = write_volume(lesion.image, tmp_path_factory.mktemp("img") / "scan.nii.gz")
    return lesion, path


@pytest.fixture(scope="module")
def middle(tmp_path_factory):
    """The crop's 9 slices around its middle box's slice, as ``case``: (lesion, path of the upload)."""
    lesion = middle_slices(lesion_case("dark-00", crop=True), 4)
    return lesion, write_volume(lesion.image, tmp_path_factory.mktemp("middle") / "scan.nii.gz")


@pytest.fixture(scope="module", autouse=True)
def shared():
    with sharing_litemedsam(volsam.jobs.request, "get_engine") as shared:
        yield shared


def _client(**kw) -> TestClient:
    return TestClient(create_app(ServerConfig(device="cpu", **kw)), base_url=BASE, raise_server_exceptions=False)


def _open(client, path, headers=None, **form):
    with open(path, "rb") as fh:
        r = client.post("/api/sessions", files={"file": ("scan.nii.gz", fh)}, data=form, headers=headers or {})
    return r


@pytest.mark.slow
def test_a_whole_session_over_http_equals_a_local_session(middle, shared: SharedEncoder):
    lesion, path = middle
    client = _client()
    assert client.get("/api/health").json()["status"] == "ok"
    caps = client.get("/api/capabilities").json()
    assert {"medsam-lite", "sam2"} <= {e["name"] for e in caps["engines"]} and "cpu" in caps["devices"]
    assert "/api/sessions/{sid}/prompts" in client.get("/openapi.json").json()["paths"]

    r = _open(client, path, modality="MR")
    assert r.status_code == 201, r.text
    created = r.json()
    sid, lease = created["id"], created["lease"]
    assert created["geometry"]["size"] == list(lesion.image.size)
    h = {"X-Session-Lease": lease}

    label = client.post(f"/api/sessions/{sid}/objects", json={"name": "lesion"}, headers=h).json()["label"]
    b = lesion.middle_box
    box = {"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]}
    change = client.post(f"/api/sessions/{sid}/prompts", json=box, headers=h).json()
    assert change["labels"] == [label] and change["frames"][0] <= b.slice <= change["frames"][1]
    k, j, i = np.argwhere(lesion.label.array > 0)[0]
    point = {"object": label, "type": "point", "point": [int(i), int(j), int(k)], "positive": True}
    client.post(f"/api/sessions/{sid}/prompts", json=point, headers=h).raise_for_status()

    # the local session loads its engine as the server's did: the same LiteMedSAM, its embeddings shared
    lite = volsam.jobs.request.get_engine("medsam-lite", device="cpu")
    local = Session(read_volume(path), engine=lite, modality="MR")
    assert local.engine is shared.engine
    obj = local.add_object(name="lesion")
    local.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    local.add_point(obj, (int(i), int(j), int(k)), True)

    r = client.get(f"/api/sessions/{sid}/labelmap", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    remote = _nifti(r.content)
    assert np.array_equal(remote.array, local.labelmap().array)
    assert remote.same_grid(lesion.image)

    region = client.get(f"/api/sessions/{sid}/labelmap/region", params={"box": "0,0,0,9,9,4"}, headers=h)
    block = np.frombuffer(gzip.decompress(region.content), "<u2").reshape(5, 10, 10)
    assert np.array_equal(block, remote.array[:5, :10, :10])

    doc = client.get(f"/api/sessions/{sid}/prompts", headers=h).json()
    assert doc["objects"][0]["name"] == "lesion" and len(doc["objects"][0]["prompts"]) == 2

    assert client.post(f"/api/sessions/{sid}/undo", headers=h).status_code == 200
    client.post(f"/api/sessions/{sid}/redo", headers=h).raise_for_status()
    assert np.array_equal(_nifti(client.get(f"/api/sessions/{sid}/labelmap", headers=h).content).array, remote.array)

    # a queued mask prompt for a second object, then one run
    second = client.post(f"/api/sessions/{sid}/objects", json={"label": 7, "name": "other"}, headers=h).json()
    m = np.ones((1, 3, 3), np.uint8)
    mask = {
        "object": 7, "type": "mask", "box": [2, 2, b.slice, 4, 4, b.slice], "run": False,
        "data": base64.b64encode(gzip.compress(m.tobytes())).decode(),
    }  # fmt: skip
    assert second["label"] == 7
    assert client.post(f"/api/sessions/{sid}/prompts", json=mask, headers=h).json()["box"] is None
    assert 7 in client.post(f"/api/sessions/{sid}/run", headers=h).json()["labels"]
    assert client.get(f"/api/sessions/{sid}/prompts", headers=h).headers["content-type"] == "application/zip"
    assert client.delete(f"/api/sessions/{sid}/objects/7", headers=h).json()["labels"] == [7]

    described = client.get(f"/api/sessions/{sid}", headers=h).json()
    assert [o["label"] for o in described["objects"]] == [label]
    image = _nifti(client.get(f"/api/sessions/{sid}/image", headers=h).content)
    assert np.allclose(image.array, lesion.image.array)

    assert client.delete(f"/api/sessions/{sid}", headers=h).status_code == 204
    assert client.get(f"/api/sessions/{sid}", headers=h).status_code == 404


def _nifti(blob: bytes):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.nii.gz"
        p.write_bytes(blob)
        return read_volume(p)


def test_progress_events_stream(middle):
    lesion, path = middle
    client = _client()
    created = _open(client, path, modality="MR").json()
    sid, lease = created["id"], created["lease"]
    h = {"X-Session-Lease": lease}
    label = client.post(f"/api/sessions/{sid}/objects", json={}, headers=h).json()["label"]
    b = lesion.middle_box
    client.post(
        f"/api/sessions/{sid}/prompts",
        json={"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]},
        headers=h,
    ).raise_for_status()
    r = client.get(f"/api/sessions/{sid}/events", params={"follow": "false"}, headers=h)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "busy" and kinds[-1] == "idle" and "frame" in kinds
    frames = {e["index"] for e in events if e["type"] == "frame"}
    assert b.slice in frames and len(frames) > 3
    ids = [int(line[4:]) for line in r.text.splitlines() if line.startswith("id: ")]
    assert ids == list(range(len(events)))
    later = client.get(f"/api/sessions/{sid}/events", params={"follow": "false", "after": 2}, headers=h)
    assert client.get(f"/api/sessions/{sid}/events", params={"lease": lease}).status_code == 403  # header only
    assert later.text.count("data: ") == len(events) - 2
    client.delete(f"/api/sessions/{sid}", headers=h)
    assert len(client.app.state.store) == 0


def test_refusals(case, tmp_path):
    lesion, path = case
    client = _client(max_upload_mb=0.05, max_sessions=1)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with open(bad, "rb") as fh:
        r = client.post("/api/sessions", files={"file": ("notes.txt", fh)})
    assert r.status_code == 400 and "unsupported upload" in r.json()["detail"]
    assert r.json()["error"] == "InputError"
    r = _open(client, path)  # the crop is ~0.1 MB compressed
    assert r.status_code == 413 and r.json()["error"] == "UploadTooLarge"

    def chunked():  # no Content-Length: the limit must hold while the body streams in
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="a.nii.gz"\r\n\r\n'
        for _ in range(200):
            yield b"\0" * 4096
        yield b"\r\n--xyz--\r\n"

    r = client.post("/api/sessions", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and "limit" in r.json()["detail"] and r.json()["error"] == "UploadTooLarge"

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.dcm", b"x")
    with open(evil, "rb") as fh:
        r = client.post("/api/sessions", files={"file": ("series.zip", fh)})
    assert r.status_code == 400 and "unsafe zip entry" in r.json()["detail"]
    with open(bad, "rb") as fh:
        r = client.post("/api/sessions", files={"file": ("scan.nii.gz", io.BytesIO(b""))})
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    r = client.post("/api/sessions", files={"file": ("a.nii.gz", b"x")}, data={"model": "../../etc/weights"})
    assert r.status_code == 400 and "not a path" in r.json()["detail"]


def test_token_lease_limits_and_expiry(case, monkeypatch):
    lesion, path = case
    client = _client(token=TOKEN, max_sessions=1)
    r = client.get("/api/health")
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/health", headers=auth).status_code == 200
    r = client.get("/api/health", params={"access_token": TOKEN})  # tokens never travel in URLs
    assert r.status_code == 401 and "not accepted in URLs" in r.json()["detail"]
    created = _open(client, path, headers=auth).json()
    sid = created["id"]
    r = _open(client, path, headers=auth)
    assert r.status_code == 503 and r.json()["error"] == "ServerFull"  # one session at most
    r = client.get(f"/api/sessions/{sid}", headers=auth)
    assert r.status_code == 403 and r.json()["error"] == "LeaseRefused"  # no lease
    wrong = auth | {"X-Session-Lease": "x" * 32}
    assert client.get(f"/api/sessions/{sid}", headers=wrong).status_code == 403
    h = auth | {"X-Session-Lease": created["lease"]}
    r = client.post(f"/api/sessions/{sid}/prompts", json={"object": 9, "type": "point", "point": [1, 1, 1]}, headers=h)
    assert r.status_code == 400 and "9" in r.json()["detail"] and r.json()["error"] == "PromptError"
    r = client.post(f"/api/sessions/{sid}/prompts", json={"object": 1, "type": "blob"}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "InputError"
    assert r.json()["detail"].startswith("body.type: Input should be 'box'") and "\n" not in r.json()["detail"]
    r = client.post(f"/api/sessions/{sid}/prompts", json={"type": "point"}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == "body.object: Field required"
    r = client.get(f"/api/sessions/{sid}/labelmap/region", params={"box": "0,0,0,999,1,1"}, headers=h)
    assert r.status_code == 400 and "not inside" in r.json()["detail"] and r.json()["error"] == "InputError"

    entry = client.app.state.store.get(sid, created["lease"])
    monkeypatch.setattr(entry.session, "undo", lambda: 1 / 0)
    r = client.post(f"/api/sessions/{sid}/undo", headers=h)
    assert r.status_code == 500 and "Traceback" not in r.text and "ZeroDivisionError" in r.text
    assert r.json() == {"detail": "internal error (ZeroDivisionError); see the server log", "error": "internal"}

    client.app.state.store.idle_timeout_s = 0.0  # everything idle is now expired
    r = client.get(f"/api/sessions/{sid}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "SessionNotFound"
    assert _open(client, path, headers=auth).status_code == 201  # the slot was freed
    assert json.loads(client.get("/api/health", headers=auth).text)["sessions"] == 1


@pytest.mark.parametrize("kind", ["dicom-zip", "nrrd", "mha"])
def test_uploads_of_every_format_keep_the_geometry(case, tmp_path, kind):
    from tests.support.dicom import write_series

    lesion, _ = case
    image = lesion.image.with_array(lesion.image.array.astype(np.int16))
    if kind == "dicom-zip":
        paths = write_series(image, tmp_path / "series")
        upload = tmp_path / "series.zip"
        with zipfile.ZipFile(upload, "w") as zf:
            for p in paths:
                zf.write(p, f"series/{p.name}")
    else:
        upload = write_volume(image, tmp_path / f"scan.{kind}")
    client = _client()
    with open(upload, "rb") as fh:
        r = client.post("/api/sessions", files={"file": (upload.name, fh)}, data={"modality": "MR"})
    assert r.status_code == 201, r.text
    geometry = r.json()["geometry"]
    assert geometry["size"] == list(image.size)
    assert np.allclose(geometry["spacing"], image.spacing, atol=1e-4)
    assert np.allclose(geometry["origin"], image.origin, atol=1e-3)


def test_dicom_seg_download_for_a_dicom_upload(case, tmp_path):
    """A DICOM series uploaded as .zip gives the label map as a DICOM-SEG that reads back onto the series
    exactly as the NIfTI download; other images get 409 with the reason."""
    from tests.support.dicom import write_series
    from volsam.io.dicom_seg import read_dicom_seg

    lesion, path = case
    b = lesion.middle_box
    keep = slice(b.slice - 1, b.slice + 2)  # 3 slices: one real LiteMedSAM run of a few seconds
    grid = lesion.image
    image = Volume(grid.array[keep].astype(np.int16), grid.spacing, grid.origin, grid.direction)
    paths = write_series(image, tmp_path / "series", modality="MR")
    upload = tmp_path / "series.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        for p in paths:
            zf.write(p, f"series/{p.name}")
    client = _client()
    with open(upload, "rb") as fh:
        created = client.post("/api/sessions", files={"file": ("series.zip", fh)}, data={"modality": "MR"}).json()
    assert created["geometry"]["dicom_seg"] is True
    sid, h = created["id"], {"X-Session-Lease": created["lease"]}
    url = f"/api/sessions/{sid}/labelmap"
    r = client.get(url, params={"format": "dicom-seg"}, headers=h)
    assert r.status_code == 409 and "no object yet" in r.json()["detail"] and r.json()["error"] == "NoDicomSource"
    label = client.post(f"/api/sessions/{sid}/objects", json={"name": "lesion"}, headers=h).json()["label"]
    box = {"object": label, "type": "box", "slice": 1, "box": [b.u0, b.v0, b.u1, b.v1]}
    client.post(f"/api/sessions/{sid}/prompts", json=box, headers=h).raise_for_status()

    r = client.get(url, params={"format": "dicom-seg"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom" and "labelmap.dcm" in r.headers["content-disposition"]
    (tmp_path / "seg.dcm").write_bytes(r.content)
    seg = read_dicom_seg(tmp_path / "seg.dcm", read_volume(tmp_path / "series"))
    nifti = _nifti(client.get(url, headers=h).content)
    assert nifti.array.any() and np.array_equal(seg.array, nifti.array)
    assert seg.meta["labels"] == {label: "lesion"}
    r = client.get(url, params={"format": "png"}, headers=h)  # a PNG mask is for 2D images only
    assert r.status_code == 400 and "for 2D images" in r.json()["detail"], r.text
    assert client.get(url, params={"format": "jpeg"}, headers=h).status_code == 422

    r = _open(client, path, modality="MR")  # a NIfTI upload: no series to reference
    assert r.json()["geometry"]["dicom_seg"] is False
    other = client.get(
        f"/api/sessions/{r.json()['id']}/labelmap",
        params={"format": "dicom-seg"},
        headers={"X-Session-Lease": r.json()["lease"]},
    )
    assert other.status_code == 409 and other.json()["error"] == "NoDicomSource"  # raised by io's check_source
    assert other.json()["detail"].startswith("labelmap.dcm: a DICOM-SEG output needs a DICOM series as input")
    assert "this image is nifti" in other.json()["detail"]


def test_a_store_brought_by_a_test_is_used_even_when_empty():
    store = SessionStore(max_sessions=1, idle_timeout_s=1.0)
    assert len(store) == 0 and create_app(ServerConfig(device="cpu"), store).state.store is store


@pytest.mark.parametrize(
    ("form", "line", "error"),
    [
        ({"axis": "q"}, "axis 'q' is not one of i, j, k, axial, coronal, sagittal", "SettingsError"),
        ({"modality": "XR"}, "modality 'XR' is not one of auto, CT, MR, PET, other", "SettingsError"),
        ({"engine": "nope"}, "unknown engine 'nope'", "EngineError"),
    ],
)
def test_session_options_are_refused_like_the_command_line_before_the_upload_is_read(case, form, line, error):
    _, path = case
    store = SessionStore(max_sessions=2, idle_timeout_s=60.0)
    client = TestClient(create_app(ServerConfig(device="cpu"), store), base_url=BASE, raise_server_exceptions=False)
    r = _open(client, path, **form)
    assert r.status_code == 400 and r.json()["error"] == error and r.json()["detail"].startswith(line), r.text
    assert len(store) == 0
