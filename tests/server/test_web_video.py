"""A video in the web page, in headless Chromium (Debian's, driven by Playwright) against the server's own code in a
uvicorn process with the toy engine (0.05 s a frame, so that the tracking can be watched): the frame scrubber and
number, play / pause, a box on a frame, tracking with a determinate progress bar, the masks overlaid while
scrubbing, a correction on another frame and its undo, the downloads (masks .npz equal to ``volsam segment``'s job
on the same video and box, Dice 1.0 per frame; the PNG zip with its JSON sidecar; the overlay video). A screenshot
goes to results/web/web-video.png (docs/images/ with VOLSAM_SCREENSHOTS=docs/images)."""

from __future__ import annotations

import json
import os
import textwrap
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from tests.server.test_web import ARGS, CHROMIUM, playwright, pytestmark  # noqa: F401 -- the same browser and skips
from tests.support.browser import open_page, script_server
from tests.support.toy_engine import ToyEngine
from tests.support.video import disc_frames, write_video
from volsam.core.prompts import Box2D
from volsam.jobs.video import segment_video

ROOT = Path(__file__).resolve().parents[2]
# Screenshots for the README: written to docs/images only when asked (VOLSAM_SCREENSHOTS=docs/images), so a
# test run never changes tracked files; otherwise to results/web (git-ignored), like tests/server/test_web.py.
IMAGES = Path(os.environ.get("VOLSAM_SCREENSHOTS") or ROOT / "results" / "web")
SERVER = textwrap.dedent(
    """
    import sys, time, uvicorn
    from tests.support.toy_engine import ToyEngine
    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig
    from volsam.server.store import SessionStore
    from volsam.server.videos import VideoSession

    class Slow(ToyEngine):  # 0.05 s a frame: the tracking can be watched
        def predict(self, embedding, **kw):
            time.sleep(0.05)
            return super().predict(embedding, **kw)

    store = SessionStore(8, 600.0, make_video=lambda upload, request: VideoSession(upload, request, Slow()))
    app = create_app(ServerConfig(device="cpu"), store)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)
N, H, W = 16, 96, 128


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    yield from script_server(tmp_path_factory.mktemp("videoserver"), SERVER)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, truth = disc_frames(N, (H, W), speed=2.5)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames), truth


class Page:
    def __init__(self, p, url, path):
        self.browser, self.page, self.errors = open_page(p, CHROMIUM, ARGS)
        self.page.goto(url)
        self.page.set_input_files("#file", str(path))
        self.page.click("#open")
        self.page.wait_for_function("() => document.getElementById('video').dataset.frame === '0'")

    def js(self, expr, arg=None):
        return self.page.evaluate(expr, arg)

    def frame(self) -> int:
        return int(self.js("document.getElementById('video').dataset.frame"))

    def pixels(self) -> dict:  # object pixels on the frame shown, as the page counted them from its label PNG
        return json.loads(self.js("document.getElementById('video').dataset.pixels"))

    def scrub(self, n: int) -> None:
        self.js("(n) => { const s = document.getElementById('scrub'); s.value = String(n); "
                "s.dispatchEvent(new Event('input')); }", n)  # fmt: skip
        self.page.wait_for_function(f"() => document.getElementById('video').dataset.frame === '{n}'")
        self.page.wait_for_timeout(100)

    def screen(self, x, y):  # frame pixel -> page position (the frame fitted in the canvas, aspect kept)
        box = self.page.locator("#video").bounding_box()
        s = min(box["width"] / W, box["height"] / H)
        ox, oy = (box["width"] - s * W) / 2, (box["height"] - s * H) / 2
        return box["x"] + ox + s * (x + 0.5), box["y"] + oy + s * (y + 0.5)

    def drag(self, x0, y0, x1, y1):
        self.js("window.volsam.state.lastChange = null")
        self.page.mouse.move(*self.screen(x0, y0))
        self.page.mouse.down()
        self.page.mouse.move(*self.screen(x1, y1), steps=6)
        self.page.mouse.up()

    def click(self, x, y):
        self.js("window.volsam.state.lastChange = null")
        self.page.mouse.click(*self.screen(x, y))

    def wait_change(self):
        self.page.wait_for_function("() => window.volsam.state.lastChange !== null", timeout=60_000)
        self.page.wait_for_timeout(300)

    def download(self, selector, path: Path) -> Path:
        with self.page.expect_download() as info:
            self.page.click(selector)
        info.value.save_as(str(path))
        return path


def test_scrub_play_box_track_correct_and_download(toy_server, clip, tmp_path):
    path, truth = clip
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            assert page.page.is_visible("#video") and not page.page.is_visible("#gl")
            assert page.page.is_visible("#scrub") and not page.page.is_visible("#slices")
            assert page.js("document.getElementById('scrub').max") == str(N - 1)
            assert page.page.inner_text("#frameno").startswith(f"frame 0 / {N - 1}")
            page.scrub(9)
            assert page.page.inner_text("#frameno").startswith(f"frame 9 / {N - 1}") and page.pixels() == {}
            page.page.click("#play")  # plays on from frame 9, then pause
            page.page.wait_for_function("() => Number(document.getElementById('video').dataset.frame) >= 12")
            page.page.click("#play")
            page.page.wait_for_timeout(300)
            stopped = page.frame()
            page.page.wait_for_timeout(400)
            assert page.frame() == stopped and page.page.inner_text("#play") == "Play"

            # a box on frame 2: tracked both ways, a determinate bar while it runs
            page.scrub(2)
            ys, xs = np.nonzero(truth[2])
            page.drag(xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)
            page.page.wait_for_function("() => document.getElementById('progress').hasAttribute('value')")
            assert page.js("document.getElementById('progress').max") == N
            page.wait_change()
            assert page.page.inner_text("#status").endswith(f"frames 0–{N - 1}")
            assert page.js("window.volsam.state.lastChange.frames") == [0, N - 1]
            shown = {}
            for t in (2, 0, 7, N - 1):  # the masks overlaid while scrubbing
                page.scrub(t)
                shown[t] = page.pixels().get("1", 0)
                assert page.page.inner_text("#objects .stats") == f"{shown[t]} px on frame {t}"
                assert abs(shown[t] - int(truth[t].sum())) <= 0.25 * truth[t].sum(), (t, shown[t], truth[t].sum())
            box = page.js("window.volsam.state.prompts")[0]
            assert box["frame"] == 2 and box["label"] == 1
            page.scrub(7)
            IMAGES.mkdir(parents=True, exist_ok=True)
            page.page.screenshot(path=str(IMAGES / "web-video.png"))

            # downloads: the npz is volsam segment's job on the same video and box (Dice 1.0 per frame)
            job = segment_video(path, [Box2D(*box["box"], slice=2)], tmp_path / "cli.npz", engine=ToyEngine())
            want = np.load(job.output)["masks"]
            got = np.load(page.download("#download-npz", tmp_path / "masks.npz"))["masks"]
            assert got.shape == (N, H, W) and np.array_equal(got, want) and want.any()
            with zipfile.ZipFile(page.download("#download-pngzip", tmp_path / "masks.zip")) as zf:
                assert len(zf.namelist()) == N + 1
                sidecar = json.loads(zf.read("segmentation.json"))
            assert sidecar["objects"][0]["prompts"] == [{"box": box["box"], "frame": 2}]
            with av.open(str(page.download("#download-overlay", tmp_path / "overlay.mp4"))) as container:
                assert sum(1 for _ in container.decode(video=0)) == N

            # a − click on frame 7 (inside the disc): with the box around the object's mask there (kept as a prompt),
            # walked from frame 7; the frame empties, Ctrl+Z brings it back
            page.page.keyboard.press("n")
            ys, xs = np.nonzero(truth[7])
            page.click(int(xs.mean()), int(ys.mean()))
            page.wait_change()
            prompts = page.js("window.volsam.state.prompts")
            assert page.pixels().get("1", 0) == 0 and len(prompts) == 3
            ys7, xs7 = np.nonzero(got[7])
            around = [int(xs7.min()), int(ys7.min()), int(xs7.max()), int(ys7.max())]
            assert {"label": 1, "box": around, "frame": 7} in prompts
            assert {"label": 1, "point": [int(xs.mean()), int(ys.mean())], "frame": 7, "positive": False} in prompts
            page.page.keyboard.press("Control+z")
            page.wait_change()
            assert page.pixels().get("1", 0) == shown[7] and len(page.js("window.volsam.state.prompts")) == 1
            page.page.keyboard.press("ArrowUp")  # the next frame
            page.page.wait_for_function("() => document.getElementById('video').dataset.frame === '8'")
            assert page.errors == [], page.errors
        finally:
            page.browser.close()


def test_the_next_frames_pictures_are_fetched_ahead(toy_server, clip):
    """After a frame is shown the page fetches the next three frames' pictures, one after the other; scrubbing
    to one of them asks the server only for its labels, scrubbing back for both."""
    path, _ = clip
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            asked: list[str] = []
            page.page.on("request", lambda r: asked.append(r.url.split("/api/sessions/")[-1].split("?")[0]))
            page.scrub(9)
            page.page.wait_for_timeout(1500)
            pictures = [int(u.split("/")[-1]) for u in asked if "/frames/" in u and "/labelmap/" not in u]
            # (frames 2 and 3 may still come from what frame 0, shown on opening, fetched ahead)
            assert [n for n in pictures if n >= 9] == [9, 10, 11, 12], asked
            asked.clear()
            page.scrub(11)
            assert [u for u in asked if u.endswith("/frames/11")] == [next(u for u in asked if "labelmap" in u)]
            asked.clear()
            page.scrub(5)
            assert sum(u.endswith("/frames/5") and "labelmap" not in u for u in asked) == 1, asked
            assert page.errors == [], page.errors
        finally:
            page.browser.close()
