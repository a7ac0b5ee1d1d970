"""Peak memory of a whole video job (volsam.jobs.video.segment_video) against the video's length.

    .venv/bin/python benchmarks/bench_video_job.py [--frames 30 150] [--side 128] [--size 240x320]

Each length runs in a fresh process: a moving-disc H.264 video, a random-init SAM 2.1-tiny at ``--side`` px
(no SAM 2 weights offline: the masks mean nothing, the memory does), a box on frame 0, masks into a .npz and
an overlay .mp4 (``--output png``: a PNG folder). Prints seconds per frame and the peak resident memory,
which must not grow with the length.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def job(folder: str, n: int, side: int, size: str, output: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' video helpers
    import numpy as np
    import torch
    from tests.support.video import disc_frames, write_video

    from volsam.core.prompts import Box2D
    from volsam.engines.sam2.convert import build_model
    from volsam.engines.sam2.engine import Sam2Engine
    from volsam.engines.sam2.variants import SIZES, Variant
    from volsam.jobs.video import segment_video

    h, w = (int(v) for v in size.split("x"))
    frames, truth = disc_frames(n=min(n, 40), size=(h, w))
    frames = np.concatenate([frames, frames[::-1]] * (n // (2 * len(frames)) + 1))[:n]  # back and forth
    video = write_video(Path(folder) / "clip.mp4", frames)
    torch.manual_seed(0)
    net = build_model(Variant(SIZES["tiny"], "2.1", side))
    with torch.no_grad():
        net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
    engine = Sam2Engine(net=net)
    ys, xs = np.nonzero(truth[0])
    box = Box2D(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()), slice=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = Path(folder) / ("masks.npz" if output == "npz" else "masks")
    result = segment_video(video, [box], out, engine=engine, overlay=Path(folder) / "o.mp4")
    seconds = time.perf_counter() - t0
    return {
        "frames": n,
        "side": side,
        "output": output,
        "s_per_frame": round(seconds / n, 3),
        "rss_before_job_mb": round(before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "decoded": result.decoded,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 150])
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--output", choices=("npz", "png"), default="npz")
    parser.add_argument("--job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(job(tmp, args.job, args.side, args.size, args.output)))
        return 0
    root = Path(__file__).resolve().parents[1]
    for n in args.frames:
        cmd = [sys.executable, __file__, "--job", str(n), "--side", str(args.side), "--size", args.size]
        cmd += ["--output", args.output]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root).stdout
        print(out.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
