"""Following an object through a video with a slice engine (LiteMedSAM): :func:`follow`, the video
counterpart of :func:`volsam.propagation.walk.propagate`.

The volume walk prompts each frame with boxes grown from the previous frame's mask and keeps the mask that
best fits the prompted frame's grey-level appearance. In a video the object moves, turns and changes shape
between frames, so once a mask covers only part of the object every box grown from it is too small, and once
the object is lost (it left the view, or the model's answer broke a stop rule) the walk has nothing to grow
from. :func:`follow` keeps the walk's proposals and rules and adds, for videos:

* **appearance boxes** (``PropagationSettings.appearance_boxes``): the pixels that look like the object
  (the appearance model's log-ratio > 0 on a frame smoothed by ``appearance_smooth`` px, which speckle needs)
  connected to the previous mask (moved by the object's last shift) within ``growth_limit`` px of it, give one
  more box proposal: its box follows the whole object even when the previous mask held half of it. Every
  proposal is still judged by the appearance fit (sum of log-ratios over its mask) and cut by the growth
  limit.
* **regrowth** (``regrow_px``): LiteMedSAM under-segments a dark object in speckle (on the benchmark's base
  clip its masks missed 200-450 of 1100-1400 px and added almost none); each yielded mask is grown by up to
  ``regrow_px`` px into the object-like pixels touching it and its holes filled. The walk goes on from the
  model's own mask (the boxes and the growth limit are not fed by the regrowth) unless ``follow_regrown``
  (off: it helps some clips and hurts a low-contrast one, see the setting).
* **regrowth up to the prompted frame's area** (``regrow_more_px``): a written mask still smaller than the
  prompted frame's written mask grows on, up to ``regrow_more_px`` px more, into the object-like pixels
  touching it. LiteMedSAM's own masks hold 30-60 % of a low-contrast object even where its boxes are good;
  an object keeps about its size in a video, and that area bounds a leak into object-like tissue (on the
  benchmark's contrast-low clip, seed 1, the same reach without the bound lowered the mean Dice).
* **search when lost** (``search_lost``): a frame whose answer breaks a stop rule is left empty and the
  direction goes on searching: each next frame's object-like regions of at least ``search_min_area`` x the
  prompted frame's area are prompted (largest fit first, at most ``search_candidates``); the first answer
  that passes the stop rules (score, object-like share) and is at least that large is taken and following
  resumes from it. An object that leaves the view and comes back is found again. When it was lost at the
  frame's border (its last mask within 3 px of it), the largest object-like region touching that stretch
  of the border (:func:`exit_zone`: within the object's diameter of where it left) is also prompted from
  ``search_edge_min_area`` x the prompted frame's area: it comes back in part, a sliver at first. On the
  benchmark's leaves-view clip (seed 0) this finds it 3 frames earlier (frame 32, 124 px in view, instead of
  35) and the mean Dice goes from 0.683 to 0.730. LiteMedSAM's answer to an object half back in view often
  takes grey tissue beside it and is refused (under half of it object-like); with ``search_edge_region``
  the object-like region there is taken instead (holes filled; the model's score must still pass).

* **the box's surroundings** (``box_surroundings``): the appearance model is the prompted frame's (smoothed)
  mask against the ring around it; where LiteMedSAM under-segments (strong speckle: on the benchmark's
  speckle-full clip, seed 1, it answers 925 of 1406 px on frame 0) that ring lies inside the object, the two
  look alike and every appearance rule above was off -- the walk shrank to a sliver (mean Dice 0.20). When
  the mask's ring does not separate and the prompt had a box, the ring just outside the box (:func:`box_ring`)
  is the surroundings instead (0.20 -> 0.88 on that clip; held out, seed 2: 0.18 -> 0.90).
* **size memory** (``area_memory``): where the appearance model is weak (separability below
  ``area_memory_below``: low contrast, strong speckle) object-like tissue surrounds the object and nothing
  in the grey levels bounds a leak; LiteMedSAM's boxes, grown from each mask, then let it creep (the
  benchmark's contrast-low clip, seed 4: from 1400 px to 4400 px for a 1050-1450 px object). Each proposal's
  mask and each written mask is cut to ``area_memory`` x the prompted frame's written area, keeping the
  pixels nearest the previous mask (:func:`bound_area`); the walk goes on from the cut mask.
* **where it left, remembered** (``exit_memory``, ``search_edge_touch``): an object-like region where the
  object left the view is taken as its return only when it reaches the border (within ``search_edge_touch``
  px; dark speckle a few px inside it is not the object coming back), and when a find is lost again within
  ``exit_memory`` frames, the place it left stays searched (a find of tissue inside the view no longer
  makes the walk forget it).
* **the object-like share judged against the prompted mask** (``relative_object_fraction``, off by
  default: it measured mixed): a mask needs at most that times the prompted frame's own mask's object-like
  share: where the appearance model is weak the prompted mask itself is only 66-80 % object-like and correct
  later masks (43-49 %) were taken for a lost object.
* **the search's area check** (``search_area_check``): an answer found by the search must pass the
  area-jump rule against the prompted frame's area, as each followed frame does against the previous one
  (a low-contrast clip was "found again" as a mask four times the object over object-like tissue).
* **temporal smoothing** (``temporal_reach``): each written mask (not the prompted frame's) is the
  signed-distance mean of its own and those of the frames up to that many before and after it in the same
  direction (moved onto its centroid; :func:`~volsam.propagation.temporal.smooth_direction`): LiteMedSAM's
  masks jitter from frame to frame where it is unsure (low contrast, strong speckle). A frame is written once
  the frames after it are walked; a walk limited to a range reads that many frames past its ends, so the
  range's masks are the whole video's.
* **speckle reduction** (``despeckle``): the frames the model encodes are median-filtered first
  (:mod:`volsam.propagation.despeckle`); the rules above read the frames as they are.
* **lost inside the view, looked for where it was** (``search_last_place``, ``search_reach``): most losses
  inside the view are one doubted answer (a score just under ``min_score``, a mask spilling onto tissue)
  while the object stays where it was, and the search's first choice by size was dark tissue elsewhere (the
  benchmark's all-hard clip, seed 3: "found again" 68 px away). The searched frames first prompt the
  proposals of the last mask in place, taken when they pass the stop rules against its area
  (:func:`_search`), and a region the search takes must lie within ``search_reach`` px a frame of the
  last mask (counted from its frame). Where the object left through the border neither applies: it comes
  back where it left.

The appearance model is the prompted frame's (smoothed) object and surroundings; without one (they look
alike) neither rule applies and a broken rule ends the direction, as in the volume walk. A searched frame's
object-like regions are labelled once (:class:`ObjectRegions`) for both kinds of candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError
from volsam.engines.base import FrameSource, SliceEngine
from volsam.propagation.appearance import AppearanceModel
from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.despeckle import model_frames
from volsam.propagation.frames import BoxXY, centroid, expand_box, intensity, mask_box, shift_mask
from volsam.propagation.settings import PropagationSettings
from volsam.propagation.stops import frame_stop
from volsam.propagation.temporal import smooth_direction
from volsam.propagation.walk import SliceResult, propagate

log = logging.getLogger(__name__)


def smoothed(frame: np.ndarray, sigma: float) -> np.ndarray:
    """The grey of a delivered frame, Gaussian-smoothed by ``sigma`` px (0: as it is), as uint8."""
    grey = intensity(frame)
    if sigma <= 0:
        return grey
    return np.clip(np.rint(ndimage.gaussian_filter(grey.astype(np.float32), sigma)), 0, 255).astype(np.uint8)


class _BoxAppearance(AppearanceModel):
    """An appearance model whose surroundings are given as pixels, not as the ring around the mask."""

    def add(self, frame: np.ndarray, inside: np.ndarray, around: np.ndarray) -> None:
        """Add ``frame``'s ``inside`` pixels to the object's histogram and its ``around`` pixels to the
        surroundings' (bool (H, W) masks)."""
        bins = self._bins(frame)
        self._inside += np.bincount(bins[inside], minlength=len(self._inside))
        self._around += np.bincount(bins[around], minlength=len(self._around))


