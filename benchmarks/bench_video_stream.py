"""Memory and speed of reading a video in the tracking access pattern (volsam.io.video.VideoFrames).

    .venv/bin/python benchmarks/bench_video_stream.py [--frames 300 3000] [--size 480x640] [--gop 250]

For each length it writes a moving-disc H.264 video, then in a fresh process walks it the way a tracker does
(frame T/3, forward to the end, backward to 0) and prints the peak resident memory, the decoded-frame count
and the time per frame; the peak must not grow with the number of frames.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def write(path: Path, n: int, h: int, w: int, gop: int) -> None:
    import av

    y, x = np.mgrid[:h, :w]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
        stream.options = {"keyint": str(gop), "preset": "ultrafast"}
        for t in range(n):
            cx = w / 4 + (t % 200) * w / 400
            grey = np.where((x - cx) ** 2 + (y - h / 2) ** 2 < (h / 6) ** 2, 200, 60).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def walk(path: str, colour: bool) -> dict:
    from volsam.io.video import VideoFrames

    t0 = time.perf_counter()
    with VideoFrames(path, colour=colour) as video:
        n = len(video)
        opened = time.perf_counter() - t0
        start = n // 3
        t1 = time.perf_counter()
        for t in [start, *range(start + 1, n)]:
            video.frames([t])
        forward = time.perf_counter() - t1
        t2 = time.perf_counter()
        for t in range(start - 1, -1, -1):
            video.frames([t])
        backward = time.perf_counter() - t2
        stats = {"decoded": video.decoded, "capacity": video.capacity, "max_cached": video.max_cached}
    return {
        "frames": n,
        "open_s": round(opened, 3),
        "forward_ms_per_frame": round(1000 * forward / (n - start), 2),
        "backward_ms_per_frame": round(1000 * backward / max(start, 1), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **stats,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--size", default="480x640", help="HxW")
    parser.add_argument("--gop", type=int, default=250, help="frames between keyframes (libx264's default)")
    parser.add_argument("--colour", action="store_true")
    parser.add_argument("--walk", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.walk:
        print(json.dumps(walk(args.walk, args.colour)))
        return 0
    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            path = Path(tmp) / f"disc_{n}.mp4"
            write(path, n, h, w, args.gop)
            cmd = [sys.executable, __file__, "--walk", str(path)] + (["--colour"] if args.colour else [])
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(json.dumps({"size": args.size, "gop": args.gop, "colour": args.colour, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
