"""The web page in headless Chromium (Debian's, driven by Playwright): upload a volume, draw a box with the
mouse, let it propagate, download the label map, and compare it with a local Session given the same box."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.server.test_live import cases, server  # noqa: F401 -- module fixtures: a live volsam serve
from volsam.engines import get as get_engine
from volsam.io import read_volume
from volsam.server.web import STATIC
from volsam.session import Session

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make dev`")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make test` (make browser)"),
    pytest.mark.skipif(not (STATIC / "vendor" / "niivue.umd.js").is_file(), reason="`make viewer` fetches Niivue"),
]
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
    "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[2] / "results" / "web"


def test_box_drawn_in_the_browser_segments_like_a_local_session(server, cases, tmp_path):  # noqa: F811
    url, _ = server
    lesion, path = cases["flat-01"]
    b = lesion.middle_box
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)  # a fresh temporary profile each time
        page = browser.new_page(viewport={"width": 1200, "height": 800}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        urls: list[str] = []  # every URL the page asked for: none may carry a token or a lease
        page.on("request", lambda r: urls.append(r.url))
        page.goto(url)
        page.set_input_files("#file", str(path))
        page.select_option("#modality", "MR")
        page.click("#open")
        page.wait_for_function("() => window.volsam.state.objects.length === 1 && window.volsam.nv.volumes.length >= 1")
        page.click('[data-view="0"]')  # axial view
        page.evaluate("(ijk) => window.volsam.goTo(ijk)", [(b.u0 + b.u1) // 2, (b.v0 + b.v1) // 2, b.slice])
        page.wait_for_timeout(300)
        start = page.evaluate("(ijk) => window.volsam.canvasPoint(ijk)", [b.u0, b.v0, b.slice])
        end = page.evaluate("(ijk) => window.volsam.canvasPoint(ijk)", [b.u1, b.v1, b.slice])
        assert start and end, "the box corners are not on the canvas"
        canvas = page.locator("#gl").bounding_box()
        page.mouse.move(canvas["x"] + start[0], canvas["y"] + start[1])
        page.mouse.down()
        page.mouse.move(canvas["x"] + end[0], canvas["y"] + end[1], steps=8)
        page.mouse.up()
        page.wait_for_function("() => window.volsam.state.lastChange !== null", timeout=120_000)
        page.wait_for_timeout(500)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "box-propagated.png"))
        # a background click inside the object with the "- click" tool, then Undo: back to the box's result
        page.check('input[name="tool"][value="remove"]')
        page.evaluate("window.volsam.state.lastChange = null")
        centre = page.evaluate(
            "(ijk) => window.volsam.canvasPoint(ijk)", [(b.u0 + b.u1) // 2, (b.v0 + b.v1) // 2, b.slice]
        )
        page.mouse.click(canvas["x"] + centre[0], canvas["y"] + centre[1])
        page.wait_for_function("() => window.volsam.state.lastChange !== null", timeout=120_000)
        clicked = page.evaluate("window.volsam.state.lastChange")
        assert clicked["labels"] == [1]
        page.evaluate("window.volsam.state.lastChange = null")
        page.click("#undo")
        page.wait_for_function("() => window.volsam.state.lastChange !== null", timeout=60_000)
        sent = page.evaluate(
            "async () => (await fetch(`/api/sessions/${window.volsam.state.id}/prompts`,"
            " {headers: {'X-Session-Lease': window.volsam.state.lease}})).json()"
        )
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "downloaded.nii.gz"
        download.value.save_as(saved)
        assert not errors and not page.evaluate("window.volsam.state.errors"), errors
        lease = page.evaluate("window.volsam.state.lease")
        browser.close()

    assert any("/labelmap" in u for u in urls) and any("/events" in u for u in urls)
    assert not [u for u in urls if lease in u or "access_token" in u or "lease=" in u]

    assert len(sent["objects"][0]["prompts"]) == 1  # the click was undone
    prompt = sent["objects"][0]["prompts"][0]
    assert set(prompt) >= {"box", "slice"} and prompt["slice"] == b.slice
    u0, v0, u1, v1 = prompt["box"]
    assert abs(u0 - b.u0) <= 1 and abs(v1 - b.v1) <= 1  # the mouse drew the box we aimed for
    local = Session(read_volume(path), engine=get_engine("medsam-lite", device="cpu"), modality="MR")
    obj = local.add_object()
    local.add_box(obj, prompt["slice"], (u0, v0, u1, v1))
    downloaded = read_volume(saved)
    assert downloaded.same_grid(lesion.image)
    want, got = local.labelmap().array > 0, downloaded.array > 0
    assert want.any() and np.array_equal(want, got)  # Dice 1.0


def test_the_api_docs_render_offline_from_the_package(server):  # noqa: F811
    url, _ = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)  # Swagger UI drew the operations
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        browser.close()
    assert any("/api/sessions/{sid}/prompts" in t.replace("\u200b", "") for t in paths), paths
    assert all(u.startswith(url) for u in urls), [u for u in urls if not u.startswith(url)]  # no CDN
    assert not problems, problems
