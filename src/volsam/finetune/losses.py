"""Training losses over frames: mask (BCE or focal), soft Dice, IoU prediction, object score.

Shapes: ``logits`` (N, S, S) mask logits of N frames (already upsampled to the input side S); ``truth``
(N, S, S) 0/1; ``iou_pred`` (N,) predicted IoU; ``object_logit`` (N,) object-presence logits; ``present``
(N,) 1 where the frame holds the object. Each part is a mean over frames.

* seed-2024 and medsam-lite: ``mask`` (binary cross-entropy) + ``dice``, weights 1 : 1.
* medsam2-2025 (MedSAM2 / SAM 2 training): focal mask loss 20 : Dice 1 : IoU 1 : object score 1, where the
  mask, Dice and IoU parts count only frames that hold the object (SAM 2 does not supervise the mask of a
  frame it should call empty) and the object score is a BCE on presence. The IoU target is the IoU of the
  thresholded prediction with the truth, the loss an L1 distance (as SAM 2's ``iou_use_l1_loss``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from volsam.finetune.config import LossConfig


@dataclass
class LossParts:
    """The total (weighted sum) and each unweighted part, scalar tensors."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def dice_loss(logits: torch.Tensor, truth: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Per-frame soft Dice loss ``1 - (2|p t| + eps) / (|p| + |t| + eps)``, shape (N,)."""
    p = torch.sigmoid(logits).flatten(1)
    t = truth.flatten(1)
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def focal_loss(logits: torch.Tensor, truth: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Per-frame sigmoid focal loss (mean over pixels), shape (N,)."""
    ce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * truth + (1 - p) * (1 - truth)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * truth + (1 - alpha) * (1 - truth)) * loss
    return loss.flatten(1).mean(1)


def bce_loss(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-frame binary cross-entropy (mean over pixels), shape (N,)."""
    return F.binary_cross_entropy_with_logits(logits, truth, reduction="none").flatten(1).mean(1)


def hard_iou(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with ``truth`` per frame (1 when both are empty), no gradient, shape (N,)."""
    with torch.no_grad():
        pred = (logits > 0).flatten(1)
        t = truth.flatten(1) > 0.5
        inter = (pred & t).sum(1).float()
        union = (pred | t).sum(1).float()
        return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def _mask_part(cfg: LossConfig, logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    if cfg.mask_kind == "focal":
        return focal_loss(logits, truth, cfg.focal_alpha, cfg.focal_gamma)
    return bce_loss(logits, truth)


def compute_loss(
    cfg: LossConfig,
    logits: torch.Tensor,
    truth: torch.Tensor,
    iou_pred: torch.Tensor | None = None,
    object_logit: torch.Tensor | None = None,
    present: torch.Tensor | None = None,
    multi_logits: torch.Tensor | None = None,
    multi_iou: torch.Tensor | None = None,
) -> LossParts:
    """The recipe's weighted loss (see the module notes); parts with weight 0 are not computed.

    With ``multi_logits`` (N, M, S, S) and ``multi_iou`` (N, M) -- every candidate mask of a frame -- the mask
    and Dice parts are those of the candidate with the lowest ``mask x w_mask + dice x w_dice`` (SAM 2's
    training trains the best of its multimask outputs) and the IoU part covers every candidate.
    """
    logits, truth = logits.float(), truth.float()
    n = logits.shape[0]
    present = torch.ones(n, device=logits.device) if present is None else present.float()
    # without an object-score part every frame's mask is supervised (an empty truth teaches "predict nothing")
    weight = present if cfg.object_score > 0 else torch.ones_like(present)
    parts: dict[str, torch.Tensor] = {}
    if multi_logits is not None and multi_iou is not None:
        m = multi_logits.shape[1]
        flat = multi_logits.float().flatten(0, 1)
        truths = truth[:, None].expand(-1, m, -1, -1).flatten(0, 1)
        mask_m = _mask_part(cfg, flat, truths).view(n, m)
        dice_m = dice_loss(flat, truths).view(n, m)
        best = torch.argmin((cfg.mask * mask_m + cfg.dice * dice_m).detach(), dim=1, keepdim=True)
        if cfg.mask > 0:
            parts["mask"] = _masked_mean(mask_m.gather(1, best)[:, 0], weight)
        if cfg.dice > 0:
            parts["dice"] = _masked_mean(dice_m.gather(1, best)[:, 0], weight)
        if cfg.iou > 0:
            actual = hard_iou(flat, truths).view(n, m)
            parts["iou"] = _masked_mean((multi_iou.float() - actual).abs().mean(1), weight)
    else:
        if cfg.mask > 0:
            parts["mask"] = _masked_mean(_mask_part(cfg, logits, truth), weight)
        if cfg.dice > 0:
            parts["dice"] = _masked_mean(dice_loss(logits, truth), weight)
        if cfg.iou > 0 and iou_pred is not None:
            parts["iou"] = _masked_mean((iou_pred.float() - hard_iou(logits, truth)).abs(), weight)
    if cfg.object_score > 0 and object_logit is not None:
        parts["object_score"] = F.binary_cross_entropy_with_logits(object_logit.float(), present)
    weights = {"mask": cfg.mask, "dice": cfg.dice, "iou": cfg.iou, "object_score": cfg.object_score}
    total = sum((weights[k] * v for k, v in parts.items()), torch.zeros((), device=logits.device))
    return LossParts(total, parts)


def dice_score(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Hard Dice of ``logits > 0`` against ``truth`` over all given pixels (one clip), a scalar; 1 if both empty."""
    pred = logits > 0
    t = truth > 0.5
    denom = pred.sum() + t.sum()
    if denom == 0:
        return torch.ones((), device=logits.device)
    return 2 * (pred & t).sum().float() / denom.float()
