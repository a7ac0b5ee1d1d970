"""A 2D image in the web page (headless Chromium, the toy engine in a uvicorn process, as test_web_tool.py):
a colour PNG opens as one view in colour (column 0 on the left, row 0 at the top; no slice sliders, no other
planes, no window / level), a box and a - click on it, the mask PNG download equals ``volsam segment``'s file
job on the same box; then a volume opened in the same page gets its three planes and sliders back, and a 16-bit
grey TIFF after it is one grey view with window / level."""

from __future__ import annotations

import numpy as np
import tifffile
from PIL import Image

from tests.server.test_web import ARGS, CHROMIUM, playwright, pytestmark  # noqa: F401 -- the same browser, skips
from tests.server.test_web_tool import Page, scan, toy_server  # noqa: F401 -- fixtures
from tests.session.test_candidates import CandidateToy
from volsam.core.prompts import Box2D
from volsam.jobs.volume import segment_file

H, W = 90, 120
DISC = (45, 50, 22)  # row, column, radius
BOX = (24, 20, 76, 70)  # x0, y0, x1, y1 around the disc


def _photo() -> np.ndarray:
    """An orange disc on a blue-green background, a red square near the top-left corner (orientation)."""
    yy, xx = np.mgrid[:H, :W]
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (20, 90, 120)
    rgb[(yy - DISC[0]) ** 2 + (xx - DISC[1]) ** 2 <= DISC[2] ** 2] = (250, 180, 90)
    rgb[2:12, 2:12] = (255, 0, 0)
    return rgb


def _counts(text: str) -> bool:
    """A console error that is the page's: not the GL driver's notes, not a failed load (answers are checked
    one by one; the browser's favicon request is the only one allowed to fail)."""
    return "GL Driver" not in text and not text.startswith("Failed to load resource")


class PicturePage(Page):
    """The page with a 2D image open, modality auto (as ``volsam segment`` reads a picture)."""

    def __init__(self, p, url, path):
        self.browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 820}, accept_downloads=True)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and _counts(m.text) and self.errors.append(m.text))
        self.page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url and self.errors.append(r.url))
        self.page.goto(url)
        self.open(path)

    def open(self, path):
        self.js("window.volsam.state.objects = []")
        self.page.set_input_files("#file", str(path))
        self.page.click("#open")
        self.page.wait_for_function(
            "() => window.volsam.state.objects.length === 1 && window.volsam.nv.volumes.length >= 1"
        )
        self.page.wait_for_timeout(300)

    def pixel(self, ijk):
        """The rendered colour of the WebGL canvas at native voxel ijk (read from a screenshot)."""
        import io

        x, y = self.canvas_xy(ijk)
        shot = Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")
        return np.asarray(shot)[int(round(y)), int(round(x))]


def test_a_colour_png_box_click_and_mask_png_then_a_volume_again(toy_server, scan, tmp_path):  # noqa: F811
    photo = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(photo)
    tiff = tmp_path / "scan.tif"
    tifffile.imwrite(tiff, _photo()[..., 0].astype(np.uint16) * 200)
    with playwright.sync_playwright() as p:
        page = PicturePage(p, toy_server, photo)
        try:
            geometry = page.js("window.volsam.state.geometry")
            assert geometry["is_2d"] and geometry["colour"] and geometry["size"] == [W, H, 1]
            status = page.page.inner_text("#status")
            assert "2D image 120 × 90 pixels, shown in colour" in status, status
            # one view: no slice sliders, no view buttons, no window / level for a colour picture
            for hidden in ("#slices", "#views", "#windowing"):
                assert page.page.locator(hidden).is_hidden(), hidden
            assert page.js("window.volsam.nv.opts.sliceType") == 0  # axial only (no empty quadrant)
            tiles = page.js("window.volsam.nv.screenSlices.map((t) => t.axCorSag)")
            assert tiles == [0], tiles
            assert page.page.locator("#download-png").is_visible()
            assert "PgUp" not in page.page.inner_text("#keys")  # no slice keys for one slice
            # column 0 on the left, row 0 at the top; the picture's colours are on the canvas
            left_top, right_bottom = page.canvas_xy((0, 0, 0)), page.canvas_xy((W - 1, H - 1, 0))
            assert left_top[0] < right_bottom[0] and left_top[1] < right_bottom[1], (left_top, right_bottom)
            red, disc = page.pixel((6, 6, 0)), page.pixel((DISC[1], DISC[0], 0))
            assert red[0] > 200 and red[1] < 60 and red[2] < 60, red
            assert disc[0] > 200 and 130 < disc[1] < 220 and disc[2] < 140, disc
            page.shot("web-2d-colour.png")
            # a box on the picture, then a - click on the disc's centre, Ctrl+Z
            x0, y0, x1, y1 = BOX
            page.drag_box(x0, y0, x1, y1, 0)
            page.wait_change()
            assert page.js("window.volsam.state.lastChange.frames") == [0, 0]
            stats = page.page.inner_text("#objects li .stats")
            yy, xx = np.mgrid[:H, :W]
            disc_mask = (yy - DISC[0]) ** 2 + (xx - DISC[1]) ** 2 <= DISC[2] ** 2
            assert stats.startswith(f"{int(disc_mask.sum())} px"), stats
            page.page.wait_for_timeout(200)
            page.shot("web-2d-box.png")
            with page.page.expect_download() as download:
                page.page.click("#download-png")
            assert download.value.suggested_filename == "mask.png"
            got = tmp_path / "got.png"
            download.value.save_as(got)
            page.page.keyboard.press("n")
            page.js("window.volsam.state.lastChange = null")
            cx, cy = page.canvas_xy((DISC[1], DISC[0], 0))
            page.page.mouse.click(cx, cy)
            page.wait_change()
            assert page.js("window.volsam.state.stats[1]") is None  # the toy's - click removes the region
            page.js("window.volsam.state.lastChange = null")
            page.page.keyboard.press("Control+z")
            page.wait_change()
            assert page.js("window.volsam.state.stats[1].voxels") == int(disc_mask.sum())
            # a volume in the same page: three planes, the 3D rendering and the sliders are back
            page.open(scan[0])
            assert page.page.locator("#slices").is_visible() and page.page.locator("#views").is_visible()
            assert page.page.locator("#download-png").is_hidden()
            assert sorted(page.js("window.volsam.nv.screenSlices.map((t) => t.axCorSag)")) == [0, 1, 2, 4]
            # a 16-bit grey TIFF: one view again, grey, with window / level
            page.open(tiff)
            status = page.page.inner_text("#status")
            assert "2D image 120 × 90 pixels, shown grey" in status, status
            assert page.page.locator("#windowing").is_visible() and page.page.locator("#slices").is_hidden()
            assert page.js("window.volsam.nv.screenSlices.map((t) => t.axCorSag)") == [0]
            assert page.js("window.volsam.nv.volumes[0].hdr.datatypeCode") == 512  # uint16, as stored
            assert not page.errors, page.errors
            assert not page.js("window.volsam.state.errors")
        finally:
            page.close()
    # the same box through `volsam segment`'s file job with the same engine: the same label PNG
    want = tmp_path / "want.png"
    segment_file(photo, [Box2D(*BOX, slice=0)], want, engine=CandidateToy(), planar=True)
    mask, expected = np.asarray(Image.open(got)), np.asarray(Image.open(want))
    assert expected.any() and np.array_equal(mask > 0, disc_mask)
    assert mask.shape == (H, W) and np.array_equal(mask, expected)  # Dice 1.0
    assert got.read_bytes() == want.read_bytes()
