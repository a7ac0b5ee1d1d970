"""A real ``volsam serve`` on 127.0.0.1: the torch-free client, and 4 concurrent sessions each getting its own
correct result (compared with local Sessions), with the server's memory back near its baseline afterwards.

Four sessions, two of each lesion kind, all open and prompting at once, are enough to show that sessions do
not see each other's images or objects while their requests interleave (the server runs one model forward
at a time per device: more sessions only queue longer). Memory over many sessions is the soak test's claim
(tests/server/test_live_security.py: 220 create / segment / close cycles)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from volsam.data.lesions import lesion_case
from volsam.engines import get as get_engine
from volsam.io import write_volume
from volsam.session import Session

CASES = ["flat-00", "flat-01", "small-00", "small-01"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "volsam", "serve", "--port", str(port), "--device", "cpu", "--max-sessions", "10"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=os.environ | {"OMP_NUM_THREADS": "2"},
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"volsam serve did not start: {log.read_text()[-2000:]}")
    yield url, proc
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cases")
    out = {}
    for name in CASES:
        lesion = lesion_case(name, crop=True)
        out[name] = (lesion, write_volume(lesion.image, folder / f"{name}.nii.gz"))
    return out


@pytest.fixture(scope="module")
def local(cases):
    """The label map of a local Session given the case's middle box, per case name (computed once)."""
    done: dict[str, np.ndarray] = {}

    def labels(name: str) -> np.ndarray:
        if name not in done:
            done[name] = _local(*cases[name])
        return done[name]

    return labels


def _local(lesion, path) -> np.ndarray:
    from volsam.io import read_volume

    s = Session(read_volume(path), engine=get_engine("medsam-lite", device="cpu"), modality="MR")
    obj = s.add_object(name="lesion")
    b = lesion.middle_box
    s.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    return s.labelmap().array


def test_the_client_needs_no_torch_and_matches_a_local_session(server, cases, local, tmp_path):
    url, _ = server
    lesion, path = cases["flat-00"]
    b = lesion.middle_box
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        from volsam.client import RemoteSession
        with RemoteSession({url!r}, image={str(path)!r}, modality="MR") as s:
            obj = s.add_object(name="lesion")
            change = s.add_box(obj, {b.slice}, ({b.u0}, {b.v0}, {b.u1}, {b.v1}))
            np.save({str(tmp_path / "remote.npy")!r}, s.labelmap().array)
            assert s.objects == [(obj, "lesion")]
            assert np.array_equal(s.labelmap_region(change.box), s.labelmap().array[
                change.box[2]:change.box[5] + 1, change.box[1]:change.box[4] + 1, change.box[0]:change.box[3] + 1])
        print("torch" in sys.modules, "transformers" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "False"]
    assert np.array_equal(np.load(tmp_path / "remote.npy"), local("flat-00"))


@pytest.mark.slow
def test_concurrent_sessions_each_get_their_own_result(server, cases, local):
    from volsam.client import RemoteSession

    url, proc = server
    warm = RemoteSession(url, image=cases["flat-00"][1], modality="MR")  # the model is loaded once, here
    obj = warm.add_object()
    b = cases["flat-00"][0].middle_box
    warm.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    warm.close()
    baseline = _rss_mb(proc.pid)

    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []
    requests = {"count": 0}
    lock = threading.Lock()

    def user(name: str) -> None:
        lesion, path = cases[name]
        try:
            s = RemoteSession(url, image=path, modality="MR")
            o = s.add_object(name=name)
            bb = lesion.middle_box
            s.add_box(o, bb.slice, (bb.u0, bb.v0, bb.u1, bb.v1))
            results[name] = s.labelmap().array
            s.close()
            with lock:
                requests["count"] += 5
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(name,)) for name in CASES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert sorted(results) == sorted(CASES) and requests["count"] == 5 * len(CASES)
    for name in CASES:
        assert np.array_equal(results[name], local(name)), name
    health = httpx.get(f"{url}/api/health").json()
    assert health["sessions"] == 0
    after = _rss_mb(proc.pid)
    print(json.dumps({"rss_mb_baseline": baseline, "rss_mb_after_sessions": after}))
    assert after < baseline + 150, (baseline, after)
