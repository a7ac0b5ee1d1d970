"""Video sessions through the server (in process, FastAPI's test client): an mp4 / DICOM cine upload is a
session whose frames are read on demand (``GET .../frames/{n}``, a PNG) and whose masks come by frame
(``GET .../labelmap/frames/{n}``) or as downloads (``format=npz``, ``format=png-zip`` with the JSON sidecar, the
overlay video). A box on a frame tracks through the video with the CLI's own job: the downloaded masks equal
``volsam segment VIDEO`` on the same video and box (toy engines here; the real LiteMedSAM in one test).
Corrections on another frame, undo / redo, a tracker's prompts on several frames, refusals."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.support.memory import memory_mb, reset_peak
from tests.support.toy_engine import ToyEngine, ToyTracker
from tests.support.video import disc_frames, write_cine, write_video
from volsam.core.errors import SessionNotFound
from volsam.core.prompts import Box2D, Point
from volsam.core.volume import luma
from volsam.io.video import VideoFrames
from volsam.jobs.video import segment_video
from volsam.server.app import create_app
from volsam.server.config import ServerConfig
from volsam.server.store import SessionStore
from volsam.server.videos import VideoSession, shown_range

BASE = "http://127.0.0.1:8000"
N, H, W = 10, 64, 80
BOX = [12, 16, 40, 44]  # around the disc on frame 0 (x0, y0, x1, y1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames, _truth = disc_frames(N, (H, W), speed=3.0)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)


def _client(engine, **config) -> tuple[TestClient, SessionStore]:
    store = SessionStore(
        4,
        600.0,
        make_session=lambda volume, request: request.session(volume, engine),
        make_video=lambda upload, request: VideoSession(upload, request, engine),
    )
    app = create_app(ServerConfig(device="cpu", **config), store)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False), store


def _open(client, path: Path, name: str | None = None):
    r = client.post("/api/sessions", files={"file": (name or path.name, path.read_bytes())})
    assert r.status_code == 201, r.text
    h = {"X-Session-Lease": r.json()["lease"]}
    base = f"/api/sessions/{r.json()['id']}"
    label = client.post(f"{base}/objects", json={"name": "disc"}, headers=h).json()["label"]
    return base, h, label, r.json()["geometry"]


def _npz(client, base, h) -> np.ndarray:
    r = client.get(f"{base}/labelmap", params={"format": "npz"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="masks.npz"'
    return np.load(io.BytesIO(r.content))["masks"]


def _cli(path: Path, prompts, out: Path, engine) -> np.ndarray:
    return np.load(segment_video(path, prompts, out, engine=engine).output)["masks"]


class GreyTracker(ToyTracker):
    """The toy tracker on the grey of the RGB frames that a tracker gets from a colour video."""

    def track(self, frames, prompts, **kw):
        source = frames

        class Grey:
            frame_shape = source.frame_shape

            def __len__(self):
                return len(source)

            def frames(self, indices):
                return luma(source.frames(indices))

        return super().track(Grey(), prompts, **kw)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2 * int((a & b).sum()) / total


def test_box_on_a_frame_tracks_and_the_downloads_are_the_cli_masks(tmp_path, clip):
    client, store = _client(ToyEngine())
    base, h, label, geo = _open(client, clip)
    assert geo["video"] and geo["size"] == [W, H, N] and geo["frames"] == N and geo["axis"] == 2
    assert geo["info"]["codec"] == "h264" and "path" not in geo["info"]

    # the page's frame: the decoded picture, as io.video reads it
    r = client.get(f"{base}/frames/4", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with VideoFrames(clip, colour=True) as frames:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), frames.frame(4))

    r = client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 0, "box": BOX}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["frames"] == [0, N - 1] and r.json()["labels"] == [label]
    events = [json.loads(line[6:]) for line in client.get(f"{base}/events?follow=false", headers=h).text.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    assert [e["type"] for e in events if e["type"] != "frame"] == ["busy", "total", "idle"]
    assert events[0]["slices"] == N and events[1] == {"type": "total", "frames": N}  # the step walks them all
    assert len([e for e in events if e["type"] == "frame"]) == N

    expected = _cli(clip, [Box2D(*BOX, slice=0)], tmp_path / "cli.npz", ToyEngine())
    masks = _npz(client, base, h)
    assert masks.shape == (N, H, W) and masks.dtype == np.uint8
    assert all(_dice(masks[t] > 0, expected[t] > 0) == 1.0 for t in range(N))
    assert np.array_equal(masks, expected) and (masks > 0).sum(axis=(1, 2)).min() > 50  # found on every frame

    # one frame's labels, the PNG zip with its sidecar, the overlay video
    r = client.get(f"{base}/labelmap/frames/7", headers=h)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), expected[7])
    r = client.get(f"{base}/labelmap", params={"format": "png-zip"}, headers=h)
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = sorted(zf.namelist())
        assert names == [f"frame_{t:06d}.png" for t in range(N)] + ["segmentation.json"]
        for t in range(N):
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(zf.read(f"frame_{t:06d}.png")))), expected[t])
        sidecar = json.loads(zf.read("segmentation.json"))
    assert sidecar["objects"] == [{"label": label, "name": "disc", "prompts": [{"box": BOX, "frame": 0}]}]
    assert sidecar["video"]["frame_count"] == N and sidecar["video"]["path"] == "upload.mp4"
    assert client.get(f"{base}/prompts", headers=h).json() == sidecar
    r = client.get(f"{base}/overlay", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    (tmp_path / "overlay.mp4").write_bytes(r.content)
    with av.open(str(tmp_path / "overlay.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == N

    session = store._entries[base.rsplit("/", 1)[1]].session
    folder = session.upload.folder
    assert folder.is_dir()
    assert client.delete(base, headers=h).status_code == 204
    assert not folder.exists()  # the upload and every run went with the session
    for late in (session.frame_png, session.labels):  # a page request that raced the close: 404, not a 500
        with pytest.raises(SessionNotFound):
            late(0)


def test_a_correction_on_another_frame_walks_from_there_and_undo_redo_swap_runs(tmp_path, clip):
    client, _store = _client(ToyEngine())
    base, h, label, _geo = _open(client, clip)
    client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 0, "box": BOX}, headers=h)
    first = _npz(client, base, h)
    late = [36, 20, 47, 45]  # the left half of the disc on frame 8 (centre x 48): a different answer there
    r = client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 8, "box": late}, headers=h)
    assert r.status_code == 200, r.text
    after = _npz(client, base, h)
    from_8 = _cli(clip, [Box2D(*late, slice=8)], tmp_path / "from8.npz", ToyEngine())
    assert np.array_equal(after[:4], first[:4]) and np.array_equal(after[5:], from_8[5:])  # nearest prompted frame
    assert np.array_equal(after[4], first[4])  # a tie goes to the earlier one
    assert not np.array_equal(after[8], first[8]) and after[8].any()

    assert client.post(f"{base}/undo", headers=h).json()["frames"] == [0, N - 1]
    assert np.array_equal(_npz(client, base, h), first)
    client.post(f"{base}/redo", headers=h)
    assert np.array_equal(_npz(client, base, h), after)
    client.post(f"{base}/undo", headers=h)
    client.post(f"{base}/undo", headers=h)
    assert not _npz(client, base, h).any()
    runs = next(iter(_store._entries.values())).session.upload.folder / "runs"
    assert len(list(runs.iterdir())) == 2  # both runs kept for redo
    client.post(f"{base}/redo", headers=h)
    client.post(f"{base}/prompts", json={"object": label, "type": "point", "point": [20, 30, 0], "positive": False},
                headers=h)  # fmt: skip
    assert len(list(runs.iterdir())) == 2  # the run of frame 8 (undone, then overwritten by a new step) is gone


def test_a_tracker_tracks_from_the_prompts_of_every_frame(tmp_path, clip):
    client, _store = _client(GreyTracker())
    base, h, label, geo = _open(client, clip)
    assert geo["engine_kind"] == "tracker"
    box = {"object": label, "type": "box", "slice": 2, "box": [18, 18, 48, 48]}
    assert client.post(f"{base}/prompts", json=box, headers=h).status_code == 200
    r = client.post(f"{base}/prompts", json={"object": label, "type": "point", "point": [50, 40, 7]}, headers=h)
    assert r.status_code == 200, r.text
    expected = _cli(clip, [Box2D(18, 18, 48, 48, slice=2), Point(50, 40, 7)], tmp_path / "t.npz", GreyTracker())
    box_only = _cli(clip, [Box2D(18, 18, 48, 48, slice=2)], tmp_path / "b.npz", GreyTracker())
    assert np.array_equal(_npz(client, base, h), expected) and expected[0].any()
    assert not np.array_equal(expected, box_only)  # the click on frame 7 was tracked with the box, in one run


def test_a_dicom_cine_is_a_video_session(tmp_path):
    frames, _truth = disc_frames(6, (H, W))
    cine = write_cine(tmp_path / "cine.dcm", frames)
    client, _store = _client(ToyEngine())
    base, h, label, geo = _open(client, cine)
    assert geo["video"] and geo["frames"] == 6 and geo["info"]["codec"] == "dicom"
    r = client.get(f"{base}/frames/5", headers=h)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)))[..., 0], frames[5])
    client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 0, "box": BOX}, headers=h)
    expected = _cli(cine, [Box2D(*BOX, slice=0)], tmp_path / "c.npz", ToyEngine())
    assert np.array_equal(_npz(client, base, h), expected) and expected.any()


def test_refusals(tmp_path, clip):
    # 0.04 MB: one RGB frame (15 kB) fits, 10 label frames (51 kB) do not (from the mp4 header; an mkv has no
    # frame count: its packets are counted, without decoding); 0.01 MB: not even one frame
    frames, _truth = disc_frames(N, (H, W), speed=3.0)
    mkv = write_video(tmp_path / "clip.mkv", frames)
    for path, limit, what in [
        (clip, 0.04, "the masks of 10 frames of 80x64"),
        (mkv, 0.04, "the masks of 9+ frames of 80x64"),
        (clip, 0.01, "one 80x64 RGB frame"),
    ]:
        client, store = _client(ToyEngine(), max_upload_mb=4, max_image_mb=limit)
        r = client.post("/api/sessions", files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 413 and r.json()["error"] == "ImageTooLarge", r.text
        assert r.json()["detail"].startswith(f"upload{path.suffix}: {what} would take"), r.text
        assert len(store) == 0

    client, store = _client(ToyEngine())
    r = client.post("/api/sessions", files={"file": ("junk.mp4", b"\x00\x01not a video" * 50)})
    assert r.status_code == 400 and "volsam-upload" not in r.json()["detail"], r.text
    base, h, label, _geo = _open(client, clip)
    for url, params in [
        (f"{base}/frames/{N}", {}),
        (f"{base}/frames/-1", {}),
        (f"{base}/labelmap/frames/{N}", {}),
        (f"{base}/labelmap", {}),
        (f"{base}/labelmap", {"format": "png"}),
        (f"{base}/labelmap/region", {"box": "0,0,0,1,1,1"}),
        (f"{base}/image", {}),
    ]:
        r = client.get(url, params=params, headers=h)
        assert r.status_code == 400, (url, params, r.text)
    for body in [
        {"object": label, "type": "box", "slice": N, "box": BOX},
        {"object": label, "type": "box", "slice": 0, "box": [0, 0, W, 10]},
        {"object": label, "type": "box3d", "box": [0, 0, 0, 5, 5, 5]},
        {"object": label, "type": "point", "point": [1, 1, N]},
    ]:
        assert client.post(f"{base}/prompts", json=body, headers=h).status_code == 400, body
    r = client.post(f"{base}/objects/{label}/candidate", json={"slice": 0}, headers=h)
    assert r.status_code == 400, r.text
    assert client.get(f"{base}/frames/0").status_code == 403  # the lease, as every session route

    # image sessions have no frames / video downloads
    vol = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(vol)
    vbase, vh, _l, _g = _open(client, vol)
    assert client.get(f"{vbase}/frames/0", headers=vh).status_code == 400
    assert client.get(f"{vbase}/labelmap", params={"format": "npz"}, headers=vh).status_code == 400
    assert client.get(f"{vbase}/overlay", headers=vh).status_code == 400


def test_the_masks_are_those_of_volsam_segment_real_litemedsam(tmp_path):
    """The CLI (``volsam segment clip.mp4 --box ... --frame 0 -o cli.npz``) and the server's session, real
    LiteMedSAM on both sides: the same masks, Dice 1.0 on every frame."""
    from volsam.cli.main import run

    count = 4  # frames: the claim is per frame; a longer clip only encodes more of them on both sides
    frames, truth = disc_frames(count, (H, W), speed=3.0)
    clip = write_video(tmp_path / "small.mp4", frames)
    out = tmp_path / "cli.npz"
    box = ",".join(str(v) for v in BOX)
    assert run(["segment", str(clip), "--box", box, "--frame", "0", "-o", str(out), "--device", "cpu"]) == 0
    want = np.load(out)["masks"]
    app = create_app(ServerConfig(device="cpu"))  # the real store: LiteMedSAM
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    base, h, label, _geo = _open(client, clip)
    r = client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 0, "box": BOX}, headers=h)
    assert r.status_code == 200, r.text
    got = _npz(client, base, h)
    assert [_dice(got[t] > 0, want[t] > 0) for t in range(count)] == [1.0] * count and np.array_equal(got, want)
    assert min(_dice(want[t] > 0, truth[t]) for t in range(count)) > 0.8  # and it found the disc


def test_the_client_streams_a_video_session(tmp_path, clip):
    """RemoteSession on a video: frames and frame labels as arrays, the masks and the overlay streamed to files."""
    from volsam.client import RemoteSession

    client, _store = _client(ToyEngine())
    remote = RemoteSession.__new__(RemoteSession)  # over the in-process app instead of a socket
    remote._http = client
    r = client.post("/api/sessions", files={"file": ("clip.mp4", clip.read_bytes())})
    remote.id, remote.geometry = r.json()["id"], r.json()["geometry"]
    client.headers["X-Session-Lease"] = r.json()["lease"]
    obj = remote.add_object(name="disc")
    change = remote.add_box(obj, 0, BOX)
    assert change.frames == (0, N - 1)
    with VideoFrames(clip, colour=True) as frames:
        assert np.array_equal(remote.frame(3), frames.frame(3))
    masks = np.load(remote.save_labelmap(tmp_path / "m.npz", format="npz"))["masks"]
    assert np.array_equal(remote.frame_labels(3), masks[3]) and masks[3].any()
    with zipfile.ZipFile(remote.save_labelmap(tmp_path / "m.zip", format="png-zip")) as zf:
        assert len(zf.namelist()) == N + 1
    assert remote.save_overlay(tmp_path / "o.mp4").stat().st_size > 0
    with pytest.raises(Exception, match="outside the video"):
        remote.frame(N)


def test_a_video_bomb_is_refused_before_a_frame_is_decoded(tmp_path):
    """A 5 kB mp4 of one flat 4096 x 4096 frame (48 MB of RGB once decoded) to --max-image-mb 32: 413 from the
    stream's header, and the peak memory of the process does not move by a decoded frame."""
    big = write_video(tmp_path / "big.mp4", np.full((2, 4096, 4096), 90, np.uint8))
    assert big.stat().st_size < 64 * 1024
    client, store = _client(ToyEngine(), max_image_mb=32)
    client.post("/api/sessions", files={"file": ("warm.mp4", b"not a video")})  # the server's lazy imports first
    reset_peak()  # the peak is measured from here
    before = memory_mb()["VmHWM"]
    r = client.post("/api/sessions", files={"file": ("big.mp4", big.read_bytes())})
    assert r.status_code == 413 and r.json()["detail"].startswith("upload.mp4: one 4096x4096 RGB frame"), r.text
    assert memory_mb()["VmHWM"] - before < 16 and len(store) == 0  # a decoded frame alone would be 48 MB


