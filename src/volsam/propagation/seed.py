"""The prompted frame: its mask from the user's box and / or clicks (:func:`predict_seed`)."""

from __future__ import annotations

import numpy as np

from volsam.core.errors import PromptError
from volsam.engines.base import SliceEmbedding, SliceEngine
from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.frames import BoxXY, expand_box, mask_box
from volsam.propagation.settings import PropagationSettings


def predict_seed(
    cache: EmbeddingCache,
    s: int,
    *,
    box: BoxXY | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    settings: PropagationSettings | None = None,
    limit: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float]:
    """Segment the prompted frame ``s`` from a box and/or points (frame pixels); returns (bool mask (H, W),
    score).

    With the volsam strategy the model is prompted with the box plus the margin of the settings, and the mask
    is cut to the box itself: the user said the object is inside it. Clicks alone: see
    :func:`predict_from_points`.
    """
    settings = settings or PropagationSettings()
    if box is None and points is None:
        raise PromptError("a prompted slice needs a box or points")
    emb = cache.get(s, 1, limit)
    if box is None:  # LiteMedSAM was trained on boxes: grow a box from the clicks
        return predict_from_points(cache.engine, emb, points, point_labels, settings)
    prompt_box = expand_box(box, settings.box_margin, emb.frame_shape) if settings.volsam else box
    pred = cache.engine.predict(emb, box=prompt_box, points=points, point_labels=point_labels)
    mask = pred.mask
    if settings.volsam:
        x0, y0, x1, y1 = (int(round(c)) for c in box)
        inside = np.zeros_like(mask)
        inside[y0 : y1 + 1, x0 : x1 + 1] = True
        mask = mask & inside
    return mask, pred.score


def predict_from_points(
    engine: SliceEngine,
    emb: SliceEmbedding,
    points: np.ndarray,
    labels: np.ndarray | None,
    settings: PropagationSettings | None = None,
) -> tuple[np.ndarray, float]:
    """Clicks only: start from a box around the object clicks (``settings.click_pad_*`` on each side), then
    prompt again with the result's box grown by ``settings.click_refine_*`` until the box settles
    (``click_settle_px``) or ``click_rounds`` are done; a round whose mask misses an object click ends it (its
    mask is not taken). Returns (bool mask (H, W), score); an empty mask when the first round misses."""
    settings = settings or PropagationSettings()
    points = np.asarray(points, dtype=np.float32)
    labels = np.ones(len(points), np.int64) if labels is None else np.asarray(labels)
    pos = points[labels == 1]
    if pos.size == 0:
        raise PromptError("only negative points given: add a box or a positive point on the object")
    h, w = emb.frame_shape
    pad = max(settings.click_pad_min, settings.click_pad_fraction * min(h, w))
    box = expand_box((*pos.min(axis=0), *pos.max(axis=0)), pad, (h, w))
    best = (np.zeros((h, w), bool), 0.0)
    for _ in range(settings.click_rounds):
        pred = engine.predict(emb, box=box, points=points, point_labels=labels)
        inside = [pred.mask[int(round(y)), int(round(x))] for x, y in pos]
        if not all(inside):
            break
        best = (pred.mask, pred.score)
        tight = mask_box(pred.mask)
        if tight is None:
            break
        margin = max(
            settings.click_refine_min, settings.click_refine_fraction * max(tight[2] - tight[0], tight[3] - tight[1])
        )
        new_box = expand_box(tight, margin, (h, w))
        if np.allclose(new_box, box, atol=settings.click_settle_px):
            break
        box = new_box
    return best