def box_ring(box: BoxXY, width: int, shape: tuple[int, int]) -> np.ndarray:
    """The ring of ``width`` px just outside ``box`` ``(x0, y0, x1, y1)`` (inclusive px), bool ``shape`` (H, W)."""
    h, w = shape
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), w - 1), min(int(np.ceil(box[3])), h - 1)
    inner = np.zeros(shape, bool)
    inner[y0 : y1 + 1, x0 : x1 + 1] = True
    outer = np.zeros(shape, bool)
    outer[max(y0 - width, 0) : y1 + width + 1, max(x0 - width, 0) : x1 + width + 1] = True
    return outer & ~inner


def video_appearance(
    frame: np.ndarray, mask: np.ndarray, settings: PropagationSettings, box: BoxXY | None = None
) -> AppearanceModel | None:
    """The prompted frame's appearance model on its smoothed grey (``appearance_smooth``); None when object
    and surroundings do not separate (``min_separability``). With the user's ``box`` and ``box_surroundings``
    the surroundings are the ring just outside that box (the object lies inside it), not the ring around the
    model's mask, which lies inside the object where the model under-segments it."""
    grey = smoothed(frame, settings.appearance_smooth)
    model = AppearanceModel(settings.ring_width)
    model.update(grey, mask)
    if model.separability() < settings.min_separability and box is not None and settings.box_surroundings:
        boxed = _BoxAppearance(settings.ring_width)
        boxed.add(grey, mask, box_ring(box, settings.ring_width, mask.shape))
        log.info(
            "object and the ring around its mask look alike (separability %.2f); with the ring outside the "
            "prompt's box: %.2f", model.separability(), boxed.separability(),
        )  # fmt: skip
        model = boxed
    log.debug("appearance model separability %.2f", model.separability())
    if model.separability() < settings.min_separability:
        log.info("object and surroundings look alike (separability %.2f): appearance rules off", model.separability())
        return None
    return model


