"""2D images through the server (in process, FastAPI's test client): PNG / JPEG / TIFF / 2D DICOM uploads are
one-slice sessions; a box and clicks on slice 0; the mask PNG download is the file ``volsam segment photo.png
-o mask.png`` writes (the real LiteMedSAM on a lesion slice: byte for byte the same label PNG); the colour picture
as NIfTI RGB24 on the grey image's grid; refusals: a PNG bomb (413 from its header, peak memory unchanged), a
picture whose content is not what its name says, a PNG mask of a 3D session."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.data import get_testdata_file

from tests.support.bombs import png_bomb
from tests.support.memory import memory_mb, reset_peak
from tests.support.toy_engine import ToyEngine
from volsam.core.volume import Volume, luma
from volsam.io import write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.outputs import NIFTI1_HEADER
from volsam.server.store import SessionStore

BASE = "http://127.0.0.1:8000"
H, W = 40, 48


def _photo() -> np.ndarray:
    """An orange disc (centre row 19, column 22) on a blue-green background, RGB uint8."""
    yy, xx = np.mgrid[:H, :W]
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (20, 90, 120)
    rgb[(yy - 19) ** 2 + (xx - 22) ** 2 <= 49] = (250, 180, 90)
    return rgb


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _client(engine=None, **config) -> TestClient:
    if engine is None:
        store = None
    else:
        store = SessionStore(4, 600.0, make_session=lambda volume, request: request.session(volume, engine))
    app = create_app(ServerConfig(device="cpu", **config), store)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def _open(client, name, blob):
    r = client.post("/api/sessions", files={"file": (name, blob)})
    assert r.status_code == 201, r.text
    h = {"X-Session-Lease": r.json()["lease"]}
    base = f"/api/sessions/{r.json()['id']}"
    label = client.post(f"{base}/objects", json={"name": "disc"}, headers=h).json()["label"]
    return base, h, label, r.json()["geometry"]


def _mask(client, base, h) -> np.ndarray:
    r = client.get(f"{base}/labelmap", params={"format": "png"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    assert r.headers["content-disposition"] == 'attachment; filename="mask.png"'
    return np.asarray(Image.open(io.BytesIO(r.content)))


def test_png_jpeg_tiff_and_dicom_uploads_are_one_slice_sessions(tmp_path):
    client = _client(ToyEngine())
    rgb = _photo()
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format="JPEG", quality=95)
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, (luma(rgb[None])[0].astype(np.uint16) * 200))  # 16-bit grey
    dicom = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # one 128 x 128 CT slice
    uploads = {
        "photo.png": (_png(rgb), (W, H, 1), True),
        "photo.JPG": (jpeg.getvalue(), (W, H, 1), True),
        "scan.tiff": (tiff.getvalue(), (W, H, 1), False),
        "slice.dcm": (dicom, (128, 128, 1), False),
    }
    for name, (blob, size, colour) in uploads.items():
        base, h, _, geometry = _open(client, name, blob)
        assert geometry["size"] == list(size) and geometry["is_2d"] is True, (name, geometry)
        assert geometry["colour"] is colour, name
        assert client.delete(base, headers=h).status_code == 204


def test_box_and_clicks_on_a_png_then_the_mask_png_download():
    client = _client(ToyEngine())
    base, h, label, _ = _open(client, "photo.png", _png(_photo()))
    box = {"object": label, "type": "box", "slice": 0, "box": [13, 10, 31, 28]}
    r = client.post(f"{base}/prompts", json=box, headers=h)
    assert r.status_code == 200, r.text
    mask = _mask(client, base, h)
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 19) ** 2 + (xx - 22) ** 2 <= 49
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    assert np.array_equal(mask == label, disc)  # the toy engine: the bright (orange) pixels inside the box
    # a negative click on the disc removes it (the toy's corrections), undo brings it back
    click = {"object": label, "type": "point", "point": [22, 19, 0], "positive": False}
    assert client.post(f"{base}/prompts", json=click, headers=h).status_code == 200
    assert not _mask(client, base, h)[19, 22]
    assert client.post(f"{base}/undo", headers=h).status_code == 200
    assert np.array_equal(_mask(client, base, h) == label, disc)


def test_the_colour_picture_comes_as_rgb24_nifti_on_the_grey_images_grid():
    client = _client(ToyEngine())
    rgb = _photo()
    base, h, _, _ = _open(client, "photo.png", _png(rgb))
    colour = gzip.decompress(client.get(f"{base}/image", params={"colour": "true"}, headers=h).content)
    grey = gzip.decompress(client.get(f"{base}/image", headers=h).content)
    a, b = np.frombuffer(colour[:348], NIFTI1_HEADER)[0], np.frombuffer(grey[:348], NIFTI1_HEADER)[0]
    assert a["datatype"] == 128 and a["bitpix"] == 24 and a["magic"] == b"n+1"
    for field in ("dim", "pixdim", "srow_x", "srow_y", "srow_z"):
        assert np.array_equal(a[field], b[field]), field
    pixels = np.frombuffer(colour[int(a["vox_offset"]) :], np.uint8).reshape(H, W, 3)
    assert np.array_equal(pixels, rgb)
    # a grey picture has no colour to send
    base, h, _, geometry = _open(client, "grey.png", _png(luma(rgb[None])[0]))
    assert geometry["colour"] is False
    r = client.get(f"{base}/image", params={"colour": "true"}, headers=h)
    assert r.status_code == 400 and "no colour" in r.json()["detail"]


def test_refusals_content_not_the_name_a_png_mask_of_a_volume_and_unknown_types(tmp_path):
    client = _client(ToyEngine())
    jpeg = io.BytesIO()
    Image.fromarray(_photo()).save(jpeg, format="JPEG")
    r = client.post("/api/sessions", files={"file": ("photo.png", jpeg.getvalue())})  # a JPEG named .png
    assert r.status_code == 400 and r.json()["detail"].startswith("upload.png: not a readable PNG image"), r.text
    r = client.post("/api/sessions", files={"file": ("x.tif", b"II*\0 not really a tiff")})
    assert r.status_code == 400 and "upload.tif" in r.json()["detail"] and "/tmp" not in r.text, r.text
    r = client.post("/api/sessions", files={"file": ("anim.gif", b"GIF89a")})
    assert r.status_code == 400 and "unsupported upload" in r.json()["detail"]
    scan = write_volume(Volume(np.zeros((4, 16, 16), np.float32)), tmp_path / "scan.nii.gz")
    base, h, _, geometry = _open(client, "scan.nii.gz", scan.read_bytes())
    assert geometry["is_2d"] is False
    r = client.get(f"{base}/labelmap", params={"format": "png"}, headers=h)
    assert r.status_code == 400 and "for 2D images" in r.json()["detail"], r.text


def test_png_bombs_are_refused_413_before_decoding(tmp_path):
    client = _client(ToyEngine(), max_image_mb=32)
    pillow = png_bomb(20000, 20000, 0)  # 400 M pixels: over Pillow's decompression-bomb limit (2 x 89.5 M)
    declared = png_bomb(4000, 4000, 2)  # 48 MB of RGB: under Pillow's limit, over --max-image-mb 32
    assert len(pillow) < 2**20 and len(declared) < 2**20
    reset_peak()  # the peak is measured from here
    before = memory_mb()["VmHWM"]
    r = client.post("/api/sessions", files={"file": ("bomb.png", pillow)})
    assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", r.text
    assert "decompression bomb" in r.json()["detail"] and "/tmp" not in r.text, r.text
    r = client.post("/api/sessions", files={"file": ("bomb.png", declared)})
    assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", r.text
    assert "limit of 32 MB" in r.json()["detail"], r.text
    grown = memory_mb()["VmHWM"] - before
    print(f"peak RSS grew by {grown:.1f} MB for a 400 MB and a 48 MB PNG bomb")
    assert grown < 30, grown  # neither was decoded (the smaller alone would add 48 MB)


@pytest.fixture(scope="module")
def lesion_png(tmp_path_factory):
    """The middle slice of a cropped lesion case as an 8-bit grey PNG, and its true box."""
    from volsam.data.lesions import lesion_case

    case = lesion_case("dark-00", crop=True)
    box = case.middle_box
    raw = case.image.array[box.slice].astype(np.float32)
    lo, hi = np.percentile(raw[raw > 0], (0.5, 99.5))
    grey = np.rint(np.clip((raw - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("lesion") / "slice.png"
    Image.fromarray(grey).save(path)
    return path, (box.u0, box.v0, box.u1, box.v1)


def test_the_mask_png_is_the_file_volsam_segment_writes_real_litemedsam(lesion_png, tmp_path):
    from volsam.cli.main import run

    path, (x0, y0, x1, y1) = lesion_png
    out = tmp_path / "mask.png"
    assert run(["segment", str(path), "--box", f"{x0},{y0},{x1},{y1}", "-o", str(out), "--device", "cpu"]) == 0
    client = _client()  # the real server store: LiteMedSAM
    base, h, label, _ = _open(client, "slice.png", path.read_bytes())
    box = {"object": label, "type": "box", "slice": 0, "box": [x0, y0, x1, y1]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    got = client.get(f"{base}/labelmap", params={"format": "png"}, headers=h).content
    want = np.asarray(Image.open(out))
    mask = np.asarray(Image.open(io.BytesIO(got)))
    assert want.any() and mask.shape == want.shape and np.array_equal(mask, want)  # Dice 1.0
    assert got == out.read_bytes()  # the same writer: the same bytes


def test_a_2d_dicom_session_offers_the_png_mask_too():
    client = _client(ToyEngine())
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    base, h, label, geometry = _open(client, "ct.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes())
    assert geometry["size"] == [ds.Columns, ds.Rows, 1]
    box = {"object": label, "type": "box", "slice": 0, "box": [30, 30, 90, 90]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    assert _mask(client, base, h).shape == (ds.Rows, ds.Columns)
