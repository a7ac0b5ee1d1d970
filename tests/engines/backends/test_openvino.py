"""OpenVINO modules with several outputs and without the forced free batch, and the fallback to torch when a
module does not convert. Skipped when openvino is not installed."""

from __future__ import annotations

import logging

import pytest
import torch

from volsam.engines import backends

pytestmark = pytest.mark.skipif(not backends.openvino_available(), reason="openvino is not installed")


class TwoMaps(torch.nn.Module):
    """A conv and a pooled copy of it: two outputs of different shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.nn.functional.gelu(self.conv(x))
        return y, torch.nn.functional.max_pool2d(y, 2)


class Unconvertible(torch.nn.Module):
    """Needs two inputs: tracing it with the one example input fails inside the converter."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def test_every_output_in_order_without_the_batch_reshape(tmp_path):
    from volsam.engines.backends.openvino import OpenVinoModule

    torch.manual_seed(0)
    net = TwoMaps().eval()
    ov = OpenVinoModule(net, (1, 3, 8, 8), "two", folder=tmp_path, dynamic_batch=False)
    dynamic = OpenVinoModule(net, (1, 3, 8, 8), "two", folder=tmp_path)
    assert ov.path != dynamic.path  # a fixed-batch model is kept apart from the free-batch one
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
    got = ov.outputs(x)
    assert [tuple(t.shape) for t in got] == [(1, 4, 8, 8), (1, 4, 4, 4)]
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.equal(ov(x), got[0])


def test_a_module_that_does_not_convert_falls_back_with_one_warning(tmp_path, caplog):
    from volsam.engines.backends.openvino import load_or_none

    with caplog.at_level(logging.WARNING, logger="volsam.engines.backends.openvino"):
        assert load_or_none(Unconvertible(), (1, 3, 4, 4), "bad", "the test module", folder=tmp_path) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "the test module" in warnings[0].getMessage()
    assert "using torch" in warnings[0].getMessage()
    assert not list(tmp_path.glob("bad-*.xml"))
