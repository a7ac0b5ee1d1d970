"""Where the time of a whole ``volsam segment`` goes, on lesion cases of the synthetic set (full MNI152 volumes).

Per case and strategy (volsam, and the CVPR24 baseline as the reference strategy), the steps of
``jobs.volume.segment_file`` are timed one by one in this process: model loading (the engine built from
scratch once per backend; the first case pays it), reading the image file, normalisation, the image encoder
(split into the final window's walk and the walks that were thrown away when the window widened), the mask
decoder calls (the box proposals: one call per proposal), the rest of the walk (stops, appearance, clean-up)
and writing the label map. An instrumented engine wraps the real one, so nothing in volsam changes.
``--cli N`` also times the first N cases as a real ``volsam segment`` process per strategy (imports, model
load, read, segment, write), side by side.

    .venv/bin/python benchmarks/bench_profile.py --out results/profile.json [--cases dark-00,ring-01] [--cli 2]
        [--variants baseline:torch,volsam:torch,volsam:openvino] [--encoder-frames 8]

Variants are ``strategy:backend`` pairs run one after the other on each case (side by side in time); a
third field ``loop`` (``volsam:torch:loop``) predicts a frame's box proposals one box per decoder call instead
of in one batched call (how the walk ran before ``predict_boxes``). The volsam variants' masks are compared by
Dice with the first volsam variant's (today's torch fp32 by default), and each variant's whole time is
divided by the baseline strategy's (torch) on the same case; ``--cli`` process times likewise (``cli_ratios``).

The machine may be shared: only the ratios and the shares measured in the same run mean something.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from volsam.core.prompts import Box2D
from volsam.data.lesions import lesion_case, lesion_case_names
from volsam.engines import registry
from volsam.engines.base import SliceEmbedding, SliceEngine, SlicePrediction
from volsam.io import read_volume, write_labels, write_volume
from volsam.propagation import PropagationSettings
from volsam.segmentation import segment

ROOT = Path(__file__).resolve().parents[1]


class TimedEngine(SliceEngine):
    """Wraps an engine; adds up seconds and calls of ``encode`` (per frame shape, i.e. per window) and of the
    decoder (``predict`` and ``predict_boxes``: calls and boxes). With ``batched`` False a frame's box
    proposals are predicted one box per call, as before the batched decoder (the ``:loop`` variants)."""

    def __init__(self, inner: SliceEngine):
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.batched = True
        self.reset()

    def reset(self) -> None:
        self.encode_s: dict[tuple[int, int], float] = {}
        self.encoded: dict[tuple[int, int], int] = {}
        self.windows: list[tuple[int, int]] = []
        self.predict_s = 0.0
        self.predicts = 0
        self.boxes = 0

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        t0 = time.perf_counter()
        out = self.inner.encode(frames)
        shape = (int(frames.shape[1]), int(frames.shape[2]))
        if not self.windows or self.windows[-1] != shape:
            self.windows.append(shape)
        self.encode_s[shape] = self.encode_s.get(shape, 0.0) + time.perf_counter() - t0
        self.encoded[shape] = self.encoded.get(shape, 0) + len(frames)
        return out

    def predict(self, embedding: SliceEmbedding, **kwargs: object) -> SlicePrediction:
        t0 = time.perf_counter()
        out = self.inner.predict(embedding, **kwargs)
        self.predict_s += time.perf_counter() - t0
        self.predicts += 1
        self.boxes += 1
        return out

    def predict_boxes(
        self, embedding: SliceEmbedding, boxes: Sequence[tuple[float, float, float, float]]
    ) -> list[SlicePrediction]:
        if not self.batched:
            return [self.predict(embedding, box=box) for box in boxes]
        t0 = time.perf_counter()
        out = self.inner.predict_boxes(embedding, boxes)
        self.predict_s += time.perf_counter() - t0
        self.predicts += 1
        self.boxes += len(boxes)
        return out


def box_args(box: Box2D) -> list[str]:
    return ["--box", f"{box.u0},{box.v0},{box.u1},{box.v1}", "--slice", str(box.slice)]


def profile_case(name: str, engine: TimedEngine, folder: Path, strategy: str) -> dict:
    case = lesion_case(name)
    image_path = folder / f"{name}.nii.gz"
    if not image_path.exists():
        write_volume(case.image, image_path)
    settings = PropagationSettings() if strategy == "volsam" else PropagationSettings.baseline()
    engine.reset()
    t0 = time.perf_counter()
    image = read_volume(image_path)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    labelmap = segment(image, case.middle_box, engine=engine, settings=settings, modality="MR")
    t_segment = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_labels(labelmap, folder / f"{name}-{strategy}-seg.nii.gz", source=image)
    t_write = time.perf_counter() - t0
    final = engine.windows[-1] if engine.windows else None
    encode_final = engine.encode_s.get(final, 0.0) if final else 0.0
    encode_all = sum(engine.encode_s.values())
    rep = labelmap.meta["report"]
    pred, gt = labelmap.array > 0, case.label.array > 0
    inter = np.logical_and(pred, gt).sum()
    return {
        "case": name,
        "strategy": strategy,
        "dice": float(2 * inter / max(pred.sum() + gt.sum(), 1)),
        "read_s": t_read,
        "segment_s": t_segment,
        "write_s": t_write,
        "encode_s": encode_all,
        "encode_final_window_s": encode_final,
        "encode_discarded_windows_s": encode_all - encode_final,
        "frames_encoded": sum(engine.encoded.values()),
        "frames_encoded_discarded_windows": sum(n for s, n in engine.encoded.items() if s != final),
        "windows": [list(w) for w in engine.windows],
        "distinct_windows": len(set(engine.windows)),
        "decoder_s": engine.predict_s,
        "decoder_calls": engine.predicts,
        "decoder_boxes": engine.boxes,
        "other_s": t_segment - encode_all - engine.predict_s,
        "frames_segmented": rep.frames_segmented,
        "total_s": t_read + t_segment + t_write,
    }


def cli_seconds(name: str, folder: Path, strategy: str, backend: str) -> float:
    case = lesion_case(name)
    cmd = [str(ROOT / ".venv/bin/volsam"), "segment", str(folder / f"{name}.nii.gz"), *box_args(case.middle_box)]
    cmd += ["-o", str(folder / f"{name}-{strategy}-cli.nii.gz"), "--strategy", strategy, "--device", "cpu"]
    cmd += ["--modality", "MR", "--backend", backend]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def encoder_times(engines: dict[str, TimedEngine], frames: np.ndarray, rounds: int) -> dict[str, dict]:
    """Seconds per frame of each backend's ``encode`` (one frame per call, backends alternating, ``rounds``
    passes over ``frames``): fastest and median call, and the largest embedding difference to torch."""
    times: dict[str, list[float]] = {b: [] for b in engines}
    feats: dict[str, list] = {b: [] for b in engines}
    for r in range(rounds):
        for frame in frames:
            for backend, engine in engines.items():
                t0 = time.perf_counter()
                emb = engine.inner.encode(frame[None])[0]
                times[backend].append(time.perf_counter() - t0)
                if r == 0:
                    feats[backend].append(emb.features)
    out = {}
    for backend in engines:
        diff = None
        if "torch" in feats and backend != "torch":
            diff = max(float((a - b).abs().max()) for a, b in zip(feats["torch"], feats[backend]))
        out[backend] = {
            "fastest_s": min(times[backend]),
            "median_s": statistics.median(times[backend]),
            "max_abs_diff_vs_torch": diff,
        }
    return out


def decoder_batch_times(engine: SliceEngine, case, rounds: int) -> dict:
    """Seconds to predict the walk's proposals on the case's prompted slice (the box grown by 1 px plus 0,
    5 and 10 % of its longer side): one ``predict`` per box against one ``predict_boxes`` call, alternating
    for ``rounds`` rounds; the masks must be equal."""
    from volsam.preprocess import fit_normalizer
    from volsam.propagation.frames import expand_box

    frame = np.asarray(fit_normalizer(case.image, "MR").apply(case.image.array[case.middle_box.slice][None]))
    emb = engine.encode(frame)[0]
    b = case.middle_box
    side = max(b.u1 - b.u0 + 1, b.v1 - b.v0 + 1)
    settings = PropagationSettings()
    boxes = [
        expand_box((b.u0, b.v0, b.u1, b.v1), settings.box_margin + r * side, emb.frame_shape)
        for r in settings.proposal_ratios
    ]
    loop, batched = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        one = [engine.predict(emb, box=box) for box in boxes]
        loop.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        together = engine.predict_boxes(emb, boxes)
        batched.append(time.perf_counter() - t0)
        if any(not np.array_equal(a.mask, c.mask) for a, c in zip(one, together, strict=True)):
            raise SystemExit("predict_boxes gave other masks than predict")
    return {
        "case": case.name,
        "boxes": len(boxes),
        "rounds": rounds,
        "loop_median_s": statistics.median(loop),
        "batched_median_s": statistics.median(batched),
        "loop_fastest_s": min(loop),
        "batched_fastest_s": min(batched),
        "ratio_of_medians": statistics.median(batched) / statistics.median(loop),
        "median_round_ratio": statistics.median(b / a for a, b in zip(loop, batched, strict=True)),
        "masks_equal": True,
    }


def dice_of(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


def parse_variant(text: str) -> tuple[str, str, bool]:
    """``strategy:backend[:loop]`` -> (strategy, backend, loop)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "loop"):
        raise SystemExit(f"a variant is strategy:backend[:loop], got {text!r}")
    return parts[0], parts[1], len(parts) == 3


