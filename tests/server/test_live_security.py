"""Against real server processes on 127.0.0.1: decompression bombs are refused without the server's peak memory
growing (``volsam serve`` with its default limits, the real LiteMedSAM), the token is checked before a 50 MB
body is received, HTTPS works with --ssl-certfile/--ssl-keyfile, and a soak of 200 create -> segment -> close
cycles leaves the memory near its baseline and nothing in the temporary folder."""

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

from tests.support.dicom import write_series
from tests.support.live_server import start_server, stop_server
from volsam.core.volume import Volume
from volsam.io import write_volume

MB = 2**20
TOKEN = "z" * 32


def _status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


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
    before = _status(proc.pid)

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
    after = _status(proc.pid)
    assert http.delete(f"/api/sessions/{sid}", headers=h).status_code == 204
    print(json.dumps({"upload_mb": sizes, "rss_mb_before": before, "rss_mb_after": after}))
    assert after["VmHWM"] - before["VmHWM"] < 300, (before, after)


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
        baseline = _status(proc.pid)["VmRSS"]
        for _ in range(200):
            cycle()
        after = _status(proc.pid)["VmRSS"]
        seconds = time.monotonic() - started
        assert http.get("/api/health").json()["sessions"] == 0
        left = sorted(str(p.relative_to(temp)) for p in temp.rglob("*"))
    finally:
        stop_server(proc)
    print(json.dumps({"soak_rss_mb_baseline": baseline, "soak_rss_mb_after_200": after, "seconds": round(seconds, 1)}))
    assert after - baseline < 150, (baseline, after)
    assert left == [], left
