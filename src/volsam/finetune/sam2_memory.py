"""SAM 2's memory for the differentiable forward passes of :mod:`volsam.finetune.sam2_forward`: the frame
outputs a clip keeps, the memory encoder on a frame's mask, the choice of conditioning frames and the memory
attention of a frame to the bank (as Meta's ``SAM2Base`` computes them; see that module for the conventions
and what was checked against Meta's code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class FrameOutputs:
    """One frame's prediction for a batch of ``B`` samples (``S`` = ``config.image_size``).

    Attributes:
        logits: (B, 1, S/4, S/4) mask logits of the chosen mask (> 0 = object).
        iou: (B, 1) predicted IoU of that mask (ones on a frame whose mask prompt is its output).
        object_score: (B, 1) object-presence logit (> 0 = present).
        multi_logits: (B, M, S/4, S/4) every candidate mask the decoder made (M = 3 with multimask, else 1).
        multi_iou: (B, M) their predicted IoUs.
    """

    logits: torch.Tensor
    iou: torch.Tensor
    object_score: torch.Tensor
    multi_logits: torch.Tensor | None = None
    multi_iou: torch.Tensor | None = None


@dataclass
class Step:
    """A frame's outputs plus what later frames need (object pointer, memory)."""

    out: FrameOutputs
    high_res: torch.Tensor  # (B, 1, S, S) logits of the chosen mask
    pointer: torch.Tensor  # (B, C)
    memory: torch.Tensor | None = None  # (HW, B, mem_dim)
    memory_pos: torch.Tensor | None = None  # (HW, B, mem_dim)


def flat(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (HW, B, C)."""
    return x.flatten(2).permute(2, 0, 1)


def unflat(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(HW, B, C) -> the (B, C, H, W) shape of ``like``."""
    return x.permute(1, 2, 0).reshape(like.shape)


# -- memory ---------------------------------------------------------------------------------------------------
def encode_memory(model: Any, step: Step, raw: torch.Tensor, prompted: bool) -> None:
    """The memory encoder on the frame's raw top-level features (B, C, h, w) and its chosen mask."""
    cfg = model.config
    if prompted and not model.training:
        mask = (step.high_res > 0).to(step.high_res.dtype)  # inference binarises prompted frames
    else:
        mask = torch.sigmoid(step.high_res)
    mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
    features, pos = model.memory_encoder(raw, mask)
    occlusion = model.occlusion_spatial_embedding_parameter
    if occlusion is not None:
        absent = (step.out.object_score <= 0).to(features.dtype)[:, :, None, None]  # (B, 1, 1, 1)
        features = features + absent * occlusion[:, :, None, None]
    step.memory, step.memory_pos = flat(features), flat(pos)


def closest_conditioning(frame: int, cond: dict[int, Step], limit: int) -> tuple[dict[int, Step], dict[int, Step]]:
    """At most ``limit`` conditioning frames (-1 = all): the nearest before, the nearest after, then the
    nearest others (SAM 2's ``select_closest_cond_frames``); returns (selected, the rest)."""
    if limit == -1 or len(cond) <= limit:
        return cond, {}
    picked = [max((t for t in cond if t < frame), default=None), min((t for t in cond if t >= frame), default=None)]
    chosen = [t for t in picked if t is not None]
    rest = sorted((t for t in cond if t not in chosen), key=lambda t: abs(t - frame))
    chosen += rest[: max(limit - len(chosen), 0)]
    return {t: cond[t] for t in chosen}, {t: s for t, s in cond.items() if t not in chosen}


def _sine(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1D sine/cosine encoding of (N,) positions -> (N, dim)."""
    half = dim // 2
    freq = torch.arange(half, dtype=torch.float32, device=positions.device)
    freq = temperature ** (2 * (freq // 2) / half)
    angle = positions[:, None] / freq
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


def condition_on_memory(
    model: Any,
    frame: int,
    feat: torch.Tensor,
    feat_pos: torch.Tensor,
    cond: dict[int, Step],
    tracked: dict[int, Step],
    span: int,
    memory_dtype: torch.dtype | None,
) -> torch.Tensor:
    """Memory attention of the frame's top-level features (HW, B, C) to the memory bank -> (HW, B, C)."""
    cfg = model.config
    batch, channels = feat.shape[1], feat.shape[2]
    selected, unselected = closest_conditioning(frame, cond, cfg.max_cond_frame_num)
    bank: list[tuple[int, Step | None]] = [(0, s) for s in selected.values()]
    for offset in range(model.num_maskmem - 1, 0, -1):  # oldest first; offset = frames before this one
        bank.append((offset, tracked.get(frame - offset, unselected.get(frame - offset))))
    tokens, pos = [], []
    tpos = model.memory_temporal_positional_encoding  # (num_maskmem, 1, 1, mem_dim); [-1] = conditioning
    for offset, step in bank:
        if step is None or step.memory is None:
            continue
        memory = step.memory if memory_dtype is None else step.memory.to(memory_dtype).to(step.memory.dtype)
        tokens.append(memory)
        pos.append(step.memory_pos + tpos[offset - 1])

    # object pointers: conditioning frames (only past ones at inference), then up to span - 1 tracked frames
    max_pointers = min(span, cfg.max_object_pointers_in_encoder)
    eligible = selected if model.training else {t: s for t, s in selected.items() if t <= frame}
    offsets = [frame - t for t in eligible]
    pointers = [s.pointer for s in eligible.values()]
    for back in range(1, max_pointers):
        t = frame - back
        if t < 0:
            break
        step = tracked.get(t, unselected.get(t))
        if step is not None:
            offsets.append(back)
            pointers.append(step.pointer)
    n_pointer_tokens = 0
    if pointers:
        ptr = torch.stack(pointers, dim=0)  # (P, B, C)
        mem_dim = model.mem_dim
        if cfg.enable_temporal_pos_encoding_for_object_pointers:
            rel = torch.tensor(offsets, dtype=torch.float32, device=feat.device) / float(max(max_pointers - 1, 1))
            ptr_pos = model.temporal_positional_encoding_projection_layer(_sine(rel, channels).to(ptr.dtype))
            ptr_pos = ptr_pos[:, None].expand(-1, batch, mem_dim)
        else:
            ptr_pos = ptr.new_zeros(len(pointers), batch, mem_dim)
        if mem_dim < channels:  # each pointer becomes channels / mem_dim tokens
            split = channels // mem_dim
            ptr = ptr.reshape(-1, batch, split, mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            ptr_pos = ptr_pos.repeat_interleave(split, dim=0)
        tokens.append(ptr)
        pos.append(ptr_pos)
        n_pointer_tokens = ptr.shape[0]
    out = model.memory_attention(
        current_vision_features=feat,
        memory=torch.cat(tokens, dim=0),
        current_vision_position_embeddings=feat_pos,
        memory_posision_embeddings=torch.cat(pos, dim=0),
        num_object_pointer_tokens=n_pointer_tokens,
    )  # (1, B, HW, C)
    return out.reshape(batch, -1, channels).transpose(0, 1)


# -- public ---------------------------------------------------------------------------------------------------
