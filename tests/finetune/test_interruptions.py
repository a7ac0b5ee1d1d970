"""A start is refused before anything is written; Ctrl-C / SIGTERM leave a run marked interrupted that
``--resume`` finishes with the same weights; a resume with a changed config says what changed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from tests.finetune.helpers import small_config
from volsam.core.errors import InputError, OutputError
from volsam.finetune import checkpoint as checkpoint_module
from volsam.finetune import rundir, trainer
from volsam.finetune.checkpoint import checkpoints_of
from volsam.finetune.runlog import read_log, read_status
from volsam.finetune.trainer import run_finetune, train

STEPS = {"schedule": {"max_steps": 6}, "checkpoint": {"every_steps": 2, "keep": 5}}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last" / "lite_medsam.pth", weights_only=True)


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(run) if "loss" in r}


def _same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])][:3]
    la, lb = _losses(a), _losses(b)
    assert sorted(la) == sorted(lb) == list(range(1, 7))
    assert all(la[s] == lb[s] for s in la)


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted 6-step medsam-lite run the interrupted ones must end equal to."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests' runs (conftest)
    try:
        return train(small_config(tmp_path_factory.mktemp("whole"), **STEPS))
    finally:
        torch.set_num_threads(before)


# -- refused starts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"model": {"freeze": ["image_encoder", "image_encodr"]}}, "model.freeze: no parameter"),
        ({"data": {"dataset": "MISSING"}}, "no such dataset"),
        ({"data": {"cases": ["dark-00", "no-such-case"]}}, "no-such-case"),
        ({"optim": {"precision": "bf16"}}, "bf16 is for CUDA"),
        ({"optim": {"batch_size": 64}}, "make no full step"),
    ],
)
def test_a_refused_start_leaves_no_folder(tmp_path, sections, message):
    if sections.get("data", {}).get("dataset") == "MISSING":
        sections = {"data": {"dataset": str(tmp_path / "no-such-dataset")}}
    config = small_config(tmp_path / "runs", **sections)
    with pytest.raises(InputError, match=message):
        train(config)
    assert not (tmp_path / "runs").exists()  # neither the run folder nor its parent


def test_a_refused_start_keeps_a_folder_that_was_there(tmp_path):
    mine = tmp_path / "runs" / "run"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine\n")
    config = small_config(tmp_path / "runs", model={"freeze": ["nothing-like-this"]})
    assert config.run_dir == mine
    with pytest.raises(InputError, match="model.freeze"):
        train(config)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_start_that_cannot_write_its_folder_removes_what_it_made(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OutputError("split.json: cannot write (disk full)")

    monkeypatch.setattr(rundir, "write_split", fail)
    with pytest.raises(OutputError, match="disk full"):
        train(small_config(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_the_cli_refuses_a_bad_freeze_entry_in_one_line_and_makes_nothing(tmp_path, capsys):
    from volsam.cli.main import run

    config = small_config(tmp_path / "runs", model={"freeze": ["image_encoder", "decoder"]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert run(["finetune", str(path), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "volsam: error: model.freeze: no parameter of the medsam-lite model starts with 'decoder'\n"
    assert not (tmp_path / "runs").exists()


# -- interruptions ----------------------------------------------------------------------------------------
def test_an_interrupted_run_is_marked_and_resumes_to_the_same_weights(tmp_path, whole):
    """Ctrl-C (or SIGTERM, which the command line raises as the same KeyboardInterrupt) after step 3: the
    interrupt reaches the caller, the run says so, and --resume ends where the uninterrupted run did."""
    config = small_config(tmp_path, **STEPS)

    def on_step(record):
        if record.get("step") == 3 and "loss" in record:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, on_step=on_step)
    run = config.run_dir
    assert [s for s, _ in checkpoints_of(run)] == [2]
    assert not (run / "last").exists()
    status = read_status(run)
    assert (status["state"], status["step"], status["checkpoint"]) == ("interrupted", 3, 2)
    assert "--resume continues from checkpoints/step-2.pt" in status["note"]
    assert read_log(run)[-1]["event"] == "interrupted"
    with pytest.raises(InputError, match="--resume"):  # a plain restart is refused and deletes nothing
        train(config)
    assert [s for s, _ in checkpoints_of(run)] == [2]

    train(config, resume=True)
    assert read_status(run)["state"] == "done"
    _same_run(whole, run)


def test_an_interrupt_while_a_checkpoint_is_written_leaves_the_previous_one(tmp_path, monkeypatch, whole):
    config = small_config(tmp_path, **STEPS)
    save = torch.save

    def torn_save(obj, path):
        if isinstance(obj, dict) and obj.get("step") == 4:
            Path(path).write_bytes(b"half a checkpoint")
            raise KeyboardInterrupt
        save(obj, path)

    monkeypatch.setattr(checkpoint_module.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(checkpoint_module.torch, "save", save)
    run = config.run_dir
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2.pt"]  # no torn or temporary file
    assert (read_status(run)["state"], read_status(run)["checkpoint"]) == ("interrupted", 2)
    run_finetune(config_file(tmp_path, config), resume=True)
    _same_run(whole, run)


def test_the_command_passes_an_interrupt_on(tmp_path, monkeypatch, capsys):
    """Through the typer command (``volsam.cli.main.run`` maps it to exit 130 and one line): not swallowed,
    nothing but the progress lines on stderr before it, the run marked interrupted."""
    import volsam.cli.main  # noqa: F401 -- registers the commands
    from volsam.cli.app import app

    config = small_config(tmp_path / "runs", **STEPS)
    calls = {"n": 0}
    losses = trainer._losses

    def interrupted_losses(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # inside step 4, before its optimizer step
            raise KeyboardInterrupt
        return losses(*args, **kwargs)

    monkeypatch.setattr(trainer, "_losses", interrupted_losses)
    code = app(args=["finetune", config_file(tmp_path, config), "--device", "cpu"], prog_name="volsam",
               standalone_mode=False)  # fmt: skip
    assert code == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert all(line.startswith("volsam: finetune step ") for line in captured.err.splitlines()), captured.err
    status = read_status(config.run_dir)
    assert (status["state"], status["step"], status["checkpoint"]) == ("interrupted", 3, 2)


# -- resuming with another config -------------------------------------------------------------------------
def test_a_resume_with_another_max_steps_says_what_changed(tmp_path, caplog):
    config = small_config(tmp_path, schedule={"max_steps": 4}, checkpoint={"every_steps": 2})
    path = config_file(tmp_path, config)
    run_finetune(path, stop_after=2)
    with caplog.at_level(logging.WARNING, logger="volsam"):
        run_finetune(path, resume=True, stop_after=3)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # same config: nothing to say
    with caplog.at_level(logging.WARNING, logger="volsam"):
        run_finetune(path, resume=True, max_steps=6, stop_after=4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert "with a changed config: schedule.max_steps 4 -> 6" in warnings[0]
    assert yaml.safe_load((config.run_dir / "config.yaml").read_text())["schedule"]["max_steps"] == 6
    assert read_status(config.run_dir)["total_steps"] == 6


def config_file(folder: Path, config) -> str:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    return str(path)


def test_a_run_that_fails_is_marked_failed_and_the_error_goes_on(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(trainer, "_losses", broken)
    config = small_config(tmp_path, **STEPS)
    with pytest.raises(RuntimeError, match="out of memory"):
        train(config)
    status = read_status(config.run_dir)
    assert (status["state"], status["step"], status["checkpoint"]) == ("failed", 0, None)
    assert "RuntimeError: CUDA out of memory (simulated) at step 0" in status["note"]
