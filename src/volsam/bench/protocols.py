"""Evaluation protocols of the papers and challenges volsam reproduces, run through a :class:`Session`.

Each protocol segments one object (a :class:`~volsam.bench.datasets.Target`) of one case from prompts
derived from its ground truth, and scores the 3D result after every interaction (a *step*). The slab of an
object is the range of slices (along the session's slice axis, ``k`` by default) that contain it; its
middle slice is ``(first + last) // 2``.

``box-middle``
    A 2D box: the tight box of the truth on the middle slice, propagated both ways. One step.
``box3d``
    CVPR 2024 "MedSAM on a Laptop": the tight 3D box of the truth (or the box shipped in the ``.npz``).
    One step.
``seed-mask``
    "Interactive 3D Medical Image Segmentation with SAM 2" (mask-prompt setting): the truth on the middle
    slice as a mask prompt, propagated forward and backward. One step.
``seed-clicks``
    The same paper's click setting: up to ``clicks`` simulated clicks on the middle slice only
    (:func:`~volsam.bench.clicks.next_click_2d`: the deepest error region, positive if missed), the volume
    re-propagated after each. One step per click.
``cvpr25``
    CVPR 2025 "Foundation Models for Interactive 3D Biomedical Image Segmentation": step 0 is the box (the
    truth's k range and its 2D box on the middle slice); then up to ``clicks`` clicks in 3D
    (:func:`~volsam.bench.clicks.next_click`: the largest error region's innermost voxel), each given with
    every earlier prompt and the previous prediction. Metrics: DSC and NSD (NSD = 0 where DSC <= 0.2) per
    step, their AUC over the steps (trapezoid rule, unit step), the final values, and the time per class.
    The challenge allows 90 s per class: volsam stops adding clicks once ``time_limit_s`` is used up, keeps
    the last prediction for the remaining steps and marks the run ``capped``.

The other protocols report NSD without the DSC <= 0.2 rule, as the SAM 2 papers do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from volsam.bench.clicks import next_click, next_click_2d
from volsam.bench.datasets import Target
from volsam.core.errors import InputError
from volsam.core.prompts import Box3D, in_plane_axes
from volsam.core.volume import Volume
from volsam.metrics import dice, surface_dice
from volsam.session import Session

PROTOCOLS = ("cvpr25", "seed-mask", "seed-clicks", "box-middle", "box3d")
MULTI_STEP = ("cvpr25", "seed-clicks")
CHALLENGE_NSD_RULE = 0.2  # cvpr25: NSD is 0 when DSC <= 0.2


@dataclass(frozen=True)
class Step:
    """The 3D result after one interaction: ``prompt`` says what was given, ``seconds`` how long it took."""

    prompt: str
    dice: float
    nsd: float
    seconds: float


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
        """Area under the metric-vs-step curve (trapezoid rule, unit step); NaN for a single step."""
        values = [getattr(s, metric) for s in self.steps]
        return float(np.trapezoid(values)) if len(values) > 1 else float("nan")

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
    """``(first, middle, last)`` slice index of the object along index axis ``axis`` (0 = i, 2 = k)."""
    along = np.flatnonzero(np.moveaxis(truth, 2 - axis, 0).any(axis=(1, 2)))
    if along.size == 0:
        raise InputError("the target is empty: nothing to evaluate")
    first, last = int(along[0]), int(along[-1])
    return first, (first + last) // 2, last


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


def run_protocol(
    protocol: str,
    session_factory: Callable[[], Session],
    truth: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    target: Target | None = None,
    clicks: int = 5,
    tolerance_mm: float = 2.0,
    time_limit_s: float = 90.0,
) -> ProtocolResult:
    """Run ``protocol`` on one object.

    Args:
        protocol: one of :data:`PROTOCOLS`.
        session_factory: makes a fresh :class:`Session` on the case's image.
        truth: the object's ground truth, bool ``[k, j, i]``.
        spacing: voxel size along (i, j, k) in mm.
        target: gives ``box3d`` its shipped box, when it has one.
        clicks: the number of simulated clicks (``cvpr25``, ``seed-clicks``).
        tolerance_mm: NSD tolerance.
        time_limit_s: ``cvpr25``: the time allowed per class.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    truth = np.asarray(truth, dtype=bool)
    score = Scorer(truth, spacing, tolerance_mm, rule=protocol == "cvpr25")
    session = session_factory()
    axis = session.axis
    first, middle, last = slab(truth, axis)
    obj = session.add_object(name="target")
    result = ProtocolResult(protocol)

    def timed(prompt: str, action: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        action()
        result.steps.append(score(prompt, session.mask(obj), time.perf_counter() - t0))

    if protocol in ("box-middle", "cvpr25"):
        box = _box2d(_slice_mask(truth, axis, middle))
        if protocol == "cvpr25":  # the slab's range with the middle slice's 2D box
            lo, hi = [0, 0, 0], [0, 0, 0]
            a, b = in_plane_axes(axis)
            lo[a], lo[b], lo[axis] = box[0], box[1], first
            hi[a], hi[b], hi[axis] = box[2], box[3], last
            timed("box3d", lambda: session.add_box3d(obj, (*lo, *hi)))
        else:
            timed("box", lambda: session.add_box(obj, middle, box))
    elif protocol == "box3d":
        b3 = target.box3d if target is not None and target.box3d is not None else tight_box3d(truth)
        timed("box3d", lambda: session.add_box3d(obj, b3.as_tuple()))
    elif protocol == "seed-mask":
        seed = np.zeros_like(truth)
        np.moveaxis(seed, 2 - axis, 0)[middle] = _slice_mask(truth, axis, middle)
        timed("mask", lambda: session.add_mask(obj, seed))

    if protocol == "seed-clicks":
        for _ in range(clicks):
            found = next_click_2d(_slice_mask(session.mask(obj), axis, middle), _slice_mask(truth, axis, middle))
            if found is None:
                break
            u, v, positive = found
            ijk = _ijk(axis, u, v, middle)
            timed(f"{'+' if positive else '-'}click", lambda ijk=ijk, p=positive: session.add_point(obj, ijk, p))
    elif protocol == "cvpr25":
        for _ in range(clicks):
            if result.seconds >= time_limit_s:
                result.capped = True
                break
            click = next_click(session.mask(obj), truth, spacing)
            if click is None:
                break
            label = f"{'+' if click.positive else '-'}click"
            timed(label, lambda c=click: session.add_point(obj, c.ijk(), c.positive))
        while len(result.steps) < clicks + 1:  # a perfect or capped run keeps its last result
            last_step = result.steps[-1]
            result.steps.append(Step("none", last_step.dice, last_step.nsd, 0.0))
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
