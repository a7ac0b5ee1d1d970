"""LiteMedSAM frame-by-frame video tracking on a family of generated ultrasound-like clips.

    .venv/bin/python benchmarks/bench_video_tracking.py [--frames 40] [--size 128] [--clips base fast ...]
        [--seeds 0 1] [--out results/bench-video-tracking.json] [--embeddings /tmp/vt-emb] [--ceiling]
        [--set area_memory=0 ...]

Each clip of :func:`volsam.data.clips.clip_family` (a dark deforming, rotating ellipse in speckle; one factor
varied per clip, a clip that leaves the view and returns, one with everything hard) is written as an H.264
.mp4 and segmented by :func:`volsam.jobs.video.segment_video` -- the path ``volsam segment clip.mp4 --box
X0,Y0,X1,Y1 --frame 0 -o masks.npz`` takes -- with the real LiteMedSAM from the tight box of the true
object on frame 0. Each clip kind is drawn once per seed of ``--seeds`` (another speckle, tissue, start angle
and path), so a rule is not tuned to one clip.

Scoring, the same for every method and clip: each frame's Dice against the generator's mask
(:func:`volsam.data.clips.dice`). A frame where the object is absent (the truth is empty, e.g. while it is
out of the view) scores 1.0 when the prediction is empty too -- absence correctly reported -- and 0.0 when
anything is predicted (a false mask); a frame where the object is present and nothing is predicted scores
0.0. Per clip: mean and min over all frames, the worst frame, the frames under 0.80, and the absent-frame
counts (``absent_frames``, ``absent_reported`` empty there, ``false_masks``). Per kind: the mean of the
seeds' means and the lowest frame over the seeds.

``--ceiling`` also prompts every frame where the object is present with its true tight box (grown by the
video walk's ``box_margin``) and records the Dice of the model's own mask (``true_box_dice``, mean and min
per clip and kind): what LiteMedSAM gives with a perfect box, before any regrowth -- where it is low the
model itself cannot see the object.

``--embeddings DIR`` keeps each frame's image embedding on disk, keyed by the frame's pixels: a rerun (same
clips, another tracking rule) skips the image encoder and gives the same embeddings, so the same Dice.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.video writes the clips

FLOOR = 0.80


class DiskEmbeddings:
    """A slice engine wrapper that stores frame embeddings under ``folder`` (keyed by pixels) and reuses them."""

    def __init__(self, inner, folder: Path):
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.encoded = 0

    def encode(self, frames):
        import torch

        from volsam.engines.base import SliceEmbedding

        out = []
        for f in np.asarray(frames):
            key = hashlib.blake2b(np.ascontiguousarray(f).tobytes() + repr(f.shape).encode(), digest_size=16)
            path = self.folder / f"{key.hexdigest()}.pt"
            if path.exists():
                out.append(SliceEmbedding(torch.load(path), (int(f.shape[0]), int(f.shape[1]))))
                continue
            (emb,) = self.inner.encode(f[None])
            tmp = path.with_suffix(f".{id(self)}.tmp")  # another run may read the folder meanwhile
            torch.save(emb.features.clone(), tmp)
            tmp.replace(path)
            self.encoded += 1
            out.append(emb)
        return out

    def predict(self, *args, **kw):
        return self.inner.predict(*args, **kw)

    def predict_candidates(self, *args, **kw):
        return self.inner.predict_candidates(*args, **kw)

    def predict_boxes(self, *args, **kw):
        return self.inner.predict_boxes(*args, **kw)


def true_box_dice(engine, video: Path, clip, margin: float) -> list[float | None]:
    """Per frame, the Dice of the model's own mask from the true object's tight box grown by ``margin`` px
    (the video walk's ``box_margin``): what the model gives with a perfect box, the ceiling of any box
    proposal rule before regrowth. None where the object is absent."""
    from volsam.data.clips import dice
    from volsam.io.video import open_frames
    from volsam.propagation.frames import expand_box

    source = open_frames(video)
    out: list[float | None] = []
    for t, truth in enumerate(clip.masks):
        box = clip.box(t)
        if box is None:
            out.append(None)
            continue
        (emb,) = engine.encode(source.frames([t]))
        pred = engine.predict(emb, box=expand_box(tuple(float(c) for c in box), margin, truth.shape))
        out.append(round(dice(pred.mask, truth), 4))
    return out


def run_clip(engine, spec, folder: Path, ceiling: bool = False, settings=None) -> dict:
    from tests.support.video import write_video

    from volsam.core.prompts import Box2D
    from volsam.data.clips import dice, make_clip
    from volsam.jobs.video import segment_video

    clip = make_clip(spec)
    video = write_video(folder / f"{spec.name}.mp4", clip.frames)
    x0, y0, x1, y1 = clip.box(0)
    out = folder / f"{spec.name}-masks.npz"
    t0 = time.perf_counter()
    segment_video(video, [Box2D(x0, y0, x1, y1, slice=0)], out, engine=engine, settings=settings)
    seconds = time.perf_counter() - t0
    with np.load(out) as data:
        masks = data["masks"] > 0
    dices = [dice(m, g) for m, g in zip(masks, clip.masks)]
    worst = int(np.argmin(dices))
    absent = [t for t, g in enumerate(clip.masks) if not g.any()]
    extra: dict = {}
    if ceiling:
        from volsam.propagation.settings import PropagationSettings

        boxed = true_box_dice(engine, video, clip, PropagationSettings.video().box_margin)
        present = [d for d in boxed if d is not None]
        extra = {
            "true_box_mean": round(float(np.mean(present)), 4) if present else None,
            "true_box_min": round(float(np.min(present)), 4) if present else None,
            "true_box_dice": boxed,
        }
    return {
        "clip": spec.name,
        "seed": spec.seed,
        "spec": spec.to_json(),
        "command": f"volsam segment {spec.name}.mp4 --box {x0},{y0},{x1},{y1} --frame 0 -o masks.npz",
        "mean_dice": round(float(np.mean(dices)), 4),
        "min_dice": round(float(np.min(dices)), 4),
        "worst_frame": worst,
        "frames_below_floor": [t for t, d in enumerate(dices) if d < FLOOR],
        "absent_frames": len(absent),
        "absent_reported": sum(not masks[t].any() for t in absent),
        "false_masks": sum(bool(masks[t].any()) for t in absent),
        "dice": [round(d, 4) for d in dices],
        "seconds": round(seconds, 1),
        **extra,
    }


def kinds(rows: list[dict]) -> dict[str, dict]:
    """Per clip kind over its seeds: the mean of the means, the lowest mean, the lowest frame, the seeds (and
    the true-box ceiling's mean and lowest frame when measured)."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["clip"] for r in rows):
        mine = [r for r in rows if r["clip"] == name]
        out[name] = {
            "seeds": [r["seed"] for r in mine],
            "mean_dice": round(float(np.mean([r["mean_dice"] for r in mine])), 4),
            "worst_seed_mean": round(float(min(r["mean_dice"] for r in mine)), 4),
            "min_dice": round(float(min(r["min_dice"] for r in mine)), 4),
        }
        if all(r.get("true_box_mean") is not None for r in mine):
            out[name]["true_box_mean"] = round(float(np.mean([r["true_box_mean"] for r in mine])), 4)
            out[name]["true_box_min"] = round(float(min(r["true_box_min"] for r in mine)), 4)
    return out


def _report(rows: list[dict], label: str) -> dict:
    means = [r["mean_dice"] for r in rows]
    return {
        "benchmark": "video tracking, LiteMedSAM frame by frame (volsam.jobs.video.segment_video)",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "label": label,
        "floor": FLOOR,
        "scoring": (
            "per frame Dice against the generator's mask; a frame with the object absent scores 1.0 for an "
            "empty prediction and 0.0 for any predicted pixel (the same for every method)"
        ),
        "summary": {
            "clips": len(rows),
            "mean_of_means": round(float(np.mean(means)), 4),
            "worst_mean": round(float(np.min(means)), 4),
            "worst_min": round(float(min(r["min_dice"] for r in rows)), 4),
            "clips_with_frames_below_floor": sum(bool(r["frames_below_floor"]) for r in rows),
        },
        "kinds": kinds(rows),
        "clips": rows,
    }


def _video_settings(parser: argparse.ArgumentParser, items: list[str]):
    """``PropagationSettings.video()`` with each ``NAME=VALUE`` of ``--set`` (a Python literal) changed."""
    from volsam.propagation.settings import PropagationSettings

    changes = {}
    for item in items:
        name, _, value = item.partition("=")
        if not hasattr(PropagationSettings, name.strip()):
            parser.error(f"--set {item}: no such setting")
        changes[name.strip()] = ast.literal_eval(value.strip())
    return replace(PropagationSettings.video(), **changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=128, help="frame side (px)")
    parser.add_argument("--seed", type=int, default=0, help="one seed (see --seeds)")
    parser.add_argument("--seeds", type=int, nargs="*", help="several seeds: each clip kind once per seed")
    parser.add_argument("--clips", nargs="*", help="clip names (default: the whole family)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench-video-tracking.json")
    parser.add_argument("--embeddings", type=Path, help="folder keeping frame embeddings between runs")
    parser.add_argument("--label", default="", help="a note stored in the results (what code ran)")
    parser.add_argument(
        "--ceiling", action="store_true", help="also the per-frame Dice of the model's mask from the true box"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a video walk setting changed from PropagationSettings.video() (a Python literal), e.g. area_memory=0",
    )
    args = parser.parse_args()

    from volsam.data.clips import clip_family
    from volsam.engines import get as get_engine

    settings = _video_settings(parser, args.set)

    specs = []
    for seed in args.seeds or [args.seed]:
        family = clip_family(args.frames, (args.size, args.size), seed)
        if args.clips:  # in the order given
            by_name = {s.name: s for s in family}
            family = [by_name[name] for name in args.clips]
        specs += family
    engine = get_engine("medsam-lite", device="cpu")
    if args.embeddings is not None:
        engine = DiskEmbeddings(engine, args.embeddings)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            row = run_clip(engine, spec, Path(tmp), args.ceiling, settings)
            rows.append(row)
            print(
                f"{row['clip']:14s} seed {row['seed']} mean {row['mean_dice']:.3f} min {row['min_dice']:.3f} "
                f"(frame {row['worst_frame']}) below {FLOOR}: {len(row['frames_below_floor'])}",
                flush=True,
            )
            report = _report(rows, args.label)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")  # after each clip: a long run can be cut
    print(json.dumps(_report(rows, args.label)["summary"]) if rows else "no clip run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