@dataclass(frozen=True)
class ObjectRegions:
    """A frame's 8-connected regions of object-like pixels (``ratio > 0``), labelled once: their label image,
    areas (px) and labels ordered by their sum of ``ratio``, the largest first."""

    labels: np.ndarray
    areas: np.ndarray
    order: tuple[int, ...]

    @classmethod
    def of(cls, ratio: np.ndarray) -> ObjectRegions:
        """Label the object-like pixels of the log-ratio map ``ratio`` (float (H, W))."""
        labels, n = ndimage.label(ratio > 0, structure=np.ones((3, 3), bool))
        areas = np.bincount(labels.ravel(), minlength=n + 1)
        sums = ndimage.sum_labels(ratio, labels, np.arange(n + 1)) if n else np.zeros(1)
        return cls(labels, areas, tuple(int(k) for k in np.argsort(-sums) if k > 0))

    def at_least(self, min_area: int) -> list[np.ndarray]:
        """The regions (bool (H, W)) of at least ``min_area`` px, the largest sum of ``ratio`` first."""
        return [self.labels == k for k in self.order if self.areas[k] >= min_area]


def object_regions(ratio: np.ndarray, min_area: int) -> list[np.ndarray]:
    """The 8-connected regions of object-like pixels (``ratio > 0``) of at least ``min_area`` px, the largest
    sum of ``ratio`` first."""
    return ObjectRegions.of(ratio).at_least(min_area)


