"""The web page as an annotation tool, in headless Chromium (Debian's, driven by Playwright) against the server's
own code in a uvicorn process with the toy engine (0.1 s per slice, so that a walk can be watched and stopped;
three candidate masks per prompt): slice sliders and numbers, wheel direction, arrow keys, window / level,
shortcuts, markers that stay until undone, the objects panel, the progress bar and the stop button, the
downloads, candidate cycling. Where nothing is left to watch while a walk runs (candidate cycling; the box test
once its walk was stopped) the toy's delay is 0 (:func:`toy_delay`: a file beside the server's script that it
reads before each prediction), 0.1 s again after the test. Screenshots of the states go to results/web/, or to
docs/images/ (the README's server quick start shows them) with VOLSAM_SCREENSHOTS=docs/images."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.server.test_web import ARGS, CHROMIUM, playwright, pytestmark  # noqa: F401 -- the same browser and skips
from tests.support.browser import open_page, script_server, set_delay
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume

ROOT = Path(__file__).resolve().parents[2]
# Screenshots for the README: written to docs/images only when asked (VOLSAM_SCREENSHOTS=docs/images), so a
# test run never changes tracked files; otherwise to results/web (git-ignored), like tests/server/test_web.py.
IMAGES = Path(os.environ.get("VOLSAM_SCREENSHOTS") or ROOT / "results" / "web")
SERVER = textwrap.dedent(
    """
    import sys, time, uvicorn
    from pathlib import Path
    from tests.session.test_candidates import CandidateToy
    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig
    from volsam.server.store import SessionStore

    DELAY = Path(sys.argv[0]).with_name("delay")  # written by toy_delay(): seconds a slice instead of 0.1

    class Slow(CandidateToy):  # 0.1 s a slice: a walk can be watched and stopped; three candidate masks
        def predict(self, embedding, **kw):
            time.sleep(float(DELAY.read_text()) if DELAY.exists() else 0.1)
            return super().predict(embedding, **kw)

    store = SessionStore(8, 600.0, make_session=lambda volume, request: request.session(volume, Slow()))
    app = create_app(ServerConfig(device="cpu"), store)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)
DELAYS: dict[str, Path] = {}  # a toy server's URL -> the file that sets its delay
SHAPE = (40, 72, 64)  # k, j, i
BLOCK = (slice(8, 32), slice(20, 50), slice(14, 44))


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toyserver")
    for url in script_server(folder, SERVER):
        DELAYS[url] = folder / "delay"
        yield url


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    rng = np.random.default_rng(0)
    array = rng.normal(40, 5, SHAPE).astype(np.float32)
    array[BLOCK] += 200  # a bright block on slices 8..31
    volume = Volume(array, spacing=(0.9, 0.9, 2.5), origin=(-30.0, -40.0, 10.0))
    return write_volume(volume, tmp_path_factory.mktemp("scan") / "scan.nii.gz"), volume


def toy_delay(url: str, seconds: float | None) -> None:
    """The toy server at ``url`` waits ``seconds`` a slice from now on (None: 0.1 s again)."""
    set_delay(DELAYS[url], seconds)


