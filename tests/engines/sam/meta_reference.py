"""Meta's reference SAM 1 (PyPI ``segment-anything==1.0``, installed with --no-deps) for parity tests.

``import segment_anything`` imports torchvision (its ``predictor`` -> ``utils/transforms.py`` and the automatic
mask generator use it), which cannot be installed here. ``segment_anything/modeling/*`` itself needs only
torch, so :func:`meta_modeling` loads that subpackage from its files: it registers an empty namespace module
``segment_anything`` whose ``__path__`` is the installed package folder (so the package's ``__init__.py`` never
runs), imports ``segment_anything.modeling`` through the normal import machinery, and removes every
``segment_anything`` module from ``sys.modules`` afterwards. :func:`meta_predictor` does the same for
``predictor.py`` with a stand-in for the two torchvision functions its ``ResizeLongestSide.apply_image`` calls
(``to_pil_image`` and ``resize`` of a PIL image, which is PIL's own bilinear ``Image.resize``).

The test modules skip (with this reason) when the package is missing; it is a test-only reference, never
imported by volsam.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

REASON = "the reference segment-anything==1.0 is not installed (pip install --no-deps segment-anything==1.0)"
_SPEC = importlib.util.find_spec("segment_anything")
if _SPEC is None or not _SPEC.submodule_search_locations:
    pytest.skip(REASON, allow_module_level=True)
ROOT = Path(list(_SPEC.submodule_search_locations)[0])
_TORCHVISION = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


def _pil_stand_in() -> dict[str, types.ModuleType]:
    """``torchvision.transforms.functional.{to_pil_image, resize}`` as ``apply_image`` uses them (uint8 HWC
    array -> PIL image; PIL image resized to ``(h, w)`` with torchvision's default, bilinear)."""
    from PIL import Image

    mods = {name: types.ModuleType(name) for name in _TORCHVISION}
    functional = mods["torchvision.transforms.functional"]
    functional.to_pil_image = lambda array: Image.fromarray(np.asarray(array))  # type: ignore[attr-defined]
    functional.resize = lambda image, size: image.resize((size[1], size[0]), Image.BILINEAR)  # type: ignore[attr-defined]
    return mods


@contextlib.contextmanager
def _loaded(*names: str, stand_ins: dict[str, types.ModuleType] | None = None) -> Iterator[list[types.ModuleType]]:
    # MONAI's optional import of segment_anything (monai.networks.nets, imported by monai.metrics) fails on
    # torchvision and leaves half-imported ``segment_anything.modeling.*`` modules behind: they are set aside
    # while the reference loads and put back afterwards, so MONAI sees what it saw before.
    if stand_ins and any(n in sys.modules for n in stand_ins):
        raise RuntimeError("a real or stand-in torchvision is already imported; refusing to shadow it")
    earlier = {n: sys.modules.pop(n) for n in list(sys.modules) if n.split(".")[0] == "segment_anything"}
    before = set(sys.modules)
    package = types.ModuleType("segment_anything")
    package.__path__ = [str(ROOT)]  # a namespace: the package __init__ (which imports torchvision) never runs
    sys.modules["segment_anything"] = package
    sys.modules.update(stand_ins or {})
    try:
        yield [importlib.import_module(f"segment_anything.{n}") for n in names]
    finally:
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("segment_anything", "torchvision"):
                del sys.modules[name]
        sys.modules.update(earlier)


def meta_sam(
    hidden: int = 64,
    depth: int = 2,
    heads: int = 2,
    global_attention: tuple[int, ...] = (1,),
    image_size: int = 256,
    window: int = 14,
    seed: int = 0,
) -> torch.nn.Module:
    """A random-init Meta ``Sam`` built as ``build_sam._build_sam`` builds ViT-B/L/H (same prompt encoder and
    mask decoder; image encoder of the given shape). ``meta_sam(768, 12, 12, (2, 5, 8, 11), 1024)`` is ViT-B.

    Meta's random init leaves the relative position tables and the absolute position embedding at zero;
    they are filled with noise here so that parity tests exercise them."""
    with _loaded("modeling") as (m,):
        torch.manual_seed(seed)
        sam = m.Sam(
            image_encoder=m.ImageEncoderViT(
                depth=depth,
                embed_dim=hidden,
                img_size=image_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=heads,
                patch_size=16,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=list(global_attention),
                window_size=window,
                out_chans=256,
            ),
            prompt_encoder=m.PromptEncoder(
                embed_dim=256,
                image_embedding_size=(image_size // 16, image_size // 16),
                input_image_size=(image_size, image_size),
                mask_in_chans=16,
            ),
            mask_decoder=m.MaskDecoder(
                num_multimask_outputs=3,
                transformer=m.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                transformer_dim=256,
                iou_head_depth=3,
                iou_head_hidden_dim=256,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
    with torch.no_grad():
        for name, param in sam.named_parameters():
            if name.endswith(("rel_pos_h", "rel_pos_w", "pos_embed")):
                param.normal_(0, 0.02)
    return sam.eval()


def meta_predictor(sam: torch.nn.Module):
    """Meta's ``SamPredictor`` on ``sam`` (its module loaded with the PIL stand-in for torchvision)."""
    with _loaded("predictor", stand_ins=_pil_stand_in()) as (predictor,):
        return predictor.SamPredictor(sam)


def save_meta(sam: torch.nn.Module, path: Path) -> Path:
    """Save as Meta ships its checkpoints: a bare state dict."""
    torch.save(sam.state_dict(), path)
    return path
