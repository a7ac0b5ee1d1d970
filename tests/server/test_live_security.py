"""Against real server processes on 127.0.0.1: decompression bombs are refused without the server's peak memory
growing (``volsam serve`` with its default limits, the real LiteMedSAM), a PNG bomb and video bombs (a huge
frame, many frames) are refused by the readers' header checks with the server's peak memory bounded by what a
normal upload costs (and a server without the video check is caught by the same measurement), the token is
checked before a 50 MB body is received, HTTPS works with --ssl-certfile/--ssl-keyfile, and a soak of 200
create -> segment -> close cycles leaves the memory near its baseline and nothing in the temporary folder."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support.bombs import flat_video, png_bomb, resizing_video
from tests.support.dicom import write_series
from tests.support.live_server import start_server, stop_server
from tests.support.memory import memory_mb, reset_peak
from tests.support.video import disc_frames
from volsam.core.volume import Volume
from volsam.io import write_volume

MB = 2**20
TOKEN = "z" * 32


def _zeros_deflated(nbytes: int, wbits: int, head: bytes = b"") -> bytes:
    """``head`` then ``nbytes`` zero bytes, deflated (31: gzip, -15: raw, as in a zip), 2 GB -> ~2 MB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [packer.compress(head)]
    zero = b"\0" * MB
    for _ in range(nbytes // MB):
        parts.append(packer.compress(zero))
    parts.append(packer.flush())
    return b"".join(parts)


def nifti_bomb() -> bytes:
    """The issue's bomb: a ~2 MB .nii.gz whose header declares 1024 x 1024 x 512 float32 voxels, all present."""
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, 3, 1024, 1024, 512, 1, 1, 1, 1)
    struct.pack_into("<hh", h, 70, 16, 32)
    struct.pack_into("<8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<ffff", h, 108, 352.0, 1.0, 0.0, 0.0)
    h[344:348] = b"n+1\0"
    return _zeros_deflated(1024 * 1024 * 512 * 4, 31, bytes(h) + b"\0" * 4)


