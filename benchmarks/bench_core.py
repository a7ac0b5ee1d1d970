"""Core benchmark: LiteMedSAM propagation from one 2D box on the middle slice, volsam vs the CVPR24 baseline.

Runs every case of the synthetic-lesion set (full MNI152 volumes unless --crop), records per case and strategy
the 3D Dice, NSD (2 mm) and HD95 as surface-distance computes them (volsam.metrics), the boundary-voxel NSD that
volsam reported before (MONAI-style, ``nsd_2mm_voxels``, for comparison), slices segmented and encoded, seconds
per case and per slice, and the process's peak RSS; prints a table and writes JSON.

    .venv/bin/python benchmarks/bench_core.py --out results/bench-core.json [--crop] [--kinds dark,ring]
        [--cases dark-00,ring-00]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from volsam.data.lesions import lesion_cases
from volsam.engines import get as get_engine
from volsam.metrics import dice, hd95, surface_dice, surface_dice_voxels
from volsam.propagation import PropagationSettings
from volsam.segmentation import segment


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(case, engine, settings: PropagationSettings) -> dict:
    t0 = time.perf_counter()
    seg = segment(case.image, case.middle_box, engine=engine, settings=settings, modality="MR")
    seconds = time.perf_counter() - t0
    rep = seg.meta["report"]
    pred = seg.array > 0
    gt = case.label.array > 0
    return {
        "dice": dice(pred, gt),
        "nsd_2mm": surface_dice(pred, gt, case.image.spacing, 2.0),
        "nsd_2mm_voxels": surface_dice_voxels(pred, gt, case.image.spacing, 2.0),
        "hd95_mm": hd95(pred, gt, case.image.spacing),
        "slices_segmented": rep.frames_segmented,
        "slices_encoded": rep.frames_encoded,
        "slices_in_object": int(gt.any(axis=(1, 2)).sum()),
        "seconds": seconds,
        "seconds_per_slice": seconds / max(rep.frames_encoded, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _write(args: argparse.Namespace, rows: list[dict], summary: dict, partial: bool) -> None:
    out = {
        "benchmark": "core: one 2D box on the middle slice, synthetic lesions in MNI152 T1",
        "metrics": "DSC; NSD (2 mm) and HD95 as surface-distance (surfels); nsd_2mm_voxels: boundary voxels (MONAI)",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_core.py", *sys.argv[1:]]),
        "partial": partial,  # True while the run is going (or was stopped): not every selected case is in
        "subset": args.cases or args.kinds or None,  # None: the whole lesion set
        "crop": args.crop,
        "precision": args.precision,
        "machine": {
            "cpu_count": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "summary": summary,
        "cases": rows,
        "peak_rss_mb": _peak_rss_mb(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench-core.json"))
    ap.add_argument("--crop", action="store_true", help="cropped cases (quick look), not full volumes")
    ap.add_argument("--kinds", default=None, help="comma-separated lesion kinds to run")
    ap.add_argument("--cases", default=None, help="comma-separated case names to run (a subset, recorded)")
    ap.add_argument("--precision", default="auto", help="engine precision option")
    ap.add_argument("--strategies", default="volsam,baseline")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    cases = lesion_cases(crop=args.crop)
    if args.kinds:
        keep = set(args.kinds.split(","))
        cases = [c for c in cases if c.kind in keep]
    if args.cases:
        wanted = args.cases.split(",")
        unknown = sorted(set(wanted) - {c.name for c in cases})
        if unknown:
            ap.error(f"unknown cases: {', '.join(unknown)}")
        cases = [c for c in cases if c.name in wanted]
    engine = get_engine("medsam-lite", device="cpu", precision=args.precision)
    strategies = {
        "volsam": PropagationSettings(),
        "baseline": PropagationSettings.baseline(),
    }
    rows = []
    for case in cases:
        for name in args.strategies.split(","):
            r = run_case(case, engine, strategies[name])
            r.update(case=case.name, kind=case.kind, strategy=name, spacing=list(case.image.spacing))
            rows.append(r)
            print(
                f"{case.name:28s} {name:9s} dice {r['dice']:.3f} nsd {r['nsd_2mm']:.3f} "
                f"slices {r['slices_segmented']:3d}/{r['slices_in_object']:3d} "
                f"{r['seconds_per_slice']:.2f} s/slice rss {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            _write(args, rows, {}, partial=True)  # a stopped run leaves its finished cases
    summary = {}
    for name in args.strategies.split(","):
        sel = [r for r in rows if r["strategy"] == name]
        summary[name] = {
            "mean_dice": statistics.fmean(r["dice"] for r in sel),
            "median_dice": statistics.median(r["dice"] for r in sel),
            "mean_nsd_2mm": statistics.fmean(r["nsd_2mm"] for r in sel),
            "mean_nsd_2mm_voxels": statistics.fmean(r["nsd_2mm_voxels"] for r in sel),
            "median_hd95_mm": statistics.median(r["hd95_mm"] for r in sel),
            "mean_seconds_per_slice": statistics.fmean(r["seconds_per_slice"] for r in sel),
            "mean_seconds_per_case": statistics.fmean(r["seconds"] for r in sel),
        }
        sm = summary[name]
        print(
            f"{name:9s} mean Dice {sm['mean_dice']:.3f} (median {sm['median_dice']:.3f}), "
            f"NSD {sm['mean_nsd_2mm']:.3f} (boundary voxels {sm['mean_nsd_2mm_voxels']:.3f}), "
            f"HD95 median {sm['median_hd95_mm']:.2f} mm, {sm['mean_seconds_per_slice']:.2f} s/slice"
        )
    _write(args, rows, summary, partial=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
