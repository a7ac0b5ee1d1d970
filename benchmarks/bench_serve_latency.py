"""Latency a user feels in ``volsam serve`` (issue 21, item 6): a box, then simulated clicks, on lesion cases,
timed from the client's side of a real server.

    .venv/bin/python benchmarks/bench_serve_latency.py [--cases dark-00,ring-00,...] [--n-per-kind 1]
        [--clicks 3] [--full] [--backend auto] [--out results/bench-serve-latency.json]

A ``volsam serve`` child process (loopback, free port, ``--device cpu``) is started once; each case is uploaded
as a session (LiteMedSAM, MR normalisation) through :class:`volsam.client.RemoteSession`, and a second
connection follows the session's Server-Sent Events. Per step (the box on the middle slice, then each click of
:func:`volsam.bench.clicks.next_click`, the CVPR 2025 rule) the client records, from the moment it sends the
prompt:

* ``first_frame_s`` -- the first ``frame`` event (a slice segmented: what the page can show as progress);
* ``first_preview_s`` -- the first answer of ``GET .../preview`` (polled every ``--poll-ms``, as the page
  does while a step runs) that holds a slice mask: the first segmented slice the page can draw;
* ``answer_s`` -- the prompt's answer (the whole object segmented; the session's Change);
* ``visible_s`` -- ``answer_s`` plus the download of the changed region (``GET .../labelmap/region`` of the
  Change's box: what the page fetches before it redraws).

Opening the first session of a run also loads the model; that time is reported apart (``session_open_s``).
Each number is listed per case, with medians and maxima per step kind. Cases are cropped (the lesion box + 24
voxels, as the test suite's) unless ``--full`` (197 x 233 x 189).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from volsam.bench.clicks import next_click
from volsam.client import RemoteSession
from volsam.data.lesions import lesion_case, lesion_case_names

log = logging.getLogger("bench_serve_latency")
ROOT = Path(__file__).resolve().parent.parent


class EventLog:
    """A session's Server-Sent Events, each with the ``time.perf_counter()`` at which the client read it."""

    def __init__(self, url: str, sid: str, lease: str):
        self.events: list[tuple[float, dict]] = []
        self._lock = threading.Lock()
        self._url, self._sid, self._lease = url, sid, lease
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        headers = {"X-Session-Lease": self._lease}
        with httpx.Client(base_url=self._url, timeout=None) as http:
            with http.stream("GET", f"/api/sessions/{self._sid}/events", headers=headers) as response:
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    with self._lock:
                        self.events.append((time.perf_counter(), event))
                    if event.get("type") == "closed":
                        return

    def first(self, kind: str, after: float) -> float | None:
        """When the first event of ``kind`` read after ``after`` arrived (perf_counter), None if none."""
        with self._lock:
            return next((t for t, e in self.events if t >= after and e.get("type") == kind), None)

    def wait_idle(self, after: float, timeout: float = 10.0) -> None:
        """Wait until an ``idle`` event read after ``after`` arrived (the events of a step are all in)."""
        end = time.perf_counter() + timeout
        while self.first("idle", after) is None and time.perf_counter() < end:
            time.sleep(0.02)

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, backend: str) -> subprocess.Popen:
    """``volsam serve`` on 127.0.0.1:``port``; returns once ``/api/health`` answers."""
    cmd = [str(Path(sys.executable).parent / "volsam"), "serve", "--port", str(port), "--device", "cpu"]
    cmd += ["--backend", backend]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"volsam serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/api/health", timeout=10.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise RuntimeError("volsam serve did not answer within 300 s")


class PreviewPoller:
    """Polls a session's ``GET .../preview`` every ``poll_s`` seconds from its own connection until stopped;
    records when the first answer holding a slice mask arrived and how many slice masks came."""

    def __init__(self, url: str, sid: str, lease: str, poll_s: float):
        self.first: float | None = None
        self.slices = 0
        self._stop = threading.Event()
        self._args = (url, sid, lease, poll_s)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        url, sid, lease, poll_s = self._args
        after = 0
        with httpx.Client(base_url=url, timeout=60.0, headers={"X-Session-Lease": lease}) as http:
            while not self._stop.is_set():
                answer = http.get(f"/api/sessions/{sid}/preview", params={"after": after}).json()
                if answer["slices"]:
                    self.slices += len(answer["slices"])
                    if self.first is None:
                        self.first = time.perf_counter()
                after = answer["next"]
                self._stop.wait(poll_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60.0)


