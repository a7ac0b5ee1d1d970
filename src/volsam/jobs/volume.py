"""Volume jobs: read an image, segment it, write the label map on its grid (and overlay PNGs).

* :func:`segment_file` -- one object from prompts (``volsam segment IMAGE --box ...``), or several objects
  (``objects``: several boxes on a 2D image; a CVPR ``.npz``'s own ``boxes``), one label each.
* :func:`segment_file_with_prompts` -- a prompts file: several objects, corrections in order, in a
  :class:`~volsam.session.Session` (``volsam segment IMAGE --prompts FILE``).

Each job is one function that takes a validated :class:`~volsam.jobs.request.SegmentRequest`; the
interfaces map their arguments onto it and call the job; nothing here parses text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from volsam.core.errors import InputError, PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Prompt
from volsam.core.volume import Volume
from volsam.engines.base import SliceEngine, TrackerEngine
from volsam.io import read_volume, write_labels
from volsam.io.destinations import Destination, check_destinations, new_outputs_only
from volsam.io.dicom_seg import check_source, is_dicom_seg, read_dicom_seg
from volsam.io.labels import count_value
from volsam.io.npz import npz_boxes
from volsam.io.overlay import write_overlays
from volsam.io.pictures import PICTURE_SUFFIXES
from volsam.io.writers import DICOM_SEG, label_output_format
from volsam.jobs.request import SegmentRequest
from volsam.preprocess import Normalizer, fit_normalizer
from volsam.propagation import PropagationSettings, SliceResult
from volsam.propagation.prompts import frame_prompts
from volsam.segmentation import SegmentationReport, resolve_axis, segment
from volsam.session.prompts_file import load_prompts, mask_files

log = logging.getLogger(__name__)


@dataclass
class SegmentJobResult:
    """Where a job's outputs went, and what the segmentation did (``report``: the last object's;
    ``objects``: each object's label and voxel count)."""

    output: Path
    report: SegmentationReport
    voxels: int
    volume_ml: float
    overlays: list[Path] = field(default_factory=list)
    objects: list[tuple[int, int]] = field(default_factory=list)


def load_mask_prompt(path: str | Path, image: Volume, label: int | None = None) -> MaskPrompt:
    """Read a mask file (or a DICOM-SEG of ``image``'s series) and check it lies on ``image``'s grid (nothing
    is resampled); a picture (PNG, TIFF...) holds no geometry: its pixels need only match the image's."""
    if str(path).lower().endswith(".dcm") and is_dicom_seg(path):
        return MaskPrompt(np.asarray(read_dicom_seg(path, image).array), label=label)
    mask = read_volume(path)
    pixels_only = mask.meta.get("format") in PICTURE_SUFFIXES.values()  # a PNG / TIFF... has no geometry
    if not (mask.same_grid(image) or (pixels_only and mask.shape == image.shape)):
        raise InputError(
            f"mask {path} is not on the image grid (mask size {mask.size}, spacing "
            f"{tuple(round(s, 3) for s in mask.spacing)}; image size {image.size}, spacing "
            f"{tuple(round(s, 3) for s in image.spacing)})"
        )
    return MaskPrompt(np.asarray(mask.array), label=label)


