"""Evaluation protocols of the papers and challenges volsam reproduces, run through a :class:`Session`.

Each protocol segments objects (:class:`~volsam.bench.datasets.Target`) of one case from prompts derived
from their ground truth, and scores the 3D result after every interaction (a *step*). The slab of an object
is the range of slices (along the session's slice axis, ``k`` by default) that contain it. DSC and NSD are
:mod:`volsam.metrics`' (NSD as DeepMind's surface-distance computes it, at ``tolerance_mm``).

``box-middle``
    MedSAM2 paper's 3D setting: a 2D box, the tight box of the truth on the slab's middle slice
    ``(first + last) // 2``, propagated both ways. One step.
``box3d``
    CVPR 2024 "MedSAM on a Laptop": the tight 3D box of the truth (or the box shipped in the ``.npz``).
    One step.
``seed-mask``
    "Interactive 3D Medical Image Segmentation with SAM 2" (mask-prompt setting): the truth on the slab's
    middle slice as a mask prompt, propagated forward and backward. One step.
``seed-clicks``
    The same paper's click setting: up to ``clicks`` simulated clicks on the middle slice only
    (:func:`~volsam.bench.clicks.next_click_2d`: the deepest error region, positive if missed), the volume
    re-propagated after each. One step per click; volsam summarises the curve with the trapezoid rule over
    all its steps (the paper reports DSC per click, no AUC). NSD without a DSC rule, as the paper.
``cvpr25``
    CVPR 2025 "Foundation Models for Interactive 3D Biomedical Image Segmentation", as its evaluation script
    ``CVPR25_iter_eval.py`` scores an image (:func:`run_cvpr25`): every class (target) of the image is
    prompted in one session and each step predicts them all together. Step 0 gives each class a box -- its
    slab with the tight 2D box on the script's middle slice (``z_indices[len(z_indices) // 2]`` of the slices
    that hold it; the challenge's files add a random 0-5 px margin, which volsam does not draw); then
    ``clicks`` steps each give every class that still has an error one click
    (:func:`~volsam.bench.clicks.next_click`, from that class's voxels of the label map), with every earlier
    prompt and the previous prediction. Per step: DSC = the mean over classes, NSD = the mean over classes
    of NSD, or 0 when that mean DSC is <= 0.2 (:func:`image_scores`); AUC = the trapezoid rule over the
    click steps only (:func:`challenge_auc`); final DSC / NSD; time = the inference time of each step (the
    session's ``run``), with 90 s per class as the limit: once the image's steps have used
    ``time_limit_s`` x classes, volsam places no more clicks, keeps the last prediction for the remaining
    steps and marks the image ``capped`` (the script itself only warns; its final test set enforced it).
    Classes are scored from the session's label map, as the script scores the ``segs`` a model writes --
    unless targets overlap (BraTS' nested regions), which one label map cannot hold: then each object's own
    mask. Per-class results carry the class's own DSC, its NSD with the DSC rule applied to the class, and
    the challenge's AUC of those.

``box2d``
    2D images (the CVPR 2024 2D files, the MedSAM2 paper's 2D rows): the tight box of the object, scored in
    2D. ``objects="components"`` gives one box per 8-connected component of the object instead (for datasets
    whose objects are scattered, e.g. several lesions under one label): each box is its own session object
    and the object's prediction is the union of their masks.

The other protocols report NSD without the DSC <= 0.2 rule, as the SAM 2 papers do.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from volsam.bench.clicks import next_click, next_click_2d
from volsam.bench.datasets import Target
from volsam.core.errors import InputError
from volsam.core.prompts import Box3D, in_plane_axes
from volsam.core.volume import Volume
from volsam.metrics import dice, surface_dice
from volsam.session import Session

PROTOCOLS = ("cvpr25", "seed-mask", "seed-clicks", "box-middle", "box3d", "box2d")
MULTI_STEP = ("cvpr25", "seed-clicks")
BOX2D_OBJECTS = ("labels", "components")  # box2d: one box per label, or one per connected component
CHALLENGE_NSD_RULE = 0.2  # cvpr25: NSD is 0 when DSC <= 0.2
CHALLENGE_SECONDS_PER_CLASS = 90.0  # cvpr25: the time allowed per class and image


@dataclass(frozen=True)
class Step:
    """The 3D result after one interaction: ``prompt`` says what was given, ``seconds`` how long it took."""

    prompt: str
    dice: float
    nsd: float
    seconds: float


def challenge_auc(values: Sequence[float]) -> float:
    """The CVPR 2025 AUC of a curve ``[box step, click 1, ..., click n]``: the trapezoid rule (unit step) over
    the click steps only -- ``CVPR25_iter_eval.py``'s ``cumulative_trapezoid(dscs[-5:], np.arange(5))[-1]``,
    "since the bbox prompt is optional". 5 clicks give at most 4.0; NaN with fewer than 2 click steps."""
    clicks = [float(v) for v in list(values)[1:]]
    return float(np.trapezoid(clicks)) if len(clicks) >= 2 else math.nan


@dataclass
class ProtocolResult:
    """Every step of one protocol run on one object; ``capped`` when the time limit stopped it early."""

    protocol: str
    steps: list[Step] = field(default_factory=list)
    capped: bool = False

    @property
    def final(self) -> Step:
        return self.steps[-1]

    @property
    def seconds(self) -> float:
        return float(sum(s.seconds for s in self.steps))

    def auc(self, metric: str) -> float:
        """Area under the metric-vs-step curve: ``cvpr25`` by :func:`challenge_auc` (click steps only); other
        protocols by the trapezoid rule (unit step) over all steps. NaN for a single step."""
        values = [getattr(s, metric) for s in self.steps]
        if self.protocol == "cvpr25":
            return challenge_auc(values)
        return float(np.trapezoid(values)) if len(values) > 1 else math.nan

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "steps": [s.__dict__ for s in self.steps],
            "final_dice": self.final.dice,
            "final_nsd": self.final.nsd,
            "auc_dice": self.auc("dice"),
            "auc_nsd": self.auc("nsd"),
            "seconds": self.seconds,
            "capped": self.capped,
        }


def slab(truth: np.ndarray, axis: int) -> tuple[int, int, int]:
    """``(first, middle, last)`` slice index of the object along index axis ``axis`` (0 = i, 2 = k); the
    middle is ``(first + last) // 2``."""
    along = _occupied(truth, axis)
    first, last = int(along[0]), int(along[-1])
    return first, (first + last) // 2, last


