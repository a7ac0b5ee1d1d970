"""Meta's SAM 1 / MedSAM ``.pth`` checkpoints -> transformers' ``SamModel`` (in memory or as a directory).

The architecture is read from the weights (:func:`detect_architecture`): embedding width and patch size from
the patch embedding, input side from the absolute position embedding, depth from the block numbers, head
width and window size from the relative position tables (a block whose table spans the whole grid is a
global-attention block), MLP width from the first MLP. So ViT-B / ViT-L / ViT-H, MedSAM (ViT-B) and the
small random models of the tests all convert the same way.

Renaming (module layouts of ``segment_anything`` 1.0 and transformers 5.x ``SamModel``), applied in order:
``image_encoder.`` -> ``vision_encoder.``; encoder ``blocks.`` -> ``layers.``; ``patch_embed.proj`` ->
``patch_embed.projection``; ``neck.0/1/2/3`` -> ``neck.conv1/layer_norm1/conv2/layer_norm2``; ``normN`` ->
``layer_normN`` and ``norm_final_attn`` -> ``layer_norm_final_attn``; ``mask_downscaling.0/1/3/4/6`` ->
``mask_embed.conv1/layer_norm1/conv2/layer_norm2/conv3``; ``output_upscaling.0/1/3`` ->
``upscale_conv1/upscale_layer_norm/upscale_conv2``; the 3-layer MLPs (``iou_prediction_head``,
``output_hypernetworks_mlps.N``) ``layers.0/1/2`` -> ``proj_in/layers.0/proj_out``; ``point_embeddings.N``
-> ``point_embed.N``; ``pe_layer.positional_encoding_gaussian_matrix`` ->
``shared_embedding.positional_embedding``, also copied to the model-level
``shared_image_embedding.positional_embedding``; ``pixel_mean`` / ``pixel_std`` (preprocessing constants,
not weights) are dropped. Unchanged: ``pos_embed``, ``attn.qkv``, ``attn.proj``, ``rel_pos_h/w``,
``mlp.lin1/lin2``, ``q_proj/k_proj/v_proj/out_proj``, tokens, ``no_mask_embed``, ``not_a_point_embed``.
The result must then load strictly: a checkpoint that is not SAM's layout fails with one line naming what
did not match, never a half-loaded model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volsam.core.errors import ModelNotFound, OutputError
from volsam.engines.checkpoints import load_state_dict, load_strict

if TYPE_CHECKING:
    import torch
    from transformers import SamConfig, SamModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Architecture:
    """A SAM image encoder's shape (the prompt encoder and mask decoder are the same for every SAM)."""

    hidden: int  # embedding width of the ViT
    depth: int  # transformer blocks
    heads: int
    global_attention: tuple[int, ...]  # blocks that attend over the whole grid
    window: int  # side of the attention windows of the other blocks (tokens)
    image_size: int  # side of the square input (px)
    patch: int = 16
    mlp: int = 0  # MLP width (0: 4 x hidden)
    out_channels: int = 256  # embedding channels the neck gives the decoder

    @property
    def name(self) -> str:
        """``vit-b`` / ``vit-l`` / ``vit-h`` for Meta's three sizes at 1024, a descriptive name otherwise."""
        known = {(768, 12, 12): "vit-b", (1024, 24, 16): "vit-l", (1280, 32, 16): "vit-h"}
        base = known.get((self.hidden, self.depth, self.heads), f"vit-{self.hidden}x{self.depth}")
        return base if self.image_size == 1024 else f"{base}-{self.image_size}"


VIT_B = Architecture(768, 12, 12, (2, 5, 8, 11), 14, 1024, mlp=3072)
VIT_L = Architecture(1024, 24, 16, (5, 11, 17, 23), 14, 1024, mlp=4096)
VIT_H = Architecture(1280, 32, 16, (7, 15, 23, 31), 14, 1024, mlp=5120)
NAMED = {"sam-vit-b": VIT_B, "sam-vit-l": VIT_L, "sam-vit-h": VIT_H, "medsam-vit-b": VIT_B}

