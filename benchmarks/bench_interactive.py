"""Interactive segmentation on the lesion set: one box on the middle slice, then simulated clicks
(volsam.bench.clicks, the CVPR 2025 rule) through a volsam Session; 3D Dice per step and seconds per
correction.

    .venv/bin/python benchmarks/bench_interactive.py [--clicks 5] [--full] [--kinds dark,ring]
        [--cases ring-00] [--cache /tmp/volsam-embcache] [--ceiling] [--out results/bench-interactive.json]

Frame embeddings are kept on disk (``--cache``) so that a second run encodes nothing; correction times
are then the session's own work (prediction, propagation) and are reported as such (``cached``).

``--ceiling`` also reports what the model gives with the true box (1 pixel margin) on every slice of the
lesion: the best its box answers can do, a reference for what clicks can be expected to reach.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_propagation import MemoEngine  # noqa: E402

from volsam.bench.clicks import next_click  # noqa: E402
from volsam.data.lesions import lesion_cases  # noqa: E402
from volsam.engines import get as get_engine  # noqa: E402
from volsam.metrics import dice  # noqa: E402
from volsam.preprocess import fit_normalizer  # noqa: E402
from volsam.propagation import FrameStack, mask_box  # noqa: E402
from volsam.session import Session  # noqa: E402


def run_case(case, engine, clicks: int, click_prompts: bool = False) -> dict:
    truth = case.label.array > 0
    session = Session(case.image, engine=engine, modality="MR", click_prompts=click_prompts)
    obj = session.add_object(name=case.name)
    b = case.middle_box
    t0 = time.perf_counter()
    session.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    steps = [dice(session.mask(obj), truth)]
    seconds = [time.perf_counter() - t0]
    first_frame = []
    kinds = []
    for _ in range(clicks):
        click = next_click(session.mask(obj), truth)  # the challenge measures depth in voxels
        if click is None:
            break
        t0 = time.perf_counter()
        change = session.add_point(obj, click.ijk(), positive=click.positive)
        seconds.append(time.perf_counter() - t0)
        if change.first_frame_seconds is not None:
            first_frame.append(change.first_frame_seconds)
        steps.append(dice(session.mask(obj), truth))
        kinds.append("+" if click.positive else "-")
    return {
        "case": case.name,
        "kind": case.kind,
        "dice": steps,
        "clicks": kinds,
        "seconds": seconds,
        "first_frame_seconds": first_frame,
    }


def true_box_dice(case, engine) -> float:
    """3D Dice of the model's answers to the true box, grown by 1 pixel, on every slice of the lesion."""
    truth = case.label.array > 0
    stack = FrameStack(case.image.array, 2, fit_normalizer(case.image, modality="MR").apply)
    out = np.zeros_like(truth)
    for s in np.flatnonzero(truth.any(axis=(1, 2))):
        x0, y0, x1, y1 = mask_box(truth[s])
        h, w = truth[s].shape
        box = (max(0.0, x0 - 1), max(0.0, y0 - 1), min(w - 1.0, x1 + 1), min(h - 1.0, y1 + 1))
        out[s] = engine.predict(engine.encode(stack.frames([int(s)]))[0], box=box).mask
    return dice(out, truth)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="full MNI152 volumes instead of cropped cases")
    ap.add_argument("--kinds", default="")
    ap.add_argument("--cases", default="")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/volsam-embcache"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--ceiling", action="store_true", help="also the model's Dice with the true box on every slice")
    ap.add_argument(
        "--click-prompts", action="store_true", help="corrections also give the clicks to the model (default: box only)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kinds = [k for k in args.kinds.split(",") if k]
    names = [n for n in args.cases.split(",") if n]
    engine = MemoEngine(get_engine("medsam-lite", device="cpu"), args.cache)
    rows = []
    for case in lesion_cases(crop=not args.full):
        if (kinds and case.kind not in kinds) or (names and case.name not in names):
            continue
        row = run_case(case, engine, args.clicks, click_prompts=args.click_prompts)
        if args.ceiling:
            row["true_box_dice"] = true_box_dice(case, engine)
        rows.append(row)
        steps = " ".join(f"{d:.3f}" for d in row["dice"])
        print(
            f"{case.name:18s} {steps}  clicks {''.join(row['clicks'])}  "
            f"{statistics.fmean(row['seconds'][1:]) if len(row['seconds']) > 1 else 0:.2f} s/correction"
            + (f"  true box {row['true_box_dice']:.3f}" if args.ceiling else ""),
            flush=True,
        )
    n_steps = max(len(r["dice"]) for r in rows)
    means = [statistics.fmean(r["dice"][min(s, len(r["dice"]) - 1)] for r in rows) for s in range(n_steps)]
    worst_drop = min(min(r["dice"][1:], default=r["dice"][0]) - r["dice"][0] for r in rows)
    final_drop = min(r["dice"][-1] - r["dice"][0] for r in rows)
    corrections = [s for r in rows for s in r["seconds"][1:]]
    first = [s for r in rows for s in r["first_frame_seconds"]]
    summary = {
        "mean_dice_per_step": means,
        "worst_final_minus_box": final_drop,
        "worst_any_step_minus_box": worst_drop,
        "seconds_per_correction_median": float(np.median(corrections)) if corrections else None,
        "seconds_to_corrected_slice_median": float(np.median(first)) if first else None,
    }
    if args.ceiling:
        summary["mean_true_box_dice"] = statistics.fmean(r["true_box_dice"] for r in rows)
    print("mean Dice per step: " + " ".join(f"{m:.3f}" for m in means))
    if args.ceiling:
        print(f"the model with the true box on every slice: mean Dice {summary['mean_true_box_dice']:.3f}")
    print(f"worst final - box: {final_drop:+.3f}; worst step - box: {worst_drop:+.3f}")
    print(
        f"correction: {summary['seconds_per_correction_median']} s (median), corrected slice shown after "
        f"{summary['seconds_to_corrected_slice_median']} s"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "summary": summary, "cases": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
