"""A real server process on 127.0.0.1 for the live tests: start it on a free port, wait until it answers,
stop it. Used by tests/server/test_live_security.py and the browser tests (tests/support/browser.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    args: list[str], log: Path, env: dict | None = None, scheme: str = "http"
) -> tuple[str, subprocess.Popen]:
    """Start ``args`` + ``--port N`` (or, when ``args[0]`` is ``"-"``, this Python on the script ``args[1:]``
    with the port as its last argument), output to ``log``; return (URL, process) once ``/`` answers, or fail
    the test with the log's tail if the process exits or 60 s pass."""
    port = free_port()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [*args[:1], *args[1:], "--port", str(port)] if args[0] != "-" else [sys.executable, *args[1:], str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=os.environ | {"OMP_NUM_THREADS": "2"} | (env or {}),
        )
    url = f"{scheme}://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{url}/", timeout=1, verify=False)
            return url, proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server (SIGTERM), killing it if it has not exited after 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