def appearance_box(ratio: np.ndarray, anchor: np.ndarray, reach: int) -> BoxXY | None:
    """The box of the object-like pixels (``ratio > 0``) within ``reach`` px of ``anchor`` (the previous mask
    where the object's motion takes it) that are connected to it; None when none touches it."""
    region = ndimage.binary_dilation(anchor, iterations=max(reach, 1))
    labels, n = ndimage.label((ratio > 0) & region, structure=np.ones((3, 3), bool))
    if n == 0:
        return None
    touched = np.unique(labels[anchor & (labels > 0)])
    if touched.size == 0:
        return None
    return mask_box(np.isin(labels, touched))


def border_band(shape: tuple[int, int], width: int) -> np.ndarray:
    """The pixels within ``width`` px of the border of a frame of ``shape`` (H, W), bool."""
    band = np.zeros(shape, bool)
    w = max(width, 1)
    band[:w, :] = band[-w:, :] = band[:, :w] = band[:, -w:] = True
    return band


def exit_zone(mask: np.ndarray, reach: int, edge: int = 3) -> np.ndarray | None:
    """Where an object that left the view through the frame's border is expected back: the pixels within
    ``reach`` px of the pixels of ``mask`` (its last mask) that lie within ``edge`` px of the border, on the
    border band ``reach`` px wide; None when ``mask`` keeps farther from the border (it was lost inside the
    view)."""
    touching = mask & border_band(mask.shape, edge)
    if not touching.any():
        return None
    return ndimage.binary_dilation(touching, iterations=max(reach, 1)) & border_band(mask.shape, reach)


def regrow(mask: np.ndarray, objectlike: np.ndarray, steps: int, more: int = 0, area: int | None = None) -> np.ndarray:
    """``mask`` grown by up to ``steps`` px (one 4-connected ring a step) into the ``objectlike`` pixels
    touching it, then by up to ``more`` px further while it covers fewer than ``area`` px (the ring that
    reaches it is taken whole); holes filled."""
    grown = mask.copy()
    for step in range(steps + (more if area is not None else 0)):
        if step >= steps and int(grown.sum()) >= area:
            break
        grown |= ndimage.binary_dilation(grown) & objectlike
    return ndimage.binary_fill_holes(grown)


def bound_area(mask: np.ndarray, anchor: np.ndarray, cap: float) -> np.ndarray:
    """``mask`` cut to at most ``cap`` px by keeping its pixels nearest ``anchor`` (whole rings of equal
    Euclidean distance, px): the part of a leaking answer that lies where the object was. ``mask`` as it is
    when it is small enough or ``anchor`` is empty; ``mask & anchor`` when even that is larger."""
    if mask.sum() <= cap or not anchor.any():
        return mask
    distance = ndimage.distance_transform_edt(~anchor)
    first_left_out = np.sort(distance[mask])[int(cap)]  # the (cap + 1)-th nearest pixel's distance
    return mask & ((distance < first_left_out) if first_left_out > 0 else (distance == 0))


@dataclass
class _Track:
    """One direction's state: the last mask (None while lost), the one before, the prompted frame's area,
    while lost, where the object left the view (:func:`exit_zone`; None: lost inside the view), where it left
    before it was last found again, the frames followed since then (None: never lost), and while lost, its
    last mask, that mask's frame and each pixel's distance from it (px)."""

    prev: np.ndarray | None
    before: np.ndarray | None
    area: int
    exit: np.ndarray | None = None
    left: np.ndarray | None = None
    since_found: int | None = None
    last: np.ndarray | None = None
    last_frame: int = 0
    last_distance: np.ndarray | None = None

    def lose(self, frame: int, step: int) -> None:
        """The object is lost on ``frame`` (walking by ``step``): its last mask, of the frame before, is kept."""
        self.last, self.last_frame, self.last_distance = self.prev, frame - step, None
        self.prev, self.before = None, None

    def find(self, mask: np.ndarray) -> None:
        """The object is found again with ``mask``: followed from it; where it left is kept as ``left``, and the
        search's distance map (one frame's size) is not held on."""
        self.prev, self.before = mask, None
        self.left, self.exit, self.since_found = self.exit, None, 0
        self.last_distance = None

    def near_last(self, frame: int, reach: int) -> np.ndarray | None:
        """The pixels within ``reach`` px a frame of the last mask on ``frame`` (bool (H, W)); None without one."""
        if self.last is None:
            return None
        if self.last_distance is None:  # once per loss
            self.last_distance = ndimage.distance_transform_edt(~self.last)
        return self.last_distance <= reach * abs(frame - self.last_frame)

    def shift(self) -> tuple[int, int]:
        if self.prev is None or self.before is None or not self.before.any():
            return (0, 0)
        dx, dy = np.rint(centroid(self.prev) - centroid(self.before)).astype(int)
        return (int(dx), int(dy))