def npz_bomb() -> bytes:
    """A ~2 MB .npz whose ``imgs`` is 512 x 1024 x 1024 float32 zeros (2 GB when loaded)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (512, 1024, 1024)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("imgs.npy", "w", force_zip64=True) as fh:
            fh.write(head.getvalue())
            zero = b"\0" * MB
            for _ in range(2048):
                fh.write(zero)
    return buf.getvalue()


def dicom_bomb(tmp_path: Path) -> bytes:
    """A zip of one DICOM file whose Rows x Columns x NumberOfFrames declare 2 GB of int16 pixels."""
    ds = pydicom.dcmread(write_series(Volume(np.zeros((1, 8, 8), np.int16)), tmp_path / "one")[0])
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4096, 4096, 64
    ds.save_as(tmp_path / "bomb.dcm")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(tmp_path / "bomb.dcm", "series/bomb.dcm")
    return buf.getvalue()


def mask_bomb() -> str:
    """The issue's mask prompt: ~1 MB of gzip (base64) that inflates to 1 GB."""
    return base64.b64encode(_zeros_deflated(1024 * MB, 31)).decode()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """``volsam serve`` with its default limits (upload 512 MB, image 1024 MB), the real LiteMedSAM."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    url, proc = start_server([sys.executable, "-m", "volsam", "serve", "--device", "cpu"], log)
    yield url, proc
    stop_server(proc)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    array = np.zeros((1, 40, 40), np.int16)
    array[0, 10:30, 12:28] = 400
    return write_volume(Volume(array), tmp_path_factory.mktemp("tiny") / "tiny.nii.gz")


def test_bombs_are_refused_and_the_peak_memory_does_not_grow(serve, tiny, tmp_path):
    url, proc = serve
    http = httpx.Client(base_url=url, timeout=300)
    created = http.post("/api/sessions", files={"file": ("tiny.nii.gz", tiny.read_bytes())}, data={"modality": "CT"})
    assert created.status_code == 201, created.text
    sid, lease = created.json()["id"], created.json()["lease"]
    h = {"X-Session-Lease": lease}
    label = http.post(f"/api/sessions/{sid}/objects", json={}, headers=h).json()["label"]
    box = {"object": label, "type": "box", "slice": 0, "box": [12, 10, 27, 29]}
    assert http.post(f"/api/sessions/{sid}/prompts", json=box, headers=h).status_code == 200  # the model is loaded
    before = memory_mb(proc.pid)

    bombs = {
        "nifti 2 GB in 2 MB": ("bomb.nii.gz", nifti_bomb()),
        "npz 2 GB in 2 MB": ("bomb.npz", npz_bomb()),
        "dicom zip 2 GB declared": ("series.zip", dicom_bomb(tmp_path)),
    }
    sizes = {}
    for what, (name, blob) in bombs.items():
        sizes[what] = round(len(blob) / MB, 2)
        r = http.post("/api/sessions", files={"file": (name, blob)})
        assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", (what, r.text)
        assert "limit of 1,024 MB" in r.json()["detail"], r.text
    data = mask_bomb()
    sizes["mask 1 GB in"] = round(len(data) / MB, 2)
    mask = {"object": label, "type": "mask", "box": [0, 0, 0, 39, 39, 0], "data": data}
    r = http.post(f"/api/sessions/{sid}/prompts", json=mask, headers=h)
    assert r.status_code == 400 and "more than the 1600 bytes" in r.json()["detail"], r.text
    after = memory_mb(proc.pid)
    assert http.delete(f"/api/sessions/{sid}", headers=h).status_code == 204
    print(json.dumps({"upload_mb": sizes, "rss_mb_before": before, "rss_mb_after": after}))
    assert after["VmHWM"] - before["VmHWM"] < 300, (before, after)


# What a probe may cost the server beyond a normal upload of the same kind (peak RSS, VmHWM reset before each
# upload). Decoding the probes instead would cost far more: the PNG bomb 400 MB of pixels, the 8192 x 8192
# frame +132 MB in FFmpeg's decoder alone (measured in this process with PyAV), +150 MB in the control below.
PROBE_MARGIN_MB = 48


def _upload_cost(http: httpx.Client, pid: int, name: str, blob: bytes) -> tuple[httpx.Response, float]:
    """POST ``blob`` as a new session's file; (the answer, the server's peak RSS growth in MB during it)."""
    reset_peak(pid)  # VmHWM := VmRSS: the peak is measured from here
    before = memory_mb(pid)["VmHWM"]
    r = http.post("/api/sessions", files={"file": (name, blob)})
    return r, memory_mb(pid)["VmHWM"] - before


def _close(http: httpx.Client, created: httpx.Response) -> None:
    assert created.status_code == 201, created.text
    r = http.delete(f"/api/sessions/{created.json()['id']}", headers={"X-Session-Lease": created.json()["lease"]})
    assert r.status_code == 204


def test_a_png_bomb_is_refused_by_the_picture_reader_with_the_memory_bounded(serve):
    """A 0.4 MB PNG of 20000 x 20000 grey pixels, every row present (400 MB once decoded), to ``volsam serve``
    with its default limits: 413 with Pillow's decompression-bomb message (its header was parsed: the upload got
    past the byte limit to the picture reader), the server's peak RSS grows less than a normal 1024 x 1024 RGB
    PNG upload's + PROBE_MARGIN_MB, and the server then serves a normal upload."""
    url, proc = serve
    http = httpx.Client(base_url=url, timeout=300)
    picture = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(picture, format="PNG")
    _close(http, http.post("/api/sessions", files={"file": ("warm.png", picture.getvalue())}))  # lazy imports
    created, normal = _upload_cost(http, proc.pid, "photo.png", picture.getvalue())
    _close(http, created)
    bomb = png_bomb(20000, 20000)
    r, grown = _upload_cost(http, proc.pid, "bomb.png", bomb)
    print(json.dumps({"png_bomb_mb": round(len(bomb) / MB, 2), "normal_png_peak_mb": normal, "bomb_peak_mb": grown}))
    assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", r.text
    assert "Image size (400000000 pixels) exceeds limit of 178956970 pixels" in r.json()["detail"], r.text
    assert grown < normal + PROBE_MARGIN_MB, (normal, grown)
    _close(http, http.post("/api/sessions", files={"file": ("photo.png", picture.getvalue())}))
    assert http.get("/api/health").json()["sessions"] == 0


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A normal clip (320 x 240, 10 frames), one 8192 x 8192 frame (198 kB: 192 MB of RGB, 96 MB of YUV once
    decoded) and 65 frames of 1024 x 1024 (6.5 kB; their masks: 65 MB), all H.264 ``.mp4`` (the header holds the
    size and the frame count)."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "normal": flat_video(folder / "normal.mp4", 10, 240, 320),
        "huge frame": flat_video(folder / "huge.mp4", 1, 8192, 8192),
        "many frames": flat_video(folder / "many.mp4", 65, 1024, 1024),
    }


