"""Loss parts against values derived by hand."""

from __future__ import annotations

import math

import pytest
import torch

from volsam.finetune.config import LossConfig
from volsam.finetune.losses import bce_loss, compute_loss, dice_loss, dice_score, focal_loss, hard_iou


def _frame(pixels: list[tuple[int, int]], value: float = 1.0, fill: float = 0.0) -> torch.Tensor:
    x = torch.full((1, 4, 4), fill)
    for r, c in pixels:
        x[0, r, c] = value
    return x


def test_dice_loss_is_zero_when_confidently_right_and_near_one_when_wrong():
    truth = _frame([(0, 0), (1, 1)])
    right = _frame([(0, 0), (1, 1)], 50.0, -50.0)
    wrong = _frame([(2, 2), (3, 3)], 50.0, -50.0)
    assert float(dice_loss(right, truth)[0]) == pytest.approx(0.0, abs=1e-6)
    # soft Dice with eps 1: 1 - (0 + 1) / (2 + 2 + 1)
    assert float(dice_loss(wrong, truth)[0]) == pytest.approx(1 - 1 / 5, abs=1e-6)


def test_focal_reduces_to_bce_and_down_weights_easy_pixels():
    logits, truth = torch.tensor([[[2.0, -1.0]]]), torch.tensor([[[1.0, 0.0]]])
    assert torch.allclose(focal_loss(logits, truth, alpha=-1, gamma=0), bce_loss(logits, truth))
    # pixel 1: p = sigmoid(2), ce = -log p, weight (1 - p)^2 * alpha; pixel 2: p(0) = 1 - sigmoid(-1)
    p1, p2 = 1 / (1 + math.exp(-2)), 1 - 1 / (1 + math.exp(1))
    expected = (0.25 * (1 - p1) ** 2 * -math.log(p1) + 0.75 * (1 - p2) ** 2 * -math.log(p2)) / 2
    assert float(focal_loss(logits, truth, alpha=0.25, gamma=2)[0]) == pytest.approx(expected, rel=1e-5)


def test_hard_iou_and_dice_score_by_hand():
    pred = _frame([(0, 0), (0, 1)], 1.0, -1.0)
    truth = _frame([(0, 1), (1, 1), (2, 1)])
    assert float(hard_iou(pred, truth)[0]) == pytest.approx(1 / 4)
    assert float(dice_score(pred, truth)) == pytest.approx(2 * 1 / (2 + 3))
    empty = torch.zeros(1, 4, 4)
    assert float(hard_iou(empty - 1, empty)[0]) == 1.0 and float(dice_score(empty - 1, empty)) == 1.0


def test_medsam2_weights_and_absent_frames():
    """Mask, Dice and IoU count only frames that hold the object; the object score sees every frame."""
    cfg = LossConfig(mask=20, dice=1, iou=1, object_score=1, mask_kind="focal")
    truth = torch.cat([_frame([(1, 1)]), torch.zeros(1, 4, 4)])
    logits = torch.cat([_frame([(1, 1)], 3.0, -3.0), torch.randn(1, 4, 4) * 5])  # garbage on the empty frame
    present = torch.tensor([1.0, 0.0])
    iou_pred, obj = torch.tensor([0.5, 0.9]), torch.tensor([2.0, -2.0])
    out = compute_loss(cfg, logits, truth, iou_pred, obj, present)
    first = compute_loss(cfg, logits[:1], truth[:1], iou_pred[:1], obj[:1], present[:1])
    for key in ("mask", "dice", "iou"):
        assert torch.allclose(out.parts[key], first.parts[key])
    assert float(out.parts["iou"]) == pytest.approx(0.5)  # predicted 0.5, actual IoU 1
    bce = -(math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(2)))) / 2
    assert float(out.parts["object_score"]) == pytest.approx(bce, rel=1e-5)
    weighted = 20 * out.parts["mask"] + out.parts["dice"] + out.parts["iou"] + out.parts["object_score"]
    assert torch.allclose(out.total, weighted)


def test_dice_bce_supervises_every_frame_and_skips_unweighted_parts():
    cfg = LossConfig()  # mask (bce) 1 + dice 1
    truth = torch.cat([_frame([(1, 1)]), torch.zeros(1, 4, 4)])
    logits = torch.zeros(2, 4, 4, requires_grad=True)
    out = compute_loss(cfg, logits, truth, torch.ones(2), None, torch.tensor([1.0, 0.0]))
    assert set(out.parts) == {"mask", "dice"}
    assert float(out.parts["mask"].detach()) == pytest.approx(math.log(2))
    out.total.backward()
    assert logits.grad is not None and logits.grad[1].abs().sum() > 0  # the empty frame is trained too


def test_the_best_candidate_mask_is_trained_and_every_candidate_iou():
    """SAM 2 training: of M candidate masks the one with the lowest mask + Dice loss is supervised."""
    cfg = LossConfig(mask=20, dice=1, iou=1, object_score=1, mask_kind="focal")
    truth = _frame([(1, 1), (1, 2)])
    right = _frame([(1, 1), (1, 2)], 8.0, -8.0)
    wrong = _frame([(3, 3)], 8.0, -8.0)
    multi = torch.stack([wrong[0], right[0]])[None]  # (N=1, M=2, 4, 4)
    multi_iou = torch.tensor([[0.9, 0.4]])
    out = compute_loss(cfg, wrong, truth, torch.tensor([0.9]), torch.tensor([3.0]), torch.ones(1), multi, multi_iou)
    alone = compute_loss(cfg, right, truth, torch.tensor([0.4]), torch.tensor([3.0]), torch.ones(1))
    assert torch.allclose(out.parts["mask"], alone.parts["mask"]) and torch.allclose(
        out.parts["dice"], alone.parts["dice"]
    )
    # actual IoUs 0 (wrong) and 1 (right): |0.9 - 0| and |0.4 - 1|, averaged
    assert float(out.parts["iou"]) == pytest.approx((0.9 + 0.6) / 2)
