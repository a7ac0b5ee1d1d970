"""Benchmark datasets: find the (image, label) cases of a folder and the objects to segment in each.

Layouts (:func:`open_dataset` detects them; ``layout=`` forces one):

``msd``
    Medical Segmentation Decathlon task folder: ``dataset.json`` (its ``training`` list, ``labels`` and
    ``modality``/``channel_names``), ``imagesTr/``, ``labelsTr/``. 4D images (BrainTumour, Prostate) are read
    one channel at a time: ``channel`` (default 0, the first listed modality: FLAIR for Task01_BrainTumour,
    T2 for Task05_Prostate). One target per foreground label of ``labels``.
``brats``
    BraTS 2020/2021 case folders ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii[.gz]``; ``sequence`` picks the
    image (default ``flair``). Targets, from the label values (1 necrotic / non-enhancing core, 2 oedema,
    4 enhancing; BraTS 2023's enhancing label 3 is accepted too): ``whole-tumour`` = 1, 2, 3, 4;
    ``tumour-core`` = 1, 3, 4; ``enhancing-tumour`` = 3, 4.
``npz``
    CVPR 2024/2025 challenge files (``imgs``, ``gts``, ``spacing``, optional ``boxes``) -- see
    :mod:`volsam.io.npz`; one target per label value in ``gts``, with its ``boxes`` row when the file has one
    per label (CVPR 2024's ``(N, 6)`` array; CVPR 2025's boxes are pickled dicts, which are not read: loading
    a pickle runs code, and ``cvpr25`` derives its box from the truth). The modality is the file name's first
    ``_`` field (``CT_AbdTumor_...`` -> CT), or the second of a ``2DBox_`` / ``3DBox_`` name
    (``2DBox_Dermoscopy_...`` -> Dermoscopy). 2D files (``imgs`` (H, W, 3), ``gts`` (H, W)) are one-slice images.
``pairs``
    ``images/`` and ``labels/`` (or ``masks/``) with the same file names (an nnU-Net channel suffix ``_0000``
    on the image is allowed); 2D pictures (PNG, JPEG, TIFF, BMP) too; one target per label value found.
``lesions``
    volsam's built-in synthetic lesion set (:mod:`volsam.data.lesions`, MNI152 T1 with inserted lesions);
    opened with the path ``builtin:lesions`` (full volumes) or ``builtin:lesions-crop``; ``builtin:lesions-2d``
    is the 2D set for ``box2d``: each case's middle slice as an 8-bit image, grey and tinted colour.

Nothing here trusts the folder: entries of ``dataset.json`` must stay inside the task folder, a case whose
files are missing is listed in :attr:`Dataset.problems` (never a crash), and image and label must share
their grid (checked when the case is loaded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from volsam.core.errors import InputError
from volsam.core.prompts import Box3D
from volsam.core.volume import Volume

LAYOUTS = ("msd", "brats", "npz", "pairs", "lesions")
BRATS_SEQUENCES = ("flair", "t1", "t1ce", "t2")
BRATS_TARGETS = {
    "whole-tumour": (1, 2, 3, 4),
    "tumour-core": (1, 3, 4),
    "enhancing-tumour": (3, 4),
}
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


@dataclass(frozen=True)
class Target:
    """One object to segment: the label values that make it, and a 3D box given with the data, if any."""

    name: str
    values: tuple[int, ...]
    box3d: Box3D | None = None


@dataclass(frozen=True)
class LoadedCase:
    """A case in memory: ``image`` and ``label`` on the same grid, and its targets (empty ones removed)."""

    image: Volume
    label: Volume
    targets: tuple[Target, ...]
    modality: str

    def truth(self, target: Target) -> np.ndarray:
        """The target's ground-truth mask, bool ``[k, j, i]``."""
        return np.isin(self.label.array, target.values)


@dataclass(frozen=True)
class Case:
    """One image with its label map, not yet read.

    Attributes:
        case_id: unique within the dataset (file or folder stem).
        modality: ``CT``, ``MR``, ... or ``auto`` when the dataset does not say.
        source: where it comes from, for messages.
        targets: the objects, or empty when they are every non-zero value of the label map (known on load).
    """

    case_id: str
    modality: str
    source: str
    targets: tuple[Target, ...]
    loader: Callable[[], tuple[Volume, Volume, tuple[Target, ...]]] = field(repr=False, compare=False)

    def load(self) -> LoadedCase:
        """Read image and label; raises :class:`InputError` when they do not share a grid."""
        image, label, found = self.loader()
        if image.shape != label.shape or not image.same_grid(label):
            raise InputError(
                f"{self.case_id}: the label map's grid differs from the image's "
                f"(image {image.size} voxels, label {label.size})"
            )
        targets = self.targets or found
        present = set(np.unique(label.array).tolist())
        kept = tuple(t for t in targets if present.intersection(t.values))
        return LoadedCase(image, label, kept, self.modality)