@pytest.fixture(scope="module")
def growing(tmp_path_factory) -> bytes:
    """A 115 kB VP8 ``.webm`` whose header and first 3 frames are 64 x 48, then a keyframe of 8192 x 8192."""
    parts = [disc_frames(3, (48, 64))[0], np.full((1, 8192, 8192), 120, np.uint8)]
    return resizing_video(tmp_path_factory.mktemp("growing") / "grow.webm", parts).read_bytes()


def _video_probes(url: str, pid: int, videos: dict[str, Path]) -> dict[str, tuple[httpx.Response, float]]:
    """Each video uploaded once (the normal one closed again, after a warm-up upload): answer and peak growth."""
    http = httpx.Client(base_url=url, timeout=300)
    blobs = {what: path.read_bytes() for what, path in videos.items()}
    _close(http, http.post("/api/sessions", files={"file": ("warm.mp4", blobs["normal"])}))  # lazy imports
    out = {what: _upload_cost(http, pid, "clip.mp4", blob) for what, blob in blobs.items()}
    _close(http, out["normal"][0])
    for what, (r, _grown) in out.items():
        if what != "normal" and r.status_code == 201:
            _close(http, r)
    return out


def _grow_midstream(url: str, pid: int, blob: bytes) -> tuple[int, dict, float, int]:
    """Open :func:`growing` as a session, ask for frame 3 (the 8192 x 8192 keyframe), close it: (the frame's
    status, its JSON answer, the server's peak RSS growth during the request in MB, the close's status)."""
    http = httpx.Client(base_url=url, timeout=300)
    created = http.post("/api/sessions", files={"file": ("grow.webm", blob)})
    assert created.status_code == 201, created.text  # the header and the probed frames are 64 x 48
    h = {"X-Session-Lease": created.json()["lease"]}
    base = f"/api/sessions/{created.json()['id']}"
    reset_peak(pid)
    before = memory_mb(pid)["VmHWM"]
    three = http.get(f"{base}/frames/3", headers=h)
    grown = memory_mb(pid)["VmHWM"] - before
    answer = three.json() if three.headers["content-type"].startswith("application/json") else {}
    return three.status_code, answer, grown, http.delete(base, headers=h).status_code


