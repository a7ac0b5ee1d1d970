"""volsam's Hiera attention gives transformers' numbers (it only skips a product transformers discards)."""

from __future__ import annotations

import copy

import pytest
import torch

from volsam.engines.sam2 import hiera
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.variants import named_variant


@pytest.fixture(scope="module")
def medsam2_net():
    torch.manual_seed(0)
    return build_model(named_variant("medsam2"))


def _attention_modules(net):
    return [m for m in net.modules() if type(m).__name__ == "Sam2MultiScaleAttention"]


def test_install_changes_every_hiera_attention(medsam2_net):
    fast = copy.deepcopy(medsam2_net)
    modules = _attention_modules(fast)
    assert modules and hiera.install(fast) == len(modules)


@pytest.mark.parametrize("pooled", [False, True])
def test_installed_attention_gives_the_same_output(medsam2_net, pooled):
    reference = next(m for m in _attention_modules(medsam2_net) if bool(m.query_stride) == pooled)
    fast = copy.deepcopy(reference)
    fast.forward = hiera._forward.__get__(fast)
    torch.manual_seed(1)
    windows = torch.randn(3, 8, 8, reference.qkv.in_features)
    with torch.inference_mode():
        want = reference(windows)
        got = fast(windows)
    assert got.shape == want.shape
    assert torch.equal(got, want)


def test_image_encoder_output_unchanged(medsam2_net):
    fast = copy.deepcopy(medsam2_net)
    hiera.install(fast)
    torch.manual_seed(2)
    pixels = torch.randn(1, 3, 512, 512)
    with torch.inference_mode():
        want = medsam2_net.vision_encoder(pixels)
        got = fast.vision_encoder(pixels)
    for a, b in zip(want.fpn_hidden_states, got.fpn_hidden_states, strict=True):
        assert torch.equal(a, b)


def test_a_module_that_does_not_match_keeps_its_forward(medsam2_net):
    fast = copy.deepcopy(medsam2_net)
    module = _attention_modules(fast)[0]
    del module.query_stride
    assert hiera.install(fast) == len(_attention_modules(fast)) - 1
    assert "forward" not in vars(module)
