"""SAM 2 tracker engine on CPU/GPU: seconds per frame and memory over a long stack (random-init weights
unless --model is given: timing and memory do not depend on the weights).

    .venv/bin/python benchmarks/bench_sam2.py --frames 60 --size 512 --out results/bench-sam2.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from volsam.engines.base import FramePrompt
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.engine import Sam2Engine
from volsam.engines.sam2.variants import named_variant
from volsam.propagate import FrameStack


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=512, choices=(512, 1024), help="512 = MedSAM2, 1024 = SAM 2.1")
    ap.add_argument("--model", default=None, help="a model for Sam2Engine (default: random-init 2.1-tiny)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("results/bench-sam2.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.model:
        engine = Sam2Engine(model=args.model, device=args.device)
    else:
        torch.manual_seed(0)
        net = build_model(named_variant("medsam2" if args.size == 512 else "sam2.1-hiera-tiny"))
        with torch.no_grad():  # random object-score head: make it say "present" so every frame is tracked
            net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
        engine = Sam2Engine(net=net, device=args.device)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (args.frames, 256, 256), dtype=np.uint8)
    stack = FrameStack(frames, 2, lambda f: f)
    prompts = {0: {1: FramePrompt(box=(60.0, 60.0, 160.0, 160.0))}}
    times, rss = [], []
    t = time.perf_counter()
    for _res in engine.track(stack, prompts, absent_patience=None):
        now = time.perf_counter()
        times.append(now - t)
        rss.append(_rss_mb())
        t = now
    out = {
        "command": " ".join(sys.argv),
        "device": args.device,
        "size": args.size,
        "frames": args.frames,
        "seconds_per_frame_median": float(np.median(times[1:])),
        "first_frame_seconds": times[0],
        "peak_rss_mb_after_10_frames": rss[min(9, len(rss) - 1)],
        "peak_rss_mb_at_end": rss[-1],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
