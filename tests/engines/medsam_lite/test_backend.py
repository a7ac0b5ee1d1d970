"""Inference backends of LiteMedSAM: names, the fallback to torch, the on-disk conversion cache, and OpenVINO
fp32 against torch on real weights (embeddings and masks). OpenVINO tests skip when it is not installed."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from volsam.core.errors import SettingsError
from volsam.engines import backends
from volsam.engines.backends import check_backend, resolve_backend
from volsam.engines.medsam_lite.engine import MedSAMLiteEngine
from volsam.io.samples import mni152_path

needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="openvino is not installed")


def test_backend_names_are_checked():
    for name in backends.BACKENDS:
        assert check_backend(name) == name
    with pytest.raises(SettingsError, match="unknown backend 'onnx'"):
        check_backend("onnx")


def test_auto_and_openvino_fall_back_to_torch_without_the_package(monkeypatch, caplog):
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="volsam.engines.backends"):
        assert resolve_backend("auto", "cpu", "fp32") == "torch"
        assert resolve_backend("openvino", "cpu", "fp32") == "torch"
    assert "openvino package is not installed" in caplog.text
    assert resolve_backend("torch", "cpu", "fp32") == "torch"


def test_openvino_only_on_the_cpu_in_fp32(monkeypatch):
    monkeypatch.setattr(backends, "openvino_available", lambda: True)
    assert resolve_backend("auto", "cpu", "fp32") == "openvino"
    assert resolve_backend("auto", "cpu", "bf16") == "torch"
    assert resolve_backend("openvino", "cuda:0", "fp32") == "torch"


def test_engine_without_openvino_runs_torch(monkeypatch, caplog):
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="volsam.engines.backends"):
        engine = MedSAMLiteEngine(device="cpu", precision="fp32", backend="openvino")
    assert engine.backend == "torch" and engine._encoder is None
    assert "using torch" in caplog.text


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VOLSAM_CACHE_DIR", str(tmp_path / "c"))
    assert backends.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VOLSAM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert backends.cache_dir() == tmp_path / "x" / "volsam"


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(self.conv(x))


@needs_openvino
def test_conversion_is_cached_by_weights(tmp_path):
    from volsam.engines.backends.openvino import OpenVinoModule

    torch.manual_seed(0)
    net = Tiny().eval()
    first = OpenVinoModule(net, (1, 3, 16, 16), "tiny", folder=tmp_path)
    again = OpenVinoModule(net, (1, 3, 16, 16), "tiny", folder=tmp_path)
    assert first.converted and not again.converted and first.path == again.path
    x = torch.rand(2, 3, 16, 16)  # the batch size is free
    with torch.no_grad():
        assert torch.allclose(again(x), net(x), atol=1e-5)
    with torch.no_grad():
        net.conv.bias += 1.0  # other weights: another file, converted again
    other = OpenVinoModule(net, (1, 3, 16, 16), "tiny", folder=tmp_path)
    assert other.converted and other.path != first.path
    with torch.no_grad():
        assert torch.allclose(other(x), net(x), atol=1e-5)


@pytest.fixture(scope="module")
def engines() -> tuple[MedSAMLiteEngine, MedSAMLiteEngine]:
    if not backends.openvino_available():
        pytest.skip("openvino is not installed")
    ov = MedSAMLiteEngine(device="cpu", precision="fp32", backend="openvino")
    assert ov.backend == "openvino"
    return MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch"), ov


@needs_openvino
def test_openvino_fp32_embeddings_and_masks_match_torch(engines):
    """Real weights on MNI152 T1 frames: a whole axial slice and small crops (the walk's windows, upscaled)."""
    reference, ov = engines
    t1 = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("t1"))))
    frames = [t1[95], t1[95, 90:150, 70:130], t1[60, 100:148, 80:128]]
    boxes = [(74, 95, 95, 144), (4, 5, 25, 54), (10, 10, 30, 30)]
    for frame, box in zip(frames, boxes):
        a, b = reference.encode(frame)[0], ov.encode(frame)[0]
        diff = float((a.features - b.features).abs().max())
        assert diff < 1e-4, diff
        pa, pb = reference.predict(a, box=box), ov.predict(b, box=box)
        assert pa.mask.any()
        assert np.array_equal(pa.mask, pb.mask)
        assert abs(pa.score - pb.score) < 1e-4
