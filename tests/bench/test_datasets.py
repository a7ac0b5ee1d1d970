"""Every dataset layout from small generated folders: cases, targets, modality, problems reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from volsam.bench.datasets import BRATS_TARGETS, detect_layout, open_dataset
from volsam.core.errors import InputError

SHAPE = (6, 10, 12)  # (k, j, i)


def _label(values=(1, 2)) -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    for n, v in enumerate(values):
        lab[1 + n : 4 + n, 2:6, 2 + 4 * n : 5 + 4 * n] = v
    return lab


def _write(path, array, spacing=(0.8, 0.8, 2.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array, isVector=False)
    image.SetSpacing(spacing if array.ndim == 3 else (*spacing, 1.0))
    sitk.WriteImage(image, str(path))
    return path


def _image(seed=0):
    return np.random.default_rng(seed).normal(100, 10, SHAPE).astype(np.float32)


@pytest.fixture
def msd(tmp_path):
    root = tmp_path / "Task09_Spleen"
    for n in range(3):
        _write(root / "imagesTr" / f"spleen_{n}.nii.gz", _image(n))
        if n != 2:
            _write(root / "labelsTr" / f"spleen_{n}.nii.gz", _label((1,)))
    (root / "imagesTr" / "._spleen_0.nii.gz").write_bytes(b"macOS junk")
    spec = {
        "name": "Spleen",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "spleen"},
        "training": [
            {"image": f"./imagesTr/spleen_{n}.nii.gz", "label": f"./labelsTr/spleen_{n}.nii.gz"} for n in range(3)
        ]
        + [{"image": "../../etc/passwd", "label": "./labelsTr/spleen_0.nii.gz"}],
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def test_msd_cases_targets_and_problems(msd):
    ds = open_dataset(msd)
    assert (ds.layout, ds.name) == ("msd", "Spleen")
    assert [c.case_id for c in ds.select()] == ["spleen_0", "spleen_1"]
    assert any("spleen_2" in p and "missing labelsTr/spleen_2.nii.gz" in p for p in ds.problems)
    assert any("outside" in p for p in ds.problems)  # the traversal entry is reported, not followed
    case = ds.select(["spleen_1"])[0]
    assert case.modality == "CT"
    loaded = case.load()
    assert [t.name for t in loaded.targets] == ["spleen"]
    assert loaded.truth(loaded.targets[0]).sum() == (_label((1,)) == 1).sum()
    assert loaded.image.spacing == pytest.approx((0.8, 0.8, 2.0))
    with pytest.raises(InputError, match="no case named nope"):
        ds.select(["nope"])
    assert len(ds.select(limit=1)) == 1


def test_msd_4d_channels_and_nnunet_labels(tmp_path):
    root = tmp_path / "Task01_BrainTumour"
    four_d = np.stack([_image(0), _image(1) + 1000])  # (c, k, j, i)
    _write(root / "imagesTr" / "BRATS_001.nii.gz", four_d)
    _write(root / "labelsTr" / "BRATS_001.nii.gz", _label((1, 3)))
    spec = {
        "modality": {"0": "FLAIR", "1": "T1w"},
        "labels": {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3},
        "training": [{"image": "./imagesTr/BRATS_001.nii.gz", "label": "./labelsTr/BRATS_001.nii.gz"}],
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    first = open_dataset(root).select()[0]
    assert first.modality == "MR"
    loaded = first.load()
    assert loaded.image.array.mean() < 500  # channel 0 by default
    assert [t.name for t in loaded.targets] == ["edema", "enhancing tumour"]  # label 2 is absent here
    second = open_dataset(root, channel=1).select()[0].load()
    assert second.image.array.mean() > 500
    with pytest.raises(InputError, match="2 channels"):
        open_dataset(root, channel=2)


def test_brats_folders(tmp_path):
    root = tmp_path / "BraTS2020_TrainingData"
    for case in ("BraTS20_Training_001", "BraTS20_Training_002"):
        for seq in ("flair", "t1", "t1ce", "t2"):
            _write(root / case / f"{case}_{seq}.nii.gz", _image())
    lab = _label((1, 2))
    lab[lab == 2] = 4
    _write(root / "BraTS20_Training_001" / "BraTS20_Training_001_seg.nii.gz", lab)
    assert detect_layout(root) == "brats"
    ds = open_dataset(root, sequence="t1ce")
    assert [c.case_id for c in ds.cases] == ["BraTS20_Training_001"]
    assert ds.problems == ["BraTS20_Training_002: missing seg"]
    assert ds.cases[0].source.endswith("_t1ce.nii.gz")
    loaded = ds.cases[0].load()
    sizes = {t.name: int(loaded.truth(t).sum()) for t in loaded.targets}
    assert sizes["whole-tumour"] == int((lab > 0).sum())
    assert sizes["tumour-core"] == int(np.isin(lab, (1, 4)).sum())
    assert sizes["enhancing-tumour"] == int((lab == 4).sum())
    assert set(BRATS_TARGETS) == set(sizes)
    with pytest.raises(InputError, match="unknown BraTS sequence"):
        open_dataset(root, sequence="dwi")


def test_cvpr_npz_with_boxes(tmp_path):
    lab = _label((1, 2))
    boxes = np.array([[2, 2, 1, 4, 5, 3], [6, 2, 2, 8, 5, 4]])
    np.savez_compressed(
        tmp_path / "CT_AbdTumor_case1.npz",
        imgs=_image().astype(np.uint8),
        gts=lab,
        spacing=[2.0, 0.8, 0.8],
        boxes=boxes,
    )
    np.savez_compressed(tmp_path / "MR_Brain_case2.npz", imgs=_image().astype(np.uint8), spacing=[1, 1, 1])
    ds = open_dataset(tmp_path)
    assert ds.layout == "npz"
    first, second = ds.select()
    assert (first.case_id, first.modality, second.modality) == ("CT_AbdTumor_case1", "CT", "MR")
    loaded = first.load()
    assert loaded.image.spacing == pytest.approx((0.8, 0.8, 2.0))  # (z, y, x) in the file
    assert [t.box3d.as_tuple() for t in loaded.targets] == [tuple(b) for b in boxes]
    with pytest.raises(InputError, match="no 'gts'"):
        second.load()


def test_image_label_pairs(tmp_path):
    _write(tmp_path / "images" / "a_0000.nii.gz", _image())
    _write(tmp_path / "labels" / "a.nii.gz", _label((2, 5)))
    _write(tmp_path / "images" / "b.nii.gz", _image())
    _write(tmp_path / "labels" / "c.nii.gz", _label())
    _write(tmp_path / "images" / "d.nii.gz", _image())
    _write(tmp_path / "labels" / "d.nii.gz", _label()[:, :, :8], spacing=(0.8, 0.8, 2.0))
    ds = open_dataset(tmp_path)
    assert ds.layout == "pairs"
    assert [c.case_id for c in ds.select()] == ["a", "d"]
    assert ds.problems == ["b: image without a label", "c: label without an image"]
    assert [t.name for t in ds.select(["a"])[0].load().targets] == ["label-2", "label-5"]
    with pytest.raises(InputError, match="grid differs"):
        ds.select(["d"])[0].load()


def test_builtin_lesions_and_refusals(tmp_path):
    ds = open_dataset("builtin:lesions-crop")
    assert len(ds.cases) == 24
    loaded = ds.select(["small-01"])[0].load()
    assert [t.name for t in loaded.targets] == ["small"]
    assert loaded.truth(loaded.targets[0]).any()
    with pytest.raises(InputError, match="unknown built-in"):
        open_dataset("builtin:nope")
    with pytest.raises(InputError, match="not a dataset volsam knows"):
        open_dataset(tmp_path)
    with pytest.raises(InputError, match="no such dataset folder"):
        open_dataset(tmp_path / "missing")