def test_video_bombs_are_refused_by_the_stream_check_with_the_memory_bounded(videos, growing, tmp_path):
    """``volsam serve --max-image-mb 64``: one 8192 x 8192 frame (192 MB as RGB) and 65 frames of 1024 x 1024
    (65 MB of masks, from the mp4 header's count) are 413s naming the sizes FFmpeg read from the stream (the
    upload reached the video check, not only the byte limit: both files are under 0.2 MB), the server's peak RSS
    grows less than a normal clip's upload + PROBE_MARGIN_MB (FFmpeg's probing decoder is held to one frame of
    the limit), and the server then serves a normal upload. A stream that grows to 8192 x 8192 at frame 3 (which
    the upload check cannot see) is a 400 when frame 3 is asked for, refused by the session reader's decoder
    within the same bound, and the session closes as usual."""
    args = [sys.executable, "-m", "volsam", "serve", "--device", "cpu", "--max-image-mb", "64"]
    url, proc = start_server(args, tmp_path / "serve.log")
    try:
        probes = _video_probes(url, proc.pid, videos)
        status, answer, grown_midstream, closed = _grow_midstream(url, proc.pid, growing)
        again = httpx.post(f"{url}/api/sessions", files={"file": ("clip.mp4", videos["normal"].read_bytes())})
        sessions = httpx.get(f"{url}/api/health").json()["sessions"]
    finally:
        stop_server(proc)
    print(json.dumps({what: {"status": r.status_code, "peak_mb": grown} for what, (r, grown) in probes.items()}))
    print(json.dumps({"grows mid-stream": {"status": status, "peak_mb": grown_midstream}}))
    assert status == 400 and answer["error"] == "InputError", (status, answer)
    assert "broken video data near frame" in answer["detail"], answer
    assert "refuses any picture over 1,048,576 pixels (4 x the video's 64x48 frames)" in answer["detail"], answer
    assert grown_midstream < probes["normal"][1] + PROBE_MARGIN_MB, (probes["normal"], grown_midstream)
    assert closed == 204 and sessions == 1  # the session closed; the one left is `again`
    normal = probes["normal"][1]
    for what, detail in [
        ("huge frame", "upload.mp4: one 8192x8192 RGB frame would take 192.00 MB, more than this server's image "),
        ("many frames", "upload.mp4: the masks of 65 frames of 1024x1024 would take 65.00 MB, more than this "),
    ]:
        r, grown = probes[what]
        assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", (what, r.text)
        assert r.json()["detail"].startswith(detail), r.text
        assert grown < normal + PROBE_MARGIN_MB, (what, normal, grown)
    assert again.status_code == 201, again.text