def _proposals(
    prev: np.ndarray, shift: tuple[int, int], ratio: np.ndarray | None, settings: PropagationSettings
) -> list[tuple[BoxXY, np.ndarray | None, np.ndarray]]:
    """(box, allowed region, anchor) for each proposal from the previous mask: its box grown by the margin
    plus each of ``proposal_ratios`` x its longer side, in place and moved by ``shift``, and the appearance
    box; the anchor is the previous mask where the proposal expects it (in place or moved)."""
    prev_box = mask_box(prev)
    if prev_box is None:
        raise PromptError("cannot follow from an empty mask")
    h, w = prev.shape
    side = max(prev_box[2] - prev_box[0] + 1, prev_box[3] - prev_box[1] + 1)
    grows = settings.growth_limit > 0
    out: list[tuple[BoxXY, np.ndarray | None, np.ndarray]] = []
    moves = [(0, 0)] + ([shift] if settings.motion and shift != (0, 0) else [])
    for dx, dy in moves:
        moved = prev if (dx, dy) == (0, 0) else shift_mask(prev, dx, dy)
        if not moved.any():
            continue  # moved out of the frame
        allowed = ndimage.binary_dilation(moved, iterations=settings.growth_limit) if grows else None
        base = (prev_box[0] + dx, prev_box[1] + dy, prev_box[2] + dx, prev_box[3] + dy)
        for r in settings.proposal_ratios:
            out.append((expand_box(base, settings.box_margin + r * side, (h, w)), allowed, moved))
        if ratio is not None and settings.appearance_boxes:
            found = appearance_box(ratio, moved, max(settings.growth_limit, 1))
            if found is not None:
                out.append((expand_box(found, settings.box_margin, (h, w)), allowed, moved))
    return out


def _best(
    cache: EmbeddingCache,
    s: int,
    step: int,
    limit: tuple[int, int],
    proposals,
    ratio: np.ndarray | None,
    cap: float | None = None,
) -> tuple[float, np.ndarray, float, BoxXY] | None:
    """(fit, mask, score, box) of the proposal whose mask fits the appearance best (the model's score without
    an appearance model); the first of equals. Each mask is cut to its allowed region and, with ``cap`` (px),
    to that area nearest its anchor (:func:`bound_area`). All proposals go to the engine in one call
    (:meth:`~volsam.engines.base.SliceEngine.predict_boxes`, as the volume walk sends them)."""
    emb = cache.get(s, step, limit)
    valid = [(box, allowed, anchor) for box, allowed, anchor in proposals if box[0] <= box[2] and box[1] <= box[3]]
    preds = cache.engine.predict_boxes(emb, [box for box, _, _ in valid]) if valid else []
    best = None
    for (box, allowed, anchor), pred in zip(valid, preds, strict=True):
        mask = pred.mask & allowed if allowed is not None else pred.mask
        if cap is not None:
            mask = bound_area(mask, anchor, cap)
        fit = float(ratio[mask].sum()) if ratio is not None else pred.score
        if best is None or fit > best[0]:
            best = (fit, mask, pred.score, box)
    return best