def step(url: str, remote: RemoteSession, events: EventLog, send, poll_s: float) -> dict:
    """Time one prompt: ``send()`` posts it; returns the step's first-frame, first-preview, answer and visible
    seconds."""
    t0 = time.perf_counter()
    poller = PreviewPoller(url, remote.id, remote.lease, poll_s)
    change = send()
    t_answer = time.perf_counter()
    poller.stop()
    if change.box is not None:
        remote.labelmap_region(change.box)
    t_visible = time.perf_counter()
    events.wait_idle(t0)
    first = events.first("frame", t0)
    return {
        "first_frame_s": None if first is None else round(first - t0, 3),
        "first_preview_s": None if poller.first is None else round(poller.first - t0, 3),
        "preview_slices": poller.slices,
        "answer_s": round(t_answer - t0, 3),
        "visible_s": round(t_visible - t0, 3),
        "server_seconds": round(change.seconds, 3),
        "frames": list(change.frames) if change.frames else None,
        "frames_encoded": change.frames_encoded,
    }


def run_case(url: str, name: str, crop: bool, clicks: int, poll_s: float) -> dict:
    case = lesion_case(name, crop=crop)
    truth = case.label.array > 0
    t0 = time.perf_counter()
    remote = RemoteSession(url, image=case.image, modality="MR")
    opened = time.perf_counter() - t0
    events = EventLog(url, remote.id, remote.lease)
    try:
        obj = remote.add_object(name=name)
        b = case.middle_box
        box = lambda: remote.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))  # noqa: E731
        steps = [{"kind": "box", **step(url, remote, events, box, poll_s)}]
        for _ in range(clicks):
            mask = remote.labelmap().array == obj
            click = next_click(mask, truth)
            if click is None:
                break
            ijk = [int(v) for v in click.ijk()]
            send = lambda ijk=ijk, c=click: remote.add_point(obj, ijk, positive=c.positive)  # noqa: E731
            timed = step(url, remote, events, send, poll_s)
            steps.append({"kind": "click", "positive": bool(click.positive), **timed})
        final = remote.labelmap().array == obj
        dice = 2 * float((final & truth).sum()) / float(final.sum() + truth.sum())
    finally:
        remote.close()
        events.join()
    return {"case": name, "size_ijk": list(case.image.size), "backend": remote.backend,
            "session_open_s": round(opened, 3),
            "steps": steps, "final_dice": round(dice, 4)}  # fmt: skip


def summary(cases: list[dict]) -> dict:
    """Median and maximum of each time per step kind (box / click) over every case."""
    out = {}
    for kind in ("box", "click"):
        steps = [s for c in cases for s in c["steps"] if s["kind"] == kind]
        row: dict = {"n": len(steps)}
        for key in ("first_frame_s", "first_preview_s", "answer_s", "visible_s"):
            values = [s[key] for s in steps if s[key] is not None]
            if values:
                row[key] = {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}
        out[kind] = row
    opens = [c["session_open_s"] for c in cases]
    out["session_open_s"] = {"first": opens[0], "median_after_first": round(statistics.median(opens[1:]), 3)} if (
        len(opens) > 1) else {"first": opens[0]}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: --n-per-kind of each)")
    parser.add_argument("--n-per-kind", type=int, default=1)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="full 197x233x189 cases instead of cropped ones")
    parser.add_argument("--backend", default="auto", help="volsam serve --backend")
    parser.add_argument("--poll-ms", type=float, default=250.0, help="how often the preview is asked for (ms)")
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench-serve-latency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.cases.split(",") if args.cases else lesion_case_names(args.n_per_kind, variants=False)
    port = free_port()
    server = start_server(port, args.backend)
    url = f"http://127.0.0.1:{port}"
    results: list[dict] = []
    try:
        info = httpx.get(f"{url}/api/capabilities", timeout=600.0).json()  # its first call imports torch
        for name in names:
            result = run_case(url, name, not args.full, args.clicks, args.poll_ms / 1000.0)
            results.append(result)
            box = result["steps"][0]
            log.info("%s: box first frame %s s, first preview %s s, answer %s s; clicks %s", name, box["first_frame_s"],
                     box["first_preview_s"], box["answer_s"],
                     [s["answer_s"] for s in result["steps"][1:]])  # fmt: skip
            write(args, info, results)
    finally:
        server.terminate()  # the child this script started
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


def write(args: argparse.Namespace, info: dict, results: list[dict]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    doc = {
        "benchmark": "benchmarks/bench_serve_latency.py",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "server": {
            "backend": args.backend,
            "default_backend": info.get("default_backend"),
            "device": "cpu",
            "engine": "medsam-lite",
            "cases": "full" if args.full else "cropped",
        },  # fmt: skip
        "summary": summary(results),
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
