"""``volsam models list|convert|download`` end to end (random-init Meta model; the hub is never reached)."""

from __future__ import annotations

import pytest

from tests.engines.sam2.meta_reference import meta_model, save_meta
from volsam.cli.main import run


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_list_names_every_family_member_and_what_is_installed(capsys, tmp_path):
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["name", "engine", "params", "input", "license", "installed"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert {"medsam-lite", "medsam2", "sam2.1-hiera-tiny", "sam2.0-hiera-large"} <= set(rows)
    assert "lite_medsam.pth" in rows["medsam-lite"]  # the bundled weights are found
    assert rows["medsam2"].split()[5] == "no" and " 512 " in rows["medsam2"]
    assert str(tmp_path / "models") in lines[-1]


def test_convert_then_listed_as_installed(capsys, tmp_path):
    ckpt = save_meta(meta_model(image_size=512), tmp_path / "MedSAM2_latest.pt")
    out_dir = tmp_path / "models" / "medsam2"
    code, out, err = _run(capsys, "models", "convert", ckpt, out_dir)
    assert code == 0, err
    assert "sam2.1-hiera-tiny-512" in out and (out_dir / "model.safetensors").is_file()
    code, out, _ = _run(capsys, "models", "list")
    medsam2 = next(line for line in out.splitlines() if line.startswith("medsam2 "))
    assert str(out_dir) in medsam2
    code, _, err = _run(capsys, "models", "convert", ckpt, out_dir)
    assert code != 0 and err.count("\n") == 1 and "exists" in err


def test_convert_refusals_are_one_line(capsys, tmp_path):
    code, _, err = _run(capsys, "models", "convert", tmp_path / "nope.pt", tmp_path / "out")
    assert code == 4 and err.count("\n") == 1 and "not a file" in err
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 64)
    code, _, err = _run(capsys, "models", "convert", tmp_path / "bad.pt", tmp_path / "out")
    assert code == 4 and err.count("\n") == 1 and "cannot read weights" in err
    code, _, err = _run(capsys, "models", "convert", tmp_path / "bad.pt", tmp_path / "out", "--config", "sam9")
    assert code == 4 and err.count("\n") == 1 and "unknown SAM 2 configuration 'sam9'" in err
    assert not (tmp_path / "out").exists()


def test_download_offline_and_unknown_names_fail_clearly(capsys, tmp_path):
    code, _, err = _run(capsys, "models", "download", "sam2.1-hiera-tiny")
    assert code == 4 and err.count("\n") == 1 and "cannot download facebook/sam2.1-hiera-tiny" in err
    assert not (tmp_path / "models" / "sam2.1-hiera-tiny").exists()
    assert not list((tmp_path / "models").glob(".*"))  # no temporary left behind
    code, _, err = _run(capsys, "models", "download", "medsam2")
    assert code == 4 and "volsam models convert" in err
    code, _, err = _run(capsys, "models", "download", "sam5")
    assert code == 4 and "unknown model 'sam5'" in err


def test_segment_with_a_converted_sam2_model(capsys, tmp_path):
    """`volsam segment --engine sam2 --model DIR` end to end (a random-init model: plumbing, not accuracy)."""
    import numpy as np
    import torch

    from volsam.core import Volume
    from volsam.io import read_volume, write_volume

    meta = meta_model(image_size=512, seed=3)
    with torch.no_grad():  # make the random object-score head say "present"
        meta.sam_mask_decoder.pred_obj_score_head.layers[2].bias += 10.0
    ckpt = save_meta(meta, tmp_path / "MedSAM2_random.pt")
    model_dir = tmp_path / "medsam2"
    assert _run(capsys, "models", "convert", ckpt, model_dir)[0] == 0
    rng = np.random.default_rng(0)
    # 3 slices: the prompted one and one each way (each costs a 512 px Hiera pass on the CPU)
    image = Volume(rng.integers(0, 200, (3, 40, 48)).astype(np.int16), spacing=(0.9, 0.9, 3.0))
    write_volume(image, tmp_path / "ct.nii.gz")
    code, out, err = _run(
        capsys, "segment", tmp_path / "ct.nii.gz", "--engine", "sam2", "--model", model_dir,
        "--box", "10,8,30,28", "--slice", "1", "--full-range", "-o", tmp_path / "seg.nii.gz",
    )  # fmt: skip
    assert code == 0, err
    seg = read_volume(tmp_path / "seg.nii.gz")
    assert seg.same_grid(image) and "3 slices segmented" in out
    code, _, err = _run(
        capsys, "segment", tmp_path / "ct.nii.gz", "--engine", "sam2", "--model", tmp_path / "nowhere",
        "--box", "10,8,30,28", "--slice", "1", "-o", tmp_path / "seg2.nii.gz",
    )  # fmt: skip
    assert code == 4 and err.count("\n") == 1 and "not found" in err
    assert not (tmp_path / "seg2.nii.gz").exists()
