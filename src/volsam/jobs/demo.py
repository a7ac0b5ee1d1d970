"""``volsam demo``: the main job on real anatomy that ships with a dependency, fully offline.

The MNI152 2009 T1 (in the nilearn wheel) with one textured dark lesion inserted (the first case of the
benchmark set, :mod:`volsam.data.lesions`, so its 3D ground truth is known). The demo writes that image,
draws the box a user would draw on the lesion's middle slice, segments the whole lesion from it, writes the
label map and overlay PNGs, and scores the result against the ground truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from volsam.data.lesions import LesionCase, iter_lesion_cases
from volsam.io import write_volume
from volsam.jobs.request import SegmentRequest
from volsam.jobs.volume import SegmentJobResult, segment_file
from volsam.metrics import dice
from volsam.propagation import SliceResult

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    case: LesionCase
    image_path: Path
    truth_path: Path
    job: SegmentJobResult
    dice: float


def demo_case() -> LesionCase:
    """The demo's image: MNI152 T1 with the benchmark's first dark lesion (full 197x233x189 grid)."""
    return next(iter_lesion_cases(n_per_kind=1, variants=False))


def run_demo(
    output_dir: str | Path = "demo-output",
    *,
    device: str = "auto",
    on_frame: Callable[[SliceResult], None] | None = None,
) -> DemoResult:
    """Write the demo image, segment the lesion from one 2D box, write label map + overlays, score it."""
    out = Path(output_dir)
    case = demo_case()
    image_path = write_volume(case.image, out / "mni152_t1_with_lesion.nii.gz")
    truth_path = write_volume(case.label, out / "lesion_truth.nii.gz", label=True)
    job = segment_file(
        image_path,
        [case.middle_box],
        out / "lesion_seg.nii.gz",
        SegmentRequest(device=device),
        overlay_dir=out / "overlays",
        on_frame=on_frame,
    )
    from volsam.io import read_volume

    score = dice(read_volume(job.output).array > 0, case.label.array > 0)
    return DemoResult(case, image_path, truth_path, job, score)
