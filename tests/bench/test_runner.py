"""The benchmark runner: JSON lines, failures recorded, resume, shards (real LiteMedSAM, cropped lesions).

Two cases are enough for shards to add up: each of the two shards then runs one of them (how cases are dealt
to shards, uneven ones included, is ``test_shard_selection``'s claim)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.shared_encoder import sharing_litemedsam
from volsam.bench.runner import BenchConfig, iter_shard, parse_shard, read_results, run_bench, shard_from_env
from volsam.core.errors import InputError
from volsam.data.lesions import lesion_case

CASES = ["small-00", "small-01"]


def _config(out, **kw) -> BenchConfig:
    base = dict(dataset="builtin:lesions-crop", protocol="box-middle", out=str(out), device="cpu", cases=CASES)
    return BenchConfig(**(base | kw))


def _finals(folder) -> dict:
    return {(r["case"], r["target"]): r["final_dice"] for r in read_results(folder)}


@pytest.fixture()
def shared_encoder():
    """The runner's engine for this test, one LiteMedSAM encoder under its per-case caches
    (:func:`sharing_litemedsam`): the whole run and the two shards run the same two cases."""
    import volsam.engines

    with sharing_litemedsam(volsam.engines, "get") as shared:
        yield shared


@pytest.mark.slow
def test_shards_add_up_to_the_whole_run_and_a_rerun_resumes(tmp_path, shared_encoder):
    whole = run_bench(_config(tmp_path / "whole"))
    encoded = shared_encoder.frames_encoded
    records = read_results(tmp_path / "whole")
    assert [r["case"] for r in records] == CASES
    for r in records:
        assert r["target"] == "small" and r["protocol"] == "box-middle" and r["engine"] == "medsam-lite"
        assert 0.5 < r["final_dice"] <= 1 and len(r["steps"]) == 1
    meta = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert meta["protocol"] == "box-middle" and meta["versions"]["volsam"]

    run_bench(_config(tmp_path / "sharded", shard=(1, 2)))
    run_bench(_config(tmp_path / "sharded", shard=(2, 2)))
    files = sorted(p.name for p in (tmp_path / "sharded").glob("results*.jsonl"))
    assert files == ["results-shard1of2.jsonl", "results-shard2of2.jsonl"]
    assert _finals(tmp_path / "sharded") == _finals(tmp_path / "whole")
    assert encoded > 0 and shared_encoder.frames_encoded == encoded  # the shards' slices were the whole run's

    before = whole.read_text()
    run_bench(_config(tmp_path / "whole"))  # everything done: nothing is run or written again
    assert whole.read_text() == before
    with pytest.raises(InputError, match="holds another run"):
        run_bench(_config(tmp_path / "whole", protocol="seed-mask"))


def test_a_failing_case_is_recorded_and_the_run_goes_on(tmp_path):
    data = tmp_path / "npz"
    data.mkdir()
    np.savez_compressed(data / "MR_a_broken.npz", imgs=np.zeros((4, 8, 8), np.uint8))  # no ground truth
    lesion = lesion_case("dark-00", crop=True)
    k = lesion.middle_box.slice
    middle = slice(k - 2, k + 3)  # 5 slices through the lesion's middle: the box3d walks 5 slices, not 14
    np.savez_compressed(
        data / "MR_b_lesion.npz",
        imgs=lesion.image.array[middle],
        gts=(lesion.label.array[middle] > 0).astype(np.uint8),
        spacing=list(lesion.image.spacing)[::-1],
    )
    seen = []
    run_bench(
        BenchConfig(dataset=str(data), protocol="box3d", out=str(tmp_path / "out"), device="cpu"),
        progress=lambda case, done, total: seen.append((case, done, total)),
    )
    broken, good = read_results(tmp_path / "out")
    assert broken["case"] == "MR_a_broken" and "no 'gts'" in broken["error"]
    assert good["case"] == "MR_b_lesion" and good["modality"] == "MR" and good["final_dice"] > 0.75
    assert seen[0] == ("MR_a_broken", 0, 2) and seen[-1] == ("", 2, 2)


def test_torn_last_line_is_skipped(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"case": "a", "target": "t", "final_dice": 1.0}\n{"case": "b", "tar')
    assert [r["case"] for r in read_results(tmp_path)] == ["a"]


def test_shard_selection(monkeypatch):
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "x", "1/2/3"):
        with pytest.raises(InputError):
            parse_shard(bad)
    items = list(range(7))
    assert iter_shard(items, (1, 3)) == [0, 3, 6] and iter_shard(items, (3, 3)) == [2, 5]
    assert sorted(x for i in (1, 2, 3) for x in iter_shard(items, (i, 3))) == items
    monkeypatch.delenv("RANK", raising=False)
    assert shard_from_env() is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert shard_from_env() == (2, 4)