class SlowToy(ToyEngine):
    def predict(self, embedding, **kw):
        time.sleep(0.1)
        return super().predict(embedding, **kw)


def test_stop_during_tracking_leaves_the_session_as_before(clip):
    """The page's Stop (``POST .../cancel``) during a video's tracking: 409 Cancelled, the object as before (the
    run's folder gone), and the session tracks again afterwards."""
    client, store = _client(SlowToy())
    base, h, label, _geo = _open(client, clip)
    box = {"object": label, "type": "box", "slice": 0, "box": BOX}
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(r=client.post(f"{base}/prompts", json=box, headers=h)))
    worker.start()
    for _ in range(200):  # wait for the first frames
        if client.get(f"{base}/events?follow=false", headers=h).text.count('"frame"') >= 2:
            break
        time.sleep(0.05)
    assert client.post(f"{base}/cancel", headers=h).json() == {"cancelling": True}
    worker.join(60)
    assert answer["r"].status_code == 409 and answer["r"].json()["error"] == "Cancelled", answer["r"].text
    session = next(iter(store._entries.values())).session
    assert not (session.upload.folder / "runs").exists() or not any((session.upload.folder / "runs").iterdir())
    assert not _npz(client, base, h).any() and client.get(base, headers=h).json()["objects"][0]["prompts"] == 0
    r = client.post(f"{base}/prompts", json=box, headers=h)
    assert r.status_code == 200 and _npz(client, base, h).any(), r.text


