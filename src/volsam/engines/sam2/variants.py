"""The SAM 2 family's architectures, told apart from a Meta-format state dict, and their transformers configs.

Sizes (SAM 2 and 2.1 share them; ``../shared/FACTS.md`` has the table and its sources):

====== ====== ============= ============= ============ ==========
size   hidden heads (stage) blocks/stage global attn  window bkg
====== ====== ============= ============= ============ ==========
tiny   96     1,2,4,8       1,2,7,2       5,7,9        7x7
small  96     1,2,4,8       1,2,11,2      7,10,13      7x7
base+  112    2,4,8,16      2,3,16,3      12,16,20     14x14
large  144    2,4,8,16      2,6,36,4      23,33,43     7x7
====== ====== ============= ============= ============ ==========

SAM 2.1 differs from 2.0 by the occlusion spatial embedding (``no_obj_embed_spatial``, a 2.1-only tensor)
and temporal encodings of object pointers (``obj_ptr_tpos_proj``). MedSAM2 is SAM 2.1-tiny at 512x512 with
memory-attention RoPE on a 32x32 grid; nothing in its weights says 512, so it is chosen by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from volsam.core.errors import ModelNotFound

if TYPE_CHECKING:
    from transformers import Sam2VideoConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Size:
    """One Hiera size."""

    name: str
    hidden: int
    heads: int  # heads of the first stage; doubled per stage
    blocks: tuple[int, int, int, int]
    global_attention: tuple[int, ...]
    window_background: int
    window_spec: tuple[int, int, int, int]


SIZES = {
    "tiny": Size("tiny", 96, 1, (1, 2, 7, 2), (5, 7, 9), 7, (8, 4, 14, 7)),
    "small": Size("small", 96, 1, (1, 2, 11, 2), (7, 10, 13), 7, (8, 4, 14, 7)),
    "base-plus": Size("base-plus", 112, 2, (2, 3, 16, 3), (12, 16, 20), 14, (8, 4, 14, 7)),
    "large": Size("large", 144, 2, (2, 6, 36, 4), (23, 33, 43), 7, (8, 4, 16, 8)),
}


@dataclass(frozen=True)
class Variant:
    """A SAM 2 family model: size, version (``2.0`` or ``2.1``) and input side (px)."""

    size: Size
    version: str
    image_size: int = 1024

    @property
    def name(self) -> str:
        base = f"sam{self.version}-hiera-{self.size.name}"
        return base if self.image_size == 1024 else f"{base}-{self.image_size}"


NAMED = {
    "medsam2": Variant(SIZES["tiny"], "2.1", 512),
    **{f"sam{v}-hiera-{s}": Variant(SIZES[s], v) for v in ("2.0", "2.1") for s in SIZES},
}
_NAME = re.compile(r"^sam(2|2\.0|2\.1)[-_]hiera[-_](t|tiny|s|small|b\+|base[-_]plus|l|large)$")
_SIZE_NAMES = {"t": "tiny", "s": "small", "b+": "base-plus", "base_plus": "base-plus", "l": "large"}


def named_variant(name: str) -> Variant:
    """A variant by name: ``medsam2``, ``sam2.1-hiera-tiny``, ``sam2-hiera-large``, ... (also Meta's config
    and file stems such as ``sam2.1_hiera_b+``)."""
    key = name.strip().lower()
    if key in NAMED:
        return NAMED[key]
    m = _NAME.match(key)
    if m is None:
        raise ModelNotFound(f"unknown SAM 2 configuration {name!r}; known: {', '.join(sorted(NAMED))}")
    version = "2.0" if m.group(1) == "2" else m.group(1)
    return NAMED[f"sam{version}-hiera-{_SIZE_NAMES.get(m.group(2), m.group(2))}"]


def detect_variant(state: Mapping[str, Any], name_hint: str = "") -> Variant:
    """Tell the variant from a Meta-format state dict (tensor shapes and 2.1-only tensors).

    ``name_hint`` (e.g. the file name) picks MedSAM2's 512 input when it contains ``medsam2``.
    """
    patch = state.get("image_encoder.trunk.patch_embed.proj.weight")
    if patch is None:
        raise ModelNotFound("not a SAM 2 checkpoint: no image_encoder.trunk.patch_embed.proj.weight")
    hidden = int(patch.shape[0])
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    total = max(blocks) + 1 if blocks else 0
    pos = state.get("image_encoder.trunk.pos_embed")
    background = int(pos.shape[-1]) if pos is not None else -1
    matches = [s for s in SIZES.values() if s.hidden == hidden and sum(s.blocks) == total]
    if len(matches) != 1 or matches[0].window_background != background:
        raise ModelNotFound(
            f"unknown SAM 2 architecture: hidden size {hidden}, {total} Hiera blocks, positional background "
            f"{background}x{background} (known: tiny, small, base-plus, large)"
        )
    version = "2.1" if "no_obj_embed_spatial" in state else "2.0"
    if "medsam2" in name_hint.lower():
        if (matches[0].name, version) != ("tiny", "2.1"):
            raise ModelNotFound(f"{name_hint!r} is named MedSAM2 but holds a SAM {version} {matches[0].name}")
        return NAMED["medsam2"]
    return Variant(matches[0], version)


def hf_config(variant: Variant) -> Sam2VideoConfig:
    """The transformers ``Sam2VideoConfig`` of ``variant``."""
    from transformers import Sam2VideoConfig

    size, side = variant.size, variant.image_size
    dims = [size.hidden * 2**n for n in range(4)]
    backbone = {
        "model_type": "sam2_hiera_det_model",
        "hidden_size": size.hidden,
        "num_attention_heads": size.heads,
        "image_size": [side, side],
        "blocks_per_stage": list(size.blocks),
        "embed_dim_per_stage": dims,
        "num_attention_heads_per_stage": [size.heads * 2**n for n in range(4)],
        "window_size_per_stage": list(size.window_spec),
        "global_attention_blocks": list(size.global_attention),
        "window_positional_embedding_background_size": [size.window_background] * 2,
    }
    vision = {
        "backbone_config": backbone,
        "backbone_channel_list": dims[::-1],
        "backbone_feature_sizes": [[side // 4] * 2, [side // 8] * 2, [side // 16] * 2],
    }
    v21 = variant.version == "2.1"
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"image_size": side},
        image_size=side,
        memory_attention_rope_feat_sizes=[side // 16] * 2,
        enable_occlusion_spatial_embedding=v21,
        enable_temporal_pos_encoding_for_object_pointers=v21,
    )