def segment_file(
    image_path: str | Path,
    prompts: Sequence[Prompt],
    output: str | Path,
    request: SegmentRequest | None = None,
    *,
    engine: SliceEngine | TrackerEngine | None = None,
    settings: PropagationSettings | None = None,
    mask_path: str | Path | None = None,
    overlay_dir: str | Path | None = None,
    series: str | None = None,
    channel: int | None = None,
    on_frame: Callable[[SliceResult], None] | None = None,
    objects: Sequence[Sequence[Prompt]] | None = None,
    planar: bool = False,
) -> SegmentJobResult:
    """Read ``image_path``, segment one object from ``prompts`` (and a mask file) as ``request`` says, write
    the label map to ``output`` on the image's grid, and optionally overlay PNGs.

    ``engine``: an already loaded engine (None: ``request.load_engine()``); ``settings``: the slice walk
    (None: ``request.settings()``). ``request.output_format``:
    ``auto`` (from the extension) or ``dicom-seg`` (also for a ``.dcm`` output; the image must be a DICOM
    series).

    ``objects``: several objects instead of ``prompts``, each its own prompts, labelled ``request.label``,
    ``+ 1``, ... in order (where they overlap the later one wins). With no prompt, no mask and no ``objects``,
    a CVPR ``.npz`` input's own ``boxes`` are the objects (one label per row, the challenge's convention).
    ``planar``: the prompts were given without a slice (x, y of a 2D image, put on slice 0): refused unless
    the image has one slice."""
    request = request or SegmentRequest()
    outputs = _destinations(output, overlay_dir)
    check_destinations(outputs, [image_path, mask_path])
    image = read_volume(image_path, series=series, channel=channel)
    fmt = _check_output(output, request.output_format, image)
    if planar and not image.is_2d:
        raise PromptError(
            f"{image_path} has {image.shape[0]} slices: a box or point without a slice applies to 2D images; "
            "give --slice K (and I,J,K points)"
        )
    groups = _objects(image_path, image, prompts, objects, mask_path)
    if mask_path is not None:
        groups[0].append(load_mask_prompt(mask_path, image))
    axis = resolve_axis(image, request.axis or "k")
    for group in groups:  # every prompt checked against the image before the model loads
        frame_prompts(group, image.size, axis)
    eng = engine if engine is not None else request.load_engine()
    dtype = np.uint8 if request.label + len(groups) <= 256 else np.uint16
    labels = None  # one object: its own label map; several: painted in turn onto a new array (later wins)
    labelmap = image  # replaced by each object's label map (groups is never empty)
    for n, group in enumerate(groups):
        labelmap = segment(
            image,
            group,
            engine=eng,
            axis=request.axis or "k",
            modality=request.modality,
            window=request.window,
            label=request.label + n,
            settings=settings or request.settings(),
            absent_patience=request.absent_patience(),
            on_frame=on_frame,
        )
        if len(groups) == 1 and labelmap.array.dtype == dtype and set(labelmap.meta["labels"]) <= {request.label}:
            labels = labelmap.array  # already 0 / request.label on the image grid: no second full-size array
        else:
            labels = np.zeros(image.shape, dtype=dtype) if labels is None else labels
            labels[labelmap.array > 0] = request.label + n
    counts = [(request.label + n, count_value(labels, request.label + n)) for n in range(len(groups))]
    labelmap = labelmap.with_array(labels, labels=[label for label, count in counts if count])
    names = {label: f"object {label}" for label, _ in counts}
    picture = None
    if overlay_dir is not None:
        picture = _overlay_picture(image, fit_normalizer(image, request.modality, request.window))
    # only a DICOM-SEG reads its source again: otherwise the image's voxels (315 MB for a 512 x 512 x 600
    # int16 CT) are let go before the writer copies the label map (benchmarks/bench_memory.py)
    source = image if fmt == DICOM_SEG else None
    del image
    voxels = int(np.count_nonzero(labelmap.array))
    ml = voxels * float(np.prod(labelmap.spacing)) / 1000.0
    with new_outputs_only(outputs):
        out = write_labels(labelmap, output, source=source, fmt=fmt, names=names, **_algorithm(request, eng))
        result = SegmentJobResult(out, labelmap.meta["report"], voxels, ml, objects=counts)
        if picture is not None:
            result.overlays = write_overlays(
                picture, labelmap.array, overlay_dir, direction=labelmap.direction,
                convention=request.overlay_convention,
            )  # fmt: skip
    return result


def _objects(
    image_path: str | Path,
    image: Volume,
    prompts: Sequence[Prompt],
    objects: Sequence[Sequence[Prompt]] | None,
    mask_path: str | Path | None,
) -> list[list[Prompt]]:
    """The objects a job segments: ``objects``, or ``prompts`` as one, or a CVPR ``.npz``'s ``boxes``."""
    if objects is not None:
        if prompts:
            raise PromptError("give either one object's prompts or several objects, not both")
        groups = [list(group) for group in objects]
        if not groups or not all(groups):
            raise PromptError("every object needs at least one prompt")
        return groups
    if prompts or mask_path is not None:
        return [list(prompts)]
    if str(image_path).lower().endswith(".npz"):
        rows = npz_boxes(image_path, image)
        if not rows:
            raise PromptError(f"{image_path} has no 'boxes': give a prompt (--box, --point, --mask)")
        return [[Box2D(*row, slice=0) if len(row) == 4 else Box3D(*row)] for row in rows]
    raise PromptError("give a prompt: --box with --slice, --box3d, --point or --mask")