class Page:
    """A browser page on the server with the scan open, and the errors it reported."""

    def __init__(self, p, url, path):
        self.browser, self.page, self.errors = open_page(p, CHROMIUM, ARGS)
        self.page.goto(url)
        self.page.set_input_files("#file", str(path))
        self.page.select_option("#modality", "MR")
        self.page.click("#open")
        self.page.wait_for_function(
            "() => window.volsam.state.objects.length === 1 && window.volsam.nv.volumes.length >= 1"
        )
        self.page.wait_for_timeout(300)

    def js(self, expr, arg=None):
        return self.page.evaluate(expr, arg)

    def slices(self):
        return self.js("window.volsam.sliceInfo()")

    def canvas_xy(self, ijk):
        xy = self.js("(ijk) => window.volsam.canvasPoint(ijk)", list(ijk))
        box = self.page.locator("#gl").bounding_box()
        return box["x"] + xy[0], box["y"] + xy[1]

    def drag_box(self, i0, j0, i1, j1, k):
        self.js("(ijk) => window.volsam.goTo(ijk)", [(i0 + i1) // 2, (j0 + j1) // 2, k])
        self.page.wait_for_timeout(200)
        self.js("window.volsam.state.lastChange = null")
        start, end = self.canvas_xy((i0, j0, k)), self.canvas_xy((i1, j1, k))
        self.page.mouse.move(*start)
        self.page.mouse.down()
        self.page.mouse.move(*end, steps=6)
        self.page.mouse.up()

    def wait_change(self, timeout=60_000):
        self.page.wait_for_function("() => window.volsam.state.lastChange !== null", timeout=timeout)
        self.page.wait_for_timeout(300)

    def marks(self):  # red pixels on the marker canvas: object 1's box, - clicks (the crosshair is green)
        return self.js(
            """() => { const c = document.getElementById('marks'), d = c.getContext('2d')
                 .getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] > d[i + 1] + 60) n++; return n; }"""
        )

    def crosshair(self):  # green pixels on the marker canvas: the crosshair, one pixel wide
        return self.js(
            """() => { const c = document.getElementById('marks'), d = c.getContext('2d')
                 .getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 1] > d[i] + 60) n++; return n; }"""
        )

    def shot(self, name):
        IMAGES.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(IMAGES / name))

    def close(self):
        self.browser.close()


def test_slices_wheel_keys_and_window_level(toy_server, scan):
    path, volume = scan
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            page.page.click('button[data-view="0"]')  # axial alone
            page.page.wait_for_timeout(200)
            # the crosshair: one pixel wide across the tile, whatever the zoom (a line per axis, a gap at the point)
            tile = page.js("window.volsam.nv.screenSlices[0].leftTopWidthHeight")
            assert page.crosshair() <= 1.1 * (tile[2] + tile[3]) and page.crosshair() > 0.8 * (tile[2] + tile[3]) - 40
            info = page.slices()
            axial = info[0]
            assert axial["axis"] == "k" and axial["count"] == SHAPE[0]
            text = page.page.locator('.slice[data-view="0"] .number').inner_text()
            assert text.startswith(f"k {axial['index']} / {SHAPE[0]}") and "S " in text and "mm" in text
            # the slider moves the slice, and the number and position follow
            page.page.locator('.slice[data-view="0"] input').fill("30")
            page.page.wait_for_timeout(100)
            moved = page.slices()[0]
            assert moved["value"] == 30 and moved["index"] == 30  # k runs inferior -> superior in this file
            assert moved["mm"] == pytest.approx(10.0 + 2.5 * 30, abs=0.01)
            assert f"k 30 / {SHAPE[0]}" in page.page.locator('.slice[data-view="0"] .number').inner_text()
            # the wheel: up goes superior, down inferior (3D Slicer's and ITK-SNAP's way)
            page.page.mouse.move(*page.canvas_xy((32, 36, 30)))
            page.page.mouse.wheel(0, -100)
            page.page.wait_for_timeout(150)
            assert page.slices()[0]["index"] == 31
            page.page.mouse.wheel(0, 100)
            page.page.wait_for_timeout(150)
            page.page.mouse.wheel(0, 100)
            page.page.wait_for_timeout(150)
            assert page.slices()[0]["index"] == 29
            # arrow keys and page keys
            page.page.keyboard.press("ArrowUp")
            assert page.slices()[0]["index"] == 30
            page.page.keyboard.press("PageDown")
            assert page.slices()[0]["index"] == 25
            page.page.keyboard.press("ArrowDown")
            assert page.slices()[0]["index"] == 24
            # MR presets are percentile ranges; typing W / L sets the display range
            options = page.page.locator("#window option").all_inner_texts()
            assert "0.5–99.5 %" in options and not any(o.startswith("CT") for o in options)
            page.page.fill("#ww", "100")
            page.page.fill("#wl", "60")
            page.page.locator("#wl").dispatch_event("change")
            cal = page.js("[window.volsam.nv.volumes[0].cal_min, window.volsam.nv.volumes[0].cal_max]")
            assert cal == pytest.approx([10, 110])
            page.page.select_option("#window", "p2,98")
            inside = np.sort(volume.array[volume.array != 0])
            lo, hi = np.percentile(inside, [2, 98])
            cal = page.js("[window.volsam.nv.volumes[0].cal_min, window.volsam.nv.volumes[0].cal_max]")
            assert cal[0] == pytest.approx(lo, rel=0.05) and cal[1] == pytest.approx(hi, rel=0.05)
            # a drag with the right button changes the window (wider to the right, as in common viewers)
            before = page.js("window.volsam.nv.volumes[0].cal_max - window.volsam.nv.volumes[0].cal_min")
            x, y = page.canvas_xy((32, 36, 24))
            page.page.mouse.move(x, y)
            page.page.mouse.down(button="right")
            page.page.mouse.move(x + 80, y, steps=5)
            page.page.mouse.up(button="right")
            page.page.wait_for_timeout(150)
            after = page.js("window.volsam.nv.volumes[0].cal_max - window.volsam.nv.volumes[0].cal_min")
            assert after != pytest.approx(before)
            assert float(page.page.input_value("#ww")) == pytest.approx(after, rel=1e-3)
            # the radiological toggle, with the orientation letters inside the canvas
            page.page.check("#radiological")
            assert page.js("window.volsam.nv.opts.isRadiologicalConvention") is True
            page.page.click('button[data-view="3"]')
            page.page.wait_for_timeout(300)
            tiles = page.js("window.volsam.nv.screenSlices.map((t) => t.axCorSag)")
            assert sorted(tiles) == [0, 1, 2, 4]  # three planes and the 3D rendering: no empty quadrant
            page.shot("web-radiological.png")
            assert page.js("getComputedStyle(document.getElementById('tokenbox')).display") != "none"
            assert not page.errors, page.errors
        finally:
            page.close()


@pytest.mark.slow
def test_box_progress_stop_markers_objects_shortcuts_and_downloads(toy_server, scan, tmp_path):
    path, volume = scan
    want = np.zeros(SHAPE, bool)
    want[BLOCK] = True
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            page.page.click('button[data-view="0"]')
            layout = [page.page.locator(q).bounding_box() for q in ("#viewer", "#tools", "#status", "#stop")]
            # a box; while the walk runs the bar is determinate (slices along k) and Stop stops it
            page.drag_box(12, 18, 46, 52, 20)
            page.page.wait_for_function("() => window.volsam.state.frames >= 3", timeout=30_000)
            running = [page.page.locator(q).bounding_box() for q in ("#viewer", "#tools", "#status", "#stop")]
            assert running == layout  # nothing moves while the model runs
            # the bar's maximum is the walk's extent as the session reports it (``total`` events: the slices
            # along k at first, fewer once a direction of the walk has ended), never more than the axis
            page.page.wait_for_function(
                "() => window.volsam.state.total > 0"
                " && Number(document.querySelector('#progress').max) === window.volsam.state.total",
                timeout=30_000,
            )
            assert page.js("window.volsam.state.total") <= SHAPE[0]
            assert int(page.page.locator("#progress").get_attribute("value")) >= 3
            assert page.marks() > 50  # the drawn box shows while the model runs
            page.shot("web-running.png")
            page.page.keyboard.press("Escape")  # the Stop button's key
            page.page.wait_for_function("() => window.volsam.state.stopped === true", timeout=30_000)
            page.page.wait_for_function("() => window.volsam.state.busy === 0")
            assert page.page.locator("#stop").is_disabled()
            assert "stopped" in page.page.inner_text("#status")
            described = page.js(
                "async () => (await fetch(`/api/sessions/${window.volsam.state.id}`,"
                " {headers: {'X-Session-Lease': window.volsam.state.lease}})).json()"
            )
            assert described["objects"][0]["prompts"] == 0  # the stopped prompt left nothing
            toy_delay(toy_server, 0.0)  # nothing more to watch while it runs: the toy answers at once
            # the same box again, to the end: the object's panel shows its volume and slice range
            page.drag_box(12, 18, 46, 52, 20)
            page.wait_change()
            assert page.js("window.volsam.state.lastChange.frames") == [8, 31]
            ml = want.sum() * 0.9 * 0.9 * 2.5 / 1000
            stats = page.page.locator("#objects li .stats").inner_text()
            assert stats == f"{ml:.2f} ml · k 8–31", stats
            # the box stays drawn on its slice, not on others
            boxed = page.marks()
            assert boxed > 50
            page.page.mouse.move(*page.canvas_xy((30, 30, 20)))
            for _ in range(5):
                page.page.keyboard.press("ArrowUp")
            page.page.wait_for_timeout(100)
            assert page.slices()[0]["index"] == 25 and page.marks() == 0
            for _ in range(5):
                page.page.keyboard.press("ArrowDown")
            page.page.wait_for_timeout(100)
            assert page.marks() == boxed
            page.page.click('button[data-view="3"]')
            page.page.wait_for_timeout(300)
            page.shot("web-box-markers.png")
            page.page.click('button[data-view="0"]')
            page.page.wait_for_timeout(200)
            # shortcuts: P, N, B pick the tools; a - click (N) leaves a red marker until Ctrl+Z
            page.page.keyboard.press("p")
            assert page.page.is_checked('input[name="tool"][value="add"]')
            page.page.keyboard.press("b")
            assert page.page.is_checked('input[name="tool"][value="box"]')
            page.page.keyboard.press("n")
            assert page.page.is_checked('input[name="tool"][value="remove"]')
            page.js("window.volsam.state.lastChange = null")
            page.page.mouse.click(*page.canvas_xy((20, 25, 20)))
            page.wait_change()
            clicked = page.marks()
            assert clicked > boxed
            assert "k 8–31" in page.page.locator("#objects li .stats").inner_text()
            page.page.keyboard.press("Control+z")
            page.page.wait_for_function("() => window.volsam.state.prompts.length === 1", timeout=30_000)
            page.page.wait_for_timeout(200)
            assert page.marks() == boxed
            page.page.keyboard.press("Control+y")
            page.page.wait_for_function("() => window.volsam.state.prompts.length === 2", timeout=30_000)
            page.page.keyboard.press("Control+z")
            page.page.wait_for_function("() => window.volsam.state.prompts.length === 1", timeout=30_000)
            # hiding the object hides its markers; showing brings them back
            page.page.locator("#objects li input.visible").uncheck()
            page.page.wait_for_timeout(100)
            assert page.marks() == 0
            page.page.locator("#objects li input.visible").check()
            page.page.wait_for_timeout(100)
            assert page.marks() == boxed
            # downloads: NIfTI, Slicer's .seg.nrrd, the prompts JSON
            got = {}
            for link in ("#download", "#download-slicer", "#download-prompts"):
                with page.page.expect_download() as download:
                    page.page.click(link)
                name = download.value.suggested_filename
                got[name] = tmp_path / name
                download.value.save_as(got[name])
            assert sorted(got) == ["labelmap.nii.gz", "labelmap.seg.nrrd", "prompts.json"]
            assert page.page.locator("#download-seg").is_hidden()  # not a DICOM upload
            # delete the object, then undo: it comes back with its voxels
            page.js("window.volsam.state.lastChange = null")
            page.page.click("#objects li button.delete")
            page.wait_change()
            assert page.page.locator("#objects li").count() == 0 and page.marks() == 0
            page.js("window.volsam.state.lastChange = null")
            page.page.click("#undo")
            page.wait_change()
            assert page.page.locator("#objects li").count() == 1 and page.marks() == boxed
            stopped = [e for e in page.errors if e.startswith("409 ") and e.endswith("/prompts")]
            assert len(stopped) == 1 and len(page.errors) == 1, page.errors  # the stopped prompt's answer only
            assert not page.js("window.volsam.state.errors")
        finally:
            toy_delay(toy_server, None)
            page.close()
    labels = read_volume(got["labelmap.nii.gz"])
    assert labels.same_grid(volume) and np.array_equal(labels.array > 0, want)
    slicer = read_volume(got["labelmap.seg.nrrd"])
    assert np.array_equal(slicer.array, labels.array)
    import json

    doc = json.loads(got["prompts.json"].read_text())
    assert doc["objects"][0]["prompts"][0]["slice"] == 20


@pytest.mark.slow
def test_the_c_key_cycles_candidate_masks_and_back(toy_server, scan):
    path, _ = scan
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            toy_delay(toy_server, 0.0)  # no walk to watch here: the toy answers at once
            page.page.click('button[data-view="0"]')
            page.drag_box(12, 18, 46, 52, 20)
            page.wait_change()
            stats = lambda: page.page.locator("#objects li .stats").inner_text()  # noqa: E731
            original, voxels = stats(), page.js("window.volsam.state.stats[1].voxels")
            seen = []
            for rank in (1, 2, 0):
                page.js("window.volsam.state.lastChange = null")
                page.page.keyboard.press("c")
                page.wait_change()
                assert page.js("window.volsam.state.lastChange.candidate") == rank
                assert f"candidate {rank + 1} of 3" in page.page.inner_text("#status")
                seen.append(page.js("window.volsam.state.stats[1].voxels"))
                assert page.marks() > 50  # the box's marker stays (the choice is a mask prompt beside it)
                if rank == 1:
                    page.shot("web-candidate.png")
            assert seen[0] < voxels and seen[1] != seen[0]  # the label map changed with each candidate
            assert seen[2] == voxels and stats() == original  # and came back with the model's first answer
            assert not page.errors and not page.js("window.volsam.state.errors"), page.errors
        finally:
            toy_delay(toy_server, None)
            page.close()


def test_before_a_volume_the_canvas_is_empty_and_the_token_box_is_there(toy_server):
    from PIL import Image

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(toy_server)
            page.wait_for_function("() => window.volsam.nv && window.volsam.nv.gl")
            page.wait_for_timeout(300)
            shot = np.asarray(Image.open(__import__("io").BytesIO(page.locator("#gl").screenshot())).convert("RGB"))
            inside = shot[3:-3, 3:-3]  # (the element's edge rows may catch the page around it)
            assert (inside == inside[0, 0]).all()  # no "loading ..." text, nothing drawn
            assert page.locator("#token").is_visible()  # asked for up front, not only after a 401
            assert page.inner_text("#status").startswith("Choose a volume")
        finally:
            browser.close()
