"""volsam bench and volsam report end to end (real LiteMedSAM, one cropped lesion)."""

from __future__ import annotations

import json

from volsam.cli.main import run


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_then_report(tmp_path, capsys):
    out = tmp_path / "res"
    code, stdout, err = _run(
        capsys, "bench", "builtin:lesions-crop", "--protocol", "seed-mask", "--cases", "flat-00",
        "--device", "cpu", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    assert "results.jsonl" in stdout
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert record["case"] == "flat-00" and record["final_dice"] > 0.75
    code, stdout, err = _run(capsys, "report", out, "-o", tmp_path / "rep")
    assert code == 0, err
    assert "| res | flat |" in (tmp_path / "rep" / "report.md").read_text()


def test_bench_refusals_are_one_line(tmp_path, capsys):
    for args, message in (
        (("bench", tmp_path, "-o", tmp_path / "o"), "not a dataset volsam knows"),
        (("bench", "builtin:lesions-crop", "--protocol", "nope", "-o", tmp_path / "o"), "unknown protocol"),
        (("bench", "builtin:lesions-crop", "--shard", "3/2", "-o", tmp_path / "o"), "--shard"),
        (("bench", "builtin:lesions-crop", "--cases", "x-99", "-o", tmp_path / "o"), "no case named x-99"),
        (("report", tmp_path, "-o", tmp_path / "r"), "no run.json"),
        (("bench", "builtin:lesions-2d", "--objects", "components", "-o", tmp_path / "o"), "box2d protocol only"),
    ):
        code, _, err = _run(capsys, *args)
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_bench_2d_flags_reach_the_run(tmp_path, capsys, monkeypatch):
    """--modality, --objects and --random-weights end up in run.json and the lines (a toy engine, not a model)."""
    import volsam.bench.runner as runner
    from tests.support.toy_engine import ToyEngine

    monkeypatch.setattr(runner, "_engine", lambda config: ToyEngine)
    out = tmp_path / "res"
    code, _, err = _run(
        capsys, "bench", "builtin:lesions-2d", "--protocol", "box2d", "--cases", "flat-00-grey", "--modality",
        "Dermoscopy", "--objects", "components", "--random-weights", "--engine", "sam", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert (meta["modality"], meta["objects"], meta["random_weights"]) == ("Dermoscopy", "components", True)
    assert record["modality"] == "Dermoscopy" and record["random_weights"] is True
    code, _, err = _run(capsys, "report", out, "-o", tmp_path / "rep")
    assert code == 0, err
    assert "| Dermoscopy | " in (tmp_path / "rep" / "report.md").read_text()
    assert "SAM (random weights)" in (tmp_path / "rep" / "report.md").read_text()
