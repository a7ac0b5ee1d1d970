"""Keep SAM 2's sine position embeddings instead of recomputing them for every frame.

transformers builds them in ``Sam2SinePositionEmbedding`` / ``Sam2VideoPositionEmbeddingSine`` behind an
``lru_cache`` of size 1 shared by every caller; the vision neck asks for three or four shapes per frame, so
that cache never hits and each frame recomputes them (sin, cos, cat: about 2% of a frame at 512 px on the
project's CPU). :func:`install` gives each such module of a loaded model its own small cache keyed by
(shape, device, dtype, inference mode); the values are the same tensors the module computes.
"""

from __future__ import annotations

import types
from typing import Any

import torch

MAX_ENTRIES = 16
_CLASSES = ("Sam2SinePositionEmbedding", "Sam2VideoPositionEmbeddingSine")


def _forward(self: Any, shape: Any, device: Any, dtype: torch.dtype, mask: torch.Tensor | None = None) -> torch.Tensor:
    compute = type(self).forward
    if mask is not None:
        return compute(self, shape, device, dtype, mask)
    key = (tuple(shape), str(device), dtype, torch.is_inference_mode_enabled())
    cache = self._volsam_cache
    hit = cache.get(key)
    if hit is None:
        hit = compute(self, shape, device, dtype, None)
        if len(cache) >= MAX_ENTRIES:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit


def install(net: torch.nn.Module) -> int:
    """Cache the sine position embeddings of ``net``'s modules; returns how many modules were changed."""
    changed = 0
    for module in net.modules():
        if type(module).__name__ in _CLASSES:
            module._volsam_cache = {}
            module.forward = types.MethodType(_forward, module)
            changed += 1
    return changed
