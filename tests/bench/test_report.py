"""volsam report from hand-written result folders: numbers, merging, failures, files."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from volsam.bench.report import load_run, write_report
from volsam.core.errors import InputError


def _record(case, target, dices, modality="CT"):
    steps = [{"prompt": "p", "dice": d, "nsd": d / 2, "seconds": 1.0} for d in dices]
    return {
        "case": case,
        "target": target,
        "modality": modality,
        "protocol": "cvpr25",
        "steps": steps,
        "final_dice": dices[-1],
        "final_nsd": dices[-1] / 2,
        "auc_dice": sum((a + b) / 2 for a, b in zip(dices, dices[1:])),
        "auc_nsd": 0.0,
        "seconds": float(len(dices)),
        "capped": False,
    }


def _folder(path, records, files=("results.jsonl",), **meta):
    path.mkdir(parents=True)
    meta = {"protocol": "cvpr25", "engine": "medsam-lite", "tolerance_mm": 2.0} | meta
    (path / "run.json").write_text(json.dumps(meta))
    for n, name in enumerate(files):
        part = records[n :: len(files)]
        (path / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    return path


def test_report_tables_csv_plots_and_failures(tmp_path):
    lite = _folder(
        tmp_path / "lite",
        [
            _record("c1", "liver", [0.5, 0.7, 0.8]),
            _record("c2", "liver", [0.6, 0.6, 0.9]),
            _record("c1", "tumour", [0.2, 0.4, 0.5], modality="MR"),
            {"case": "c3", "target": "liver", "modality": "CT", "error": "InputError: broken"},
        ],
        files=("results-shard1of2.jsonl", "results-shard2of2.jsonl"),
    )
    sam2 = _folder(tmp_path / "sam2", [_record("c1", "liver", [0.9, 0.9, 0.95])], engine="sam2")
    report = write_report([lite, sam2], tmp_path / "report")
    text = report.read_text()
    assert "| lite | liver | 2 | 1 | 0.850 ± 0.071 |" in text  # mean and sd of 0.8, 0.9; one failure
    assert "| sam2 | liver | 1 | 0 | 0.950 ± 0.000 |" in text
    assert "InputError: broken" in text
    rows = list(csv.DictReader((tmp_path / "report" / "summary.csv").open()))
    liver = next(r for r in rows if r["run"] == "lite" and r["target"] == "liver")
    assert float(liver["dice_mean"]) == pytest.approx(statistics.fmean([0.8, 0.9]))
    # AUCs (0.5+0.7)/2 + (0.7+0.8)/2 and (0.6+0.6)/2 + (0.6+0.9)/2, both 1.35
    assert float(liver["auc_dice_mean"]) == pytest.approx(1.35)
    cases = list(csv.DictReader((tmp_path / "report" / "cases.csv").open()))
    assert len(cases) == 5 and {c["dice_2"] for c in cases if c["case"] == "c2"} == {"0.9"}
    for png in ("dice_per_step.png", "dice_boxplot.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in text


def test_a_rerun_result_replaces_the_failure(tmp_path):
    folder = _folder(
        tmp_path / "run",
        [{"case": "c1", "target": "t", "error": "boom"}, _record("c1", "t", [0.7])],
    )
    run = load_run(folder)
    assert len(run.results) == 1 and not run.failures


def test_not_a_result_folder(tmp_path):
    with pytest.raises(InputError, match="no run.json"):
        write_report([tmp_path], tmp_path / "out")
    with pytest.raises(InputError, match="at least one"):
        write_report([], tmp_path / "out")


def _box2d(case, modality, dice, nsd):
    step = {"prompt": "box", "dice": dice, "nsd": nsd, "seconds": 1.0}
    record = {"case": case, "target": "lesion", "modality": modality, "protocol": "box2d", "steps": [step]}
    return record | {"final_dice": dice, "final_nsd": nsd, "seconds": 1.0}


def test_engine_by_modality_table_for_box2d(tmp_path):
    lite = _folder(
        tmp_path / "lite",
        [_box2d("a", "Dermoscopy", 0.9, 0.8), _box2d("b", "Dermoscopy", 0.7, 0.6), _box2d("c", "X-ray", 0.5, 0.4)],
        protocol="box2d",
    )
    sam = _folder(
        tmp_path / "sam",
        [_box2d("a", "Dermoscopy", 0.1, 0.0), {"case": "c", "target": "lesion", "modality": "X-ray", "error": "E"}],
        protocol="box2d", engine="sam", model="/m/sam_random.pth", random_weights=True,
    )  # fmt: skip
    medsam2 = _folder(
        tmp_path / "m2", [_box2d("a", "X-ray", 0.6, 0.5)], protocol="box2d", engine="sam2-image", model="MedSAM2.pt"
    )
    tiny = _folder(
        tmp_path / "t",
        [_box2d("a", "X-ray", 0.3, 0.2)],
        protocol="box2d",
        engine="sam2-image",
        model="sam2.1_t_tiny.pt",
    )
    other = _folder(tmp_path / "cv", [_record("c1", "liver", [0.5, 0.7])])  # not box2d: not in the table
    text = write_report([medsam2, lite, other, tiny, sam], tmp_path / "report").read_text()
    assert "| modality | SAM (random weights) | LiteMedSAM | SAM 2 tiny | MedSAM2 |" in text  # the paper's order
    assert "| Dermoscopy | 0.100 / 0.000 | 0.800 / 0.700 |  |  |" in text
    assert "| X-ray |  (1 failed) | 0.500 / 0.400 | 0.300 / 0.200 | 0.600 / 0.500 |" in text.replace("–", "")
    assert "| **all** | 0.100 / 0.000 (1 failed) | 0.700 / 0.600 |" in text
    assert "say nothing about its accuracy" in text
    assert "| sam | /m/sam_random.pth (random weights) |" in text  # the runs' table says it too
    rows = list(csv.DictReader((tmp_path / "report" / "engine_modality.csv").open()))
    assert {(r["engine"], r["random_weights"]) for r in rows} >= {
        ("SAM (random weights)", "True"),
        ("MedSAM2", "False"),
    }
    assert (tmp_path / "report" / "engine_modality.png").stat().st_size > 1000


def test_no_engine_table_without_box2d_runs(tmp_path):
    run = _folder(tmp_path / "lite", [_record("c1", "liver", [0.5, 0.7])])
    assert "engine × modality" not in write_report([run], tmp_path / "report").read_text()
    assert not (tmp_path / "report" / "engine_modality.csv").exists()


def _image(case, classes, seconds, limit):
    """A cvpr25 image line (the challenge's per-image score) with ``seconds`` of inference in one step."""
    steps = [{"prompt": "box3d", "dice": 0.8, "nsd": 0.9, "seconds": seconds}]
    steps += [{"prompt": "+click", "dice": 0.8, "nsd": 0.9, "seconds": 0.0}] * 5
    return {
        "case": case,
        "target": "image",
        "modality": "CT",
        "scope": "image",
        "protocol": "cvpr25",
        "classes": classes,
        "steps": steps,
        "final_dice": 0.8,
        "final_nsd": 0.9,
        "auc_dice": 3.2,
        "auc_nsd": 3.6,
        "seconds": seconds,
        "time_limit_s": limit * len(classes),
        "over_time": seconds > limit * len(classes),
        "capped": False,
    }


def test_challenge_table_counts_images_past_the_runs_limit_and_past_90_s_per_class(tmp_path):
    """A run with --time-limit 3600: the run's limit cuts nothing, the challenge's 90 s per class would cut
    the one-class image at 100 s but not the two-class image at 150 s (limit 180 s)."""
    run = _folder(
        tmp_path / "lifted",
        [
            _image("a", ["liver"], 100.0, 3600.0),
            _image("b", ["liver", "spleen"], 150.0, 3600.0),
            _image("c", ["liver"], 10.0, 3600.0),
        ],
    )
    text = write_report([run], tmp_path / "report").read_text()
    assert "| over the run's limit | over 90 s per class |" in text
    row = next(line for line in text.splitlines() if line.startswith("| lifted | 3 |"))
    assert row.endswith("| 0 | 1 |")
