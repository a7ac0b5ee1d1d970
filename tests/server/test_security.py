"""The probes of docs/security.md, in process (toy-engine sessions: milliseconds each): Host and Origin checks,
the token before the body, 413 for every oversized body, NaN/Infinity, the page's headers, the docs behind the
token, no model-name oracle, no server path in any answer, 4D uploads with ``channel``, the session's modality,
mask data that would inflate past their box."""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import PromptError
from volsam.core.volume import Volume
from volsam.io import write_volume
from volsam.server.app import create_app
from volsam.server.bodies import inflate_at_most
from volsam.server.config import ServerConfig
from volsam.server.guard import Guard
from volsam.server.store import SessionStore

TOKEN = "k" * 32
BASE = "http://127.0.0.1:8000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _toy(volume, request):
    return request.session(volume, ToyEngine())


def _client(base: str = BASE, **kw) -> TestClient:
    made = []

    def make(volume, request):
        made.append(request)
        return _toy(volume, request)

    store = SessionStore(max_sessions=4, idle_timeout_s=600.0, make_session=make)
    client = TestClient(
        create_app(ServerConfig(device="cpu", **kw), store), base_url=base, raise_server_exceptions=False
    )
    client.requests = made  # the SegmentRequests the server built
    return client


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> bytes:
    array = np.zeros((6, 24, 20), np.float32)
    array[1:5, 6:14, 4:12] = 200.0
    return write_volume(Volume(array), tmp_path_factory.mktemp("scan") / "scan.nii.gz").read_bytes()


def _open(client, blob, headers=None, name="scan.nii.gz", **form):
    return client.post("/api/sessions", files={"file": (name, blob)}, data=form, headers=headers or {})


# -- 12: Host and Origin ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "allowed", "status"),
    [
        ("127.0.0.1:8000", [], 200),
        ("localhost:8000", [], 200),
        ("[::1]:8000", [], 200),
        ("rebind.attacker.example:8000", [], 403),  # DNS rebinding: the attacker's name, pointed at 127.0.0.1
        ("10.9.8.7:8000", [], 403),  # an address this request did not come in on
        ("seg.lab.example", ["seg.lab.example"], 200),
        ("anything.example", ["*"], 200),
    ],
)
def test_the_server_answers_only_to_its_own_names(host, allowed, status):
    r = _client(allowed_hosts=allowed).get("/api/health", headers={"Host": host})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "Forbidden" and "--allowed-host" in r.json()["detail"]


def test_another_sites_page_cannot_create_or_close_sessions(scan):
    client = _client()
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"):
        r = _open(client, scan, headers={"Origin": origin})
        assert r.status_code == 403 and r.json()["error"] == "Forbidden", (origin, r.text)
    assert len(client.app.state.store) == 0 and client.requests == []  # nothing was created (nor read)
    created = _open(client, scan, headers={"Origin": BASE}).json()  # the page's own origin
    h = {"X-Session-Lease": created["lease"]}
    assert (
        client.delete(f"/api/sessions/{created['id']}", headers=h | {"Origin": "http://evil.example"}).status_code
        == 403
    )
    assert (
        client.get(f"/api/sessions/{created['id']}", headers=h | {"Origin": "http://evil.example"}).status_code == 200
    )
    assert (
        _open(
            _client(cors_origins=["https://viewer.example"]), scan, headers={"Origin": "https://viewer.example"}
        ).status_code
        == 201
    )


def test_the_page_and_every_answer_carry_the_browser_protections():
    client = _client(token=TOKEN)
    for path, headers in (("/", {}), ("/api/health", AUTH), ("/api/health", {}), ("/docs", AUTH)):
        r = client.get(path, headers=headers)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"


# -- 10: the token before the body, 413 always ---------------------------------------------------------------
def _asgi(config: ServerConfig, headers: dict[str, str], body_chunks: int) -> tuple[int, int]:
    """(status, body messages the app asked for) when ``Guard`` meets a POST /api/sessions."""
    asked = {"n": 0}

    async def receive():
        asked["n"] += 1
        more = asked["n"] < body_chunks
        return {"type": "http.request", "body": b"\0" * (1 << 20), "more_body": more}

    sent = []

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"There was an error parsing the body"})

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/sessions",
        "headers": [(k.lower().encode(), v.encode()) for k, v in ({"Host": "127.0.0.1:8000"} | headers).items()],
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(Guard(app, config)(scope, receive, send))
    return sent[0]["status"], asked["n"]


