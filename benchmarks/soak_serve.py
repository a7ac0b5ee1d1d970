"""Soak a real ``volsam serve`` (LiteMedSAM on the CPU): N create -> box -> label map -> close cycles on a
cropped lesion case of the MNI152 T1; the server's RSS after a warm-up and after the N cycles, and what is
left in its temporary folder. (tests/server/test_live_security.py runs the same cycles in seconds with the
toy engine inside ``make test``; this is the same with the real model, too slow for the test suite.)

    .venv/bin/python benchmarks/soak_serve.py [--cycles 200] [--out results/soak-serve.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from volsam.data.lesions import lesion_case
from volsam.io import write_volume


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--case", default="small-00")
    ap.add_argument("--timeout", type=float, default=600, help="seconds one request may take (a loaded machine)")
    ap.add_argument("--out", type=Path, default=Path("results/soak-serve.json"))
    args = ap.parse_args()
    case = lesion_case(args.case, crop=True)
    with tempfile.TemporaryDirectory(prefix="volsam-soak-") as work:
        temp = Path(work) / "tmp"
        temp.mkdir()
        blob = write_volume(case.image, Path(work) / "scan.nii.gz").read_bytes()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        volsam = Path(sys.executable).with_name("volsam")
        log = Path(os.environ.get("VOLSAM_SOAK_LOG", Path(work) / "serve.log")).open("w")
        proc = subprocess.Popen(
            [str(volsam), "serve", "--device", "cpu", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"TMPDIR": str(temp)},
        )
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, timeout=args.timeout)
        for _ in range(600):
            try:
                http.get("/api/health")
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        b = case.middle_box

        def cycle() -> None:
            r = http.post("/api/sessions", files={"file": ("scan.nii.gz", blob)}, data={"modality": "MR"})
            r.raise_for_status()
            h = {"X-Session-Lease": r.json()["lease"]}
            base = f"/api/sessions/{r.json()['id']}"
            label = http.post(f"{base}/objects", json={}, headers=h).json()["label"]
            box = {"object": label, "type": "box", "slice": b.slice, "box": [b.u0, b.v0, b.u1, b.v1]}
            http.post(f"{base}/prompts", json=box, headers=h).raise_for_status()
            http.get(f"{base}/labelmap", headers=h).raise_for_status()
            http.delete(base, headers=h).raise_for_status()

        try:
            for _ in range(args.warmup):
                cycle()
            baseline = _rss_mb(proc.pid)
            t0 = time.perf_counter()
            for _ in range(args.cycles):
                cycle()
            seconds = time.perf_counter() - t0
            after = _rss_mb(proc.pid)
            sessions = http.get("/api/health").json()["sessions"]
            left = sorted(str(p.relative_to(temp)) for p in temp.rglob("*"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # still inside a model call: SIGTERM is handled when it returns
                proc.wait()
            log.close()
    result = {
        "command": " ".join(sys.argv),
        "case": args.case,
        "cycles": args.cycles,
        "rss_mb_after_warmup": round(baseline, 1),
        "rss_mb_after_cycles": round(after, 1),
        "rss_growth_mb": round(after - baseline, 1),
        "seconds_per_cycle": round(seconds / args.cycles, 3),
        "sessions_open_after": sessions,
        "temporary_files_left": left,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if after - baseline < 150 and not left and sessions == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
