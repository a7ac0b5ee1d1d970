"""Metrics benchmark: volsam's NSD / HD95 beside DeepMind's surface-distance and the boundary-voxel variant,
and the time of one 512 x 512 x 300 pair.

Cases (generated, seeded): a lesion-like blob at 1 mm (prediction = a second blob), blobs at 0.7 x 0.8 x 2.5 mm
with an eroded and a dilated prediction, and an organ-sized ellipsoid pair in a 512 x 512 x 300 volume at
0.8 x 0.8 x 2.5 mm. For each: NSD at 2 mm and HD95 from volsam (surfels, the default), surface-distance
(test-only reference, when installed) and volsam's boundary-voxel variant (MONAI-style, what volsam
reported before), plus seconds: wall time and the process's CPU time (``time.process_time``, all threads) of
``volsam.metrics.scores`` (DSC, NSD and HD95 together), with the load average, since wall time on a shared
machine says more about the other processes than about the code.

    .venv/bin/python benchmarks/bench_metrics.py --out results/bench-metrics.json [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from volsam.metrics import hd95, hd95_voxels, scores, surface_dice, surface_dice_voxels


def _blob(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, level: float) -> np.ndarray:
    return ndimage.gaussian_filter(rng.random(shape), sigma) > level


def _cases() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """``(name, pred, gt, spacing_ijk)``."""
    rng = np.random.default_rng(2026)
    lesion_gt = _blob(rng, (40, 48, 48), 3.0, 0.515)
    lesion_pred = np.roll(lesion_gt, 1, axis=2) & ~_blob(rng, (40, 48, 48), 2.0, 0.53)  # shifted, with bites
    blobs = _blob(rng, (30, 80, 80), 3.0, 0.51)
    k, j, i = np.ogrid[:300, :512, :512]
    organ = ((k - 150) / 40.0) ** 2 + ((j - 256) / 150.0) ** 2 + ((i - 250) / 170.0) ** 2 <= 1
    organ_pred = ((k - 151) / 39.0) ** 2 + ((j - 252) / 152.0) ** 2 + ((i - 254) / 168.0) ** 2 <= 1
    return [
        ("lesion 1 mm", lesion_pred, lesion_gt, (1.0, 1.0, 1.0)),
        ("blobs 0.7x0.8x2.5 eroded", ndimage.binary_erosion(blobs), blobs, (0.7, 0.8, 2.5)),
        ("blobs 0.7x0.8x2.5 dilated", ndimage.binary_dilation(blobs), blobs, (0.7, 0.8, 2.5)),
        ("organ 512x512x300 0.8x0.8x2.5", organ_pred, organ, (0.8, 0.8, 2.5)),
    ]


def _reference():
    try:
        import surface_distance
    except ImportError:
        return None
    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # surface-distance 0.1 under numpy 2 (shared/FACTS.md)
    return surface_distance


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench-metrics.json"))
    ap.add_argument("--no-reference", action="store_true", help="skip surface-distance (slow on the organ pair)")
    args = ap.parse_args(argv)
    sd = None if args.no_reference else _reference()
    rows = []
    warm = np.zeros((3, 3, 3), bool)
    warm[1, 1, 1] = True
    scores(warm, warm, (1.0, 1.0, 1.0))  # builds the surfel table once, outside the timings
    for name, pred, gt, spacing in _cases():
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        result = scores(pred, gt, spacing, nsd_zero_below_dice=None)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        nsd, hd = result.nsd, result.hd95
        assert nsd == surface_dice(pred, gt, spacing) and hd == hd95(pred, gt, spacing)  # noqa: S101
        t0 = time.perf_counter()
        row = {
            "case": name,
            "spacing_ijk": list(spacing),
            "voxels": int(pred.size),
            "dice": result.dice,
            "nsd_2mm": nsd,
            "hd95_mm": hd,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "load_average_1min": load,
            "nsd_2mm_voxels": surface_dice_voxels(pred, gt, spacing, 2.0),
            "hd95_mm_voxels": hd95_voxels(pred, gt, spacing),
        }
        row["seconds_voxels"] = time.perf_counter() - t0
        if sd is not None:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ref = sd.compute_surface_distances(gt, pred, spacing[::-1])
            row["nsd_2mm_surface_distance"] = float(sd.compute_surface_dice_at_tolerance(ref, 2.0))
            row["hd95_mm_surface_distance"] = float(sd.compute_robust_hausdorff(ref, 95))
            row["seconds_surface_distance"] = time.perf_counter() - t0
        rows.append(row)
        ref_text = (
            f" | surface-distance NSD {row['nsd_2mm_surface_distance']:.4f} HD95 {row['hd95_mm_surface_distance']:.2f}"
            f" ({row['seconds_surface_distance']:.1f} s)"
            if sd is not None
            else ""
        )
        print(
            f"{name:32s} volsam NSD {nsd:.4f} HD95 {hd:.2f} mm ({seconds:.2f} s, CPU {cpu_seconds:.2f} s) | "
            f"boundary voxels NSD "
            f"{row['nsd_2mm_voxels']:.4f} HD95 {row['hd95_mm_voxels']:.2f}{ref_text}",
            flush=True,
        )
    out = {
        "benchmark": "metrics: volsam (surfels) vs surface-distance and the boundary-voxel variant",
        "command": " ".join([".venv/bin/python", "benchmarks/bench_metrics.py", *sys.argv[1:]]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
