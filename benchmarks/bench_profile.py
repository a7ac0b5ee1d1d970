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
        [--backend torch]

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
    """Wraps an engine; adds up seconds and calls of ``encode`` (per frame shape, i.e. per window) and
    ``predict``."""

    def __init__(self, inner: SliceEngine):
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.reset()

    def reset(self) -> None:
        self.encode_s: dict[tuple[int, int], float] = {}
        self.encoded: dict[tuple[int, int], int] = {}
        self.windows: list[tuple[int, int]] = []
        self.predict_s = 0.0
        self.predicts = 0

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
        "other_s": t_segment - encode_all - engine.predict_s,
        "frames_segmented": rep.frames_segmented,
        "total_s": t_read + t_segment + t_write,
    }


def cli_seconds(name: str, folder: Path, strategy: str, backend: str | None) -> float:
    case = lesion_case(name)
    cmd = [str(ROOT / ".venv/bin/volsam"), "segment", str(folder / f"{name}.nii.gz"), *box_args(case.middle_box)]
    cmd += ["-o", str(folder / f"{name}-{strategy}-cli.nii.gz"), "--strategy", strategy, "--device", "cpu"]
    cmd += ["--modality", "MR"]
    if backend is not None:
        cmd += ["--backend", backend]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/profile.json"))
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: the first of each kind)")
    ap.add_argument("--strategies", default="volsam,baseline")
    ap.add_argument("--cli", type=int, default=0, help="also time a real volsam segment process on N cases")
    ap.add_argument("--backend", default=None, help="engine backend option (default: the engine's default)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    names = args.cases.split(",") if args.cases else [n for n in lesion_case_names() if n.endswith("-00")]
    options = {} if args.backend is None else {"backend": args.backend}
    registry.clear_cache()
    t0 = time.perf_counter()
    inner = registry.get("medsam-lite", device="cpu", **options)
    load_s = time.perf_counter() - t0
    engine = TimedEngine(inner)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            for strategy in args.strategies.split(","):
                r = profile_case(name, engine, folder, strategy)
                rows.append(r)
                print(
                    f"{name:16s} {strategy:8s} total {r['total_s']:6.2f} s: read {r['read_s']:.2f} "
                    f"encode {r['encode_s']:.2f} (discarded windows {r['encode_discarded_windows_s']:.2f}, "
                    f"{r['frames_encoded']} frames) decoder {r['decoder_s']:.2f} ({r['decoder_calls']} calls) "
                    f"other {r['other_s']:.2f} write {r['write_s']:.2f}  dice {r['dice']:.3f}",
                    flush=True,
                )
        cli = []
        for name in names[: args.cli]:
            for strategy in args.strategies.split(","):
                seconds = cli_seconds(name, folder, strategy, args.backend)
                cli.append({"case": name, "strategy": strategy, "seconds": seconds})
                print(f"{name:16s} {strategy:8s} volsam segment process: {seconds:.2f} s", flush=True)
    summary = {}
    keys = [
        "total_s", "read_s", "encode_s", "encode_final_window_s", "encode_discarded_windows_s", "decoder_s",
        "other_s", "write_s", "frames_encoded", "frames_encoded_discarded_windows", "decoder_calls",
    ]  # fmt: skip
    for strategy in args.strategies.split(","):
        sel = [r for r in rows if r["strategy"] == strategy]
        summary[strategy] = {k: statistics.fmean(r[k] for r in sel) for k in keys}
        summary[strategy]["share"] = {
            k: summary[strategy][k] / summary[strategy]["total_s"]
            for k in ("read_s", "encode_final_window_s", "encode_discarded_windows_s", "decoder_s", "other_s", "write_s")
        }
    out = {
        "benchmark": "profile of a whole volsam segment (one 2D box on the middle slice, full MNI152 lesion cases)",
        "backend": args.backend,
        "model_load_s": load_s,
        "summary": summary,
        "cases": rows,
        "cli": cli,
        "machine": {
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "note": "shared 2-core machine: compare only numbers from the same run",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"model load {load_s:.2f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
