"""Differentiable SAM 2 forward passes for fine-tuning, on transformers' ``Sam2VideoModel``.

transformers' ``Sam2VideoModel.forward`` runs under ``torch.inference_mode`` and keeps its state in a
``Sam2VideoInferenceSession``; training needs neither. These functions call the model's own modules
(vision encoder, prompt encoder, mask decoder, memory attention, memory encoder) directly, batched over
``B`` samples, and keep nothing between calls.

Conventions: ``pixels`` are the model's normalised input (ImageNet mean/std, as
:meth:`volsam.engines.sam2.engine.Sam2Engine.pixels` makes them), square side ``S = model.config.image_size``;
prompts are in pixels of that ``S x S`` input, ``x`` = column, ``y`` = row; boxes ``(x0, y0, x1, y1)``
(the two corners, as SAM 2 encodes them: points labelled 2 and 3). Mask logits come back at ``S/4``
(``> 0`` = object); upsample them (bilinear) for losses at ``S``, as Meta's training does.

The model's mode decides the SAM 2 details that differ between training and inference, exactly as in
Meta's ``SAM2Train`` / ``SAM2Base`` and transformers' model:

* ``model.train()`` (Meta's training): single-mask outputs are mask token 0; the memory encoder sees
  ``sigmoid(logits)`` on every frame; object pointers of every conditioning frame (also later ones) are
  used; memory-attention dropout is on.
* ``model.eval()`` (what :class:`~volsam.engines.sam2.engine.Sam2Engine` does): single-mask outputs fall
  back to the best multimask output when unstable (dynamic multimask via stability); masks of prompted
  frames are binarised for the memory encoder; only past object pointers are used.

Choices that follow Meta's training code (``training/model/sam2.py``, ``sam2/modeling/sam2_base.py``):

* Multimask: on a frame with 0 or 1 prompt points (and on every tracked frame) the decoder predicts three
  masks and the one with the highest predicted IoU is the frame's output (``config.multimask_*``); a box
  (two points) gives one mask. ``FrameOutputs.multi_logits`` / ``multi_iou`` hold every candidate, for
  Meta's loss (the candidate with the lowest mask loss is the one trained).
* Masks are gated by the object score: where it says "absent" the logits are a constant -1024 (no
  gradient to the mask), as in SAM 2 (``NO_OBJ_SCORE``); train the object score with its own loss.
* Memories are *not* detached: gradients flow from every frame's loss back through the memory encoder
  and memory attention into the earlier frames (back-propagation through the clip, as Meta does).
* A frame prompted with a mask uses that mask as its output (``use_mask_input_as_output_without_sam``);
  the decoder then only makes the object pointer, from one mask token as in Meta's ``_use_mask_as_output``
  (transformers' inference path asks its decoder for three masks there: object pointers after a mask
  prompt differ slightly from Sam2Engine's).
* Processing order: every prompted (conditioning) frame first, then the others in increasing order; each
  tracked frame attends to all conditioning frames plus the ``num_maskmem - 1`` frames before it, and to up
  to ``max_object_pointers_in_encoder`` object pointers (``min(T, 16)``, normalised by that span minus one).

Checked (tests/finetune/test_sam2_forward.py, float32 CPU): in eval mode ``frame_forward`` gives Sam2Engine's
prompted-frame logits exactly and ``clip_forward(..., num_frames=16, memory_dtype=torch.bfloat16)`` its
propagated logits to 2e-8; in training mode ``clip_forward`` gives the mask logits of Meta's ``SAM2Base``
stepped as ``SAM2Train`` steps it, to 2e-7.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from volsam.core.errors import InputError, PromptError
from volsam.finetune.sam2_memory import (
    FrameOutputs,
    Step,
    condition_on_memory,
    encode_memory,
    flat,
    unflat,
)

NO_OBJECT_LOGIT = -1024.0  # SAM 2's mask logit where the object score says "absent"
MASK_OUT_SCALE, MASK_OUT_BIAS = 20.0, -10.0  # a mask prompt used as output: 1 -> +10, 0 -> -10
PROMPT_KEYS = ("boxes", "points", "point_labels", "mask_inputs")
RECIPES = ("seed-2024", "medsam2-2025")
# Parameters that SAM 2.1's forward never uses (Meta's no_mem_pos_enc only serves when the "no memory"
# embedding is not added directly): kept frozen so that DDP finds no parameter without a gradient.
UNUSED = ("no_memory_positional_encoding",)


# -- inputs ---------------------------------------------------------------------------------------------------
def _side(model: Any) -> int:
    return int(model.config.image_size)


def _check_pixels(model: Any, pixels: torch.Tensor, ndim: int) -> None:
    s = _side(model)
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != ndim or tuple(pixels.shape[-3:]) != (3, s, s):
        shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        want = "(B, 3, S, S)" if ndim == 4 else "(B, T, 3, S, S)"
        raise InputError(f"pixels must be {want} with S = {s}; got {shape}")


def _points(
    batch: int,
    boxes: torch.Tensor | None,
    points: torch.Tensor | None,
    point_labels: torch.Tensor | None,
    where: str,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Boxes and clicks as SAM 2's point list: (B, N, 2) coordinates and (B, N) int labels, box corners
    first (labels 2 and 3); None without either."""
    coords, labels = [], []
    if boxes is not None:
        if boxes.shape != (batch, 4):
            raise PromptError(f"{where}: boxes must be (B, 4) = ({batch}, 4); got {tuple(boxes.shape)}")
        coords.append(boxes.reshape(batch, 2, 2).float())
        labels.append(torch.tensor([2, 3], device=boxes.device).expand(batch, 2))
    if points is not None:
        if points.ndim != 3 or points.shape[0] != batch or points.shape[2] != 2:
            raise PromptError(f"{where}: points must be (B, N, 2) with B = {batch}; got {tuple(points.shape)}")
        if point_labels is None:
            point_labels = torch.ones(points.shape[:2], dtype=torch.int64, device=points.device)
        if point_labels.shape != points.shape[:2]:
            raise PromptError(
                f"{where}: point_labels must be (B, N) = {tuple(points.shape[:2])}; got {tuple(point_labels.shape)}"
            )
        coords.append(points.float())
        labels.append(point_labels.long())
    elif point_labels is not None:
        raise PromptError(f"{where}: point_labels {tuple(point_labels.shape)} given without points")
    if not coords:
        return None
    return torch.cat(coords, dim=1), torch.cat(labels, dim=1).to(torch.int32)


