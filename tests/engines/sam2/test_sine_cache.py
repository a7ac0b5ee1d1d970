"""Cached sine position embeddings: the same values as transformers computes, computed once per shape."""

from __future__ import annotations

import torch

from volsam.engines.sam2 import sine_cache
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.variants import SIZES, Variant


def test_cached_embeddings_equal_fresh_ones_and_are_reused():
    torch.manual_seed(0)
    net = build_model(Variant(SIZES["tiny"], "2.1", 256))
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        want = net.vision_encoder(x)
        assert sine_cache.install(net) == 2  # the vision neck's and the memory encoder's
        first = net.vision_encoder(x)
        neck = net.vision_encoder.neck.position_encoding
        entries = len(neck._volsam_cache)  # one per feature level of the neck
        again = net.vision_encoder(x)
    for a, b, c in zip(want.fpn_position_encoding, first.fpn_position_encoding, again.fpn_position_encoding):
        assert torch.equal(a, b) and b is c  # equal values; the second frame reuses the first's tensors
    assert torch.equal(want.last_hidden_state, again.last_hidden_state)
    assert entries >= len(want.fpn_position_encoding) and len(neck._volsam_cache) == entries
    masked = torch.zeros(1, 8, 8, dtype=torch.bool)
    out = neck((1, 256, 8, 8), "cpu", torch.float32, mask=masked)
    assert out.shape[-2:] == (8, 8) and len(neck._volsam_cache) == entries  # with a mask: computed, not cached