_BLOCK = re.compile(r"^image_encoder\.blocks\.(\d+)\.")


def detect_architecture(state: Mapping[str, Any]) -> Architecture:
    """The image encoder's shape, read from a Meta-format SAM state dict (see the module docstring).

    Raises:
        ModelNotFound: the state dict is not SAM 1's layout (a SAM 2 checkpoint, another model).
    """
    patch = state.get("image_encoder.patch_embed.proj.weight")
    pos = state.get("image_encoder.pos_embed")
    if patch is None or pos is None or "mask_decoder.iou_token.weight" not in state:
        hint = " (it looks like SAM 2: use --engine sam2)" if "sam_mask_decoder.iou_token.weight" in state else ""
        raise ModelNotFound(f"not a SAM checkpoint: no image_encoder.patch_embed.proj.weight / pos_embed{hint}")
    hidden, side = int(patch.shape[0]), int(patch.shape[-1])
    grid = int(pos.shape[1])
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK.match(k))), default=-1)
    if depth == 0:
        raise ModelNotFound("not a SAM checkpoint: the image encoder has no blocks")
    spans: list[int] = []
    head_dim = 0
    for n in range(depth):
        rel = state.get(f"image_encoder.blocks.{n}.attn.rel_pos_h")
        if rel is None:
            raise ModelNotFound(f"not a SAM checkpoint: block {n} has no relative position table")
        spans.append((int(rel.shape[0]) + 1) // 2)
        head_dim = int(rel.shape[1])
    windows = {s for s in spans if s != grid}
    if len(windows) > 1 or head_dim == 0 or hidden % head_dim:
        raise ModelNotFound(f"unknown SAM image encoder: attention spans {sorted(set(spans))}, grid {grid}")
    lin1 = state.get("image_encoder.blocks.0.mlp.lin1.weight")
    neck = state.get("image_encoder.neck.0.weight")
    return Architecture(
        hidden=hidden,
        depth=depth,
        heads=hidden // head_dim,
        global_attention=tuple(n for n, s in enumerate(spans) if s == grid),
        window=windows.pop() if windows else 14,
        image_size=grid * side,
        patch=side,
        mlp=int(lin1.shape[0]) if lin1 is not None else 4 * hidden,
        out_channels=int(neck.shape[0]) if neck is not None else 256,
    )


def hf_config(arch: Architecture) -> SamConfig:
    """The transformers ``SamConfig`` of ``arch``."""
    from transformers import SamConfig

    vision = {
        "hidden_size": arch.hidden,
        "num_hidden_layers": arch.depth,
        "num_attention_heads": arch.heads,
        "global_attn_indexes": list(arch.global_attention),
        "window_size": arch.window,
        "image_size": arch.image_size,
        "patch_size": arch.patch,
        "mlp_dim": arch.mlp or 4 * arch.hidden,
        "output_channels": arch.out_channels,
    }
    prompt = {"hidden_size": arch.out_channels, "image_size": arch.image_size, "patch_size": arch.patch}
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config={"hidden_size": 256})


def build_model(arch: Architecture) -> SamModel:
    """A randomly initialised ``SamModel`` of ``arch`` (eval mode, fp32)."""
    from transformers import SamModel

    return SamModel(hf_config(arch)).eval()