def variant_key(variant: tuple[str, str, bool]) -> str:
    strategy, backend, loop = variant
    return f"{strategy}:{backend}" + (":loop" if loop else "")


def cli_ratios(cli: list[dict]) -> dict[str, float]:
    """Per ``strategy:backend``: its ``volsam segment`` process seconds over the baseline strategy's (torch),
    summed over the cases timed both ways."""
    base = {c["case"]: c["seconds"] for c in cli if c["strategy"] == "baseline" and c["backend"] == "torch"}
    out: dict[str, float] = {}
    for key in dict.fromkeys(f"{c['strategy']}:{c['backend']}" for c in cli):
        sel = [c for c in cli if f"{c['strategy']}:{c['backend']}" == key and c["case"] in base]
        if sel:
            out[key] = sum(c["seconds"] for c in sel) / sum(base[c["case"]] for c in sel)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/profile.json"))
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: the first of each kind)")
    ap.add_argument(
        "--variants",
        default="baseline:torch,volsam:torch,volsam:openvino",
        help="strategy:backend[:loop] variants, run side by side per case; the first volsam one is the masks' "
        "reference",
    )
    ap.add_argument("--cli", type=int, default=0, help="also time a real volsam segment process on N cases")
    ap.add_argument("--encoder-frames", type=int, default=0, help="time the encoder per backend on N slices")
    ap.add_argument("--encoder-rounds", type=int, default=3)
    ap.add_argument(
        "--decoder-rounds",
        type=int,
        default=0,
        help="time a frame's box proposals box by box against one predict_boxes call, N alternating rounds",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if args.cases == "none":
        names = []
    else:
        names = args.cases.split(",") if args.cases else [n for n in lesion_case_names() if n.endswith("-00")]
    variants = [parse_variant(v) for v in args.variants.split(",")]
    engines: dict[str, TimedEngine] = {}
    load_s: dict[str, float] = {}
    for backend in dict.fromkeys(b for _, b, _ in variants):
        registry.clear_cache()
        t0 = time.perf_counter()
        engines[backend] = TimedEngine(registry.get("medsam-lite", device="cpu", precision="fp32", backend=backend))
        load_s[backend] = time.perf_counter() - t0
        print(f"engine {backend}: built in {load_s[backend]:.1f} s (runs {engines[backend].inner.backend})")
    reference = next(variant_key(v) for v in variants if v[0] == "volsam")
    rows, cli = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            masks = {}
            for strategy, backend, loop in variants:
                key = variant_key((strategy, backend, loop))
                engines[backend].batched = not loop
                r = profile_case(name, engines[backend], folder, strategy)
                r["backend"], r["variant"] = backend, key
                masks[key] = read_volume(folder / f"{name}-{strategy}-seg.nii.gz").array
                rows.append(r)
                print(
                    f"{name:16s} {key:20s} total {r['total_s']:6.2f} s: read {r['read_s']:.2f} "
                    f"encode {r['encode_s']:.2f} (discarded windows {r['encode_discarded_windows_s']:.2f}, "
                    f"{r['frames_encoded']} frames) decoder {r['decoder_s']:.2f} ({r['decoder_calls']} calls) "
                    f"other {r['other_s']:.2f} write {r['write_s']:.2f}  dice {r['dice']:.3f}",
                    flush=True,
                )
            for r in rows[-len(variants) :]:
                if r["strategy"] == "volsam":
                    r["dice_vs_reference"] = dice_of(masks[r["variant"]], masks[reference])
        for name in names[: args.cli]:
            for strategy, backend, loop in variants:
                if loop:
                    continue  # a process always runs the batched decoder
                seconds = cli_seconds(name, folder, strategy, backend)
                cli.append({"case": name, "strategy": strategy, "backend": backend, "seconds": seconds})
                print(f"{name:16s} {strategy:8s} {backend:8s} volsam segment process: {seconds:.2f} s", flush=True)
    decoder = {}
    if args.decoder_rounds:
        first = next(iter(engines.values()))
        decoder = decoder_batch_times(first.inner, lesion_case(names[0] if names else "small-00"), args.decoder_rounds)
        print(f"decoder, one frame's proposals: {json.dumps(decoder)}", flush=True)
    encoder = {}
    if args.encoder_frames:
        case = lesion_case(names[0] if names else "small-00")
        from volsam.preprocess import fit_normalizer

        norm = fit_normalizer(case.image, "MR")
        k = case.middle_box.slice
        frames = norm.apply(case.image.array[k - args.encoder_frames // 2 : k + (args.encoder_frames + 1) // 2])
        encoder = encoder_times(engines, np.asarray(frames), args.encoder_rounds)
        for backend, e in encoder.items():
            print(f"encoder {backend:8s} fastest {e['fastest_s']:.3f} s/slice median {e['median_s']:.3f}", flush=True)
    summary: dict[str, dict] = {}
    keys = [
        "total_s", "read_s", "encode_s", "encode_final_window_s", "encode_discarded_windows_s", "decoder_s",
        "other_s", "write_s", "frames_encoded", "frames_encoded_discarded_windows", "decoder_calls",
        "decoder_boxes",
    ]  # fmt: skip
    for strategy, backend, loop in variants:
        key = variant_key((strategy, backend, loop))
        sel = [r for r in rows if r["variant"] == key]
        if not sel:
            continue  # --cases none
        summary[key] = {k: statistics.fmean(r[k] for r in sel) for k in keys}
        summary[key]["share"] = {
            k: summary[key][k] / summary[key]["total_s"]
            for k in (
                "read_s",
                "encode_final_window_s",
                "encode_discarded_windows_s",
                "decoder_s",
                "other_s",
                "write_s",
            )
        }
        if strategy == "volsam":
            summary[key]["min_dice_vs_reference"] = min(r["dice_vs_reference"] for r in sel)
        base = [r for r in rows if r["variant"] == "baseline:torch"]
        if base and strategy != "baseline":
            # per case: this variant's whole time over the reference strategy's, same case, same run
            ratios = [r["total_s"] / b["total_s"] for r in sel for b in base if b["case"] == r["case"]]
            summary[key]["time_vs_baseline_mean_ratio"] = statistics.fmean(ratios) if ratios else None
            summary[key]["time_vs_baseline_total_ratio"] = sum(r["total_s"] for r in sel) / sum(
                b["total_s"] for b in base
            )
        print(f"{key:18s} " + " ".join(f"{k}={v:.3f}" for k, v in summary[key].items() if isinstance(v, float)))
    out = {
        "benchmark": "profile of a whole volsam segment (one 2D box on the middle slice, full MNI152 lesion cases)",
        "variants": [variant_key(v) for v in variants],
        "masks_reference": reference,
        "model_load_s": load_s,
        "encoder": encoder,
        "decoder_batch": decoder,
        "summary": summary,
        "cases": rows,
        "cli": cli,
        "cli_ratios": cli_ratios(cli),
        "machine": {
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "note": "shared 2-core machine: compare only numbers from the same run",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