UNGUARDED_SERVER = textwrap.dedent(
    """
    import sys, uvicorn
    import volsam.server.app as app_module
    from tests.support.toy_engine import ToyEngine
    from volsam.server.config import ServerConfig
    from volsam.server.store import SessionStore
    from volsam.server.videos import VideoSession
    import volsam.io.video as video_module
    app_module.check_video = lambda path, limit: None  # the control: no stream check before the session opens
    video_module.GROWTH_LIMIT = 100_000  # ... and no decoder cap in the session's reader (its size check stays)
    store = SessionStore(
        8, 600.0,
        make_session=lambda volume, request: request.session(volume, ToyEngine()),
        make_video=lambda upload, request: VideoSession(upload, request, ToyEngine()),
    )
    app = app_module.create_app(ServerConfig(device="cpu", max_image_mb=64), store)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def test_the_video_probes_catch_a_server_without_the_guards(videos, growing, tmp_path):
    """The control of the test above: the same server code with ``check_video`` taken out opens the 8192 x
    8192 video as a session (its reader decodes the first picture to learn the stream's size), and without the
    reader's decoder cap the 8192 x 8192 keyframe of the growing stream is decoded before the size check refuses
    it: the same measurements see the peak grow by more than the bound."""
    script = tmp_path / "unguarded_server.py"
    script.write_text(UNGUARDED_SERVER)
    root = Path(__file__).resolve().parents[2]
    url, proc = start_server(["-", str(script)], tmp_path / "unguarded.log", env={"PYTHONPATH": str(root)})
    try:
        probes = _video_probes(url, proc.pid, {k: v for k, v in videos.items() if k != "many frames"})
        status, answer, grown_midstream, closed = _grow_midstream(url, proc.pid, growing)
    finally:
        stop_server(proc)
    print(json.dumps({what: {"status": r.status_code, "peak_mb": grown} for what, (r, grown) in probes.items()}))
    print(json.dumps({"grows mid-stream, uncapped": {"status": status, "peak_mb": grown_midstream}}))
    bound = probes["normal"][1] + PROBE_MARGIN_MB
    r, grown = probes["huge frame"]
    assert r.status_code == 201, r.text  # not refused: the check is what refuses it
    assert grown > bound, probes
    assert status == 400 and "frame 3 is 8192x8192 pixels but the video was opened as 64x48" in answer["detail"]
    assert grown_midstream > bound and closed == 204, (grown_midstream, bound)


def test_the_token_is_checked_before_a_50_mb_body_is_received(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    url, proc = start_server(
        [sys.executable, "-m", "volsam", "serve", "--device", "cpu", "--token-file", str(tmp_path / "token")],
        tmp_path / "serve.log",
    )
    try:
        host, port = url.removeprefix("http://").split(":")
        for auth in ("", "Authorization: Bearer wrong\r\n"):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                head = (
                    f"POST /api/sessions HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                    "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 52428800\r\n\r\n"
                )
                s.sendall(head.encode() + b"\0" * 65536)  # 64 kB of the 50 MB announced, then wait
                started = time.monotonic()
                answer = s.recv(4096).decode("latin-1")
                assert answer.startswith("HTTP/1.1 401"), answer
                assert time.monotonic() - started < 5
        r = httpx.post(f"{url}/api/sessions", content=b"x" * 600 * MB, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 413 and r.json()["error"] == "UploadTooLarge"
    finally:
        stop_server(proc)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_https_with_a_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    args = [sys.executable, "-m", "volsam", "serve", "--device", "cpu", "--ssl-certfile", str(cert)]
    url, proc = start_server([*args, "--ssl-keyfile", str(key)], tmp_path / "serve.log", scheme="https")
    try:
        assert httpx.get(f"{url}/api/health", verify=False).json()["status"] == "ok"
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https", "http") + "/api/health")
    finally:
        stop_server(proc)
    done = subprocess.run([*args], capture_output=True, text=True)
    assert done.returncode != 0 and "--ssl-certfile and --ssl-keyfile go together" in done.stderr


SOAK_SERVER = textwrap.dedent(
    """
    import sys, uvicorn
    from tests.support.toy_engine import ToyEngine
    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig
    from volsam.server.store import SessionStore
    store = SessionStore(8, 600.0, make_session=lambda volume, request: request.session(volume, ToyEngine()))
    app = create_app(ServerConfig(device="cpu"), store)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def test_soak_200_sessions_leave_memory_and_the_temporary_folder_as_they_were(tmp_path):
    """The server's own code in its own process (uvicorn, the toy engine so that 200 cycles take seconds)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "soak_server.py"
    script.write_text(SOAK_SERVER)
    root = Path(__file__).resolve().parents[2]
    url, proc = start_server(
        ["-", str(script)], tmp_path / "soak.log", env={"TMPDIR": str(temp), "PYTHONPATH": str(root)}
    )
    array = np.zeros((8, 64, 64), np.float32)
    array[2:6, 20:40, 16:44] = 300.0
    blob = write_volume(Volume(array), tmp_path / "scan.nii.gz").read_bytes()
    http = httpx.Client(base_url=url, timeout=60)

    def cycle() -> None:
        r = http.post("/api/sessions", files={"file": ("scan.nii.gz", blob)}, data={"modality": "MR"})
        assert r.status_code == 201, r.text
        h = {"X-Session-Lease": r.json()["lease"]}
        base = f"/api/sessions/{r.json()['id']}"
        label = http.post(f"{base}/objects", json={}, headers=h).json()["label"]
        box = {"object": label, "type": "box", "slice": 4, "box": [16, 20, 43, 39]}
        assert http.post(f"{base}/prompts", json=box, headers=h).json()["frames"] is not None
        assert http.get(f"{base}/labelmap", headers=h).status_code == 200
        assert http.delete(base, headers=h).status_code == 204

    try:
        started = time.monotonic()
        for _ in range(20):
            cycle()
        baseline = memory_mb(proc.pid)["VmRSS"]
        for _ in range(200):
            cycle()
        after = memory_mb(proc.pid)["VmRSS"]
        seconds = time.monotonic() - started
        assert http.get("/api/health").json()["sessions"] == 0
        left = sorted(str(p.relative_to(temp)) for p in temp.rglob("*"))
    finally:
        stop_server(proc)
    print(json.dumps({"soak_rss_mb_baseline": baseline, "soak_rss_mb_after_200": after, "seconds": round(seconds, 1)}))
    assert after - baseline < 150, (baseline, after)
    assert left == [], left
