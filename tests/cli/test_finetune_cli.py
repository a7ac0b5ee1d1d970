"""`volsam finetune` from the command line: a small run reports its validation and where its models are,
shows its progress (step/total, loss, validation Dice, ETA) from the first step, refuses in one line."""

from __future__ import annotations

import io
import logging
import re

import pytest
import yaml

from tests.finetune.helpers import small_config
from volsam.cli.evaluate import FinetuneProgress
from volsam.cli.main import run

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _config_file(tmp_path, **sections):
    sections = {"schedule": {"max_steps": 2}, "log": {"validate_at_start": True}, **sections}
    config = small_config(tmp_path / "runs", **sections)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    return config, path


def test_finetune_reports_the_best_validation_and_the_run(tmp_path, capsys):
    config, path = _config_file(tmp_path)
    assert run(["finetune", str(path), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "best validation Dice" in out and "(of 2)" in out
    assert f"run: {config.run_dir}" in out
    assert (config.run_dir / "best" / "training.json").is_file()
    # stderr is not a terminal here: plain progress lines, from the first step, then at the last one
    lines = captured.err.splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["volsam: finetune step 1/2", "volsam: finetune step 2/2",
                                                        "volsam: finetune step 2/2"], lines  # fmt: skip
    assert re.fullmatch(
        r"volsam: finetune step 1/2 \| loss \d+\.\d{4} \| val Dice \d\.\d{4} \(step 0\) \| 0:00:\d\d elapsed, "
        r"eta 0:00:\d\d",
        lines[0],
    ), lines[0]
    assert "(step 2)" in lines[-1]  # the final validation


def test_finetune_shows_a_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr counts as a terminal
    monkeypatch.setenv("COLUMNS", "200")
    config, path = _config_file(tmp_path)
    assert run(["finetune", str(path), "--device", "cpu"]) == 0
    shown = ANSI.sub("", capsys.readouterr().err)
    assert "validating (step 0)" in shown
    first = re.search(r"training .*? 1/2 loss \d+\.\d{4} val Dice \d\.\d{4} \(step 0\) 0:00:\d\d eta 0:00:\d\d", shown)
    assert first, shown[-2000:]
    assert re.search(r" 2/2 loss \d+\.\d{4} val Dice", shown)
    assert "volsam: finetune step" not in shown  # the bar, not the plain lines


def test_quiet_shows_no_progress(tmp_path, capsys):
    level = logging.getLogger("volsam").level
    try:
        _, path = _config_file(tmp_path, schedule={"max_steps": 1})
        assert run(["-q", "finetune", str(path), "--device", "cpu"]) == 0
    finally:
        logging.getLogger("volsam").setLevel(level)
    assert capsys.readouterr().err == ""


def test_a_stopped_run_says_how_to_continue(tmp_path, capsys):
    config, path = _config_file(tmp_path, log={"validate_at_start": False})
    assert run(["finetune", str(path), "--device", "cpu", "--stop-after", "1"]) == 0
    out = capsys.readouterr().out
    assert out == f"stopped after step 1 of 2: continue with --resume\nrun: {config.run_dir}\n"


def test_progress_eta_leaves_validation_out_and_plain_lines_are_spaced(monkeypatch):
    from rich.console import Console

    sink = io.StringIO()
    progress = FinetuneProgress(console=Console(file=sink, force_terminal=False), every_s=30)
    progress.quiet = False
    now = {"t": 0.0}
    progress.clock = lambda: now["t"]
    progress.phase("start", {"step": 0, "total_steps": 10})
    progress.phase("validation", {"step": 0})
    now["t"] = 20.0  # a 20 s validation of the starting model
    progress.record({"step": 0, "val_dice": 0.5, "val_mode": "clips"})
    for step, t in ((1, 30.0), (2, 40.0), (3, 70.0)):
        now["t"] = t
        progress.record({"step": step, "loss": 1.0 / step})
    progress.close()
    assert sink.getvalue().splitlines() == [
        # 10 s of training per step so far, 9 steps left
        "volsam: finetune step 1/10 | loss 1.0000 | val Dice 0.5000 (step 0) | 0:00:30 elapsed, eta 0:01:30",
        # step 2 came 10 s after the last line: not shown; step 3, 40 s after it: 50 s of training for 3 steps
        "volsam: finetune step 3/10 | loss 0.3333 | val Dice 0.5000 (step 0) | 0:01:10 elapsed, eta 0:01:57",
    ]


def test_finetune_refuses_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("recipe: medsam-lite\nvalidation: {mode: slices}\n")
    assert run(["finetune", str(path)]) != 0
    err = capsys.readouterr().err
    assert "validation.mode" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--max-steps", "--stop-after"])
def test_finetune_refuses_a_step_count_below_one(tmp_path, capsys, option):
    _, path = _config_file(tmp_path)
    assert run(["finetune", str(path), option, "0"]) == 2
    assert capsys.readouterr().err == f"volsam: error: {option} 0: must be >= 1\n"
    assert not (tmp_path / "runs").exists()
