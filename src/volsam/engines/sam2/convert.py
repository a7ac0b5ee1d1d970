"""Meta / MedSAM2 ``.pt`` checkpoints -> a transformers ``Sam2VideoModel`` directory (safetensors + config).

The renaming follows the module layouts of Meta's ``sam2`` package (v1.1.0) and transformers 5.x
(``Sam2VideoModel``): ordered substring rules, then two tensor merges (the four point embeddings become one
table; the prompt encoder's Gaussian positional matrix is shared with the model-level image embedding).
Every renamed tensor must then load strictly: an unknown or damaged checkpoint fails with a line naming
what did not match, never a half-loaded model.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from volsam.core.errors import ModelNotFound, OutputError
from volsam.engines.checkpoints import load_state_dict, load_strict
from volsam.engines.sam2.variants import Variant, detect_variant, hf_config, named_variant

if TYPE_CHECKING:
    import torch
    from transformers import Sam2VideoModel

log = logging.getLogger(__name__)

# (pattern, replacement) applied in order with re.sub to every key.
_RULES: tuple[tuple[str, str], ...] = (
    (r"^image_encoder\.neck\.", "vision_encoder.neck."),
    (r"^image_encoder\.", "vision_encoder.backbone."),
    (r"trunk\.", ""),
    (r"patch_embed\.proj\.", "patch_embed.projection."),
    (r"\.norm", ".layer_norm"),
    (r"out_proj\.", "o_proj."),
    (r"^memory_encoder\.o_proj\.", "memory_encoder.projection."),
    (r"neck\.convs\.(\d+)\.conv\.", r"neck.convs.\1."),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"mask_downscaling\.0\.", "mask_embed.conv1."),
    (r"mask_downscaling\.1\.", "mask_embed.layer_norm1."),
    (r"mask_downscaling\.3\.", "mask_embed.conv2."),
    (r"mask_downscaling\.4\.", "mask_embed.layer_norm2."),
    (r"mask_downscaling\.6\.", "mask_embed.conv3."),
    (r"output_upscaling\.0\.", "upscale_conv1."),
    (r"output_upscaling\.1\.", "upscale_layer_norm."),
    (r"output_upscaling\.3\.", "upscale_conv2."),
    (r"pe_layer\.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
    (r"fuser\.", "memory_fuser."),
    (r"dwconv\.", "depthwise_conv."),
    (r"pwconv(\d)\.", r"pointwise_conv\1."),
    (r"\.gamma$", ".scale"),
    (r"pix_feat_proj\.", "feature_projection."),
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),
    (r"obj_ptr", "object_pointer"),
    (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),
)
_THREE_LAYER_MLPS = ("iou_prediction_head", "output_hypernetworks_mlps", "pred_obj_score_head", "object_pointer_proj")
_MASK_DOWNSAMPLER = re.compile(r"mask_downsampler\.encoder\.(\d+)\.")


def _rename_mlp(key: str) -> str:
    """``layers.N`` of Meta's MLPs: 2-layer -> proj_in/proj_out; 3-layer -> proj_in/layers.0/proj_out."""
    m = re.search(r"\.layers\.(\d)\.(weight|bias)$", key)
    if m is None or "memory_attention" in key:
        return key
    n = int(m.group(1))
    if any(name in key for name in _THREE_LAYER_MLPS):
        new = {0: "proj_in", 1: "layers.0", 2: "proj_out"}[n]
    else:
        new = {0: "proj_in", 1: "proj_out"}[n]
    return key[: m.start()] + f".{new}.{m.group(2)}"


def _rename_mask_downsampler(key: str) -> str:
    m = _MASK_DOWNSAMPLER.search(key)
    if m is None:
        return key
    n = int(m.group(1))
    if n % 3 == 0 and n < 12:
        new = f"layers.{n // 3}.conv."
    elif n % 3 == 1 and n < 12:
        new = f"layers.{n // 3}.layer_norm."
    else:
        new = "final_conv."
    return key[: m.start()] + "mask_downsampler." + new + key[m.end() :]


def meta_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Meta-format SAM 2 state dict to transformers' ``Sam2VideoModel`` names (no loading)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    points: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        m = re.match(r"^sam_prompt_encoder\.point_embeddings\.(\d+)\.weight$", key)
        if m:
            points[int(m.group(1))] = value
            continue
        new = key
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        new = _rename_mask_downsampler(_rename_mlp(new))
        out[new] = value
    if points:
        if sorted(points) != list(range(len(points))):
            raise ModelNotFound(f"point embeddings {sorted(points)} are not numbered 0..{len(points) - 1}")
        out["prompt_encoder.point_embed.weight"] = torch.cat([points[n] for n in sorted(points)], dim=0)
    shared = out.get("prompt_encoder.shared_embedding.positional_embedding")
    if shared is not None:
        out["shared_image_embedding.positional_embedding"] = shared.clone()
    return out


def build_model(variant: Variant) -> Sam2VideoModel:
    """A randomly initialised ``Sam2VideoModel`` of ``variant`` (eval mode, fp32)."""
    from transformers import Sam2VideoModel

    return Sam2VideoModel(hf_config(variant)).eval()


def load_meta_checkpoint(path: str | os.PathLike[str], config: str | None = None) -> tuple[Sam2VideoModel, Variant]:
    """Read a Meta / MedSAM2 ``.pt`` into a transformers model, strictly.

    Args:
        path: the checkpoint (``{"model": state_dict}`` as Meta saves it, or a bare state dict).
        config: a variant name (see :func:`~volsam.engines.sam2.variants.named_variant`) to use instead of
            detecting it; needed for MedSAM2 files whose name does not say ``MedSAM2``.
    """
    asked = named_variant(config) if config else None  # a bad name fails before any file is read
    src = Path(path)
    if not src.is_file():
        raise ModelNotFound(f"checkpoint not found: {str(path)!r} is not a file")
    state = load_state_dict(src)
    detected = detect_variant(state, name_hint=src.name)
    variant = asked or detected
    if asked and (variant.size, variant.version) != (detected.size, detected.version):
        raise ModelNotFound(f"{src.name} holds a {detected.name}, not the {variant.name} asked for with --config")
    log.info("%s: %s (%s)", src.name, variant.name, "as asked" if config else "detected from the weights")
    model = build_model(variant)
    load_strict(model, meta_to_hf(state), src.name)
    return model, variant


def convert_checkpoint(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: str | None = None, overwrite: bool = False
) -> Variant:
    """Convert a Meta / MedSAM2 checkpoint to a transformers directory (``config.json`` +
    ``model.safetensors``), written to a temporary sibling and renamed into place."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists; choose another directory or pass overwrite")
    model, variant = load_meta_checkpoint(path, config)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "volsam.json").write_text(f'{{"variant": "{variant.name}", "source": "{Path(path).name}"}}\n')
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    log.info("wrote %s (%s)", out, variant.name)
    return variant
