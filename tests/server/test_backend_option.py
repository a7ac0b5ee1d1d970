"""The server's ``backend`` (issue 21): ``volsam serve --backend`` refuses what ``volsam segment --backend``
refuses with the same line; sessions run on the server's default unless they ask for another; the answers say
what runs the encoder. Sessions here are real LiteMedSAM sessions on a cropped lesion; the two backends' masks
are compared on its 7 slices around the box's (3 walked each way, the lesion on all of them) rather than its 22:
each backend encodes 7 slices instead of about 16."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support.lesion_slices import middle_slices
from volsam.cli.main import run
from volsam.core.errors import SettingsError
from volsam.data.lesions import lesion_case
from volsam.engines.backends import openvino_available
from volsam.io import write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.models import session_backend, takes_backend
from volsam.server.store import SessionStore

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    lesion = lesion_case("dark-00", crop=True)
    return lesion, write_volume(lesion.image, tmp_path_factory.mktemp("img") / "scan.nii.gz")


@pytest.fixture(scope="module")
def middle(tmp_path_factory):
    """The lesion's 7 slices around its middle box's slice: (image, box on it, path of the upload)."""
    lesion = middle_slices(lesion_case("dark-00", crop=True), 3)
    path = write_volume(lesion.image, tmp_path_factory.mktemp("middle") / "scan.nii.gz")
    return lesion.image, lesion.middle_box, path


def _client(store: SessionStore | None = None, **config) -> TestClient:
    app = create_app(ServerConfig(device="cpu", **config), store)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def _open(client: TestClient, path, **form):
    with open(path, "rb") as fh:
        return client.post("/api/sessions", files={"file": ("scan.nii.gz", fh)}, data={"modality": "MR", **form})


def test_serve_refuses_a_bad_backend_with_the_segment_line(capsys, case, tmp_path):
    _, path = case
    code, out, err = run(["serve", "--backend", "onnx", "--port", "8000"]), *capsys.readouterr()
    segment = run(["segment", str(path), "-o", str(tmp_path / "x.nii.gz"), "--box", "1,1,5,5", "--slice", "0",
                   "--backend", "onnx"])  # fmt: skip
    _, segment_err = capsys.readouterr()
    assert code == segment == 2 and out == ""
    assert err == segment_err == "volsam: error: unknown backend 'onnx'; choose one of auto, torch, openvino\n"
    with pytest.raises(SettingsError, match="unknown backend 'onnx'"):
        ServerConfig(backend="onnx")


def test_a_session_asking_a_bad_backend_is_refused_before_the_upload_is_read(case):
    _, path = case
    store = SessionStore(max_sessions=2, idle_timeout_s=60.0)
    r = _open(_client(store), path, backend="fast")
    assert r.status_code == 400 and r.json() == {
        "detail": "unknown backend 'fast'; choose one of auto, torch, openvino",
        "error": "SettingsError",
    }
    assert len(store) == 0


@pytest.mark.slow
def test_sessions_run_on_the_server_default_or_the_backend_they_ask_for(middle):
    image, b, path = middle
    assert _client().get("/api/capabilities").json()["default_backend"] == "auto"
    client = _client(backend="torch")
    caps = client.get("/api/capabilities").json()
    assert caps["default_backend"] == "torch" and caps["backends"] == ["auto", "torch", "openvino"]

    created = _open(client, path).json()
    assert created["backend"] == "torch", created
    h = {"X-Session-Lease": created["lease"]}
    described = client.get(f"/api/sessions/{created['id']}", headers=h).json()
    assert described["backend"] == "torch" and described["device"] == "cpu" and described["engine"] == "medsam-lite"

    if not openvino_available():
        pytest.skip("openvino is not installed: only the torch default can be checked")
    other = _open(client, path, backend="openvino").json()
    assert other["backend"] == "openvino", other
    h2 = {"X-Session-Lease": other["lease"]}
    assert client.get(f"/api/sessions/{other['id']}", headers=h2).json()["backend"] == "openvino"

    # the same box in both sessions: OpenVINO runs fp32, so the masks agree
    ni, nj, nk = image.size
    masks = []
    for sid, head in ((created["id"], h), (other["id"], h2)):
        label = client.post(f"/api/sessions/{sid}/objects", json={}, headers=head).json()["label"]
        body = {"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]}
        change = client.post(f"/api/sessions/{sid}/prompts", json=body, headers=head)
        assert change.status_code == 200, change.text
        region = client.get(
            f"/api/sessions/{sid}/labelmap/region", headers=head, params={"box": f"0,0,0,{ni - 1},{nj - 1},{nk - 1}"}
        )
        masks.append(np.frombuffer(gzip.decompress(region.content), "<u2") > 0)
    torch_mask, openvino_mask = masks
    assert torch_mask.sum() > 100
    assert 2 * (torch_mask & openvino_mask).sum() / (torch_mask.sum() + openvino_mask.sum()) >= 0.99


def test_the_server_default_goes_only_to_engines_that_offer_the_choice():
    assert takes_backend("medsam-lite") and not takes_backend("no-such-engine")
    assert session_backend("medsam-lite", None, "torch") == "torch"
    assert session_backend("medsam-lite", "openvino", "torch") == "openvino"  # the client's choice wins
    assert session_backend("no-such-engine", None, "torch") == "auto"  # the request refuses the engine itself
    with pytest.raises(SettingsError, match="unknown backend 'gpu'"):
        session_backend("medsam-lite", "gpu", "auto")
    for engine in ("sam", "medsam", "sam2", "sam2-image"):  # whichever of them take the option today
        assert session_backend(engine, None, "openvino") == ("openvino" if takes_backend(engine) else "auto")