def test_an_expired_video_session_takes_its_folder_with_it(clip):
    client, store = _client(ToyEngine())
    store.idle_timeout_s = 0.2
    base, h, label, _geo = _open(client, clip)
    folder = next(iter(store._entries.values())).session.upload.folder
    client.post(f"{base}/prompts", json={"object": label, "type": "box", "slice": 0, "box": BOX}, headers=h)
    assert (folder / "upload.mp4").is_file() and any((folder / "runs").iterdir())
    time.sleep(0.3)
    assert len(store.expire()) == 1 and not folder.exists()


def test_shown_range_is_where_the_nearest_run_rule_shows_a_run():
    """Every frame lies in the shown range of exactly the prompted frame ``_run_for`` picks (ties: earlier)."""
    rng = np.random.default_rng(0)
    for count in (1, 2, 7, 12):
        for _ in range(30):
            prompted = sorted(rng.choice(count, size=rng.integers(1, count + 1), replace=False).tolist())
            for t in range(count):
                nearest = min(prompted, key=lambda q: (abs(q - t), q))
                holders = [
                    q for q in prompted if shown_range(prompted, q, count)[0] <= t <= shown_range(prompted, q, count)[1]
                ]
                assert holders == [nearest], (prompted, t)
    assert shown_range([0, 4, 8], 4, 10) == (3, 6)  # the tie at 2 goes to 0, the tie at 6 to 4


