"""volsam's RoPE attention gives transformers' numbers (it only computes them faster)."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers.models.sam2_video import modeling_sam2_video as hf

from volsam.engines.sam2 import rope
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.variants import named_variant


@pytest.fixture(scope="module")
def medsam2_net():
    torch.manual_seed(0)
    return build_model(named_variant("medsam2"))


@pytest.mark.parametrize(("n_keys", "excluded"), [(1024, 0), (3 * 1024 + 16, 16), (16, 16)])
def test_apply_rope_equals_transformers(medsam2_net, n_keys, excluded):
    torch.manual_seed(1)
    attention = medsam2_net.memory_attention
    q = torch.randn(1, 1, 1024, 256)
    k = torch.randn(1, 1, n_keys, 256)
    cos, sin = attention.rotary_emb(q, attention.position_ids)
    want = hf.apply_rotary_pos_emb_2d(q, k, cos, sin, num_k_exclude_rope=excluded, repeat_freqs_k=True)
    got = rope.apply_rope(q, k, cos, sin, num_k_exclude_rope=excluded, repeat_freqs_k=True)
    for a, b in zip(want, got, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_memory_frames_must_be_whole(medsam2_net):
    attention = medsam2_net.memory_attention
    q = torch.randn(1, 1, 1024, 256)
    cos, sin = attention.rotary_emb(q, attention.position_ids)
    with pytest.raises(ValueError, match="whole number"):
        rope.apply_rope(q, torch.randn(1, 1, 1500, 256), cos, sin, repeat_freqs_k=True)


def test_installed_memory_attention_gives_the_same_output(medsam2_net):
    reference = medsam2_net.memory_attention
    fast = copy.deepcopy(reference)
    assert rope.install(fast) == 2 * len(fast.layers)  # self- and cross-attention in every layer
    torch.manual_seed(2)
    current = torch.randn(1024, 1, 256)
    current_pos = torch.randn(1024, 1, 256)
    memory = torch.randn(4 * 1024 + 8, 1, 64)
    memory_pos = torch.randn(4 * 1024 + 8, 1, 64)
    with torch.inference_mode():
        want = reference(current, memory, current_pos, memory_pos, num_object_pointer_tokens=8)
        got = fast(current, memory, current_pos, memory_pos, num_object_pointer_tokens=8)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
