"""``volsam segment`` never loses the user's data: an input is never overwritten (by any spelling of its
path), every destination is checked before the model loads, a refused or interrupted run leaves nothing
new behind, missing folders are created, refusals are exactly one line and interruptions exit non-zero."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.support.dicom import write_series
from tests.support.toy_engine import ToyEngine
from volsam.cli.main import run
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume
from volsam.jobs.request import SegmentRequest

BOX = ["--box", "4,4,12,12", "--slice", "3"]


def _image() -> Volume:
    image = np.full((6, 16, 16), 50, np.int16)
    image[1:5, 6:11, 6:11] = 200  # a bright block the toy engine segments
    return Volume(image, spacing=(1.0, 1.0, 2.0))


@pytest.fixture
def scan(tmp_path):
    return write_volume(_image(), tmp_path / "scan.nii.gz")


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if an engine is loaded: refusals must come before the model."""

    def refuse(self):
        raise AssertionError("the engine was loaded before the refusal")

    monkeypatch.setattr(SegmentRequest, "load_engine", refuse)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(SegmentRequest, "load_engine", lambda self: ToyEngine())


def _run(capsys, *args) -> tuple[int, str]:
    code = run([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_the_input_is_never_overwritten_whatever_the_spelling(tmp_path, capsys, scan, no_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before, files = _digest(scan), _files(tmp_path)
    os.symlink(scan, tmp_path / "link.nii.gz")
    os.link(scan, tmp_path / "hard.nii.gz")
    for out in ("scan.nii.gz", "./scan.nii.gz", str(scan), "link.nii.gz", "hard.nii.gz"):
        code, err = _run(capsys, "segment", "scan.nii.gz", *BOX, "-o", out)
        assert code == 6 and err.startswith("volsam: error: ") and err.count("\n") == 1, err
        assert "would replace the input" in err
    assert _digest(scan) == before and _files(tmp_path) == files | {"link.nii.gz", "hard.nii.gz"}


def test_nothing_is_written_inside_a_dicom_folder_being_read(tmp_path, capsys, no_model):
    folder = tmp_path / "series"
    write_series(_image(), folder, modality="MR")
    files = _files(folder)
    code, err = _run(capsys, "segment", folder, *BOX, "-o", folder / "seg.nii.gz")
    assert code == 6 and "inside the input folder" in err and err.count("\n") == 1
    code, err = _run(capsys, "segment", folder, *BOX, "-o", tmp_path / "seg.nii.gz", "--overlay", folder / "png")
    assert code == 6 and "overlay folder would go inside the input folder" in err
    assert _files(folder) == files and not (tmp_path / "seg.nii.gz").exists()


def test_every_destination_is_checked_before_the_model_and_a_refusal_writes_nothing(tmp_path, capsys, scan, no_model):
    (tmp_path / "afile").write_text("not a folder")
    files = _files(tmp_path)
    code, err = _run(capsys, "segment", scan, *BOX, "-o", tmp_path / "out.nii.gz", "--overlay", tmp_path / "afile")
    assert code == 6 and "overlay folder must be a folder" in err and err.count("\n") == 1
    prompts = tmp_path / "prompts.json"
    prompts.write_text('{"objects": [{"label": 1, "prompts": [{"box": [4, 4, 12, 12], "slice": 3}]}]}')
    code, err = _run(capsys, "segment", scan, "--prompts", prompts, "-o", prompts)
    assert code == 6 and "would replace the input" in err
    assert _files(tmp_path) == files | {"prompts.json"}


def test_missing_folders_are_created_and_the_result_lands_on_the_input_grid(tmp_path, capsys, scan, toy):
    out = tmp_path / "new" / "deeper" / "seg.nii.gz"
    code, err = _run(capsys, "segment", scan, *BOX, "-o", out, "--overlay", tmp_path / "new" / "png")
    assert code == 0, err
    seg = read_volume(out)
    assert seg.same_grid(read_volume(scan)) and seg.array[3, 6:11, 6:11].all()
    assert any((tmp_path / "new" / "png").glob("*.png"))


def test_an_interrupted_run_exits_130_and_leaves_nothing_new(tmp_path, capsys, scan, monkeypatch):
    class Interrupting(ToyEngine):
        def predict(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(SegmentRequest, "load_engine", lambda self: Interrupting())
    files = _files(tmp_path)
    code, err = _run(capsys, "segment", scan, *BOX, "-o", tmp_path / "out" / "seg.nii.gz")
    assert code == 130 and err == "volsam: interrupted\n"
    assert _files(tmp_path) == files


def test_sigterm_exits_143_with_one_line_and_removes_the_partial_output(tmp_path, scan):
    """A real process: SIGTERM arrives while the label map is being written; the half-written output and the
    folder made for it are removed."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from tests.support.toy_engine import ToyEngine
        from volsam.jobs.request import SegmentRequest
        import volsam.jobs.volume as job
        SegmentRequest.load_engine = lambda self: ToyEngine()
        real = job.write_labels
        def slow(labelmap, path, **kw):
            out = real(labelmap, path, **kw)
            print("written", flush=True)
            time.sleep(30)  # SIGTERM comes now
            return out
        job.write_labels = slow
        from volsam.cli.main import run
        sys.exit(run(sys.argv[1:]))
        """
    )
    out = tmp_path / "out" / "seg.nii.gz"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "segment", str(scan), *BOX, "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "written"
    assert out.exists()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err == "volsam: terminated\n", err
    assert not out.exists() and not out.parent.exists()


def test_refusals_are_one_line_on_a_pipe(tmp_path, scan):
    """stderr not a terminal: no progress lines, no blank line before the refusal."""
    done = subprocess.run(
        [sys.executable, "-m", "volsam", "segment", str(scan), "--box", "1,1,50,50", "--slice", "1", "-o",
         str(tmp_path / "o.nii.gz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (
        done.returncode == 3 and done.stderr.startswith("volsam: error: box 1,1,50,50") and done.stderr.count("\n") == 1
    )


def test_session_save_prompts_never_replaces_the_image_and_creates_folders(tmp_path, scan):
    from volsam.core.errors import OutputError
    from volsam.session import Session

    session = Session(read_volume(scan), engine=ToyEngine())
    obj = session.add_object()
    session.add_box(obj, 3, (4, 4, 12, 12))
    with pytest.raises(OutputError, match="would replace the input"):
        session.save_prompts(scan)
    path = session.save_prompts(tmp_path / "a" / "b" / "prompts.json")
    assert path.is_file()