def _search(
    cache: EmbeddingCache,
    s: int,
    step: int,
    limit: tuple[int, int],
    ratio: np.ndarray,
    model: AppearanceModel,
    grey: np.ndarray,
    track: _Track,
    settings: PropagationSettings,
    cap: float | None = None,
) -> SliceResult | None:
    """Look for the lost object on frame ``s``: prompt its largest object-like regions; the first answer that
    passes the stop rules and is large enough, or None. Lost inside the view, with ``search_last_place`` the
    proposals of its last mask, in place, come first (:func:`_best`, each mask cut to ``cap`` px; taken when
    it passes the stop rules against that mask's area and is as large as a searched region must be), and
    with ``search_reach`` only regions within that many px a frame of the last mask are prompted. With
    ``search_area_check`` the area-jump rule judges the answer against the prompted frame's area
    (``max_area_ratio``): a region of object-like tissue around the object answers with a mask several times
    its size. An object that left through the border is also looked for where it left (``track.exit``): the
    largest object-like region touching that stretch of the border is prompted even when smaller
    (``search_edge_min_area``), as it comes back in part; with ``search_edge_region`` that region itself is
    taken (holes filled, judged by the same rules with the model's score) when the model's answer to it is
    refused."""
    min_area = max(settings.min_area, int(settings.search_min_area * track.area))
    if settings.search_last_place and track.exit is None and track.last is not None and track.last.any():
        best = _best(cache, s, step, limit, _proposals(track.last, (0, 0), ratio, settings), ratio, cap)
        if best is not None:
            _, mask, score, box = best
            area = int(mask.sum())
            if (
                area >= min_area
                and frame_stop(score, area, int(track.last.sum()), settings, _share(model, grey, mask)) is None
            ):
                return SliceResult(s, mask, score, box, stop_detail="found where it was lost")
    labelled = ObjectRegions.of(ratio)  # once per searched frame, for both kinds of candidate
    candidates = labelled.at_least(min_area)
    near = track.near_last(s, settings.search_reach) if settings.search_reach > 0 and track.exit is None else None
    if near is not None:  # lost inside the view: it is still near where it was
        candidates = [r for r in candidates if (r & near).any()]
    regions = [(r, min_area) for r in candidates[: settings.search_candidates]]
    if track.exit is not None and settings.search_edge_min_area > 0:
        edge_area = max(settings.min_area, int(settings.search_edge_min_area * track.area))
        zone = track.exit
        if settings.search_edge_touch > 0:  # it comes back through the border: the region must reach it
            zone = zone & border_band(zone.shape, settings.search_edge_touch)
        entering = [r for r in labelled.at_least(edge_area) if (r & zone).any()]
        log.debug("frame %d: %d object-like regions where it left the view", s, len(entering))
        regions += [(r, edge_area) for r in entering[:1] if not any((r & q).any() for q, _ in regions)]
    if not regions:
        return None
    emb = cache.get(s, step, limit)
    h, w = grey.shape
    for region, least in regions:
        found = mask_box(region)
        if found is None:  # regions are never empty
            continue
        side = max(found[2] - found[0] + 1, found[3] - found[1] + 1)
        box = expand_box(found, settings.box_margin + max(settings.proposal_ratios) * side, (h, w))
        pred = cache.engine.predict(emb, box=box)
        area = int(pred.mask.sum())
        fraction = model.object_fraction(grey, pred.mask)
        log.debug(
            "frame %d: searched region of %d px, box %s: %d px, score %.2f, object-like %.2f",
            s, int(region.sum()), box, area, pred.score, fraction,
        )  # fmt: skip
        reference = track.area if settings.search_area_check else area  # off: no area rule for a found answer
        if area >= least and frame_stop(pred.score, area, reference, settings, lambda f=fraction: f) is None:
            return SliceResult(s, pred.mask, pred.score, box, stop_detail="found again")
        if settings.search_edge_region and track.exit is not None and (region & track.exit).any():
            # coming back through the border: the model's answer was refused, the object-like region is taken
            filled = ndimage.binary_fill_holes(region)
            size = int(filled.sum())
            judged = track.area if settings.search_area_check else size
            if size >= least and frame_stop(pred.score, size, judged, settings, lambda: 1.0) is None:
                log.debug("frame %d: the answer was refused; its object-like region of %d px is taken", s, size)
                return SliceResult(s, filled, pred.score, box, stop_detail="found again (object-like region)")
    return None