def _use_multimask(model: Any, conditioning: bool, n_points: int) -> bool:
    """SAM 2's rule (``_use_multimask``): three masks for 0..1 points, on prompted and tracked frames."""
    cfg = model.config
    return bool(
        cfg.multimask_output_in_sam
        and (conditioning or cfg.multimask_output_for_tracking)
        and cfg.multimask_min_pt_num <= n_points <= cfg.multimask_max_pt_num
    )


# -- image features -------------------------------------------------------------------------------------------
def _image_features(model: Any, pixels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Vision encoder + neck on (N, 3, S, S): the three levels as (N, C_l, H_l, W_l) (high-resolution levels
    already projected for the decoder) and the last level's position encoding as (HW, N, C)."""
    out = model.get_image_features(pixels)
    n = pixels.shape[0]
    levels = [
        f.permute(1, 2, 0).reshape(n, -1, *size)
        for f, size in zip(out.fpn_hidden_states, model.config.vision_config.backbone_feature_sizes)
    ]
    return levels, out.fpn_position_encoding[-1]


# -- prompt encoder + mask decoder ----------------------------------------------------------------------------
def _decode(
    model: Any,
    levels: list[torch.Tensor],
    image: torch.Tensor,
    prompt: tuple[torch.Tensor, torch.Tensor] | None,
    dense_mask: torch.Tensor | None,
    multimask: bool,
) -> Step:
    """SAM heads on ``image`` (B, C, h, w) with the two high-resolution ``levels``: gated masks, the chosen
    one, its IoU, the object score and the object pointer (SAM 2's ``_forward_sam_heads``)."""
    batch = image.shape[0]
    if prompt is None:  # no point: SAM 2 feeds one padding point
        coords = image.new_zeros(batch, 1, 2)
        labels = -torch.ones(batch, 1, dtype=torch.int32, device=image.device)
    else:
        coords, labels = prompt
    sparse, dense = model.prompt_encoder(
        input_points=coords[:, None].to(image.dtype),
        input_labels=labels[:, None],
        input_boxes=None,
        input_masks=dense_mask,
    )
    wide = model.get_image_wide_positional_embeddings().repeat(batch, 1, 1, 1)
    masks, iou, tokens, score = model.mask_decoder(
        image_embeddings=image,
        image_positional_embeddings=wide,
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        high_resolution_features=levels[:2],
    )
    masks, iou, tokens, score = masks[:, 0], iou[:, 0], tokens[:, 0], score[:, 0]  # one object per sample
    present = score > 0  # (B, 1)
    masks = torch.where(present[:, :, None, None], masks, torch.full_like(masks, NO_OBJECT_LOGIT))
    if multimask:
        best = iou.argmax(dim=-1)
        rows = torch.arange(batch, device=image.device)
        chosen, chosen_iou, token = masks[rows, best][:, None], iou[rows, best][:, None], tokens[rows, best]
    else:
        chosen, chosen_iou, token = masks[:, :1], iou[:, :1], tokens[:, 0]
    pointer = model.object_pointer_proj(token)
    weight = present.to(pointer.dtype)
    pointer = weight * pointer + (1 - weight) * model.no_object_pointer
    side = _side(model)
    high_res = F.interpolate(chosen.float(), size=(side, side), mode="bilinear", align_corners=False)
    out = FrameOutputs(chosen, chosen_iou, score, masks, iou)
    return Step(out, high_res.to(chosen.dtype), pointer)


def _mask_as_output(model: Any, levels: list[torch.Tensor], mask: torch.Tensor) -> Step:
    """A mask prompt (B, 1, h, w), ``> 0`` = object, becomes the frame's output; the decoder, fed the
    downsampled mask, only makes the object pointer (SAM 2's ``_use_mask_as_output``)."""
    side = _side(model)
    image = levels[-1]
    binary = (mask > 0).to(image.dtype)
    if binary.shape[-2:] != (side, side):
        binary = F.interpolate(binary.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        binary = binary.to(image.dtype)
    high_res = binary * MASK_OUT_SCALE + MASK_OUT_BIAS
    low = F.interpolate(
        high_res.float(),
        size=model.prompt_encoder.mask_input_size,
        mode="bilinear",
        align_corners=False,
        antialias=True,
    ).to(image.dtype)
    pointer = _decode(model, levels, image, None, model.mask_downsample(binary), multimask=False).pointer
    present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).to(image.dtype)  # (B, 1)
    pointer = present * pointer + (1 - present) * model.no_object_pointer
    score = MASK_OUT_SCALE * present + MASK_OUT_BIAS
    ones = present.new_ones(present.shape)
    return Step(FrameOutputs(low, ones, score, low, ones), high_res, pointer)


def frame_forward(
    model: Any,
    pixels: torch.Tensor,
    *,
    boxes: torch.Tensor | None = None,
    points: torch.Tensor | None = None,
    point_labels: torch.Tensor | None = None,
    mask_inputs: torch.Tensor | None = None,
    multimask: bool = False,
) -> FrameOutputs:
    """Single image (the 2D recipe, no memory), differentiable: SAM 2 on a prompted frame.

    Args:
        model: a transformers ``Sam2VideoModel``.
        pixels: (B, 3, S, S) already normalised (ImageNet mean/std, as ``Sam2Engine.pixels`` makes them).
        boxes: (B, 4) ``x0, y0, x1, y1`` in pixels of the S x S input.
        points: (B, N, 2) ``x, y`` in pixels of the S x S input.
        point_labels: (B, N) 1 = positive, 0 = negative, -1 = padding (default: all positive).
        mask_inputs: (B, 1, S/4, S/4) mask logits fed to the prompt encoder as a dense prompt, or None.
        multimask: predict three masks and return the one with the highest predicted IoU.

    Returns:
        :class:`FrameOutputs` (logits at S/4). With ``model.eval()`` and ``multimask=False`` this is the
        inference engine's prompted frame.
    """
    _check_pixels(model, pixels, 4)
    batch = pixels.shape[0]
    prompt = _points(batch, boxes, points, point_labels, "frame_forward")
    if mask_inputs is not None:
        low = tuple(model.prompt_encoder.mask_input_size)
        if mask_inputs.shape != (batch, 1, *low):
            raise PromptError(
                f"frame_forward: mask_inputs must be (B, 1, S/4, S/4) = ({batch}, 1, {low[0]}, {low[1]}); "
                f"got {tuple(mask_inputs.shape)}"
            )
    levels, _ = _image_features(model, pixels)
    image = unflat(flat(levels[-1]) + model.no_memory_embedding, levels[-1])
    return _decode(model, levels, image, prompt, mask_inputs, multimask).out


def clip_forward(
    model: Any,
    pixels: torch.Tensor,
    prompts: dict[int, dict[str, torch.Tensor]],
    *,
    num_frames: int | None = None,
    memory_dtype: torch.dtype | None = None,
) -> list[FrameOutputs]:
    """A clip through memory attention, as SAM 2 is trained (see the module docstring for the choices).

    Args:
        model: a transformers ``Sam2VideoModel`` (its train/eval mode picks training or inference behaviour).
        pixels: (B, T, 3, S, S) normalised frames.
        prompts: frame index -> ``{"boxes"/"points"/"point_labels"/"mask_inputs": tensor}`` with shapes as in
            :func:`frame_forward`, except that ``mask_inputs`` here is a mask (B, 1, h, w) of any square size,
            ``> 0`` = object (a 0/1 ground truth or logits), that becomes the frame's output; a frame has
            either a mask or boxes/points. Prompted frames are conditioning frames; every other frame is
            predicted from memory (memory encoder of each frame's prediction feeds the following frames, up to
            ``config.num_maskmem``). Tracking runs forward only, as in Meta's training (which always prompts
            frame 0): frames before the first prompted one see it as a future conditioning frame.
        num_frames: the video length the object-pointer temporal encoding assumes (default T, as Meta's
            training; the streaming inference engine behaves as if it were 16 or more).
        memory_dtype: round memory features through this dtype before use (inference predictors store them
            in bfloat16; training keeps full precision: leave None).

    Returns:
        One :class:`FrameOutputs` per frame, in frame order.
    """
    _check_pixels(model, pixels, 5)
    batch, length = pixels.shape[:2]
    if not prompts:
        raise PromptError("clip_forward: no prompted frame; SAM 2 needs at least one conditioning frame")
    parsed: dict[int, tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]] = {}
    for t, prompt in prompts.items():
        if not isinstance(t, int) or not 0 <= t < length:
            raise PromptError(f"clip_forward: prompted frame {t!r} is not in 0..{length - 1}")
        unknown = sorted(set(prompt) - set(PROMPT_KEYS))
        if unknown:
            raise PromptError(f"clip_forward: frame {t}: unknown prompt keys {unknown}; known: {list(PROMPT_KEYS)}")
        where = f"clip_forward: frame {t}"
        points = _points(batch, prompt.get("boxes"), prompt.get("points"), prompt.get("point_labels"), where)
        mask = prompt.get("mask_inputs")
        if mask is not None and points is not None:
            raise PromptError(f"{where}: give a mask or boxes/points, not both")
        if mask is None and points is None:
            raise PromptError(f"{where}: empty prompt {prompt!r}")
        if mask is not None and (mask.ndim != 4 or mask.shape[:2] != (batch, 1) or mask.shape[2] != mask.shape[3]):
            raise PromptError(f"{where}: mask_inputs must be (B, 1, h, h) with B = {batch}; got {tuple(mask.shape)}")
        parsed[t] = (points, mask)

    levels, pos = _image_features(model, pixels.flatten(0, 1))  # frames of sample b at rows b*T .. b*T+T-1

    def frame_levels(t: int) -> list[torch.Tensor]:
        return [x.unflatten(0, (batch, length))[:, t] for x in levels]

    all_pos = pos.unflatten(1, (batch, length))  # (HW, B, T, C)
    order = sorted(parsed) + [t for t in range(length) if t not in parsed]
    cond: dict[int, Step] = {}
    tracked: dict[int, Step] = {}
    span = length if num_frames is None else int(num_frames)
    for n, t in enumerate(order):
        lv = frame_levels(t)
        raw = lv[-1]
        if t in parsed:
            points, mask = parsed[t]
            if mask is not None:
                step = _mask_as_output(model, lv, mask.to(raw.dtype))
            else:
                image = unflat(flat(raw) + model.no_memory_embedding, raw)
                multimask = _use_multimask(model, True, points[1].shape[1])
                step = _decode(model, lv, image, points, None, multimask)
            cond[t] = step
        else:
            fused = condition_on_memory(model, t, flat(raw), all_pos[:, :, t], cond, tracked, span, memory_dtype)
            step = _decode(model, lv, unflat(fused, raw), None, None, _use_multimask(model, False, 0))
            tracked[t] = step
        if n + 1 < len(order):  # the last frame's memory would feed nothing
            encode_memory(model, step, raw, prompted=t in parsed)
    return [(cond.get(t) or tracked[t]).out for t in range(length)]


def trainable_groups(model: Any, recipe: str) -> dict[str, list[torch.nn.Parameter]]:
    """Parameter groups per recipe, setting ``requires_grad`` to match.

    ``"seed-2024"`` -> ``{"vision": image encoder, "decoder": mask decoder}`` (prompt encoder and memory
    parts frozen: ``requires_grad`` False); ``"medsam2-2025"`` -> ``{"vision": vision encoder, "other":
    everything else}``. Parameters SAM 2.1's forward never uses (:data:`UNUSED`) stay frozen in both.

    Under DDP: in ``medsam2-2025`` the prompt encoder's mask embedding and ``mask_downsample`` only get a
    gradient from frames with a mask prompt.
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown SAM 2 fine-tuning recipe {recipe!r}; known: {', '.join(RECIPES)}")
    vision = list(model.vision_encoder.parameters())
    if recipe == "seed-2024":
        groups = {"vision": vision, "decoder": list(model.mask_decoder.parameters())}
    else:
        taken = {id(p) for p in vision} | {id(getattr(model, name)) for name in UNUSED if hasattr(model, name)}
        groups = {"vision": vision, "other": [p for p in model.parameters() if id(p) not in taken]}
    trained = {id(p) for params in groups.values() for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    return groups
