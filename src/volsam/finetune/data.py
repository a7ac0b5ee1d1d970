"""Training samples from the benchmark's dataset readers: clips, simulated prompts, augmentation, the split.

A *sample* is a clip of ``T`` consecutive slices along the propagation axis (``T = 1`` for the 2D recipes)
whose first slice contains the object (later frames may not: the object can end inside a clip, which is what
the object score learns). Every slice of a target's extent along the axis (every ``clip_stride``-th) starts a
clip when ``T`` frames fit.

Per sample, in this order (all in float 0..255, frames ``[t, row, col]``):

1. intensities normalised per volume as at inference (:func:`volsam.preprocess.fit_normalizer`: CT window,
   MR/PET percentiles) to uint8;
2. resized to the model's square ``S``: ``stretch`` (SAM 2: aspect not kept, bilinear with antialias) or
   ``pad`` (LiteMedSAM: longest side to ``S``, aspect kept); the label mask the same way (bilinear, > 0.5);
3. augmentation (training only): in-plane flips, a small rotation + zoom about the centre, clip reversal,
   intensity gain/offset (clipped to 0..255);
4. ``pad`` only: min-max to 0..255 over the image part, zero padding to ``S x S`` at the bottom/right
   (exactly the LiteMedSAM engine's input);
5. a prompt on frame 0 from its mask: a box (tight box, each edge jittered by up to ``box_jitter`` of the
   box side), clicks (first positive, then positive or negative), or the mask itself.

End-of-object samples (``data.end_slices``, 2D recipes, training only): the ``end_slices`` slices just past
each end of a target, where the object is absent, prompted with the box of the nearest slice that holds it,
with an empty truth -- what slice-by-slice propagation meets at the ends of an object, where a model that
always fills its box keeps growing.

Neighbour-box samples (``data.neighbour_boxes``, 2D recipes, training only): each slice that holds the object
is also prompted with the (jittered) box of each slice up to ``neighbour_boxes`` away that holds it, with its
own truth -- the prompt propagation gives (the previous slice's mask box), which near the ends of an object
is larger than the object; a model trained on tight boxes only learns to fill its box and over-grows there.

Prompts are in pixels of the ``S x S`` input: box ``(x0, y0, x1, y1)`` inclusive, points ``(x, y)``.
Randomness comes only from ``numpy.random.default_rng([seed, epoch, index])`` per sample, so a sample is the
same whichever process, worker or resumed run draws it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from volsam.bench.datasets import Case, Dataset, open_dataset
from volsam.core.errors import InputError
from volsam.finetune.config import DataConfig
from volsam.io.atomic import atomic_target
from volsam.preprocess import fit_normalizer

log = logging.getLogger(__name__)

PROMPT_KINDS = ("box", "points", "mask")
_AXIS = {"k": 0, "j": 1, "i": 2}  # array axis of [k, j, i] that becomes the frame axis


# -- the split --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Case ids for training and validation (a fixed, seeded split by case)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    seed: int
    val_fraction: float

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "val_fraction": self.val_fraction, "train": list(self.train), "val": list(self.val)}


def split_key(case_id: str, group: str | None) -> str:
    """The group of a case: the first capture group (or the whole match) of ``group`` in its id, else the id."""
    if group is None:
        return case_id
    m = re.search(group, case_id)
    if m is None:
        return case_id
    return m.group(1) if m.groups() else m.group(0)


def make_split(case_ids: list[str], val_fraction: float, seed: int, group: str | None = None) -> Split:
    """Hold out ``round(val_fraction * n)`` groups of cases (at least 1 when the fraction is > 0), chosen by
    ``seed``. Groups (see :func:`split_key`) keep related cases -- one patient's scans, flipped or resampled
    copies of a case -- on the same side of the split; without ``group`` every case is its own group."""
    ids = sorted(case_ids)
    if not ids:
        raise InputError("the dataset has no usable cases")
    keys = sorted({split_key(i, group) for i in ids})
    n = len(keys)
    n_val = 0 if val_fraction <= 0 or n < 2 else min(n - 1, max(1, round(val_fraction * n)))
    order = np.random.default_rng([seed, 7]).permutation(n)
    held = {keys[i] for i in order[:n_val]}
    val = sorted(i for i in ids if split_key(i, group) in held)
    train = sorted(i for i in ids if split_key(i, group) not in held)
    return Split(tuple(train), tuple(val), seed, val_fraction)


def write_split(split: Split, path: Path) -> None:
    """Write ``split.json`` atomically."""
    atomic_text(path, json.dumps(split.to_json(), indent=1) + "\n")


def read_split(path: Path) -> Split:
    try:
        raw = json.loads(path.read_text())
        return Split(tuple(raw["train"]), tuple(raw["val"]), int(raw["seed"]), float(raw["val_fraction"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a split file ({exc})") from exc


def atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`volsam.io.atomic.atomic_target`), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        tmp.write_text(text)


def open_training_dataset(data: DataConfig) -> Dataset:
    """The dataset named by ``data`` (a folder or ``builtin:lesions[-crop]``), problems logged."""
    dataset = open_dataset(data.dataset, layout=data.layout, channel=data.channel, sequence=data.sequence)
    for problem in dataset.problems:
        log.warning("%s: %s", dataset.name, problem)
    return dataset


def select_cases(dataset: Dataset, data: DataConfig) -> list[Case]:
    cases = dataset.select(data.cases or None, data.limit)
    if not cases:
        raise InputError(f"{data.dataset}: no cases to train on")
    return cases


# -- cases in memory --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreparedCase:
    """A case as training reads it: uint8 frames ``[n, rows, cols]`` along the axis and one bool mask per target."""

    case_id: str
    frames: np.ndarray
    masks: tuple[np.ndarray, ...]
    target_names: tuple[str, ...]


def prepare_case(case: Case, data: DataConfig) -> PreparedCase:
    loaded = case.load()
    wanted = set(data.targets)
    targets = [t for t in loaded.targets if not wanted or t.name in wanted]
    modality = data.modality if data.modality != "auto" else loaded.modality
    modality = modality if modality in ("CT", "MR", "PET", "other") else "auto"
    norm = fit_normalizer(loaded.image, modality, data.window if modality in ("CT", "auto") else None)
    axis = _AXIS[data.axis]
    frames = np.ascontiguousarray(np.moveaxis(norm.apply(loaded.image.array), axis, 0))
    masks = tuple(np.ascontiguousarray(np.moveaxis(loaded.truth(t), axis, 0)) for t in targets)
    return PreparedCase(case.case_id, frames, masks, tuple(t.name for t in targets))


class CaseStore:
    """Prepared cases by position in ``cases``, the ``capacity`` most recently used kept in memory."""

    def __init__(self, cases: list[Case], data: DataConfig, capacity: int) -> None:
        self.cases, self.data, self.capacity = cases, data, capacity
        self._cache: OrderedDict[int, PreparedCase] = OrderedDict()

    def __getitem__(self, n: int) -> PreparedCase:
        if n in self._cache:
            self._cache.move_to_end(n)
            return self._cache[n]
        prepared = prepare_case(self.cases[n], self.data)
        self._cache[n] = prepared
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return prepared


# -- geometry helpers -------------------------------------------------------------------------------------
def fitted_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """``(h, w)`` of a frame resized so its longest side is ``size`` (aspect kept, as the LiteMedSAM engine)."""
    scale = size / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def _resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(T, H, W)`` float32 (antialiased when shrinking)."""
    if x.shape[1:] == shape:
        return x
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, None]
    shrink = shape[0] < x.shape[1] or shape[1] < x.shape[2]
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=shrink)
    return out[:, 0].numpy()


