"""RemoteSession against the real app (uvicorn on 127.0.0.1 in a thread; sessions on the toy engine, so each
call takes milliseconds): a refusal comes back as the very type the server named, with the same message a
local Session gives, and each Change equals the local one."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

from tests.support.toy_engine import ToyEngine
from volsam.client import RemoteSession
from volsam.core.errors import (
    InputError,
    LeaseRefused,
    PromptError,
    RemoteError,
    ServerFull,
    SessionNotFound,
    Unauthorized,
)
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore
from volsam.session import Session

TOKEN = "s" * 32


def _toy_session(volume, request):
    return request.session(volume, ToyEngine())


def _volume() -> Volume:
    array = np.zeros((6, 24, 20), np.float32)  # [k, j, i]
    array[1:5, 6:14, 4:12] = 200.0
    return Volume(array, spacing=(0.8, 0.9, 2.5), origin=(1.0, -2.0, 3.0))


@pytest.fixture(scope="module")
def url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = SessionStore(max_sessions=3, idle_timeout_s=600.0, make_session=_toy_session)
    app = create_app(ServerConfig(device="cpu", token=TOKEN, max_sessions=3), store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    else:
        pytest.fail("uvicorn did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return write_volume(_volume(), tmp_path_factory.mktemp("image") / "block.nii.gz")


@pytest.fixture()
def remote(url, image):
    with RemoteSession(url, token=TOKEN, image=image, modality="CT") as s:
        yield s


@pytest.fixture()
def local(image):
    return Session(read_volume(image), engine=ToyEngine(), modality="CT")  # the image as the server reads it


def _same(a, b) -> bool:
    return (a.labels, a.frames, a.box, a.frames_encoded) == (b.labels, b.frames, b.box, b.frames_encoded)


def test_changes_equal_a_local_sessions(remote, local):
    obj, here = remote.add_object(name="block"), local.add_object(name="block")
    assert obj == here == 1
    assert _same(remote.add_box(obj, 2, (3, 5, 13, 15)), local.add_box(here, 2, (3, 5, 13, 15)))
    assert _same(remote.add_point(obj, (6, 8, 4), positive=False), local.add_point(here, (6, 8, 4), False))
    assert _same(remote.undo(), local.undo()) and _same(remote.redo(), local.redo())
    assert np.array_equal(remote.labelmap().array, local.labelmap().array)


def test_a_bad_slice_is_a_prompt_error_both_ways(remote, local):
    obj = remote.add_object()
    local.add_object()
    with pytest.raises(PromptError) as here:
        local.add_box(obj, 99, (3, 5, 13, 15))
    with pytest.raises(PromptError) as there:
        remote.add_box(obj, 99, (3, 5, 13, 15))
    assert type(there.value) is PromptError
    assert str(there.value) == f"{here.value} (HTTP 400)"
    with pytest.raises(PromptError, match=r"no object 9 .*\(HTTP 400\)$"):
        remote.add_point(9, (1, 1, 1))


def test_a_malformed_request_is_an_input_error_on_one_line(remote):
    with pytest.raises(InputError) as caught:
        remote._call("POST", "/prompts", json={"object": 1, "type": "blob"})
    message = str(caught.value)
    assert type(caught.value) is InputError and "\n" not in message and message.endswith("(HTTP 422)")
    assert "body.type: " in message


def test_a_wrong_lease_an_unknown_session_and_a_wrong_token(url, remote):
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Session-Lease": "x" * 32}
    answer = httpx.get(f"{url}/api/sessions/{remote.id}", headers=headers)
    assert answer.status_code == 403 and answer.json()["error"] == "LeaseRefused"

    lease = remote._http.headers["X-Session-Lease"]
    remote._http.headers["X-Session-Lease"] = "x" * 32
    with pytest.raises(LeaseRefused, match=r"lease token .*\(HTTP 403\)$"):
        remote.objects  # noqa: B018 -- a property that calls the server
    remote._http.headers["X-Session-Lease"] = lease

    remote_id, remote.id = remote.id, "no-such-session"
    with pytest.raises(SessionNotFound, match=r"no open session 'no-such-session'.*\(HTTP 404\)$"):
        remote.undo()
    remote.id = remote_id

    with pytest.raises(Unauthorized, match=r"bearer token .*\(HTTP 401\)$"):
        RemoteSession(url, token="wrong" * 8, image=_volume())
    with pytest.raises(Unauthorized):
        RemoteSession(url, image=_volume())
    assert all(issubclass(cls, RemoteError) for cls in (LeaseRefused, SessionNotFound, Unauthorized, ServerFull))


def test_a_full_server_is_server_full(url, remote):
    extra = [RemoteSession(url, token=TOKEN, image=_volume()) for _ in range(2)]  # 3 sessions: the limit
    try:
        with pytest.raises(ServerFull, match=r"limit of 3 sessions.*\(HTTP 503\)$"):
            RemoteSession(url, token=TOKEN, image=_volume())
    finally:
        for s in extra:
            s.close()


def test_an_input_the_server_cannot_read_is_an_input_error(url, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match=r"unsupported upload 'notes.txt'.*\(HTTP 400\)$") as caught:
        RemoteSession(url, token=TOKEN, image=notes)
    assert type(caught.value) is InputError


def test_a_4d_image_is_opened_with_channel_and_refusals_keep_their_type(url, tmp_path):
    import SimpleITK as sitk

    from volsam.core.errors import ImageTooLarge

    volumes = [sitk.GetImageFromArray(np.full((3, 8, 10), 100 * c, np.int16)) for c in range(2)]
    sitk.WriteImage(sitk.JoinSeries(volumes), str(tmp_path / "four.nii.gz"))
    with pytest.raises(InputError, match="channel=0..1"):
        RemoteSession(url, token=TOKEN, image=tmp_path / "four.nii.gz")
    with RemoteSession(url, token=TOKEN, image=tmp_path / "four.nii.gz", channel=1, modality="MR") as s:
        assert s.geometry["channel"] == 1 and s.geometry["modality"] == "MR" and s.geometry["size"] == [10, 8, 3]
    header = bytearray(352)  # a NIfTI header declaring 4096^3 float32 voxels: refused before anything is read
    header[0:4] = (348).to_bytes(4, "little")
    header[40:56] = b"".join(v.to_bytes(2, "little") for v in (3, 4096, 4096, 4096, 1, 1, 1, 1))
    header[70:74] = (16).to_bytes(2, "little") + (32).to_bytes(2, "little")
    header[108:112] = np.float32(352).tobytes()
    header[344:348] = b"n+1\0"
    (tmp_path / "huge.nii").write_bytes(bytes(header))
    with pytest.raises(ImageTooLarge, match=r"limit of .* MB \(HTTP 413\)"):
        RemoteSession(url, token=TOKEN, image=tmp_path / "huge.nii")


def test_a_png_image_and_its_mask_png(url, tmp_path):
    from PIL import Image

    picture = np.full((30, 40), 20, np.uint8)
    picture[8:20, 10:28] = 220  # a bright rectangle, rows 8..19, columns 10..27
    Image.fromarray(picture).save(tmp_path / "photo.png")
    with RemoteSession(url, token=TOKEN, image=tmp_path / "photo.png") as s:
        assert s.geometry["is_2d"] and s.geometry["size"] == [40, 30, 1]
        obj = s.add_object(name="rectangle")
        s.add_box(obj, 0, (6, 4, 32, 24))
        path = s.save_labelmap(tmp_path / "mask.png", format="png")
        assert np.array_equal(np.asarray(Image.open(path)), (picture > 128).astype(np.uint8) * obj)
        assert np.array_equal(s.labelmap().array[0], np.asarray(Image.open(path)))
