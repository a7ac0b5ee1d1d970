"""Peak memory of whole ``volsam segment`` processes on a big CT-like volume (issue 21, item 5).

    .venv/bin/python benchmarks/bench_memory.py [--size 512,512,600] [--runs lite-torch,lite-openvino,sam2]
        [--workdir /tmp/volsam-mem] [--out results/bench-memory.json]

The volume is generated: int16 HU, 0.7 x 0.7 x 1.0 mm, air around an elliptic body (soft tissue, fat, a
spine), a liver-like organ over 100 slices (10 cm; ``--organ-slices``; the LiteMedSAM object) and an aorta-like
tube through every slice (the SAM 2 object: tracked with ``--full-range`` through the whole volume). It is
written once as ``.nii.gz`` in ``--workdir``.

Each run is one ``volsam segment`` child process; its peak resident set size is the kernel's ``ru_maxrss`` of
that child (``os.wait4``), so it counts everything the command does: reading, normalising, the model, writing.

* ``lite-torch`` / ``lite-openvino``: LiteMedSAM, a box around the organ on its middle slice, ``--backend``
  torch / openvino (goal: peak RSS <= 1.5 GB).
* ``sam2``: a random-initialised MedSAM2-layout SAM 2 model (512 px, ``benchmarks/random_sam2_model.py``; its
  object-score head says "present", so it tracks every slice), a box on the tube's middle slice,
  ``--full-range`` (goal: <= 3 GB). Random weights: its masks mean nothing, its memory is the real model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from volsam.core.volume import Volume
from volsam.io.writers import write_volume

log = logging.getLogger("bench_memory")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SPACING = (0.7, 0.7, 1.0)  # mm along i, j, k
GOALS_GB = {"lite-torch": 1.5, "lite-openvino": 1.5, "sam2": 3.0}


def ct_like(size: tuple[int, int, int], seed: int = 0, organ_slices: int = 100) -> tuple[np.ndarray, dict]:
    """An int16 HU volume ``[k, j, i]`` of ``size`` (i, j, k) voxels and where its two objects are.

    Returns the array and ``{"organ": (i0, j0, i1, j1, k_mid), "tube": (i0, j0, i1, j1, k_mid)}``: each
    object's box (inclusive voxels) on its middle slice.
    """
    ni, nj, nk = size
    rng = np.random.default_rng(seed)
    jj, ii = np.mgrid[0:nj, 0:ni].astype(np.float32)
    ci, cj = ni / 2, nj / 2
    body = ((ii - ci) / (0.42 * ni)) ** 2 + ((jj - cj) / (0.33 * nj)) ** 2 <= 1.0
    fat = body & (((ii - ci) / (0.40 * ni)) ** 2 + ((jj - cj) / (0.31 * nj)) ** 2 > 1.0)
    spine = ((ii - ci) / (0.05 * ni)) ** 2 + ((jj - (cj + 0.22 * nj)) / (0.05 * nj)) ** 2 <= 1.0
    tube_c = (ci - 0.05 * ni, cj + 0.12 * nj)
    tube_r = 0.03 * ni
    tube = (ii - tube_c[0]) ** 2 + (jj - tube_c[1]) ** 2 <= tube_r**2
    organ_k = (int(nk * 0.35), int(nk * 0.35) + min(organ_slices, nk // 3))  # slices [k0, k1)
    organ_c, organ_r = (ci - 0.15 * ni, cj - 0.02 * nj), (0.17 * ni, 0.14 * nj)
    out = np.empty((nk, nj, ni), dtype=np.int16)
    base = np.full((nj, ni), -1000, dtype=np.float32)
    base[body] = 40.0
    base[fat] = -100.0
    base[spine] = 700.0
    base[tube] = 200.0
    for k in range(nk):
        plane = base.copy()
        if organ_k[0] <= k < organ_k[1]:
            t = (k - organ_k[0]) / (organ_k[1] - organ_k[0])
            scale = np.sqrt(max(1.0 - (2 * t - 1) ** 2, 0.04))  # an ellipsoid-like organ, small at its ends
            organ = ((ii - organ_c[0]) / (organ_r[0] * scale)) ** 2 + ((jj - organ_c[1]) / (organ_r[1] * scale)) ** 2
            plane[(organ <= 1.0) & body] = 110.0
        plane += rng.normal(0.0, 12.0, plane.shape).astype(np.float32)
        out[k] = np.clip(plane, -1024, 3071).astype(np.int16)
    km = (organ_k[0] + organ_k[1]) // 2
    a, b = organ_r[0] + 3, organ_r[1] + 3
    organ_box = (int(organ_c[0] - a), int(organ_c[1] - b), int(organ_c[0] + a), int(organ_c[1] + b), km)
    r = tube_r + 3
    tube_box = (int(tube_c[0] - r), int(tube_c[1] - r), int(tube_c[0] + r), int(tube_c[1] + r), nk // 2)
    return out, {"organ": organ_box, "tube": tube_box}


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` now (bytes), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure(cmd: list[str], env: dict[str, str], timeout_s: float, every_s: float = 2.0) -> dict:
    """Run ``cmd``; its exit status, wall seconds, peak RSS (bytes; the child's own ``ru_maxrss``) and the RSS
    sampled every ``every_s`` seconds (``[seconds, GB]``), so that a run stopped at ``timeout_s`` still shows
    whether its memory was still growing."""
    t0 = time.perf_counter()
    log_file = open(env["BENCH_LOG"], "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    timeline: list[list[float]] = []
    timed_out = False
    while True:  # os.wait4, not Popen.poll: the child's own rusage comes with its reaping
        rss = rss_bytes(proc.pid)
        if rss is not None:
            timeline.append([round(time.perf_counter() - t0, 1), round(rss / 1e9, 3)])
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout_s:
            timed_out = True
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(every_s)
    proc.returncode = os.waitstatus_to_exitcode(status)
    log_file.close()
    seconds = time.perf_counter() - t0
    peak = max(usage.ru_maxrss * 1024, max((r for _, r in timeline), default=0) * 1e9)
    out = Path(env["BENCH_LOG"]).read_text(errors="replace")
    return {
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "seconds": round(seconds, 1),
        "peak_rss_bytes": int(peak),  # ru_maxrss is KiB on Linux
        "peak_rss_gb": round(peak / 1e9, 3),
        "rss_timeline_s_gb": timeline,
        "output_tail": out[-600:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512,512,600", help="i,j,k voxels")
    parser.add_argument("--runs", default="lite-torch,lite-openvino,sam2")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/volsam-mem"))
    parser.add_argument("--model", type=Path, default=ROOT / "results/models/medsam2-random")
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench-memory.json")
    parser.add_argument("--organ-slices", type=int, default=100, help="slices the LiteMedSAM object spans")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run (then stopped)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = tuple(int(v) for v in args.size.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    organ = "" if args.organ_slices == 100 else f"-organ{args.organ_slices}"
    image = args.workdir / f"ct-{size[0]}x{size[1]}x{size[2]}{organ}.nii.gz"
    boxes_file = image.with_suffix("").with_suffix(".boxes.json")
    if not image.is_file() or not boxes_file.is_file():
        array, boxes = ct_like(size, organ_slices=args.organ_slices)
        write_volume(Volume(array, spacing=SPACING), image)
        boxes_file.write_text(json.dumps(boxes))
        del array
    boxes = json.loads(boxes_file.read_text())
    runs = [r for r in args.runs.split(",") if r]
    if "sam2" in runs and not (args.model / "config.json").is_file():
        subprocess.run(
            [str(BIN / "python"), str(ROOT / "benchmarks/random_sam2_model.py"), str(args.model)], check=True
        )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results = {}
    for name in runs:
        what = boxes["tube" if name == "sam2" else "organ"]
        i0, j0, i1, j1, k = what
        cmd = [str(BIN / "volsam"), "segment", str(image), "-o", str(args.workdir / f"{name}.nii.gz")]
        cmd += ["--box", f"{i0},{j0},{i1},{j1}", "--slice", str(k), "--device", "cpu", "--modality", "CT"]
        if name == "sam2":
            cmd += ["--engine", "sam2", "--model", str(args.model), "--full-range"]
        else:
            cmd += ["--backend", name.removeprefix("lite-")]
        log.info("%s: %s", name, " ".join(cmd))
        result = measure(cmd, {**env, "BENCH_LOG": str(args.workdir / f"{name}.log")}, args.timeout)
        result["command"] = " ".join(cmd)
        result["goal_gb"] = GOALS_GB.get(name)
        results[name] = result
        log.info("%s: peak RSS %.3f GB, %.1f s, exit %d", name, result["peak_rss_gb"], result["seconds"],
                 result["returncode"])  # fmt: skip
        write(args, size, image, results)
    return 0


def write(args: argparse.Namespace, size: tuple[int, ...], image: Path, results: dict) -> None:
    """The results file, rewritten after each run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    doc = {
        "benchmark": "benchmarks/bench_memory.py",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "volume": {
            "size_ijk": list(size),
            "spacing_mm": list(SPACING),
            "dtype": "int16",
            "file": image.name,
            "file_bytes": image.stat().st_size,
        },  # fmt: skip
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