def _occupied(truth: np.ndarray, axis: int) -> np.ndarray:
    along = np.flatnonzero(np.moveaxis(truth, 2 - axis, 0).any(axis=(1, 2)))
    if along.size == 0:
        raise InputError("the target is empty: nothing to evaluate")
    return along


def challenge_box3d(truth: np.ndarray, axis: int) -> tuple[int, int, int, int, int, int]:
    """The CVPR 2025 box of an object as ``(i0, j0, k0, i1, j1, k1)``: its slab along ``axis`` and the tight
    2D box on the script's middle slice, the median of the slices that hold it (``get_boxes.py``:
    ``z_indices[len(z_indices) // 2]``), without the files' random margin."""
    along = _occupied(truth, axis)
    middle = int(along[len(along) // 2])
    u0, v0, u1, v1 = _box2d(_slice_mask(truth, axis, middle))
    lo, hi = [0, 0, 0], [0, 0, 0]
    a, b = in_plane_axes(axis)
    lo[a], lo[b], lo[axis] = u0, v0, int(along[0])
    hi[a], hi[b], hi[axis] = u1, v1, int(along[-1])
    return (lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])


def _slice_mask(volume_mask: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D mask ``[v, u]`` of slice ``index`` along ``axis``."""
    return np.moveaxis(volume_mask, 2 - axis, 0)[index]


def _box2d(mask2d: np.ndarray) -> tuple[int, int, int, int]:
    vs, us = np.nonzero(mask2d)
    return int(us.min()), int(vs.min()), int(us.max()), int(vs.max())


def tight_box3d(truth: np.ndarray) -> Box3D:
    """The inclusive 3D box ``(i0, j0, k0, i1, j1, k1)`` of a ``[k, j, i]`` mask."""
    ks, js, is_ = (np.flatnonzero(truth.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
    return Box3D(int(is_[0]), int(js[0]), int(ks[0]), int(is_[-1]), int(js[-1]), int(ks[-1]))


class Scorer:
    """Scores one prediction against the truth: DSC and NSD (with the challenge rule when ``rule``)."""

    def __init__(self, truth: np.ndarray, spacing: tuple[float, float, float], tolerance_mm: float, rule: bool):
        self.truth, self.spacing, self.tolerance, self.rule = truth, spacing, tolerance_mm, rule

    def __call__(self, prompt: str, pred: np.ndarray, seconds: float) -> Step:
        dsc = dice(pred, self.truth, empty_value=1.0)
        nsd = surface_dice(
            pred,
            self.truth,
            self.spacing,
            self.tolerance,
            nsd_zero_below_dice=CHALLENGE_NSD_RULE if self.rule else None,
            empty_value=1.0,
        )
        return Step(prompt, float(dsc), float(nsd), float(seconds))


@dataclass(frozen=True)
class ImageScores:
    """One image's scores as ``CVPR25_iter_eval.py`` computes them, and each class's own."""

    dice: float  # mean of the classes' DSC
    nsd: float  # mean of the classes' NSD; 0 when the mean DSC is <= 0.2
    class_dice: tuple[float, ...]
    class_nsd: tuple[float, ...]  # each class's NSD, 0 where that class's DSC is <= 0.2


def image_scores(
    preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], spacing: Sequence[float], tolerance_mm: float = 2.0
) -> ImageScores:
    """DSC and NSD of an image with several classes: the means over its classes, NSD = 0 when the mean DSC is
    <= 0.2 (``compute_multi_class_dsc`` / ``compute_multi_class_nsd`` and the ``dsc > 0.2`` test of
    ``CVPR25_iter_eval.py``); ``spacing`` in (i, j, k) order. Every truth must be non-empty (the script scores
    the classes present in the ground truth)."""
    if not truths or len(preds) != len(truths):
        raise InputError(f"{len(preds)} predictions for {len(truths)} classes")
    class_dice = [float(dice(p, t, empty_value=1.0)) for p, t in zip(preds, truths, strict=True)]
    mean_dice = float(np.mean(class_dice))
    raw = [
        float(surface_dice(p, t, spacing, tolerance_mm, empty_value=1.0))
        if d > CHALLENGE_NSD_RULE or mean_dice > CHALLENGE_NSD_RULE
        else 0.0  # used nowhere: both rules give 0
        for p, t, d in zip(preds, truths, class_dice, strict=True)
    ]
    nsd = float(np.mean(raw)) if mean_dice > CHALLENGE_NSD_RULE else 0.0
    class_nsd = tuple(n if d > CHALLENGE_NSD_RULE else 0.0 for n, d in zip(raw, class_dice, strict=True))
    return ImageScores(mean_dice, nsd, tuple(class_dice), class_nsd)


@dataclass
class ImageResult:
    """``cvpr25`` on one image: the image's steps as the challenge scores them, and each class's own result."""

    classes: list[str]
    steps: list[Step]
    per_class: list[ProtocolResult]
    time_limit_s: float
    capped: bool = False
    scored_from: str = "label map"

    @property
    def final(self) -> Step:
        return self.steps[-1]

    @property
    def seconds(self) -> float:
        """Total inference time (the script's ``TotalRunningTime``)."""
        return float(sum(s.seconds for s in self.steps))

    def auc(self, metric: str) -> float:
        return challenge_auc([getattr(s, metric) for s in self.steps])

    def to_dict(self) -> dict:
        return {
            "protocol": "cvpr25",
            "classes": list(self.classes),
            "steps": [s.__dict__ for s in self.steps],
            "final_dice": self.final.dice,
            "final_nsd": self.final.nsd,
            "auc_dice": self.auc("dice"),
            "auc_nsd": self.auc("nsd"),
            "seconds": self.seconds,
            "time_limit_s": self.time_limit_s,
            "over_time": self.seconds > self.time_limit_s,
            "capped": self.capped,
            "scored_from": self.scored_from,
        }


def run_cvpr25(
    session_factory: Callable[[], Session],
    truths: Sequence[tuple[str, np.ndarray]],
    spacing: tuple[float, float, float],
    *,
    clicks: int = 5,
    tolerance_mm: float = 2.0,
    time_limit_s: float = CHALLENGE_SECONDS_PER_CLASS,
) -> ImageResult:
    """The CVPR 2025 protocol on one image (see the module notes).

    Args:
        session_factory: makes a fresh :class:`Session` on the image.
        truths: ``(name, mask)`` per class, masks bool ``[k, j, i]`` (non-empty).
        spacing: voxel size along (i, j, k) in mm.
        clicks: click steps after the box (the challenge: 5).
        tolerance_mm: NSD tolerance (the challenge: 2).
        time_limit_s: inference time allowed per class (the challenge: 90 s).
    """
    if not truths:
        raise InputError("cvpr25 needs at least one class to evaluate")
    names = [name for name, _ in truths]
    masks = [np.asarray(t, dtype=bool) for _, t in truths]
    session = session_factory()
    boxes = [challenge_box3d(m, session.axis) for m in masks]  # refuses empty targets before any work
    labels = [session.add_object(name=name) for name in names]
    overlap = any(np.any(a & b) for a, b in itertools.combinations(masks, 2))
    result = ImageResult(
        names,
        [],
        [ProtocolResult("cvpr25") for _ in names],
        time_limit_s * len(names),
        scored_from="object masks" if overlap else "label map",
    )

    def predictions() -> list[np.ndarray]:
        if overlap:
            return [session.mask(label) for label in labels]
        labelmap = session.labelmap().array
        return [labelmap == label for label in labels]

    def step(prompt: str, class_prompts: list[str]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        session.run()
        seconds = time.perf_counter() - t0
        preds = predictions()
        s = image_scores(preds, masks, spacing, tolerance_mm)
        result.steps.append(Step(prompt, s.dice, s.nsd, seconds))
        for n, per in enumerate(result.per_class):
            per.steps.append(Step(class_prompts[n], s.class_dice[n], s.class_nsd[n], seconds))
        return preds

    for label, box in zip(labels, boxes, strict=True):
        session.add_box3d(label, box, run=False)
    preds = step("box3d", ["box3d"] * len(labels))
    for _ in range(clicks):
        if result.seconds >= result.time_limit_s:
            result.capped = True
            break
        prompts = []
        for label, pred, truth in zip(labels, preds, masks, strict=True):
            click = next_click(pred, truth)
            if click is None:
                prompts.append("none")
                continue
            session.add_point(label, click.ijk(), click.positive, run=False)
            prompts.append("+click" if click.positive else "-click")
        if all(p == "none" for p in prompts):
            break  # every class is perfect: nothing changes any more
        preds = step(f"clicks +{prompts.count('+click')} -{prompts.count('-click')}", prompts)
    for steps in [result.steps] + [per.steps for per in result.per_class]:
        while len(steps) < clicks + 1:  # a perfect or capped run keeps its last result
            steps.append(Step("none", steps[-1].dice, steps[-1].nsd, 0.0))
    for per in result.per_class:
        per.capped = result.capped
    return result


def run_protocol(
    protocol: str,
    session_factory: Callable[[], Session],
    truth: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    target: Target | None = None,
    clicks: int = 5,
    tolerance_mm: float = 2.0,
    time_limit_s: float = CHALLENGE_SECONDS_PER_CLASS,
    objects: str = "labels",
) -> ProtocolResult:
    """Run ``protocol`` on one object (``cvpr25``: an image holding only this class, see :func:`run_cvpr25`).

    Args:
        protocol: one of :data:`PROTOCOLS`.
        session_factory: makes a fresh :class:`Session` on the case's image.
        truth: the object's ground truth, bool ``[k, j, i]``.
        spacing: voxel size along (i, j, k) in mm.
        target: gives ``box3d`` its shipped box, when it has one.
        clicks: the number of simulated clicks (``cvpr25``, ``seed-clicks``).
        tolerance_mm: NSD tolerance.
        time_limit_s: ``cvpr25``: the time allowed per class.
        objects: ``box2d``: ``labels`` (one box for the object) or ``components`` (one per connected component).
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    truth = np.asarray(truth, dtype=bool)
    if protocol == "cvpr25":
        name = target.name if target is not None else "target"
        image = run_cvpr25(
            session_factory,
            [(name, truth)],
            spacing,
            clicks=clicks,
            tolerance_mm=tolerance_mm,
            time_limit_s=time_limit_s,
        )
        return image.per_class[0]
    if protocol == "box2d":
        return _run_box2d(session_factory, truth, spacing, tolerance_mm, objects)
    score = Scorer(truth, spacing, tolerance_mm, rule=False)
    session = session_factory()
    axis = session.axis
    first, middle, last = slab(truth, axis)
    obj = session.add_object(name="target")
    result = ProtocolResult(protocol)

    def timed(prompt: str, action: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        action()
        result.steps.append(score(prompt, session.mask(obj), time.perf_counter() - t0))

    if protocol == "box-middle":
        box = _box2d(_slice_mask(truth, axis, middle))
        timed("box", lambda: session.add_box(obj, middle, box))
    elif protocol == "box3d":
        b3 = target.box3d if target is not None and target.box3d is not None else tight_box3d(truth)
        timed("box3d", lambda: session.add_box3d(obj, b3.as_tuple()))
    elif protocol == "seed-mask":
        seed = np.zeros_like(truth)
        np.moveaxis(seed, 2 - axis, 0)[middle] = _slice_mask(truth, axis, middle)
        timed("mask", lambda: session.add_mask(obj, seed))
    elif protocol == "seed-clicks":
        for _ in range(clicks):
            found = next_click_2d(_slice_mask(session.mask(obj), axis, middle), _slice_mask(truth, axis, middle))
            if found is None:
                break
            u, v, positive = found
            ijk = _ijk(axis, u, v, middle)
            timed(f"{'+' if positive else '-'}click", lambda ijk=ijk, p=positive: session.add_point(obj, ijk, p))
    return result


def _run_box2d(
    session_factory: Callable[[], Session],
    truth: np.ndarray,
    spacing: tuple[float, float, float],
    tolerance_mm: float,
    objects: str = "labels",
) -> ProtocolResult:
    """``box2d``: the object's tight box on a 2D image (or one box per 8-connected component with
    ``objects="components"``, each its own session object, predicted together and scored as their union),
    scored in 2D: DSC and NSD on the (H, W) masks with the (i, j) pixel spacing."""
    if objects not in BOX2D_OBJECTS:
        raise InputError(f"unknown objects {objects!r}; choose from {', '.join(BOX2D_OBJECTS)}")
    if truth.shape[0] != 1:
        raise InputError(f"box2d is for 2D images; this one has {truth.shape[0]} slices (use box-middle)")
    if not truth.any():
        raise InputError("the target is empty: nothing to evaluate")
    score = Scorer(truth[0], spacing[:2], tolerance_mm, rule=False)  # type: ignore[arg-type]
    if objects == "components":
        from scipy import ndimage

        parts, n = ndimage.label(truth[0], structure=np.ones((3, 3), bool))
        masks = [parts == m for m in range(1, n + 1)]
    else:
        masks = [truth[0]]
    session = session_factory()
    objs = [session.add_object(name=f"target-{n}") for n in range(len(masks))]
    t0 = time.perf_counter()
    for obj, mask in zip(objs, masks, strict=True):
        session.add_box(obj, 0, _box2d(mask), run=False)
    session.run()
    seconds = time.perf_counter() - t0
    pred = np.logical_or.reduce([session.mask(obj)[0] for obj in objs])
    result = ProtocolResult("box2d")
    result.steps.append(score("box" if len(masks) == 1 else f"{len(masks)} boxes", pred, seconds))
    return result


def _ijk(axis: int, u: int, v: int, s: int) -> tuple[int, int, int]:
    """Voxel ``(i, j, k)`` of in-plane pixel ``(u, v)`` on slice ``s`` along ``axis``."""
    out = [0, 0, 0]
    a, b = in_plane_axes(axis)
    out[a], out[b], out[axis] = u, v, s
    return (out[0], out[1], out[2])


def session_factory(
    volume: Volume, engine: object, modality: str, *, window: str | None = None, axis: str | int = "k"
) -> Callable[[], Session]:
    """Sessions on ``volume`` sharing ``engine`` (wrap it in a cache to share slice embeddings); ``modality``
    other than CT / MR / PET means ``auto``; ``window`` and ``axis`` as :class:`Session` takes them."""
    mod = modality.upper() if modality.upper() in ("CT", "MR", "PET") else "auto"
    return lambda: Session(volume, engine=engine, modality=mod, window=window, axis=axis)