def _covered(session: VideoSession) -> None:
    """Every frame of every object is walked by the run that shows it."""
    for state in session._objects.values():
        for t in range(session.frame_count) if state.runs else ():
            run = min(state.runs, key=lambda r: (abs(r.frame - t), r.frame))
            assert run.first <= t <= run.last and run.folder.is_dir(), (t, run)


def _shown(runs: dict[int, np.ndarray], label: int) -> np.ndarray:
    """The labels a session shows from whole-video runs (prompted frame -> masks (T, H, W)): each frame from
    the run of the nearest prompted frame, ties to the earlier (what sessions showed before runs had ranges)."""
    count = next(iter(runs.values())).shape[0]
    return np.stack([(runs[min(runs, key=lambda q: (abs(q - t), q))][t] > 0) * label for t in range(count)])


@pytest.mark.slow
def test_a_correction_walks_only_the_frames_it_shows_real_litemedsam(tmp_path):
    """Boxes on frames 0 and 8, then a click on frame 4: every frame shows what whole-video runs of each
    prompted frame showed (computed here with ``volsam segment``'s job), the box on 8 walks 5..9 and the click
    walks 3..6 (not the whole video), the neighbours' runs are kept; undo / redo / reset leave every frame
    covered by the run that shows it."""
    from volsam.engines import get as get_engine
    from volsam.engines.cache import CachedEngine
    from volsam.jobs.request import SegmentRequest
    from volsam.server.videos import VideoUpload

    frames, truth = disc_frames(N, (H, W), speed=3.0)
    folder = tmp_path / "upload"
    folder.mkdir()
    path = write_video(folder / "clip.mp4", frames)
    # the session's runs and the whole-video runs below share the encoder's embedding of each frame (a
    # CachedEngine serves one only for a frame of the same pixels): 10 frames encoded instead of 39; which
    # frames are walked and what each shows stay the runs' own
    engine = CachedEngine(get_engine("medsam-lite", device="cpu"), 512)
    session = VideoSession(VideoUpload(folder, path), SegmentRequest(), engine)
    walked: list[int] = []
    totals: list[int] = []
    session.on_frame, session.on_total = walked.append, totals.append
    label = session.add_object()
    boxes = {t: Box2D(*(int(v) for v in _bbox(truth[t])), slice=t) for t in (0, 8)}

    def whole(prompts) -> np.ndarray:  # one whole-video run of the CLI's job
        out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}.npz"
        return np.load(segment_video(path, prompts, out, engine=engine).output)["masks"]

    session.add(label, boxes[0])
    assert totals == [N] and len(walked) == N  # one prompted frame: the whole video
    one = np.stack([session.labels(t) for t in range(N)])
    # its run is the CLI's whole-video run (test_the_masks_are_those_of_volsam_segment_real_litemedsam)
    full = {0: one, 8: whole([boxes[8]])}
    walked.clear()
    session.add(label, boxes[8])
    assert totals[-1] == 5 and len(walked) == 5  # frames 5..9; the run of frame 0 (0..9 walked) is kept
    two = np.stack([session.labels(t) for t in range(N)])
    assert np.array_equal(two, _shown(full, label))
    runs_before = {run.frame: run for run in session._objects[label].runs}
    assert (runs_before[0].first, runs_before[0].last, runs_before[8].first, runs_before[8].last) == (0, N - 1, 5, 9)

    walked.clear()
    cx, cy = (int(round(v)) for v in np.argwhere(truth[4]).mean(axis=0)[::-1])
    session.add(label, Point(cx, cy, 4))
    assert totals[-1] == 4 and len(walked) == 4  # frames 3..6 instead of the whole video's 10
    # the click came with the box around frame 4's mask from the run that showed it (frame 0's: a tie with 8)
    box4 = Box2D(*(int(v) for v in _bbox(full[0][4] > 0)), slice=4)
    assert session.prompts(label) == [box4, boxes[0], boxes[8], Point(cx, cy, 4)]
    full[4] = whole([box4, Point(cx, cy, 4)])
    three = np.stack([session.labels(t) for t in range(N)])
    assert np.array_equal(three, _shown(full, label))
    assert not np.array_equal(three, two) and three[4].any()  # the click changed frame 4's answer
    runs = {run.frame: run for run in session._objects[label].runs}
    assert runs[0] is runs_before[0] and runs[8] is runs_before[8]  # neighbours kept, not re-walked
    assert (runs[4].first, runs[4].last) == (3, 6)
    _covered(session)

    walked.clear()
    for step, want in [
        (session.undo, two), (session.undo, one), (session.redo, two), (session.redo, three),
        (lambda: session.reset_object(label), None), (session.undo, three),
    ]:  # fmt: skip
        step()
        _covered(session)
        shown = np.stack([session.labels(t) for t in range(N)])
        assert np.array_equal(shown, want) if want is not None else not shown.any()
    assert walked == []  # undo / redo / reset swap states: nothing re-walked
    assert engine.frames_encoded == N  # every run read the same frames: each was encoded once
    session.close()


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
