"""The page's live preview in headless Chromium (Debian's, driven by Playwright), against the server's own code
with the toy engine slowed to 0.1 s a slice (tests/server/test_web_tool.py's server): while a walk runs, the
label overlay gains the slices the server has made (``GET .../preview``) before the step's ``idle``; the label
map at the end replaces them; a stopped step's preview goes."""

from __future__ import annotations

import numpy as np

from tests.server.test_web import playwright, pytestmark  # noqa: F401 -- the same browser and skips
from tests.server.test_web_tool import BLOCK, SHAPE, Page, scan, toy_server  # noqa: F401 -- fixtures

# label voxels in the overlay Niivue shows, as native indices (i fastest), and whether a step is running
OVERLAY = """(label) => { const s = window.volsam.state, img = s.labels ? s.labels.img : [], at = [];
  for (let n = 0; n < img.length; n++) if (img[n] === label) at.push(n);
  return { busy: s.busy, at }; }"""


def _native(indices: list[int]) -> np.ndarray:
    """Overlay voxel indices (i fastest) as a bool ``[k, j, i]`` array."""
    out = np.zeros(SHAPE, bool)
    out.reshape(-1)[np.asarray(indices, dtype=np.int64)] = True
    return out


def _block() -> np.ndarray:
    """The toy scan's bright block (what the toy engine segments), ``[k, j, i]``."""
    out = np.zeros(SHAPE, bool)
    out[BLOCK] = True
    return out


def test_the_overlay_gains_slices_before_idle_and_a_stop_removes_them(toy_server, scan):  # noqa: F811
    path, _volume = scan
    want = _block()
    with playwright.sync_playwright() as p:
        page = Page(p, toy_server, path)
        try:
            page.page.click('button[data-view="0"]')
            page.page.wait_for_function("() => window.volsam.state.labels !== null")  # empty, loaded at open
            assert page.js(OVERLAY, 1)["at"] == []
            page.drag_box(12, 18, 46, 52, 20)
            # while the walk runs (busy), the overlay already has object 1 on several slices
            page.page.wait_for_function(
                f"() => {{ const o = ({OVERLAY})(1); return o.busy > 0 && o.at.length > 3 * {30 * 30}; }}",
                timeout=30_000,
            )
            during = page.js(OVERLAY, 1)
            assert during["busy"] > 0, "the step ended before the preview was read"
            early = _native(during["at"])
            assert 3 <= early.any(axis=(1, 2)).sum() < want.any(axis=(1, 2)).sum()  # some slices, not all yet
            assert not (early & ~want).any()  # what shows is the block, on the slices made so far
            page.wait_change()
            final = _native(page.js(OVERLAY, 1)["at"])
            assert np.array_equal(final, want)  # the label map replaced the preview
            assert page.js(OVERLAY, 1)["busy"] == 0

            # a second object, stopped in the middle: its previewed slices go, object 1 stays
            page.page.click("#addobj")
            page.page.wait_for_function("() => window.volsam.state.objects.length === 2")
            page.drag_box(12, 18, 46, 52, 14)
            page.page.wait_for_function(
                f"() => {{ const o = ({OVERLAY})(2); return o.busy > 0 && o.at.length > 2 * {30 * 30}; }}",
                timeout=30_000,
            )
            assert not (_native(page.js(OVERLAY, 2)["at"]) & ~want).any()
            page.page.keyboard.press("Escape")  # Stop
            page.page.wait_for_function("() => window.volsam.state.stopped === true", timeout=30_000)
            page.page.wait_for_function(f"() => ({OVERLAY})(2).at.length === 0", timeout=30_000)
            assert np.array_equal(_native(page.js(OVERLAY, 1)["at"]), want)
            assert [e for e in page.errors if not e.endswith("/prompts")] == []  # the stopped prompt's 409 aside
            assert any(e.startswith("409 ") for e in page.errors)
        finally:
            page.close()
