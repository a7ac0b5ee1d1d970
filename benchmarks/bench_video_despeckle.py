"""What the video walk's speckle reduction (``PropagationSettings.despeckle``) costs: LiteMedSAM tracking seconds
a frame with the 5 px median and without it, side by side in one process.

    .venv/bin/python benchmarks/bench_video_despeckle.py [--size 480x640] [--frames 20] [--rounds 2]
        [--out results/bench-video-despeckle.json]

The benchmark family's *base* clip (:func:`volsam.data.clips.clip_family`, seed 0) drawn at ``--size`` (H x W)
is written as H.264 and segmented by :func:`volsam.jobs.video.segment_video` from its true box on frame 0, with
``despeckle`` 5 and 0 in alternating order each round (the first run of the first round also warms the engine).
Prints and writes each run's seconds a frame and the ratio of the medians (5 over 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.video writes the clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="480x640", help="frame size H x W (px)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench-video-despeckle.json")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))

    from tests.support.video import write_video

    from volsam.core.prompts import Box2D
    from volsam.data.clips import clip_family, make_clip
    from volsam.engines import get as get_engine
    from volsam.jobs.video import segment_video
    from volsam.propagation.settings import PropagationSettings

    spec = {s.name: s for s in clip_family(args.frames, (height, width), 0)}["base"]
    clip = make_clip(spec)
    engine = get_engine("medsam-lite", device="cpu")
    seconds: dict[int, list[float]] = {5: [], 0: []}
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "base.mp4", clip.frames)
        x0, y0, x1, y1 = clip.box(0)
        for r in range(args.rounds):
            for size in (5, 0) if r % 2 == 0 else (0, 5):
                settings = replace(PropagationSettings.video(), despeckle=size)
                t0 = time.perf_counter()
                boxes = [Box2D(x0, y0, x1, y1, slice=0)]
                segment_video(video, boxes, Path(tmp) / f"masks-{size}.npz", engine=engine, settings=settings)
                seconds[size].append(round((time.perf_counter() - t0) / args.frames, 4))
                print(f"round {r} despeckle {size}: {seconds[size][-1]:.3f} s a frame", flush=True)
    report = {
        "benchmark": "bench_video_despeckle",
        "command": " ".join(["python", "benchmarks/bench_video_despeckle.py", *sys.argv[1:]]),
        "size": f"{height}x{width}",
        "frames": args.frames,
        "seconds_a_frame": {"despeckle_5": seconds[5], "despeckle_0": seconds[0]},
        "ratio_of_medians": round(float(np.median(seconds[5]) / np.median(seconds[0])), 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
