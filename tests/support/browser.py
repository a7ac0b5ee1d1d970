"""What the browser tests of the web page share: a server script run in its own uvicorn process, and a
Chromium page that records every error it sees (page errors, CSP violations, answers >= 400)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from tests.support.live_server import start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]


def script_server(folder: Path, source: str) -> Iterator[str]:
    """Run ``source`` (a script that takes its port as argv[1]) from ``folder``; yield its URL, stop it after."""
    script = folder / "server.py"
    script.write_text(source)
    url, proc = start_server(["-", str(script)], folder / "server.log", env={"PYTHONPATH": str(ROOT)})
    try:
        yield url
    finally:
        stop_server(proc)


def open_page(p, chromium: str, args: list[str]):
    """(browser, page, errors): a 1280x820 page that accepts downloads; ``errors`` fills with page errors,
    Content-Security-Policy reports and answers >= 400 (the browser's own favicon request aside)."""
    browser = p.chromium.launch(executable_path=chromium, args=args)
    page = browser.new_page(viewport={"width": 1280, "height": 820}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
    page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url and errors.append(f"{r.status} {r.url}"))
    return browser, page, errors


def set_delay(path: Path, seconds: float | None) -> None:
    """Write a toy server's delay file (``path``, beside its script, read before each prediction): ``seconds``
    a prediction from now on; None removes it (the script's own default again). Written whole, then renamed,
    so the server never reads half of it."""
    if seconds is None:
        path.unlink(missing_ok=True)
        return
    (tmp := path.with_suffix(".tmp")).write_text(repr(seconds))
    os.replace(tmp, path)
