"""SAM 2 engine in bf16 autocast against fp32: seconds per frame and per-frame mask IoU.

    .venv/bin/python benchmarks/bench_sam2_precision.py [--size 512] [--frames 16] [--model DIR_OR_PT]
        [--device cpu] [--out results/bench-sam2-precision.json]

Without ``--model`` the weights are random (SAM 2.1-tiny; 512 = the MedSAM2 layout): speed is
representative, mask agreement only roughly so (trained weights give sharper, more stable logits).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sam2 import BOX, _frames  # noqa: E402  (the same fixed volume)

from volsam.engines.base import FramePrompt  # noqa: E402
from volsam.engines.sam2.convert import build_model  # noqa: E402
from volsam.engines.sam2.engine import Sam2Engine  # noqa: E402
from volsam.engines.sam2.variants import named_variant  # noqa: E402
from volsam.propagation import FrameStack  # noqa: E402


def _net(size: int):
    torch.manual_seed(0)
    net = build_model(named_variant("medsam2" if size == 512 else "sam2.1-hiera-tiny"))
    with torch.no_grad():  # random object-score head: make it say "present" so every frame is tracked
        net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
    return net


def _run(engine: Sam2Engine, stack: FrameStack) -> tuple[dict[int, np.ndarray], float]:
    t0 = time.perf_counter()
    masks = {r.index: r.masks[0] for r in engine.track(stack, {0: {1: FramePrompt(box=BOX)}}, absent_patience=None)}
    return masks, (time.perf_counter() - t0) / len(masks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, choices=(512, 1024))
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("results/bench-sam2-precision.json"))
    args = ap.parse_args()
    stack = FrameStack(_frames(args.frames), 2, lambda f: f)
    results = {}
    for precision in ("fp32", "bf16"):
        if args.model:
            engine = Sam2Engine(model=args.model, device=args.device, precision=precision)
        else:
            engine = Sam2Engine(net=_net(args.size), device=args.device, precision=precision)
        results[precision] = _run(engine, stack)
    ref, ours = results["fp32"][0], results["bf16"][0]
    ious = []
    for t in sorted(ref):
        union = np.logical_or(ref[t], ours[t]).sum()
        ious.append(float(np.logical_and(ref[t], ours[t]).sum() / union) if union else 1.0)
    out = {
        "command": " ".join(sys.argv),
        "weights": args.model or f"random-init 2.1-tiny at {args.size}",
        "device": args.device,
        "frames": args.frames,
        "seconds_per_frame": {p: r[1] for p, r in results.items()},
        "speedup_bf16": results["fp32"][1] / results["bf16"][1],
        "iou_bf16_vs_fp32": {"min": min(ious), "mean": float(np.mean(ious))},
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
