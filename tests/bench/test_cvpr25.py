"""The cvpr25 protocol as CVPR25_iter_eval.py scores an image: per-image aggregation, AUC, clicks from the
label map, the time limit -- with the toy engine (bright pixels in the box; tests/support/toy_engine.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid

from tests.support.toy_engine import ToyEngine
from volsam.bench import runner
from volsam.bench.clicks import next_click
from volsam.bench.protocols import challenge_auc, challenge_box3d, image_scores, run_cvpr25
from volsam.bench.report import write_report
from volsam.bench.runner import IMAGE_TARGET, BenchConfig, read_results, run_bench
from volsam.core.volume import Volume
from volsam.engines.cache import CachedEngine
from volsam.propagation import PropagationSettings
from volsam.session import Session

K, J, NI = 20, 40, 50
SPACING = (1.0, 1.0, 2.0)


def _image() -> np.ndarray:
    a = np.full((K, J, NI), 20, np.uint8)
    a[4:15, 8:19, 6:21] = 200  # object 1
    a[6:13, 24:35, 30:45] = 220  # object 2
    a[15:18, 8:19, 6:21] = 190  # a bright bar continuing object 1 (not in its truth)
    return a


def _truths() -> list[tuple[str, np.ndarray]]:
    one, two = np.zeros((K, J, NI), bool), np.zeros((K, J, NI), bool)
    one[4:15, 8:19, 6:21] = True
    one[9:12, 10:14, 8:12] = False  # a hole the bright block fills: the box step over-segments it
    two[6:13, 24:35, 30:45] = True
    two[6:13, 24:28, 30:36] = False
    return [("one", one), ("two", two)]


def _factory(spy: list | None = None):
    engine = CachedEngine(ToyEngine())
    settings = PropagationSettings(appearance_stop=False, regrowth_after=0.0, roi_context=0.0)

    def make() -> Session:
        s = Session(Volume(_image(), spacing=SPACING), engine=engine, modality="MR", settings=settings)
        if spy is not None:
            add_point = s.add_point

            def add(obj, ijk, positive=True, run=True):
                labelmap = s.labelmap().array
                spy.append((obj, tuple(ijk), positive, labelmap == obj))
                return add_point(obj, ijk, positive, run)

            s.add_point = add
        return s

    return make


# -- the challenge's per-image numbers --------------------------------------------------------------------
def test_challenge_auc_is_the_trapezoid_over_the_click_steps_only():
    curve = [0.9, 0.5, 0.6, 0.7, 0.8, 1.0]  # box, then 5 clicks
    assert challenge_auc(curve) == pytest.approx(0.55 + 0.65 + 0.75 + 0.9)
    assert challenge_auc(curve) == pytest.approx(cumulative_trapezoid(np.array(curve[-5:]), np.arange(5))[-1])
    assert challenge_auc([1.0] * 6) == 4.0  # the most 5 clicks can give
    assert math.isnan(challenge_auc([0.5, 0.6]))  # one click step: no area


def test_image_scores_average_the_classes_and_zero_nsd_on_the_mean_dice():
    truth = np.zeros((6, 20, 20), bool)
    truth[1:5, 4:14, 4:14] = True
    other = np.zeros_like(truth)
    other[1:5, 15:19, 15:19] = True
    poor = np.zeros_like(truth)
    poor[1:5, 4:14, 13:16] = True  # overlaps `truth` in one column: DSC 2*40/(400+120) < 0.2
    s = image_scores([truth, poor], [truth, truth], (1, 1, 1))
    assert s.class_dice == (1.0, pytest.approx(80 / 520)) and s.dice == pytest.approx((1 + 80 / 520) / 2)
    raw = image_scores([poor], [truth], (1, 1, 1))  # a class alone: NSD 0 by its own DSC
    assert raw.nsd == 0.0 and s.class_nsd == (1.0, 0.0)
    from volsam.metrics import surface_dice

    assert s.nsd == pytest.approx((1 + surface_dice(poor, truth, (1, 1, 1))) / 2)  # the raw NSD counts
    assert surface_dice(poor, truth, (1, 1, 1)) > 0
    low = image_scores([poor, np.zeros_like(truth)], [truth, other], (1, 1, 1))  # mean DSC 0.08
    assert low.nsd == 0.0 and low.class_nsd == (0.0, 0.0)


def test_the_box_uses_the_median_occupied_slice():
    truth = np.zeros((12, 10, 10), bool)
    truth[1, 2:4, 2:4] = True
    truth[8:11, 5:9, 1:7] = True  # occupied slices 1, 8, 9, 10: median index 2 -> slice 9
    assert challenge_box3d(truth, 2) == (1, 5, 1, 6, 8, 10)  # (i0, j0, k0, i1, j1, k1): slice 9's box


# -- one image, two classes ---------------------------------------------------------------------------------
def test_two_classes_prompted_together_and_scored_per_image():
    spy: list = []
    truths = _truths()
    result = run_cvpr25(_factory(spy), truths, SPACING, clicks=5)
    assert result.classes == ["one", "two"] and result.scored_from == "label map"
    assert len(result.steps) == 6 and result.steps[0].prompt == "box3d"
    assert [len(p.steps) for p in result.per_class] == [6, 6]
    for n, step in enumerate(result.steps):
        dices = [p.steps[n].dice for p in result.per_class]
        assert step.dice == pytest.approx(np.mean(dices))
        if min(dices) > 0.2:
            assert step.nsd == pytest.approx(np.mean([p.steps[n].nsd for p in result.per_class]))
        assert {p.steps[n].seconds for p in result.per_class} == {step.seconds}  # one inference per step
    assert result.auc("dice") == pytest.approx(np.trapezoid([s.dice for s in result.steps[1:]]))
    assert result.steps[0].dice < 1.0 and spy  # the box step left errors, so clicks were given
    for obj, ijk, positive, predicted in spy:  # each click is the challenge's click on that class's label-map voxels
        truth = truths[obj - 1][1]
        click = next_click(predicted, truth)
        assert click is not None and (click.ijk(), click.positive) == (ijk, positive)
    record = result.to_dict()
    assert record["auc_dice"] <= 4.0 and record["over_time"] is False and record["classes"] == ["one", "two"]
    assert record["time_limit_s"] == 2 * 90.0


def test_the_time_limit_is_per_class_and_stops_the_clicks():
    result = run_cvpr25(_factory(), _truths(), SPACING, clicks=3, time_limit_s=0.0)
    assert result.capped and all(p.capped for p in result.per_class)
    assert [s.prompt for s in result.steps] == ["box3d", "none", "none", "none"]
    assert {s.dice for s in result.steps} == {result.steps[0].dice}


def test_overlapping_targets_are_scored_from_their_own_masks():
    (_, one), (_, two) = _truths()
    result = run_cvpr25(_factory(), [("one", one), ("one-and-two", one | two)], SPACING, clicks=1)
    assert result.scored_from == "object masks"


# -- the runner writes per-class lines and an image line; the report shows the challenge's table -----------
def test_runner_and_report(tmp_path, monkeypatch):
    data = tmp_path / "npz"
    data.mkdir()
    gts = np.zeros((K, J, NI), np.uint8)
    for value, (_, mask) in enumerate(_truths(), start=1):
        gts[mask] = value
    np.savez_compressed(data / "MR_toy_case.npz", imgs=_image(), gts=gts, spacing=np.array(SPACING[::-1]))
    monkeypatch.setattr(runner, "_engine", lambda config: lambda: CachedEngine(ToyEngine()))
    config = BenchConfig(dataset=str(data), protocol="cvpr25", out=str(tmp_path / "out"), device="cpu")
    results = run_bench(config)
    records = read_results(tmp_path / "out")
    assert [r["target"] for r in records] == ["label-1", "label-2", IMAGE_TARGET]
    image = records[-1]
    assert image["scope"] == "image" and image["classes"] == ["label-1", "label-2"] and len(image["steps"]) == 6
    assert image["final_dice"] == pytest.approx(np.mean([r["final_dice"] for r in records[:2]]))
    assert json.loads((tmp_path / "out" / "run.json").read_text())["scoring"] == runner.SCORING
    before = results.read_text()
    run_bench(config)  # resumes: the image is done
    assert results.read_text() == before
    report = write_report([tmp_path / "out"], tmp_path / "report").read_text()
    assert "CVPR 2025 challenge scores" in report
    assert f"| out | 1 | 0 | {image['auc_dice']:.3f} | {image['auc_nsd']:.3f} | {image['final_dice']:.4f} |" in report
    assert "| out | label-1 | 1 | 0 |" in report and "| out | (image) |" not in report
