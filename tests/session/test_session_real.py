"""A session with the real LiteMedSAM weights on a cropped lesion of the MNI152 T1: a box, then simulated
clicks (the CVPR 2025 rule), corrections answered from cached slice embeddings."""

from __future__ import annotations

import pytest

from volsam.bench.clicks import next_click
from volsam.data.lesions import lesion_cases
from volsam.metrics import dice
from volsam.session import Session


@pytest.fixture(scope="module")
def case():
    return lesion_cases(n_per_kind=1, crop=True, variants=False)[0]  # dark-00, about 70 x 70 x 22 voxels


def test_box_then_clicks_on_a_real_lesion(case):
    truth = case.label.array > 0
    s = Session(case.image, engine="medsam-lite", device="cpu", modality="MR")
    obj = s.add_object(name="lesion")
    b = case.middle_box
    first = s.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    assert first.frames_encoded > 0 and first.frames is not None
    box_dice = dice(s.mask(obj), truth)
    assert box_dice > 0.9  # measured 0.929
    steps = [box_dice]
    for _ in range(5):
        click = next_click(s.mask(obj), truth, case.image.spacing)
        s.add_point(obj, click.ijk(), positive=click.positive)
        steps.append(dice(s.mask(obj), truth))
    assert steps[-1] >= box_dice, steps  # measured 0.929 -> 0.934 after 5 clicks (box-only edits)
    # a click on the prompted slice: its embedding is cached, the encoder does not run
    again = s.add_point(obj, (b.u0 + (b.u1 - b.u0) // 2, b.v0 + (b.v1 - b.v0) // 2, b.slice), positive=True)
    assert again.frames_encoded == 0
    s.undo()
    assert abs(dice(s.mask(obj), truth) - steps[-1]) < 1e-12
