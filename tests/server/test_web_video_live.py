"""A video run watched live in the web page, in headless Chromium against the server's own code in a uvicorn
process with the toy engine slowed down (so that the run can be watched): while the run goes, the frame on
screen gets its new mask as soon as the run writes it (its ``frame`` event), scrubbing shows the frames done so
far with their new masks and the frames not reached as before; at ``idle`` every frame has the result; a
stopped run's masks go from the frame shown. The masks of the real LiteMedSAM during a run are checked in
``tests/server/test_video_live.py``; this test is the page's side. Once the page has looked at the frames of a
running walk, the test makes the toy fast (a file beside the server's script sets its delay) so that the rest of
the walk, which it only waits for, takes no 2 s a frame; it is slow again for the run that is stopped."""

from __future__ import annotations

import pytest

from tests.server.test_web import ARGS, CHROMIUM, playwright, pytestmark  # noqa: F401 -- the same browser and skips
from tests.server.test_web_video import SERVER as VIDEO_SERVER
from tests.server.test_web_video import Page, clip  # noqa: F401 -- the same clip (16 frames, 96 x 128)
from tests.support.browser import script_server, set_delay

# test_web_video's server, its toy engine slower: about 2 s a frame (8 predictions), so the page can look at a run;
# the seconds a prediction in a file beside the script when the test writes one (_delay)
SLEEP = "time.sleep(float(DELAY.read_text()) if DELAY.exists() else 0.25)"
SERVER = VIDEO_SERVER.replace("time.sleep(0.05)", SLEEP).replace(
    "class Slow(", 'DELAY = __import__("pathlib").Path(sys.argv[0]).with_name("delay")\n\nclass Slow('
)
assert SLEEP in SERVER and "DELAY = " in SERVER
BUSY = "() => window.volsam.state.busy > 0"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """(URL, the file that sets its toy's delay)."""
    folder = tmp_path_factory.mktemp("videoliveserver")
    for url in script_server(folder, SERVER):
        yield url, folder / "delay"


def _object_px(page: Page, label: int) -> int:
    return int(page.pixels().get(str(label), 0))


@pytest.mark.slow
def test_the_frames_of_a_running_walk_show_as_they_are_done(slow_server, clip):  # noqa: F811
    path, truth = clip
    url, delay = slow_server
    with playwright.sync_playwright() as p:
        page = Page(p, url, path)
        try:
            # a box on frame 4, then the page goes to frame 8 before the walk (4, 5, ... 15, then 3 .. 0) is there
            page.scrub(4)
            ys, xs = truth[4].nonzero()
            page.drag(xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)
            page.page.wait_for_function(BUSY)
            page.scrub(8)
            during: dict[int, int] = {8: _object_px(page, 1)}
            assert during[8] == 0  # not reached yet (the walk takes about 2 s a frame here)
            # the frame on screen gets its mask when the run writes it, the run still going (no scrub, no edit)
            page.page.wait_for_function(
                "() => JSON.parse(document.getElementById('video').dataset.pixels)['1'] > 0", timeout=60_000
            )
            assert page.js("window.volsam.state.busy") > 0 and page.js("window.volsam.state.lastChange") is None
            # scrubbing while it runs: frame 6 (done) shows its mask, frame 1 (not reached: backward last) none
            page.scrub(6)
            during[6] = _object_px(page, 1)
            page.scrub(1)
            during[1] = _object_px(page, 1)
            assert page.js("window.volsam.state.busy") > 0, "the run ended before the page looked"
            assert during[6] > 0 and during[1] == 0, during
            set_delay(delay, 0.0)  # the page has looked: the rest of the walk at once
            page.wait_change()
            assert _object_px(page, 1) > 0  # at the end frame 1 has the result too
            page.scrub(6)
            assert _object_px(page, 1) == during[6]  # what the run showed of frame 6 is its result

            # a second object, stopped while it runs: it showed on the frame on screen, and goes with the stop
            set_delay(delay, None)  # 2 s a frame again: the run is still going when the page stops it
            page.page.click("#addobj")
            page.page.wait_for_function("() => window.volsam.state.active === 2")
            page.drag(xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)  # on frame 6 (walked first)
            page.page.wait_for_function(
                "() => window.volsam.state.busy > 0 && "
                "JSON.parse(document.getElementById('video').dataset.pixels)['2'] > 0",
                timeout=60_000,
            )
            page.page.keyboard.press("Escape")  # Stop
            page.page.wait_for_function("() => window.volsam.state.stopped === true", timeout=60_000)
            page.page.wait_for_function("() => window.volsam.state.busy === 0", timeout=60_000)
            page.page.wait_for_function(
                "() => !JSON.parse(document.getElementById('video').dataset.pixels)['2']", timeout=10_000
            )
            assert _object_px(page, 1) == during[6]  # object 1 as before (object 2 was on top of it)
            assert [e for e in page.errors if not e.endswith("/prompts")] == []  # the stopped prompt's 409 aside
        finally:
            set_delay(delay, None)
            page.browser.close()
