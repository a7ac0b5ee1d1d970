"""`volsam finetune` from the command line: a small run reports its validation and where its models are."""

from __future__ import annotations

import yaml

from tests.finetune.helpers import small_config
from volsam.cli.main import run


def test_finetune_reports_the_best_validation_and_the_run(tmp_path, capsys):
    config = small_config(tmp_path / "runs", schedule={"max_steps": 2}, log={"validate_at_start": True})
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert run(["finetune", str(path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "best validation Dice" in out and "(of 2)" in out
    assert f"run: {config.run_dir}" in out
    assert (config.run_dir / "best" / "training.json").is_file()


def test_finetune_refuses_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("recipe: medsam-lite\nvalidation: {mode: slices}\n")
    assert run(["finetune", str(path)]) != 0
    err = capsys.readouterr().err
    assert "validation.mode" in err and "Traceback" not in err
