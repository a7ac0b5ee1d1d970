"""``volsam bench`` options of the 2D comparison: ``--modality`` instead of the file's, ``--objects`` for box2d,
``--random-weights`` recorded in run.json and in every line (a toy engine stands in for the model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import volsam.bench.runner as runner
from tests.support.toy_engine import ToyEngine
from volsam.bench.datasets import open_dataset
from volsam.bench.runner import BenchConfig, read_results, run_bench
from volsam.core.errors import InputError


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(runner, "_engine", lambda config: ToyEngine)


def _fundus(folder):
    folder.mkdir()
    grey = np.full((30, 40), 30, np.uint8)
    grey[4:10, 4:10] = grey[20:26, 30:36] = grey[13:17, 18:22] = 220
    gts = np.zeros((30, 40), np.uint8)
    gts[4:10, 4:10] = gts[20:26, 30:36] = 1
    np.savez(folder / "2DBox_Fundus_0001.npz", imgs=np.stack([grey] * 3, axis=-1), gts=gts)
    return folder


def test_modality_from_the_name_or_the_flag(tmp_path, toy):
    data = _fundus(tmp_path / "data")
    run_bench(BenchConfig(str(data), "box2d", str(tmp_path / "a")))
    run_bench(BenchConfig(str(data), "box2d", str(tmp_path / "b"), modality="X-ray"))
    (a,), (b,) = read_results(tmp_path / "a"), read_results(tmp_path / "b")
    assert a["modality"] == "Fundus" and b["modality"] == "X-ray"
    assert json.loads((tmp_path / "b" / "run.json").read_text())["modality"] == "X-ray"
    assert a["final_dice"] == pytest.approx(0.9) and a["steps"][0]["prompt"] == "box"


def test_objects_and_random_weights_are_recorded(tmp_path, toy):
    out = tmp_path / "out"
    run_bench(
        BenchConfig(str(_fundus(tmp_path / "data")), "box2d", str(out), objects="components", random_weights=True)
    )
    (record,) = read_results(out)
    meta = json.loads((out / "run.json").read_text())
    assert meta["objects"] == "components" and meta["random_weights"] is True and record["random_weights"] is True
    assert record["final_dice"] == pytest.approx(1.0) and record["steps"][0]["prompt"] == "2 boxes"
    with pytest.raises(InputError, match="holds another run .*objects"):
        run_bench(BenchConfig(str(tmp_path / "data"), "box2d", str(out)))  # the same folder, one box per label


def test_a_run_json_without_objects_resumes_as_labels(tmp_path, toy):
    data, out = _fundus(tmp_path / "data"), tmp_path / "out"
    run_bench(BenchConfig(str(data), "box2d", str(out)))
    meta = json.loads((out / "run.json").read_text())
    del meta["objects"]  # as written before the option existed
    (out / "run.json").write_text(json.dumps(meta))
    run_bench(BenchConfig(str(data), "box2d", str(out)))
    assert len(read_results(out)) == 1  # resumed: nothing run again


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"objects": "blobs"}, "unknown --objects 'blobs'"),
        ({"objects": "components", "protocol": "box-middle"}, "box2d protocol only"),
        ({"modality": " "}, "--modality must not be empty"),
    ],
)
def test_refusals(tmp_path, toy, config, message):
    args = {"dataset": "builtin:lesions-2d", "protocol": "box2d", "out": str(tmp_path / "o")} | config
    with pytest.raises(InputError, match=message):
        run_bench(BenchConfig(**args))


def test_with_modality_keeps_the_cases():
    data = open_dataset("builtin:lesions-2d")
    changed = data.with_modality("Dermoscopy")
    assert [c.case_id for c in changed.cases] == [c.case_id for c in data.cases]
    assert {c.modality for c in changed.cases} == {"Dermoscopy"} and data.cases[0].modality != "Dermoscopy"