def _walked(result: SliceResult, shown: SliceResult, settings: PropagationSettings) -> np.ndarray:
    """The mask the walk goes on from: the regrown one with ``follow_regrown``, else the model's own."""
    return shown.mask if settings.follow_regrown else result.mask


def _share(model: AppearanceModel | None, grey: np.ndarray | None, mask: np.ndarray):
    """The stop rules' object-like share of ``mask``, computed when asked; None without a model."""
    if model is None or grey is None:
        return None
    return lambda: model.object_fraction(grey, mask)


def follow(
    engine: SliceEngine,
    stack: FrameSource,
    start: int,
    *,
    box: BoxXY | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    seed_mask: np.ndarray | None = None,
    limit: tuple[int, int] | None = None,
    settings: PropagationSettings | None = None,
    directions: tuple[int, ...] = (1, -1),
) -> Iterator[SliceResult]:
    """Segment frame ``start`` from its prompt (a ``box`` and / or ``points``, or ``seed_mask``), then follow
    the object forward and backward (see the module notes). Yields the start frame first, then every frame
    of each direction in walking order; a frame where the object is not found has an empty mask (its
    ``stop_reason`` says which rule refused the answer when that ended following; a direction that cannot
    search ends there, as in :func:`~volsam.propagation.walk.propagate`)."""
    settings = settings or PropagationSettings.video()
    lo, hi = limit if limit is not None else (0, len(stack) - 1)
    # the model encodes the frames despeckled (settings.despeckle); every other step reads the frames as they are
    encoded = model_frames(stack, settings.despeckle, engine.capabilities.input_size)
    cache = EmbeddingCache(engine, encoded, settings.batch_size, settings.cache_size)
    # the prompted frame as the volume walk does it (checks, seed, empty prompt), without walking
    seeding = propagate(
        engine, stack, start, box=box, points=points, point_labels=point_labels, seed_mask=seed_mask,
        limit=(lo, hi), settings=settings, cache=cache, directions=(),
    )  # fmt: skip
    first = next(seeding)
    if first.stop_reason is not None:  # the prompt gave an empty mask
        yield first
        return
    model = (
        video_appearance(stack.frames([start])[0], first.mask, settings, first.box if box is not None else None)
        if settings.volsam
        else None
    )

    def out(
        result: SliceResult, grey: np.ndarray | None, area: int | None = None, cap: float | None = None
    ) -> SliceResult:
        """The result as yielded: its mask regrown into the object-like pixels around it (the walk goes on
        from the model's own mask); with ``area`` (the prompted frame's written area, px) further while
        smaller than it (``regrow_more_px``); with ``cap`` (px) the growth is cut to that area nearest the
        model's mask."""
        if model is None or grey is None or settings.regrow_px <= 0 or not result.mask.any():
            return result
        grown = regrow(result.mask, model.log_ratio(grey) > 0, settings.regrow_px, settings.regrow_more_px, area)
        if cap is not None:
            grown = bound_area(grown, result.mask, cap)
        return replace(result, mask=grown)

    start_smoothed = smoothed(stack.frames([start])[0], settings.appearance_smooth)
    prompted = out(first, start_smoothed if seed_mask is None else None)  # a mask the user drew is taken as it is
    prompted_area = int(prompted.mask.sum()) if settings.regrow_more_px > 0 else None
    yield prompted
    # the size memory applies where grey levels cannot bound a leak (a weak appearance model)
    remembers = model is not None and settings.area_memory > 0 and model.separability() < settings.area_memory_below
    cap = settings.area_memory * int(prompted.mask.sum()) if remembers else None
    if cap is not None:
        log.debug("a weak appearance model: masks are cut to %.0f px (area_memory)", cap)
    if model is not None and settings.relative_object_fraction > 0:
        # the object-like share a mask needs, judged against the prompted frame's own mask's
        own = model.object_fraction(start_smoothed, first.mask)
        least = min(settings.min_object_fraction, settings.relative_object_fraction * own)
        if least < settings.min_object_fraction:
            log.debug("the prompted mask is %.0f%% object-like: masks need %.0f%%", 100 * own, 100 * least)
            settings = replace(settings, min_object_fraction=least)  # for the stop rules from here on
    reach = settings.temporal_reach  # the walk reads that many frames past a range's end to smooth its last
    walk_lo, walk_hi = max(lo - reach, 0), min(hi + reach, len(stack) - 1)

    def direction(step: int) -> Iterator[SliceResult]:
        """One direction's frames after the prompted one, in walking order, as the model and rules give them."""
        track = _Track(first.mask, None, int(first.mask.sum()))
        s = start + step
        end = walk_hi if step > 0 else walk_lo
        while (s <= end) if step > 0 else (s >= end):
            grey = smoothed(stack.frames([s])[0], settings.appearance_smooth) if model is not None else None
            ratio = model.log_ratio(grey) if model is not None else None
            if track.prev is None:  # lost: search (only with an appearance model)
                if model is None or ratio is None or grey is None:
                    break
                found = _search(cache, s, step, (walk_lo, walk_hi), ratio, model, grey, track, settings, cap)
                if found is None:
                    yield SliceResult(s, np.zeros(stack.frame_shape, bool), 0.0, None, stop_detail="searching")
                else:
                    log.debug("frame %d: the object is found again", s)
                    shown = out(found, grey, prompted_area, cap)
                    yield shown
                    track.find(_walked(found, shown, settings))
                s += step
                continue
            proposals = _proposals(track.prev, track.shift(), ratio, settings)
            best = _best(cache, s, step, (walk_lo, walk_hi), proposals, ratio, cap)
            if best is None:  # every proposal lies outside the frame
                mask, score, used = np.zeros(stack.frame_shape, bool), 0.0, None
            else:
                _, mask, score, used = best
            share = _share(model, grey, mask)
            stop = frame_stop(score, int(mask.sum()), int(track.prev.sum()), settings, share)
            if stop is None:
                result = SliceResult(s, mask, score, used)
                shown = out(result, grey, prompted_area, cap)
                yield shown
                track.prev, track.before = _walked(result, shown, settings), track.prev
                track.since_found = None if track.since_found is None else track.since_found + 1
                s += step
                continue
            yield SliceResult(s, np.zeros_like(mask), score, used, stop.reason, stop.detail)
            if model is None or not settings.search_lost:
                log.debug("direction %+d stopped at frame %d: %s", step, s, stop.detail)
                break
            log.debug("frame %d: %s; searching", s, stop.detail)
            track.exit = exit_zone(track.prev, int(np.ceil(2 * np.sqrt(track.area / np.pi))))  # its diameter
            if track.since_found is not None and track.since_found < settings.exit_memory and track.left is not None:
                # found again only briefly: that find may have been tissue at the border; where it left still holds
                track.exit = track.left if track.exit is None else track.exit | track.left
            log.debug("frame %d: lost %s", s, "inside the view" if track.exit is None else "at the border")
            track.lose(s, step)
            s += step

    for step in directions:
        if (start >= hi) if step > 0 else (start <= lo):
            continue  # nothing to write that way: the frames past the range would be read for nothing
        yield from smooth_direction(prompted, direction(step), reach, keep=(lo, hi))


__all__ = [
    "ObjectRegions",
    "appearance_box",
    "bound_area",
    "box_ring",
    "exit_zone",
    "follow",
    "object_regions",
    "regrow",
    "smoothed",
    "video_appearance",
]
