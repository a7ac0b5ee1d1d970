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


# -- the way back: transformers names -> Meta names ------------------------------------------------------------
# (pattern, replacement) applied in order to every key after the MLP and mask-downsampler renames below; the
# specific names (mask embedding, upscaling, memory projection) come before the generic ``.layer_norm``/``o_proj``.
_INVERSE_RULES: tuple[tuple[str, str], ...] = (
    (r"^memory_temporal_positional_encoding$", "maskmem_tpos_enc"),
    (r"^no_memory_embedding$", "no_mem_embed"),
    (r"^no_memory_positional_encoding$", "no_mem_pos_enc"),
    (r"^occlusion_spatial_embedding_parameter$", "no_obj_embed_spatial"),
    (r"^temporal_positional_encoding_projection_layer\.", "obj_ptr_tpos_proj."),
    (r"object_pointer", "obj_ptr"),
    (r"^vision_encoder\.neck\.convs\.(\d+)\.", r"image_encoder.neck.convs.\1.conv."),
    (r"^vision_encoder\.neck\.", "image_encoder.neck."),
    (r"^vision_encoder\.backbone\.", "image_encoder.trunk."),
    (r"patch_embed\.projection\.", "patch_embed.proj."),
    (r"^prompt_encoder\.", "sam_prompt_encoder."),
    (r"^mask_decoder\.", "sam_mask_decoder."),
    (r"mask_embed\.conv1\.", "mask_downscaling.0."),
    (r"mask_embed\.layer_norm1\.", "mask_downscaling.1."),
    (r"mask_embed\.conv2\.", "mask_downscaling.3."),
    (r"mask_embed\.layer_norm2\.", "mask_downscaling.4."),
    (r"mask_embed\.conv3\.", "mask_downscaling.6."),
    (r"upscale_conv1\.", "output_upscaling.0."),
    (r"upscale_layer_norm\.", "output_upscaling.1."),
    (r"upscale_conv2\.", "output_upscaling.3."),
    (r"shared_embedding\.positional_embedding", "pe_layer.positional_encoding_gaussian_matrix"),
    (r"^memory_encoder\.projection\.", "memory_encoder.out_proj."),
    (r"memory_fuser\.", "fuser."),
    (r"depthwise_conv\.", "dwconv."),
    (r"pointwise_conv(\d)\.", r"pwconv\1."),
    (r"\.scale$", ".gamma"),
    (r"feature_projection\.", "pix_feat_proj."),
    (r"o_proj\.", "out_proj."),
    (r"\.layer_norm", ".norm"),
)
_HF_MLP = re.compile(r"\.(proj_in|layers\.0|proj_out)\.(weight|bias)$")
_HF_MASK_DOWNSAMPLER = re.compile(r"mask_downsampler\.(?:layers\.(\d+)\.(conv|layer_norm)|final_conv)\.")


def _unrename_mlp(key: str) -> str:
    """``proj_in``/``layers.0``/``proj_out`` -> Meta's ``layers.N`` (3-layer MLPs have ``layers.0`` in the middle)."""
    m = _HF_MLP.search(key)
    if m is None or "memory_attention" in key:
        return key
    three = any(name in key for name in _THREE_LAYER_MLPS)
    if m.group(1) == "layers.0" and not three:
        return key
    n = {"proj_in": 0, "layers.0": 1, "proj_out": 2 if three else 1}[m.group(1)]
    return key[: m.start()] + f".layers.{n}.{m.group(2)}"


def _unrename_mask_downsampler(key: str, final: int) -> str:
    m = _HF_MASK_DOWNSAMPLER.search(key)
    if m is None:
        return key
    n = final if m.group(1) is None else 3 * int(m.group(1)) + (0 if m.group(2) == "conv" else 1)
    return key[: m.start()] + f"mask_downsampler.encoder.{n}." + key[m.end() :]


def to_meta_state_dict(hf_state: dict[str, torch.Tensor], variant: Variant | str) -> dict[str, torch.Tensor]:
    """Inverse of the Meta -> transformers mapping: an exported model as a Meta/MedSAM2 ``.pt`` state dict
    (``torch.save({"model": sd})`` loads in Meta's ``build_sam2`` and back through ``volsam models convert``).

    Args:
        hf_state: a ``Sam2VideoModel`` state dict (transformers names).
        variant: the model's variant (or its name, e.g. ``medsam2``); the result must hold that architecture.

    The point-embedding table is split back into Meta's four ``[1, C]`` tensors and the model-level copy of
    the prompt encoder's Gaussian matrix is dropped (Meta keeps one). Tensors are not copied except those
    split. Raises :class:`~volsam.core.errors.ModelNotFound` when the names and shapes are not those of
    ``variant``'s transformers model, or do not map back exactly (the forward mapping of the result must
    give ``hf_state``'s keys).
    """
    import torch

    want = named_variant(variant) if isinstance(variant, str) else variant
    _check_layout(hf_state, want)
    layers = {int(m.group(1)) for k in hf_state if (m := re.search(r"mask_downsampler\.layers\.(\d+)\.", k))}
    final = 3 * (max(layers) + 1) if layers else 12
    out: dict[str, torch.Tensor] = {}
    for key, value in hf_state.items():
        if key == "shared_image_embedding.positional_embedding":
            continue  # Meta has only the prompt encoder's copy
        if key == "prompt_encoder.point_embed.weight":
            for n in range(value.shape[0]):
                out[f"sam_prompt_encoder.point_embeddings.{n}.weight"] = value[n : n + 1].clone()
            continue
        new = _unrename_mask_downsampler(_unrename_mlp(key), final)
        for pattern, repl in _INVERSE_RULES:
            new = re.sub(pattern, repl, new)
        if new in out:
            raise ModelNotFound(f"two transformers keys map to the Meta key {new!r} (one is {key!r})")
        out[new] = value
    shared = hf_state.get("shared_image_embedding.positional_embedding")
    own = hf_state.get("prompt_encoder.shared_embedding.positional_embedding")
    if shared is not None and own is not None and not torch.equal(shared, own):
        log.warning("the model-level positional matrix differs from the prompt encoder's; Meta keeps the latter")
    copy = {"shared_image_embedding.positional_embedding"}  # recreated by the forward mapping
    back = set(meta_to_hf(out)) - copy
    if back != set(hf_state) - copy:
        odd = sorted(back ^ (set(hf_state) - copy))
        raise ModelNotFound(f"{len(odd)} names do not map back to Meta's layout: {', '.join(odd[:5])}")
    return out


def _check_layout(hf_state: dict[str, torch.Tensor], variant: Variant) -> None:
    """The names and shapes of ``variant``'s ``Sam2VideoModel`` (built on the meta device: no memory, no
    initialisation cost) must be exactly those of ``hf_state``."""
    import torch
    from transformers import Sam2VideoModel

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Sam2VideoModel(hf_config(variant)).state_dict().items()}
    missing = sorted(set(expected) - set(hf_state))
    unexpected = sorted(set(hf_state) - set(expected))
    shapes = sorted(
        f"{k} {tuple(hf_state[k].shape)} != {s}"
        for k, s in expected.items()
        if k in hf_state and tuple(hf_state[k].shape) != s
    )
    problems = [
        f"{len(names)} {what}: {', '.join(names[:3])}{f' (+{len(names) - 3} more)' if len(names) > 3 else ''}"
        for what, names in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if names
    ]
    if problems:
        raise ModelNotFound(f"the weights are not a {variant.name}: " + "; ".join(problems))