def _affine(x: np.ndarray, angle_deg: float, zoom: float, order: int) -> np.ndarray:
    """Rotate by ``angle_deg`` and zoom by ``zoom`` about the centre of each ``(H, W)`` frame."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) / zoom
    centre = (np.array(x.shape[1:], dtype=np.float64) - 1) / 2
    offset = centre - rot @ centre
    return np.stack([ndimage.affine_transform(f, rot, offset=offset, order=order, mode="constant") for f in x])


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` inclusive of a non-empty 2D mask ``[row, col]``."""
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def simulate_prompt(mask: np.ndarray, valid: tuple[int, int], rng: np.random.Generator, kind: str, jitter: float,
                    max_points: int) -> dict[str, np.ndarray]:  # fmt: skip
    """A prompt for a non-empty ``mask`` (S x S, object inside the ``valid`` (h, w) part), in S-pixel units."""
    h, w = valid
    x0, y0, x1, y1 = tight_box(mask)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    d = rng.uniform(-jitter, jitter, size=4) * np.array([bw, bh, bw, bh])
    box = np.array([x0 + d[0], y0 + d[1], x1 + d[2], y1 + d[3]], dtype=np.float64)
    box[[0, 2]] = np.clip(box[[0, 2]], 0, w - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, h - 1)
    box = np.array([min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])])
    points = np.zeros((max_points, 2), dtype=np.float32)
    labels = np.full(max_points, -1, dtype=np.int64)
    if kind == "points":
        inside = np.argwhere(mask)
        outside = np.argwhere(~mask[:h, :w])
        n = int(rng.integers(1, max_points + 1))
        for p in range(n):
            positive = p == 0 or outside.size == 0 or rng.random() < 0.5
            pool = inside if positive else outside
            row, col = pool[int(rng.integers(len(pool)))]
            points[p] = (col, row)
            labels[p] = 1 if positive else 0
    return {"box": box.astype(np.float32), "points": points, "point_labels": labels}


