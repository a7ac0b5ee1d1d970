"""The SAM slice engine beside Meta's ``SamPredictor`` (segment-anything 1.0): seconds per image on the CPU.

    .venv/bin/python benchmarks/bench_sam.py --out results/bench-sam.json
    .venv/bin/python benchmarks/bench_sam.py --arch vit-b --images 2 --rounds 3 --size 512
    .venv/bin/python benchmarks/bench_sam.py --backends torch,openvino   # volsam's image encoder on each

One random-initialised Meta SAM of the chosen layout (ViT-B by default; timing does not depend on the
weights) is converted to transformers' ``SamModel`` for volsam. Per image, both implementations do what a
user's first prompt on a new slice costs: preprocess the uint8 frame, encode it, decode a box (volsam:
``SamEngine.encode`` + ``predict``; Meta: ``SamPredictor.set_image`` + ``predict``, its module loaded from its
files with a PIL stand-in for torchvision's two resize helpers, as in tests/engines/sam/meta_reference.py).
Each implementation runs ``--rounds`` times in alternating order over the same ``--images`` synthetic frames
and its fastest round is compared (this machine is shared and its speed drifts within minutes); encoder and
decoder times are reported apart. ``--backends`` names what runs volsam's ViT image encoder (``torch``,
``openvino`` = OpenVINO fp32, converted once per weights and cached on disk): each is its own implementation
``volsam:<backend>`` in the same alternating rounds. Each one's masks and logits are compared with Meta's
(parity, for the record). The reference is test-only: ``pip install --no-deps segment-anything==1.0``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {  # hidden, depth, heads, global attention blocks (Meta's build_sam.py)
    "vit-b": (768, 12, 12, (2, 5, 8, 11)),
    "vit-l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit-h": (1280, 32, 16, (7, 15, 23, 31)),
}


def frames(n: int, size: int) -> list[np.ndarray]:
    """``n`` synthetic slices ``(size, size)`` uint8: a bright disc on textured background, moving."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size]
    out = []
    for t in range(n):
        disc = (y - size * 0.45) ** 2 + (x - size * 0.4 - 4 * t) ** 2 <= (size * 0.18) ** 2
        out.append(np.clip(np.where(disc, 190, 70) + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8))
    return out


def box_for(size: int) -> tuple[float, float, float, float]:
    return (size * 0.2, size * 0.25, size * 0.62, size * 0.68)


def run_volsam(engine, images: list[np.ndarray], box) -> tuple[list[dict], list]:
    times, outputs = [], []
    for frame in images:
        t0 = time.perf_counter()
        emb = engine.encode(frame)[0]
        t1 = time.perf_counter()
        pred = engine.predict(emb, box=box)
        t2 = time.perf_counter()
        times.append({"encode_s": t1 - t0, "predict_s": t2 - t1, "total_s": t2 - t0})
        outputs.append((pred.mask, pred.logits))
    return times, outputs


def run_meta(predictor, images: list[np.ndarray], box) -> tuple[list[dict], list]:
    times, outputs = [], []
    for frame in images:
        rgb = np.repeat(frame[..., None], 3, axis=-1)  # Meta's predictor takes RGB
        t0 = time.perf_counter()
        predictor.set_image(rgb)
        t1 = time.perf_counter()
        masks, _, low = predictor.predict(box=np.array(box), multimask_output=False)
        t2 = time.perf_counter()
        times.append({"encode_s": t1 - t0, "predict_s": t2 - t1, "total_s": t2 - t0})
        outputs.append((masks[0], low[0]))
    return times, outputs


def summary(rounds: list[list[dict]]) -> dict:
    """Fastest round (by its mean total per image) and its per-image means."""
    means = [statistics.mean(t["total_s"] for t in r) for r in rounds]
    best = rounds[int(np.argmin(means))]
    return {
        "seconds_per_image": statistics.mean(t["total_s"] for t in best),
        "encode_s": statistics.mean(t["encode_s"] for t in best),
        "predict_s": statistics.mean(t["predict_s"] for t in best),
        "round_means_s": means,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(LAYOUTS), default="vit-b")
    parser.add_argument("--size", type=int, default=512, help="side of the synthetic slices (px)")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--backends", default="torch", help="volsam's image encoder: torch, openvino (comma list)")
    parser.add_argument("--out", type=Path, default=Path("results/bench-sam.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if importlib.util.find_spec("segment_anything") is None:
        sys.exit("bench_sam: needs the reference: pip install --no-deps segment-anything==1.0")
    sys.path.insert(0, str(ROOT))
    from tests.engines.sam.meta_reference import meta_predictor, meta_sam

    from volsam.engines.sam.convert import from_meta_state
    from volsam.engines.sam.engine import SamEngine

    hidden, depth, heads, glob = LAYOUTS[args.arch]
    meta = meta_sam(hidden, depth, heads, glob, image_size=1024, seed=0)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    engines = {
        f"volsam:{b}": SamEngine(net=from_meta_state(meta.state_dict())[0], precision="fp32", backend=b)
        for b in backends
    }
    for name, engine in engines.items():
        if engine.backend != name.split(":")[1]:
            sys.exit(f"bench_sam: {name} fell back to {engine.backend} (see the log)")
    predictor = meta_predictor(meta)
    images, box = frames(args.images, args.size), box_for(args.size)

    impls = [*engines, "meta"]
    rounds: dict[str, list[list[dict]]] = {impl: [] for impl in impls}
    outputs: dict[str, list] = {}
    with torch.inference_mode():
        for r in range(args.rounds):
            for impl in impls if r % 2 == 0 else impls[::-1]:
                if impl == "meta":
                    times, outputs[impl] = run_meta(predictor, images, box)
                else:
                    times, outputs[impl] = run_volsam(engines[impl], images, box)
                rounds[impl].append(times)
                mean = statistics.mean(t["total_s"] for t in times)
                print(f"round {r + 1}/{args.rounds} {impl:15s} {mean:7.2f} s/image", flush=True)

    parity = {}
    for impl in engines:
        parity[impl] = []
        for (mask, logits), (meta_mask, meta_low) in zip(outputs[impl], outputs["meta"]):
            union = np.logical_or(mask, meta_mask).sum()
            parity[impl].append(
                {
                    "mask_iou": float(np.logical_and(mask, meta_mask).sum() / union) if union else 1.0,
                    "max_logit_diff": float(np.abs(logits - meta_low).max()),
                }
            )
    result = {
        "benchmark": "bench_sam",
        "command": " ".join(sys.argv),
        "arch": args.arch,
        "input": 1024,
        "frame": [args.size, args.size],
        "images": args.images,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "load_average_1_5_15": list(os.getloadavg()),
        **{impl: summary(rounds[impl]) for impl in impls},
        "parity": parity,
    }
    result["speedup_vs_meta"] = {
        impl: result["meta"]["seconds_per_image"] / result[impl]["seconds_per_image"] for impl in engines
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    for impl in engines:
        print(
            f"{args.arch} at 1024, {args.size}px slices: {impl} {result[impl]['seconds_per_image']:.2f} s/image, "
            f"Meta {result['meta']['seconds_per_image']:.2f} s/image ({result['speedup_vs_meta'][impl]:.2f}x); "
            f"parity: min mask IoU {min(p['mask_iou'] for p in parity[impl]):.4f}, "
            f"max logit diff {max(p['max_logit_diff'] for p in parity[impl]):.1e} -> {args.out}"
        )


if __name__ == "__main__":
    main()