def _overlay_picture(image: Volume, norm: Normalizer) -> np.ndarray:
    """What overlays are drawn on: a colour image's RGB, else the normalised grey ``[k, j, i]``."""
    return image.colour if image.colour is not None else norm.apply(image.array)


@dataclass
class SessionJobResult:
    """Where a prompts-file job wrote its label map, and each object's label, name and voxel count."""

    output: Path
    objects: list[tuple[int, str, int]]
    seconds: float
    overlays: list[Path] = field(default_factory=list)


def segment_file_with_prompts(
    image_path: str | Path,
    prompts_path: str | Path,
    output: str | Path,
    request: SegmentRequest | None = None,
    *,
    engine: SliceEngine | TrackerEngine | None = None,
    settings: PropagationSettings | None = None,
    overlay_dir: str | Path | None = None,
    series: str | None = None,
    channel: int | None = None,
    on_prompt: Callable[[int, Prompt], None] | None = None,
) -> SessionJobResult:
    """Run a prompts JSON (several objects, corrections in order; see :mod:`volsam.session.prompts_file`)
    on ``image_path`` in a :class:`~volsam.session.Session` made from ``request`` and write the label map to
    ``output``.

    ``request.axis``: None takes the file's; another axis than the file's is refused (its boxes would mean
    other voxels). ``request.label`` is not used: the file gives each object its label. ``engine``,
    ``settings``: as for :func:`segment_file`."""
    t0 = time.perf_counter()
    request = request or SegmentRequest()
    outputs = _destinations(output, overlay_dir)
    check_destinations(outputs, [image_path, prompts_path, *mask_files(prompts_path)])
    image = read_volume(image_path, series=series, channel=channel)
    fmt = _check_output(output, request.output_format, image)
    file_axis, specs = load_prompts(prompts_path, image)
    if request.axis is not None and resolve_axis(image, request.axis) != resolve_axis(image, file_axis):
        raise PromptError(f"--axis {request.axis} differs from the prompts file's axis {file_axis!r}")
    eng = engine if engine is not None else request.load_engine()
    session = request.session(image, eng, axis=file_axis, settings=settings)
    session.apply(specs, on_prompt=on_prompt)
    labelmap = session.labelmap()
    names = dict(session.objects)
    with new_outputs_only(outputs):
        out = write_labels(labelmap, output, source=image, fmt=fmt, names=names, **_algorithm(request, eng))
        objects = [(label, name, int(np.count_nonzero(session.mask(label)))) for label, name in session.objects]
        result = SessionJobResult(out, objects, time.perf_counter() - t0)
        if overlay_dir is not None:
            result.overlays = write_overlays(
                _overlay_picture(image, session.normalizer), labelmap.array, overlay_dir,
                direction=image.direction, convention=request.overlay_convention,
            )  # fmt: skip
    return result


def _destinations(output: str | Path, overlay_dir: str | Path | None) -> list[Destination]:
    outputs = [Destination(Path(output), "label map")]
    if overlay_dir is not None:
        outputs.append(Destination(Path(overlay_dir), "overlay folder", folder=True))
    return outputs


def _check_output(output: str | Path, fmt: str | None = None, image: Volume | None = None) -> str:
    """Refuse an output we cannot write before spending minutes on the model; returns its label format."""
    out = Path(output)
    fmt = label_output_format(out, fmt)
    if fmt == DICOM_SEG and image is not None:
        check_source(image, out)
    return fmt


def _algorithm(request: SegmentRequest, engine: SliceEngine | TrackerEngine) -> dict[str, str | None]:
    """The engine and model names a DICOM-SEG records."""
    return {"engine": engine.name, "model": request.model}


__all__ = ["SegmentJobResult", "SessionJobResult", "load_mask_prompt", "segment_file", "segment_file_with_prompts"]
