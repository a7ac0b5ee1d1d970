"""Seconds for one correction in a LiteMedSAM video session: a run over the frames it shows (now) against a
run over the whole video (before runs had ranges), alternating rounds in one process.

    nice -n 10 .venv/bin/python benchmarks/bench_video_correction.py [--frames 60] [--rounds 2] [--side 96]

A generated clip (volsam.data.clips, the base clip of the family) of ``--frames`` frames; one session with a
box on frames at 1/6, 1/2 and 5/6 of the video (the object's true box there), then, each round, a + click at
the object's centre on the middle prompted frame (a correction: its run is re-walked), timed, and undone.
The "whole" variant is the session before runs had ranges: the corrected frame's run walks the whole video
(``shown_range`` answers every frame) and the other runs are kept (``_Run.covers`` answers yes, as the old
session re-walked only the corrected frame); "ranged" is the session as it is. Both start every round from
the same state.
Prints each round's seconds and frames walked, the median ratio whole / ranged and the load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_video_correction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", type=int, default=96, help="frame height and width, px")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import av

    from volsam.core.prompts import Box2D, Point
    from volsam.data.clips import ClipSpec, make_clip
    from volsam.engines import get as get_engine
    from volsam.jobs.request import SegmentRequest
    from volsam.server import videos
    from volsam.server.videos import VideoSession, VideoUpload

    clip = make_clip(ClipSpec(name="base", frames=args.frames, size=(args.side, args.side)))
    folder = Path(tempfile.mkdtemp(prefix="bench-correction-"))
    path = folder / "clip.mp4"
    with av.open(str(path), "w") as container:  # H.264 as an upload would be
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = args.side, args.side, "yuv420p"
        for grey in clip.frames:
            rgb = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    engine = get_engine("medsam-lite", device="cpu")
    session = VideoSession(VideoUpload(folder, path), SegmentRequest(), engine)
    walked: list[int] = []
    session.on_frame = walked.append
    label = session.add_object()
    prompted = [args.frames // 6, args.frames // 2, 5 * args.frames // 6]
    t0 = time.perf_counter()
    for t in prompted:
        session.add(label, Box2D(*clip.box(t), slice=t))
    log.info("setup: boxes on frames %s, %d frames walked in %.1f s", prompted, len(walked), time.perf_counter() - t0)
    middle = prompted[1]
    ys, xs = np.nonzero(clip.masks[middle])
    click = Point(int(round(xs.mean())), int(round(ys.mean())), middle)

    ranged, covers = videos.shown_range, videos._Run.covers

    def whole(prompted_frames: list[int], t: int, count: int) -> tuple[int, int]:
        return 0, count - 1

    def use(variant: str) -> None:
        videos.shown_range = whole if variant == "whole" else ranged
        videos._Run.covers = (lambda run, first, last: True) if variant == "whole" else covers  # type: ignore[method-assign]

    seconds: dict[str, list[float]] = {"whole": [], "ranged": []}
    try:
        for r in range(args.rounds):
            for variant in ("whole", "ranged") if r % 2 == 0 else ("ranged", "whole"):
                use(variant)
                walked.clear()
                t0 = time.perf_counter()
                session.add(label, click)
                dt = time.perf_counter() - t0
                use("ranged")
                session.undo()
                seconds[variant].append(dt)
                log.info("round %d %-6s: %6.2f s, %d frames walked", r, variant, dt, len(walked))
    finally:
        use("ranged")
        session.close()
        shutil.rmtree(folder, ignore_errors=True)
    w, g = statistics.median(seconds["whole"]), statistics.median(seconds["ranged"])
    log.info("median: whole %.2f s, ranged %.2f s, ratio whole/ranged %.2fx", w, g, w / g)
    log.info("load average after: %s", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