# -- the dataset ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipRef:
    """A sample: ``start`` slice of a target in a case; ``prompt_from`` >= 0: the box prompt comes from the
    object on slice ``prompt_from`` (an end-of-object sample, the object absent from ``start``, or a
    neighbour-box sample)."""

    case: int
    target: int
    start: int
    prompt_from: int = -1


class ClipDataset(torch.utils.data.Dataset):
    """Clips of the given cases. Index with ``(index, epoch)`` (what :class:`~.trainer` samplers yield) or an
    int (epoch 0). ``train=False``: no augmentation and a box without jitter (the validation prompt).

    Items (tensors): ``pixels`` float32 (T, S, S) 0..255; ``masks`` float32 (T, S, S) 0/1; ``present`` (T,)
    1 where the frame holds the object; ``kind`` int64 (0 box, 1 points, 2 mask, see :data:`PROMPT_KINDS`);
    ``box`` (4,); ``points`` (P, 2); ``point_labels`` (P,) 1/0, -1 padding; ``valid`` (2,) the (h, w) image
    part of the S x S input; ``index`` the sample's index.
    """

    def __init__(self, cases: list[Case], data: DataConfig, size: int, resize: str, seed: int, train: bool,
                 prompt_kinds: tuple[str, ...] = PROMPT_KINDS) -> None:  # fmt: skip
        if resize not in ("stretch", "pad"):
            raise InputError(f"resize {resize!r} is not stretch or pad")
        self.data, self.size, self.resize, self.seed, self.train = data, size, resize, seed, train
        self.store = CaseStore(cases, data, data.cache_cases)
        p = data.prompts
        weights = np.array([p.box, p.points, p.mask] if train else [1.0, 0.0, 0.0], dtype=np.float64)
        weights *= np.array([k in prompt_kinds for k in PROMPT_KINDS], dtype=np.float64)
        if weights.sum() <= 0:
            raise InputError(f"no usable prompt kind: the model takes {', '.join(prompt_kinds)}")
        self.kind_p = weights / weights.sum()
        self.refs = self._index(len(cases))
        if not self.refs:
            raise InputError(f"no clips of {data.clip_length} slices with an object in {len(cases)} cases")

    def _index(self, n_cases: int) -> list[ClipRef]:
        T, stride = self.data.clip_length, self.data.clip_stride
        refs = []
        for c in range(n_cases):
            prepared = self.store[c]
            n = prepared.frames.shape[0]
            for t, mask in enumerate(prepared.masks):
                present = np.flatnonzero(mask.any(axis=(1, 2)))
                refs += [ClipRef(c, t, int(s)) for s in present[::stride] if s + T <= n]
                if self.train and self.data.neighbour_boxes > 0:
                    for s in present[::stride]:
                        for e in range(1, self.data.neighbour_boxes + 1):
                            refs += [
                                ClipRef(c, t, int(s), int(s + d))
                                for d in (-e, e)
                                if 0 <= s + d < n and mask[s + d].any()
                            ]
                if self.train and self.data.end_slices > 0 and present.size:
                    first, last = int(present[0]), int(present[-1])
                    for e in range(1, self.data.end_slices + 1):
                        if first - e >= 0 and not mask[first - e].any():
                            refs.append(ClipRef(c, t, first - e, prompt_from=first))
                        if last + e < n and not mask[last + e].any():
                            refs.append(ClipRef(c, t, last + e, prompt_from=last))
        return refs

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = (item, 0) if isinstance(item, (int, np.integer)) else item
        ref = self.refs[int(index)]
        rng = np.random.default_rng([self.seed, int(epoch) if self.train else 10_000_019, int(index)])
        kind = PROMPT_KINDS[int(rng.choice(3, p=self.kind_p))]
        aug = self._draw(rng)
        ending = ref.prompt_from >= 0  # end-of-object or neighbour-box sample: box from the neighbouring slice
        kind = "box" if ending else kind
        prepared = self.store[ref.case]
        T, S = self.data.clip_length, self.size
        backwards = aug["reverse"] and ref.start - T + 1 >= 0  # the clip runs from the start slice downwards
        picks = np.arange(ref.start, ref.start - T, -1) if backwards else np.arange(ref.start, ref.start + T)
        raw = prepared.frames[picks].astype(np.float32)
        raw_masks = prepared.masks[ref.target][picks].astype(np.float32)
        if ending:  # the prompt's source mask rides along as an extra last "frame" of the masks
            source = prepared.masks[ref.target][ref.prompt_from].astype(np.float32)[None]
            raw_masks = np.concatenate([raw_masks, source])
        src = len(raw_masks) - 1 if ending else 0  # the mask the prompt is made from
        shape = (S, S) if self.resize == "stretch" else fitted_shape(*raw.shape[1:], S)
        frames, masks = self._augment(_resize(raw, shape), _resize(raw_masks, shape), aug)
        masks = masks > 0.5
        if not masks[src].any():  # augmentation moved the object out of the prompt: keep the plain geometry
            frames, masks = _resize(raw, shape), _resize(raw_masks, shape) > 0.5
        if not masks[src].any():  # a speck lost in the resize: mark the pixel at its centre
            centre = np.argwhere(raw_masks[src] > 0).mean(axis=0) * np.array(shape) / np.array(raw.shape[1:])
            r, c = centre.astype(int)
            masks[src, min(r, shape[0] - 1), min(c, shape[1] - 1)] = True
        if self.resize == "pad":
            lo = frames.min(axis=(1, 2), keepdims=True)
            hi = frames.max(axis=(1, 2), keepdims=True)
            frames = (frames - lo) / np.maximum(hi - lo, 1e-8) * 255.0
            pad = ((0, 0), (0, S - shape[0]), (0, S - shape[1]))
            frames, masks = np.pad(frames, pad), np.pad(masks, pad)
        jitter = self.data.prompts.box_jitter if self.train else 0.0
        prompt = simulate_prompt(masks[src], shape, rng, kind, jitter, self.data.prompts.max_points)
        masks = masks[:T]
        return {
            "pixels": torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)),
            "masks": torch.from_numpy(masks.astype(np.float32)),
            "present": torch.from_numpy(masks.any(axis=(1, 2)).astype(np.float32)),
            "kind": torch.tensor(PROMPT_KINDS.index(kind)),
            "box": torch.from_numpy(prompt["box"]),
            "points": torch.from_numpy(prompt["points"]),
            "point_labels": torch.from_numpy(prompt["point_labels"]),
            "valid": torch.tensor(shape),
            "index": torch.tensor(int(index)),
        }

    def _draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Augmentation parameters; every number is drawn even when unused, so switching one part off leaves
        the others' draws unchanged."""
        a = self.data.augment
        on = self.train and a.enabled
        flips, reverse = rng.random(2) < a.flip, rng.random() < a.reverse
        angle, zoom = rng.uniform(-a.rotate_deg, a.rotate_deg), 1.0 + rng.uniform(-a.scale, a.scale)
        gain, offset = 1.0 + rng.uniform(-a.intensity, a.intensity), rng.uniform(-a.intensity, a.intensity) * 255
        return {
            "on": on,
            "flips": flips & on,
            "reverse": bool(reverse and on),
            "affine": on and (a.rotate_deg > 0 or a.scale > 0),
            "angle": angle,
            "zoom": zoom,
            "gain": gain,
            "offset": offset,
        }

    @staticmethod
    def _augment(frames: np.ndarray, masks: np.ndarray, aug: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if not aug["on"]:
            return frames, masks
        if aug["flips"][0]:
            frames, masks = frames[:, ::-1], masks[:, ::-1]
        if aug["flips"][1]:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
        frames, masks = np.ascontiguousarray(frames), np.ascontiguousarray(masks)
        if aug["affine"]:
            frames = _affine(frames, aug["angle"], aug["zoom"], order=1)
            masks = _affine(masks, aug["angle"], aug["zoom"], order=1)
        frames = np.clip(frames * aug["gain"] + aug["offset"], 0.0, 255.0)
        return np.ascontiguousarray(frames, dtype=np.float32), np.ascontiguousarray(masks, dtype=np.float32)