# (pattern, replacement) applied in order with re.sub to every key; see the module docstring.
_RULES: tuple[tuple[str, str], ...] = (
    (r"^image_encoder\.", "vision_encoder."),
    (r"^vision_encoder\.blocks\.", "vision_encoder.layers."),
    (r"patch_embed\.proj\.", "patch_embed.projection."),
    (r"\.neck\.0\.", ".neck.conv1."),
    (r"\.neck\.1\.", ".neck.layer_norm1."),
    (r"\.neck\.2\.", ".neck.conv2."),
    (r"\.neck\.3\.", ".neck.layer_norm2."),
    (r"\.norm(\d)\.", r".layer_norm\1."),
    (r"\.norm_final_attn\.", ".layer_norm_final_attn."),
    (r"mask_downscaling\.0\.", "mask_embed.conv1."),
    (r"mask_downscaling\.1\.", "mask_embed.layer_norm1."),
    (r"mask_downscaling\.3\.", "mask_embed.conv2."),
    (r"mask_downscaling\.4\.", "mask_embed.layer_norm2."),
    (r"mask_downscaling\.6\.", "mask_embed.conv3."),
    (r"output_upscaling\.0\.", "upscale_conv1."),
    (r"output_upscaling\.1\.", "upscale_layer_norm."),
    (r"output_upscaling\.3\.", "upscale_conv2."),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.layers\.0\.", r"\1.proj_in."),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.layers\.1\.", r"\1.layers.0."),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.layers\.2\.", r"\1.proj_out."),
    (r"\.point_embeddings\.", ".point_embed."),
    (r"pe_layer\.positional_encoding_gaussian_matrix$", "shared_embedding.positional_embedding"),
)
_DROPPED = ("pixel_mean", "pixel_std")


def meta_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Meta-format SAM / MedSAM state dict to transformers' ``SamModel`` names (no loading)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in _DROPPED:
            continue
        new = key
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        if new in out:
            raise ModelNotFound(f"two checkpoint keys map to {new!r} (one is {key!r})")
        out[new] = value
    shared = out.get("prompt_encoder.shared_embedding.positional_embedding")
    if shared is not None:
        out["shared_image_embedding.positional_embedding"] = shared.clone()
    return out


def from_meta_state(state: Mapping[str, torch.Tensor], source: str = "state dict") -> tuple[SamModel, Architecture]:
    """A ``SamModel`` holding ``state`` (Meta names), its architecture detected from the weights; strict."""
    arch = detect_architecture(state)
    model = build_model(arch)
    load_strict(model, meta_to_hf(state), source)
    return model.eval(), arch


def load_meta_checkpoint(path: str | os.PathLike[str]) -> tuple[SamModel, Architecture]:
    """Read Meta's ``sam_vit_*.pth`` or MedSAM's ``medsam_vit_b.pth`` into a transformers ``SamModel``."""
    src = Path(path)
    if not src.is_file():
        raise ModelNotFound(f"checkpoint not found: {str(path)!r} is not a file")
    model, arch = from_meta_state(load_state_dict(src), src.name)
    log.info("%s: SAM %s (detected from the weights)", src.name, arch.name)
    return model, arch


def convert_checkpoint(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: str | None = None,
    overwrite: bool = False,
) -> Architecture:
    """Convert a SAM / MedSAM ``.pth`` to a transformers directory (``config.json`` + ``model.safetensors`` +
    ``volsam.json``), written to a temporary sibling and renamed into place.

    Args:
        config: ``sam-vit-b``, ``sam-vit-l``, ``sam-vit-h`` or ``medsam-vit-b`` to check the weights against
            (the architecture is always read from the weights).
    """
    asked = None
    if config is not None:
        asked = NAMED.get(config.strip().lower())
        if asked is None:
            raise ModelNotFound(f"unknown SAM configuration {config!r}; known: {', '.join(NAMED)}")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists; choose another directory or pass overwrite")
    model, arch = load_meta_checkpoint(path)
    if asked is not None and asked != arch:
        raise ModelNotFound(f"{Path(path).name} holds a SAM {arch.name}, not the {config} asked for with --config")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        model.save_pretrained(tmp, safe_serialization=True)
        info = {"architecture": arch.name, "source": Path(path).name, **{"layout": asdict(arch)}}
        (tmp / "volsam.json").write_text(json.dumps(info) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
    log.info("wrote %s (SAM %s)", out, arch.name)
    return arch