@dataclass
class Dataset:
    """The cases found in a folder, and what could not be used (one line each)."""

    name: str
    layout: str
    root: str
    cases: list[Case]
    problems: list[str] = field(default_factory=list)

    def with_modality(self, modality: str) -> Dataset:
        """The same cases with ``modality`` instead of what the files say (``volsam bench --modality``)."""
        if not modality.strip():
            raise InputError("--modality must not be empty")
        cases = [replace(c, modality=modality.strip()) for c in self.cases]
        return Dataset(self.name, self.layout, self.root, cases, list(self.problems))

    def select(self, ids: Iterable[str] | None = None, limit: int | None = None) -> list[Case]:
        """Cases in ``case_id`` order, only ``ids`` if given (unknown ids raise), at most ``limit``."""
        cases = sorted(self.cases, key=lambda c: c.case_id)
        if ids:
            wanted = list(dict.fromkeys(ids))
            known = {c.case_id for c in cases}
            missing = [i for i in wanted if i not in known]
            if missing:
                raise InputError(f"no case named {', '.join(missing)} in {self.root}")
            cases = [c for c in cases if c.case_id in set(wanted)]
        return cases[:limit] if limit is not None else cases


# -- helpers ----------------------------------------------------------------------------------------------
def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_IMAGE_SUFFIXES, ".npz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _images(folder: Path) -> list[Path]:
    """Image files of a folder, without hidden and macOS ``._`` files."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(_IMAGE_SUFFIXES)
    )


def _inside(root: Path, entry: str) -> Path:
    """``root / entry`` if it stays inside ``root`` (dataset.json is data, not a path authority)."""
    path = (root / entry).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InputError(f"{entry!r} points outside {root}")
    return path


def _values_found(label: Volume) -> tuple[Target, ...]:
    values = [int(v) for v in np.unique(label.array) if v != 0]
    return tuple(Target(f"label-{v}", (v,)) for v in values)


def _read_pair(image: Path, label: Path, channel: int | None = None) -> tuple[Volume, Volume]:
    from volsam.io.readers import read_volume

    return read_volume(image, channel=channel), read_volume(label)


# -- MSD --------------------------------------------------------------------------------------------------
def _msd_labels(raw: dict) -> dict[int, str]:
    """``labels`` of dataset.json, either {"1": "liver"} (MSD) or {"liver": 1} (nnU-Net v2) -> {1: "liver"}."""
    out: dict[int, str] = {}
    for key, value in raw.items():
        if str(key).lstrip("-").isdigit():
            out[int(key)] = str(value)
        elif isinstance(value, int):
            out[value] = str(key)
    return {v: name for v, name in out.items() if v != 0}


def _msd(root: Path, channel: int | None) -> Dataset:
    try:
        spec = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{root / 'dataset.json'}: not readable JSON ({exc})") from exc
    modalities = spec.get("modality") or spec.get("channel_names") or {}
    n_channels = len(modalities)
    chosen = 0 if channel is None else channel
    if modalities and not 0 <= chosen < n_channels:
        raise InputError(f"{root.name} has {n_channels} channels ({', '.join(modalities.values())}); channel={chosen}")
    modality = str(modalities.get(str(chosen), "auto")) if modalities else "auto"
    modality = "MR" if modality.upper() in ("MRI", "T1", "T2", "FLAIR", "T1W", "T1GD", "T2W", "ADC") else modality
    targets = tuple(Target(name, (value,)) for value, name in sorted(_msd_labels(spec.get("labels", {})).items()))
    read_channel = chosen if n_channels > 1 else None
    cases: list[Case] = []
    problems: list[str] = []
    for item in spec.get("training", []):
        try:
            image = _inside(root, item["image"])
            label = _inside(root, item["label"])
        except (KeyError, TypeError, InputError) as exc:
            problems.append(f"dataset.json entry {item!r}: {exc}")
            continue
        if not image.is_file() and image.with_name(image.name.replace(".nii.gz", "_0000.nii.gz")).is_file():
            image = image.with_name(image.name.replace(".nii.gz", "_0000.nii.gz"))  # nnU-Net layout
        missing = [str(p.relative_to(root.resolve())) for p in (image, label) if not p.is_file()]
        if missing:
            problems.append(f"{_stem(label)}: missing {', '.join(missing)}")
            continue
        cases.append(
            Case(
                _stem(label),
                modality,
                str(image),
                targets,
                loader=lambda image=image, label=label: (*_read_pair(image, label, read_channel), ()),
            )
        )
    return Dataset(str(spec.get("name", root.name)), "msd", str(root), cases, problems)


# -- BraTS ------------------------------------------------------------------------------------------------
def _brats_file(folder: Path, suffix: str) -> Path | None:
    for ext in (".nii.gz", ".nii"):
        path = folder / f"{folder.name}_{suffix}{ext}"
        if path.is_file():
            return path
    return None


def _brats(root: Path, sequence: str) -> Dataset:
    if sequence not in BRATS_SEQUENCES:
        raise InputError(f"unknown BraTS sequence {sequence!r}; choose from {', '.join(BRATS_SEQUENCES)}")
    targets = tuple(Target(name, values) for name, values in BRATS_TARGETS.items())
    cases: list[Case] = []
    problems: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        image, label = _brats_file(folder, sequence), _brats_file(folder, "seg")
        if image is None or label is None:
            missing = [n for n, p in ((sequence, image), ("seg", label)) if p is None]
            problems.append(f"{folder.name}: missing {', '.join(missing)}")
            continue
        cases.append(
            Case(folder.name, "MR", str(image), targets, loader=lambda i=image, s=label: (*_read_pair(i, s), ()))
        )
    return Dataset(root.name, "brats", str(root), cases, problems)


# -- CVPR npz ---------------------------------------------------------------------------------------------
def _npz_case(path: Path) -> tuple[Volume, Volume, tuple[Target, ...]]:
    from volsam.io.npz import read_npz

    image = read_npz(path)
    with np.load(path, allow_pickle=False) as data:
        if "gts" not in data:
            raise InputError(f"{path}: no 'gts' array: a benchmark needs the ground truth")
        gts = np.asarray(data["gts"])
        boxes = None
        if "boxes" in data:
            try:
                boxes = np.asarray(data["boxes"])
            except ValueError:  # CVPR 2025 files pickle their boxes (dicts): never unpickled here
                boxes = None
    if gts.ndim == 2 and image.array.shape[0] == 1:  # a CVPR 2024 2D file: gts (H, W)
        gts = gts[None]
    if gts.shape != image.array.shape:
        raise InputError(f"{path}: 'gts' {gts.shape} does not match 'imgs' {image.array.shape}")
    label = image.with_array(gts.astype(np.int32 if gts.dtype.kind == "f" else gts.dtype))
    values = [int(v) for v in np.unique(gts) if v != 0]
    per_label = boxes is not None and boxes.ndim == 2 and boxes.shape == (len(values), 6)
    targets = []
    for n, value in enumerate(values):
        box = None
        if per_label:
            x0, y0, z0, x1, y1, z1 = (int(round(float(c))) for c in boxes[n])
            box = Box3D(x0, y0, z0, x1, y1, z1)
        targets.append(Target(f"label-{value}", (value,), box))
    return image, label, tuple(targets)


def _npz_modality(name: str) -> str:
    """The modality of a challenge file: ``2DBox_Dermoscopy_...`` -> Dermoscopy, ``CT_AbdTumor_...`` -> CT."""
    from volsam.io.npz import cvpr_modality

    found = cvpr_modality(name)
    if found is not None:
        return found.upper() if found.upper() in ("CT", "MR", "PET") else found
    return name.split("_", 1)[0].upper() if "_" in name else "auto"


def _npz(root: Path) -> Dataset:
    files = sorted(p for p in root.glob("*.npz") if not p.name.startswith("."))
    cases = [
        Case(
            _stem(p),
            _npz_modality(p.name),
            str(p),
            (),
            loader=lambda p=p: _npz_case(p),
        )
        for p in files
    ]
    return Dataset(root.name, "npz", str(root), cases, [])


# -- image / label pairs ----------------------------------------------------------------------------------
def _pairs(root: Path) -> Dataset:
    labels = {_stem(p): p for p in _images(root / ("labels" if (root / "labels").is_dir() else "masks"))}
    images: dict[str, Path] = {}
    for p in _images(root / "images"):
        stem = _stem(p)
        images[_CHANNEL_SUFFIX.sub("", stem) if stem not in labels else stem] = p
    problems = [f"{s}: image without a label" for s in sorted(set(images) - set(labels))]
    problems += [f"{s}: label without an image" for s in sorted(set(labels) - set(images))]
    cases = []
    for stem in sorted(set(images) & set(labels)):
        image, label = images[stem], labels[stem]

        def load(image: Path = image, label: Path = label) -> tuple[Volume, Volume, tuple[Target, ...]]:
            img, lab = _read_pair(image, label)
            return img, lab, _values_found(lab)

        cases.append(Case(stem, "auto", str(image), (), loader=load))
    return Dataset(root.name, "pairs", str(root), cases, problems)


# -- built-in lesions -------------------------------------------------------------------------------------
def _lesions(crop: bool) -> Dataset:
    from volsam.data.lesions import lesion_case, lesion_case_names

    cases = []
    for case_id in lesion_case_names():

        def load(case_id: str = case_id) -> tuple[Volume, Volume, tuple[Target, ...]]:
            lesion = lesion_case(case_id, crop=crop)
            label = lesion.label.with_array((lesion.label.array > 0).astype(np.uint8))
            return lesion.image, label, (Target(lesion.kind, (1,)),)

        cases.append(Case(case_id, "MR", f"builtin:{case_id}", (), loader=load))
    name = "lesions-crop" if crop else "lesions"
    return Dataset(name, "lesions", f"builtin:{name}", cases, [])


def _lesion_slice(case_id: str, colour: bool) -> tuple[Volume, Volume, tuple[Target, ...]]:
    """The middle slice of a cropped lesion case as an 8-bit 2D image (0.5..99.5 percentiles of its non-zero
    pixels -> 0..255), grey or tinted RGB (R, G, B = g, 0.8 g, 0.6 g), with its label slice."""
    from volsam.core.volume import luma
    from volsam.data.lesions import lesion_case

    lesion = lesion_case(case_id, crop=True)
    k = lesion.middle_box.slice
    raw = lesion.image.array[k].astype(np.float32)
    low, high = np.percentile(raw[raw > 0], (0.5, 99.5))
    grey = np.rint(np.clip((raw - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([grey, np.rint(grey * 0.8), np.rint(grey * 0.6)], axis=-1).astype(np.uint8) if colour else None
    spacing = (lesion.image.spacing[0], lesion.image.spacing[1], 1.0)
    meta = {"source": f"builtin:lesions-2d/{case_id}", "format": "builtin", "display_values": True}
    array = luma(rgb)[None] if rgb is not None else grey[None]
    image = Volume(array, spacing=spacing, meta=meta, colour=None if rgb is None else rgb[None])
    label = image.with_array((lesion.label.array[k] > 0).astype(np.uint8)[None])
    return image, label, (Target(lesion.kind, (1,)),)


def _lesions_2d() -> Dataset:
    """``builtin:lesions-2d``: the middle slice of each cropped lesion case (5 kinds x 4), grey and colour."""
    from volsam.data.lesions import lesion_case_names

    cases = [
        Case(f"{case_id}-{tint}", f"MR-2D-{tint}", f"builtin:lesions-2d/{case_id}-{tint}", (),
             loader=lambda case_id=case_id, tint=tint: _lesion_slice(case_id, tint == "colour"))
        for case_id in lesion_case_names(variants=False)
        for tint in ("grey", "colour")
    ]  # fmt: skip
    return Dataset("lesions-2d", "lesions", "builtin:lesions-2d", cases, [])


# -- entry point ------------------------------------------------------------------------------------------
def detect_layout(root: Path) -> str:
    """Which layout a folder has (see the module notes); raises :class:`InputError` when none fits."""
    if (root / "dataset.json").is_file():
        return "msd"
    if (root / "images").is_dir() and ((root / "labels").is_dir() or (root / "masks").is_dir()):
        return "pairs"
    if any(root.glob("*.npz")):
        return "npz"
    if any(p.is_dir() and _brats_file(p, "seg") is not None for p in root.iterdir()):
        return "brats"
    raise InputError(
        f"{root}: not a dataset volsam knows (MSD task with dataset.json, BraTS case folders, CVPR .npz files, "
        "or images/ + labels/)"
    )


def open_dataset(
    path: str | Path,
    *,
    layout: str | None = None,
    channel: int | None = None,
    sequence: str = "flair",
) -> Dataset:
    """The cases of a dataset folder (or ``builtin:lesions`` / ``builtin:lesions-crop`` / ``builtin:lesions-2d``).

    Args:
        path: the folder.
        layout: one of :data:`LAYOUTS`, or None to detect it.
        channel: MSD 4D tasks: which channel to read (default 0).
        sequence: BraTS: which MR sequence to read (``flair``, ``t1``, ``t1ce``, ``t2``).
    """
    text = str(path)
    if text.startswith("builtin:"):
        name = text.split(":", 1)[1]
        if name not in ("lesions", "lesions-crop", "lesions-2d"):
            raise InputError(f"unknown built-in dataset {name!r}; known: lesions, lesions-crop, lesions-2d")
        return _lesions_2d() if name == "lesions-2d" else _lesions(crop=name == "lesions-crop")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    layout = layout or detect_layout(root)
    if layout not in LAYOUTS or layout == "lesions":
        raise InputError(f"unknown layout {layout!r}; choose from msd, brats, npz, pairs")
    if channel is not None and layout != "msd":
        raise InputError("channel= applies to MSD tasks with several channels")
    if layout == "msd":
        return _msd(root, channel)
    if layout == "brats":
        return _brats(root, sequence)
    if layout == "npz":
        return _npz(root)
    return _pairs(root)