def test_the_token_is_checked_before_one_byte_of_the_body_is_read():
    config = ServerConfig(token=TOKEN, max_upload_mb=1)
    assert _asgi(config, {"Content-Length": str(50 << 20)}, body_chunks=50) == (401, 0)
    assert _asgi(config, {"Authorization": "Bearer wrong"}, body_chunks=50) == (401, 0)


def test_every_body_over_the_limit_gets_413_declared_or_streamed():
    config = ServerConfig(token=TOKEN, max_upload_mb=1)
    assert _asgi(config, AUTH | {"Content-Length": str(50 << 20)}, body_chunks=50) == (413, 0)  # not read at all
    status, read = _asgi(config, AUTH, body_chunks=50)  # chunked: stopped just past limit + framing
    assert (status, read) == (413, 3)  # the app's own "error parsing the body" (400) is replaced


def test_an_upload_streamed_past_the_limit_gets_413_not_400():
    client = _client(max_upload_mb=1)

    def body():
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.nii.gz"\r\n\r\n'
        for _ in range(40):
            yield b"\1" * 65536
        yield b"\r\n--xyz--\r\n"

    r = client.post("/api/sessions", content=body(), headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and r.json()["error"] == "UploadTooLarge", r.text
    r = client.post("/api/sessions/x/prompts", content=b"[" + b"1," * (17 << 20) + b"1]")  # 34 MB of JSON
    assert r.status_code == 413


# -- 11: NaN / Infinity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_numbers_are_422(scan, constant):
    client = _client()
    created = _open(client, scan).json()
    h = {"X-Session-Lease": created["lease"], "Content-Type": "application/json"}
    base = f"/api/sessions/{created['id']}"
    bodies = [
        (f"{base}/objects", f'{{"label": {constant}}}'),
        (f"{base}/objects", f'{{"name": {constant}}}'),
        (f"{base}/prompts", f'{{"object": {constant}, "type": "point", "point": [1, 1, 1]}}'),
        (f"{base}/prompts", f'{{"object": 1, "type": "point", "point": [1, {constant}, 1]}}'),
        (f"{base}/prompts", f'{{"object": 1, "type": "box", "slice": {constant}, "box": [1, 1, 2, 2]}}'),
        (f"{base}/prompts", f'{{"object": 1, "type": "point", "point": [1, 1, 1], "positive": {constant}}}'),
        (f"{base}/prompts", f'{{"object": 1, "type": "mask", "box": [0, 0, 0, 1, 1, 1], "data": {constant}}}'),
    ]
    for url, body in bodies:
        r = client.post(url, content=body, headers=h)
        assert r.status_code == 422 and r.json()["error"] == "InputError", (body, r.text)


# -- 13: the docs, offline and behind the token ---------------------------------------------------------------
def test_the_docs_come_from_the_package_and_need_the_token():
    client = _client(token=TOKEN)
    for path in ("/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    page = client.get("/docs", headers=AUTH).text
    assert "cdn" not in page.lower() and "<script>" not in page  # no CDN, no inline script
    assert client.get("/redoc", headers=AUTH).status_code == 404
    r = client.post("/api/login", headers=AUTH)  # a browser's way in: an HttpOnly, SameSite=Strict cookie
    assert r.status_code == 204 and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower() and TOKEN not in r.headers["set-cookie"]
    assert client.get("/docs").status_code == 200  # the cookie opens the docs...
    assert client.get("/api/health").status_code == 401  # ...and nothing else
    assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200  # the page


# -- 14: no oracle, no leaks ----------------------------------------------------------------------------------
def test_model_names_are_never_looked_up_in_the_working_directory(scan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "present.pth").write_bytes(b"not weights")
    client = _client()
    answers = {}
    for name in ("present.pth", "absent.pth"):
        r = _open(client, scan, model=name)
        assert r.status_code == 400 and r.json()["error"] == "ModelNotFound", r.text
        answers[name] = r.json()["detail"].replace(name, "NAME")
    assert answers["present.pth"] == answers["absent.pth"]  # the same answer whether the file exists or not
    for name in ("../x", "/etc/passwd", ".hidden", "a\\b", "x" * 101):
        assert _open(client, scan, model=name).status_code in (400, 422), name
    assert client.requests == []


def test_models_dir_offers_its_models_and_nothing_outside_it(scan, tmp_path):
    (tmp_path / "tuned.pth").write_bytes(b"weights")
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "config.json").write_text("{}")
    client = _client(models_dir=tmp_path)
    caps = client.get("/api/capabilities").json()
    assert {"name": "tuned", "engine": "medsam-lite"} in caps["local_models"]
    assert {"name": "big", "engine": "sam2"} in caps["local_models"]
    assert _open(client, scan, model="tuned", modality="MR").status_code == 201
    assert client.requests[-1].model == str(tmp_path / "tuned.pth")
    r = _open(client, scan, model="nothere")
    assert r.status_code == 400 and "tuned" in r.json()["detail"] and str(tmp_path) not in r.text


def test_no_answer_names_a_server_folder(scan, tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "cache"))  # no SAM 2 model installed there
    client = _client(models_dir=tmp_path)
    probes = [
        _open(client, scan[: len(scan) // 2]),  # truncated NIfTI
        _open(client, b"PK\x03\x04 broken", name="series.zip"),
        _open(client, b"\x93NUMPY broken", name="a.npz"),
        _open(client, scan, engine="sam2", model="sam2.1-hiera-tiny"),  # in the catalogue, not installed
    ]
    folders = [tempfile.gettempdir(), str(Path.home()), os.getcwd(), str(tmp_path)]
    assert probes[3].json()["error"] == "ModelNotFound"
    for r in probes:
        assert 400 <= r.status_code < 500, r.text
        assert not [f for f in folders if f in r.text], r.text
    assert probes[0].json()["detail"].startswith("upload.nii.gz: ")  # named as the client sent it, no folder


# -- 15: 4D uploads, the session's modality ------------------------------------------------------------------
def test_4d_uploads_take_channel_and_the_geometry_names_the_modality(tmp_path):
    import SimpleITK as sitk

    volumes = [sitk.GetImageFromArray(np.full((3, 8, 10), c * 100, np.int16)) for c in range(3)]  # [k, j, i]
    sitk.WriteImage(sitk.JoinSeries(volumes), str(tmp_path / "four.nii.gz"))  # 4D: three 3D volumes
    blob = (tmp_path / "four.nii.gz").read_bytes()
    client = _client()
    r = _open(client, blob)
    assert r.status_code == 400 and "channel=0..2" in r.json()["detail"]
    r = _open(client, blob, channel="2", modality="MR")
    assert r.status_code == 201, r.text
    geometry = r.json()["geometry"]
    assert geometry["size"] == [10, 8, 3] and geometry["channel"] == 2 and geometry["modality"] == "MR"
    assert _open(client, blob, channel="5").json()["detail"].endswith("(0..2)")
    auto = _open(client, blob, channel="1").json()["geometry"]
    assert auto["modality"] in ("CT", "MR") and auto["dicom_modality"] is None  # what "auto" chose


# -- 9: mask data --------------------------------------------------------------------------------------------
def test_mask_data_stop_inflating_past_their_box(scan):
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = b"".join(bomb.compress(b"\0" * (1 << 20)) for _ in range(256)) + bomb.flush()  # 256 MB in ~250 kB
    with pytest.raises(PromptError, match="more than the 8 bytes"):
        inflate_at_most(packed, 8)
    assert inflate_at_most(gzip.compress(b"ab") + gzip.compress(b"cd"), 4) == b"abcd"  # several members
    for broken in (gzip.compress(b"abcd")[:-6], b"not gzip", gzip.compress(b"ab") + b"junk"):
        with pytest.raises(PromptError):
            inflate_at_most(broken, 4)
    client = _client()
    created = _open(client, scan).json()
    h = {"X-Session-Lease": created["lease"]}
    base = f"/api/sessions/{created['id']}"
    label = client.post(f"{base}/objects", json={}, headers=h).json()["label"]
    body = {"object": label, "type": "mask", "box": [0, 0, 0, 3, 3, 1], "data": base64.b64encode(packed).decode()}
    r = client.post(f"{base}/prompts", json=body, headers=h)
    assert r.status_code == 400 and "more than the 32 bytes" in r.json()["detail"]
