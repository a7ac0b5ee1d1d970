"""Propagation accuracy with the real LiteMedSAM weights on synthetic lesions in the real MNI152 T1.

One 2D box on the middle slice of each lesion (what a user draws), propagated through the volume by the
volsam strategy and by the CVPR 2024 baseline beside it. Cropped cases keep this to a few minutes on 2 cores;
the full-size set with timings is ``make bench``. Both strategies of a case share one embedding cache (keyed by
the frames' pixels, as a session's is): on these crops the volsam window spans the whole slice, so the baseline
finds most of its slices already encoded (measured on dark-00: 15 of 17), with masks identical to an uncached
run.
"""

from __future__ import annotations

import statistics

import pytest

from volsam.data.lesions import lesion_cases
from volsam.engines import get as get_engine
from volsam.engines.cache import CachedEngine
from volsam.metrics import dice
from volsam.propagation import PropagationSettings
from volsam.segmentation import segment

pytestmark = pytest.mark.slow  # the module fixture runs 12 segmentations

CASES = ("dark-00", "ring-00", "small-00", "flat-00", "dark-00-flip-ik", "dark-00-aniso")


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, float]]:
    engine = get_engine("medsam-lite", device="cpu")
    cases = {c.name: c for c in lesion_cases(n_per_kind=1, crop=True)}
    out: dict[str, dict[str, float]] = {}
    for name in CASES:
        case = cases[name]
        out[name] = {}
        cached = CachedEngine(engine)  # one case's slices: the same pixels give the same embedding
        for strategy, settings in (("volsam", PropagationSettings()), ("baseline", PropagationSettings.baseline())):
            seg = segment(case.image, case.middle_box, engine=cached, settings=settings, modality="MR")
            assert seg.same_grid(case.image)
            out[name][strategy] = dice(seg.array > 0, case.label.array > 0)
    return out


def test_volsam_beats_the_challenge_baseline(results):
    # measured (2026-11-22): volsam mean 0.873, baseline 0.588 on these six cropped cases; the whole cropped
    # set (24 cases, benchmarks/tune_propagation.py) gives 0.851 vs 0.525
    ours = statistics.fmean(r["volsam"] for r in results.values())
    base = statistics.fmean(r["baseline"] for r in results.values())
    assert ours >= 0.85, results
    assert ours >= base + 0.2, results
    for name, r in results.items():
        assert r["volsam"] >= r["baseline"] - 0.05, (name, r)


def test_dark_lesions_reach_high_dice_in_every_geometry(results):
    # the same lesion as read and with flipped i and k axes: the geometry must not matter (measured 0.929)
    for name in ("dark-00", "dark-00-flip-ik"):
        assert results[name]["volsam"] >= 0.9, (name, results[name])
    assert abs(results["dark-00"]["volsam"] - results["dark-00-flip-ik"]["volsam"]) < 0.02, results
    # resampled to 3 mm slices the 14-slice lesion spans 5 slices: each end slice weighs a fifth
    # (measured 0.866 vs the baseline's 0.753)
    assert results["dark-00-aniso"]["volsam"] >= 0.8, results["dark-00-aniso"]
