"""The evaluation protocols with the real LiteMedSAM weights on cropped lesions of the MNI152 T1."""

from __future__ import annotations

import numpy as np
import pytest

from volsam.bench.datasets import Target
from volsam.bench.protocols import CHALLENGE_NSD_RULE, Scorer, run_protocol, session_factory, slab, tight_box3d
from volsam.core.errors import InputError
from volsam.core.prompts import Box3D
from volsam.data.lesions import lesion_case
from volsam.engines import get as get_engine
from volsam.engines.cache import CachedEngine


@pytest.fixture(scope="module")
def engine():
    return CachedEngine(get_engine("medsam-lite", device="cpu"), 512)  # one encoder pass per slice


@pytest.fixture(scope="module")
def case(engine):
    """flat-00 (12 slices, 3-6 of them lesion): the one-step protocols' walks are short."""
    lesion = lesion_case("flat-00", crop=True)
    return lesion, session_factory(lesion.image, engine, "MR"), lesion.label.array > 0


@pytest.fixture(scope="module")
def dark_case(engine):
    """dark-00 (22 slices): a click in the middle of flat-00 gives an empty mask, and small-00 ends below
    Dice 0.5 after 3 simulated clicks (0.21; flat-01 0.37), so the seed-clicks protocol keeps this case."""
    lesion = lesion_case("dark-00", crop=True)
    return lesion, session_factory(lesion.image, engine, "MR"), lesion.label.array > 0


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["box-middle", "box3d", "seed-mask"])
def test_one_step_protocols_segment_the_lesion(case, protocol):
    lesion, factory, truth = case
    result = run_protocol(protocol, factory, truth, lesion.image.spacing)
    assert len(result.steps) == 1
    assert result.final.dice > 0.75, result.final
    assert 0 < result.final.nsd <= 1
    assert np.isnan(result.auc("dice"))


@pytest.mark.slow
def test_box3d_uses_the_box_shipped_with_the_data(case):
    lesion, factory, truth = case
    middle = slab(truth, 2)[1]  # along k
    # a corner away from the lesion, 3 slices through its middle (each slice of a box3d is a walk's frame)
    far = Box3D(0, 0, middle - 1, 6, 6, middle + 1)
    result = run_protocol("box3d", factory, truth, lesion.image.spacing, target=Target("x", (1,), far))
    assert result.final.dice < 0.2


def test_cvpr25_box_then_clicks(case):
    lesion, factory, truth = case
    result = run_protocol("cvpr25", factory, truth, lesion.image.spacing, clicks=2)
    assert [s.prompt for s in result.steps][0] == "box3d"
    assert len(result.steps) == 3
    assert all(s.prompt in ("+click", "-click", "none") for s in result.steps[1:])
    # the challenge's AUC: trapezoid rule over the click steps only (the box step is optional there)
    assert result.auc("dice") == pytest.approx(np.trapezoid([s.dice for s in result.steps[1:]]))
    assert result.steps[0].dice > 0.75
    assert result.to_dict()["final_dice"] == result.final.dice


def test_cvpr25_time_limit_caps_and_keeps_the_last_result(case):
    lesion, factory, truth = case
    result = run_protocol("cvpr25", factory, truth, lesion.image.spacing, clicks=3, time_limit_s=0.0)
    assert result.capped
    assert [s.prompt for s in result.steps] == ["box3d", "none", "none", "none"]
    assert {s.dice for s in result.steps} == {result.steps[0].dice}


@pytest.mark.slow
def test_seed_clicks_click_only_the_middle_slice(dark_case):
    lesion, factory, truth = dark_case
    first, middle, last = slab(truth, 2)
    assert first <= middle <= last
    seen = []

    def spying_factory():
        session = factory()
        add_point = session.add_point

        def add(obj, ijk, positive=True, run=True):
            seen.append(tuple(ijk))
            return add_point(obj, ijk, positive, run)

        session.add_point = add
        return session

    result = run_protocol("seed-clicks", spying_factory, truth, lesion.image.spacing, clicks=3)
    assert 1 <= len(result.steps) <= 3 and result.steps[0].prompt == "+click"
    assert seen and all(k == middle for _, _, k in seen)
    assert result.final.dice > 0.5


def test_challenge_rule_and_refusals(case):
    lesion, factory, truth = case
    bad = np.zeros_like(truth)
    bad[tuple(np.argwhere(truth)[0])] = True  # one voxel of the lesion: tiny Dice
    with pytest.raises(InputError, match="unknown protocol"):
        run_protocol("nope", factory, truth, lesion.image.spacing)
    with pytest.raises(InputError, match="empty"):
        run_protocol("box-middle", factory, np.zeros_like(truth), lesion.image.spacing)
    assert tight_box3d(truth).as_tuple() == lesion.box3d.as_tuple()
    with_rule = Scorer(truth, lesion.image.spacing, 2.0, rule=True)("x", bad, 0.0)
    without = Scorer(truth, lesion.image.spacing, 2.0, rule=False)("x", bad, 0.0)
    assert with_rule.dice == without.dice <= CHALLENGE_NSD_RULE
    assert with_rule.nsd == 0.0 < without.nsd
