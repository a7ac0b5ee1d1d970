"""Video in, masks (and an overlay video) out: :func:`segment_video`, the job ``volsam segment VIDEO`` calls.

Input: a video file (mp4, avi, mov, mkv, webm... through PyAV) or a DICOM multi-frame cine file, read as a
stream (:mod:`volsam.io.video`); frames are display values 0..255 (no CT/MR normalisation): RGB for SAM 2
engines when the video has colour (endoscopy), BT.601 grey luma otherwise and always for LiteMedSAM.
Prompts are in frame pixels: a :class:`~volsam.core.prompts.Box2D` ``(x0, y0, x1, y1)`` inclusive with
``slice`` = the frame index, :class:`~volsam.core.prompts.Point` ``(x, y, frame)`` ± and/or a mask image on
one frame (non-zero = the object; with SAM 2 a label image makes one object per value).

Engines:

* **SAM 2 family** (tracker): memory propagation forward from the first prompted frame to the end, then
  backward to frame 0, through :meth:`TrackerEngine.track`. Stopping rule: none by default
  (``absent_patience=None``): in a video an object leaves the view and comes back (probe moves, camera
  turns), and SAM 2's memory bank keeps the prompted frame, so it can find the object again; stopping after a
  few empty frames would lose it for the rest of the video. Give ``absent_patience`` to stop a direction
  after that many frames without the object.
* **LiteMedSAM** (slice engine, no memory): frame by frame with :func:`volsam.propagation.follow.follow`,
  each frame prompted with the box of the previous frame's mask (plus margin), with that box moved by the
  object's last shift (objects move in a video: on a fast, accelerating ellipse this took the per-frame
  Dice from 0.71 at worst to 0.99), and with the box of the object-like pixels connected to the previous
  mask (appearance boxes: a moving, turning object is not cut to the half an earlier mask held), forward
  then backward; each mask is written regrown by up to 4 px into the object-like pixels touching it
  (LiteMedSAM under-segments dark objects in speckle). A frame whose answer breaks a stop rule (empty mask,
  low score, area jump, appearance) is left empty and the next frames are searched for object-like regions
  as large as a tenth of the prompted object: an object that leaves the view and comes back is found again
  (measured: benchmarks/bench_video_tracking.py). The 3D-only rule "a shrinking
  cross-section that grows again is another structure" is off (a beating heart's area rises and falls) and
  the growth limit per frame is wider than for slices (objects move in a video). The model encodes each frame
  median-filtered over 5 px (speckle reduction, ``despeckle``: :mod:`volsam.propagation.despeckle`; frames over
  640 px are passed as they are); the rules, the written masks and the overlay read the video's own frames.
  The ``baseline`` strategy
  walks as for volumes (:func:`volsam.propagation.walk.propagate`).

**A range of frames** (``frames=(first, last)``, inclusive): the walk or the tracking writes only inside it
(the walk's and the tracker's ``limit``); every prompt must lie in it. A video session re-walks a correction
only over the frames it shows from that run (:mod:`volsam.server.videos`). For LiteMedSAM the range's masks
are exactly those of a whole-video walk from the same prompt: both walk outward from the prompted frame one
frame at a time, each frame from the previous one, and the range only ends a direction sooner (the lost-object
search of :func:`follow` prompts the frame it walks to; the video settings encode one frame per batch, so no
batch is cut short by the limit). Each written mask but the prompted frame's is smoothed with those of the 2
frames before and after it (``temporal_reach``, :mod:`volsam.propagation.temporal`), so the walk reads up to 2
frames past each end of the range (not past the video's ends, nor once a direction has ended or has nothing to
write) and writes none of them: the range's last frames are smoothed as in a whole-video walk. A tracker's
memory holds only the range's frames, so its masks may differ from a whole-video run's. The outputs keep every
frame of the video, so their layout does not depend on the range: frames outside it are written as empty masks
(as frames a walk never reached are), and the sidecar's ``walk_range`` says which frames were segmented and
written.

Outputs are streamed as frames are segmented (:mod:`volsam.io.video_out`): per-frame label PNGs or one
``.npz`` (disk-backed while it fills), a JSON sidecar with fps, frame count, size, engine, model, prompts and
the walked range, and optionally an overlay video rendered in a second streamed pass. Memory stays bounded by the frame
source's cache, the engine's memory bank, one frame of labels and (LiteMedSAM) the 5 masks the temporal smoothing
holds, whatever the video's length.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from volsam.core.errors import InputError, PromptError
from volsam.core.prompts import Box2D, Point, Prompt
from volsam.engines.base import FramePrompt, FrameSource, SliceEngine, TrackerEngine
from volsam.io.destinations import Destination, check_destinations, new_outputs_only
from volsam.io.video import VideoInfo, iter_frames, open_frames, probe_video
from volsam.io.video_out import (
    OverlayVideoWriter,
    mask_output_is_npz,
    open_mask_sink,
    read_frame_mask,
    render_contours,
    sidecar_path,
    write_json,
)
from volsam.jobs.request import SegmentRequest
from volsam.propagation import PropagationSettings, propagate
from volsam.propagation.follow import follow
from volsam.propagation.prompts import frame_prompts, label_image_objects, tracker_prompts
from volsam.propagation.tracking import check_first_frame, track_labels

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, frames done, frames in total)


@dataclass
class VideoJobResult:
    """What :func:`segment_video` wrote and did."""

    output: Path
    sidecar: Path
    info: VideoInfo
    engine: str
    frames_segmented: int
    frames_with_object: int
    frame_range: tuple[int, int] | None
    seconds: float
    overlay: Path | None = None
    decoded: int = 0  # frames the input stream decoded (more than the video's when going backward)
    objects: list[int] = field(default_factory=list)
    walk_range: tuple[int, int] | None = None  # (first, last) frame walked / tracked within, inclusive


@dataclass
class _Prompts:
    """Per-frame prompts in frame pixels: frame -> object -> prompt."""

    by_frame: dict[int, dict[int, FramePrompt]]
    described: list[dict[str, Any]]


def _frame_prompts(
    prompts: Sequence[Prompt], mask: np.ndarray | None, mask_frame: int | None, info: VideoInfo, label: int
) -> _Prompts:
    """Check prompts against the video (with messages in its terms: frames, x / y pixels), then group them
    by frame as for volumes (:func:`volsam.propagation.prompts.frame_prompts`, frames along k): box and clicks
    of ``label``; a label image's values become objects of their own."""
    n, w, h = info.frame_count, info.width, info.height

    def check_frame(frame: int, what: str) -> None:
        if not 0 <= frame < n:
            raise PromptError(f"{what}: frame {frame} is outside the video (0..{n - 1})")

    boxed: set[int] = set()
    described: list[dict[str, Any]] = []
    for p in prompts:
        if isinstance(p, Box2D):
            text = f"box {p.u0},{p.v0},{p.u1},{p.v1}"
            check_frame(p.slice, text)
            if not (0 <= p.u0 <= p.u1 < w and 0 <= p.v0 <= p.v1 < h):
                raise PromptError(f"{text} is outside the {w}x{h} (WxH) frames (x: 0..{w - 1}, y: 0..{h - 1})")
            if p.slice in boxed:
                raise PromptError(f"two boxes on frame {p.slice}: give one box per frame")
            boxed.add(p.slice)
            described.append({"box": [p.u0, p.v0, p.u1, p.v1], "frame": p.slice, "label": label})
        elif isinstance(p, Point):
            text = f"point {p.i},{p.j}"
            check_frame(p.k, text)
            if not (0 <= p.i < w and 0 <= p.j < h):
                raise PromptError(f"{text} is outside the {w}x{h} (WxH) frames")
            described.append({"point": [p.i, p.j], "frame": p.k, "positive": p.positive, "label": label})
        else:
            raise PromptError(f"{type(p).__name__} prompts do not apply to a video: give a box, points or a mask image")
    objects: dict[int, dict[int, np.ndarray]] = {}
    if mask is not None:
        if mask_frame is None:
            raise PromptError("a mask prompt needs the frame it was drawn on (--frame)")
        check_frame(mask_frame, "mask")
        if not np.any(mask):
            raise PromptError(f"the mask on frame {mask_frame} is empty")
        objects = label_image_objects({mask_frame: mask}, label)
        described.append({"mask": True, "frame": mask_frame, "labels": sorted(objects)})
    by_frame = tracker_prompts(frame_prompts(list(prompts), (w, h, n), axis=2), label, objects)
    if not by_frame:
        raise PromptError("no prompt given: a box with its frame, points or a mask image")
    return _Prompts(by_frame, described)


def _walk_range(frames: tuple[int, int] | None, count: int, prompted: Sequence[int]) -> tuple[int, int] | None:
    """``frames`` = (first, last) frame to walk within, inclusive, checked against a video of ``count`` frames
    and its prompted frames: InputError for a range that is not two frame numbers of the video in order,
    PromptError for a prompt outside it. None (the whole video) stays None."""
    if frames is None:
        return None
    try:
        lo, hi = frames
    except (TypeError, ValueError):
        raise InputError(f"the frames to walk are (first, last), got {frames!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)):
        raise InputError(f"the frames to walk are two frame numbers (first, last), got {frames!r}")
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise InputError(f"frames {lo}..{hi}: the first frame to walk comes after the last")
    if lo < 0 or hi >= count:
        raise InputError(f"frames {lo}..{hi} are outside the video (0..{count - 1})")
    outside = sorted(t for t in prompted if not lo <= t <= hi)
    if outside:
        raise PromptError(f"prompts on frames {outside} are outside the frames to walk, {lo}..{hi}")
    return lo, hi


def _slice_walk(
    eng: SliceEngine,
    source: FrameSource,
    prompts: _Prompts,
    settings: PropagationSettings,
    label: int,
    limit: tuple[int, int] | None = None,
) -> tuple[list[int], Iterator[tuple[int, np.ndarray]]]:
    """The LiteMedSAM walk's results as (object ids, iterator of (frame, labels (H, W))): one object,
    ``label``; a mask (a label image's union) replaces the box and clicks on its frame; ``limit`` = (first,
    last) frame walked within (None: the whole video)."""
    if len(prompts.by_frame) > 1:
        raise PromptError(
            f"{eng.name} walks from one prompted frame; prompts are on frames {sorted(prompts.by_frame)} "
            "(use the sam2 engine for prompts on several frames)"
        )
    ((start, per_obj),) = prompts.by_frame.items()
    masks = [p.mask for p in per_obj.values() if p.mask is not None]
    seed = np.logical_or.reduce(masks) if masks else None
    clicks = per_obj.get(label) if seed is None else None
    walk = follow if settings.volsam else propagate  # the baseline strategy walks as for volumes
    walker = walk(
        eng,
        source,
        start,
        box=clicks.box if clicks is not None else None,
        points=clicks.points if clicks is not None else None,
        point_labels=clicks.point_labels if clicks is not None else None,
        seed_mask=seed,
        limit=limit,
        settings=settings,
    )

    def results() -> Iterator[tuple[int, np.ndarray]]:
        for res in walker:
            yield res.index, res.mask.astype(np.int32) * label

    return [label], results()


def _tracking(
    eng: TrackerEngine,
    source: FrameSource,
    prompts: _Prompts,
    absent_patience: int | None,
    limit: tuple[int, int] | None = None,
) -> tuple[list[int], Iterator[tuple[int, np.ndarray]]]:
    """SAM 2 tracking results as (object ids, iterator of (frame, labels (H, W))), within ``limit`` = (first,
    last) frame (None: the whole video)."""
    ids = check_first_frame(prompts.by_frame)  # refused here, before any output is opened

    def results() -> Iterator[tuple[int, np.ndarray]]:
        for res in track_labels(eng, source, prompts.by_frame, limit=limit, absent_patience=absent_patience):
            yield res.index, res.labels

    return ids, results()


def segment_video(
    video: str | Path,
    prompts: Sequence[Prompt],
    output: str | Path,
    request: SegmentRequest | None = None,
    *,
    engine: SliceEngine | TrackerEngine | None = None,
    mask_path: str | Path | None = None,
    mask_frame: int | None = None,
    overlay: str | Path | None = None,
    settings: PropagationSettings | None = None,
    progress: Progress | None = None,
    cache_mb: float = 256.0,
    colour: bool | None = None,
    frames: tuple[int, int] | None = None,
    on_written: Callable[[int], None] | None = None,
) -> VideoJobResult:
    """Segment an object through a video from prompts on one (or, with SAM 2, several) frames.

    Args:
        video: a video file or a DICOM multi-frame cine ``.dcm``.
        prompts: :class:`Box2D` (``u`` = x column, ``v`` = y row, inclusive pixels; ``slice`` = frame) and
            :class:`Point` (``i`` = x, ``j`` = y, ``k`` = frame), all for object ``request.label``.
        output: a folder for ``frame_NNNNNN.png`` label masks, or a ``.npz`` file.
        request: engine, model, device, precision, label, strategy and absent frames (tracker engines stop a
            direction after that many frames without any object; default: never, see the module notes).
        engine: an already loaded engine (None: ``request.load_engine()``).
        mask_path, mask_frame: a mask image (H, W) drawn on frame ``mask_frame``.
        overlay: an ``.mp4``/``.mov``/``.mkv``/``.avi`` to render with each object's contour.
        settings: the LiteMedSAM walk (default: ``request.settings(video=True)``,
            :meth:`PropagationSettings.video` for the volsam strategy).
        progress: called with (stage, done, total): stage ``segmenting`` (``total``: the frames of the walked
            range) then ``rendering`` (``total``: the video's frames).
        cache_mb: memory for decoded frames of the input stream.
        colour: tracker engines get RGB frames ``(H, W, 3)`` (SAM 2's native input) when True, BT.601 grey
            when False; None = RGB when the video has colour. LiteMedSAM always gets grey (the walk's
            appearance rules compare grey levels).
        frames: (first, last) frame index, inclusive, to walk / track within (None: the whole video); every
            prompt must lie in it. Frames outside it are written as empty masks (see the module notes).
        on_written: called with each segmented frame's index (0-based) once its mask is in the output (a
            frame PNG is complete then: each is written atomically), before ``progress``; in the order the
            walk or the tracking makes them (forward, then backward). The frames that ``finish`` fills with
            empty masks are not reported. An exception it raises stops the run as any failure does.

    Returns a :class:`VideoJobResult`; every frame has a mask in the output (empty where not segmented).
    Raises InputError for a range outside the video or reversed, PromptError for a prompt outside it.
    """
    t0 = time.perf_counter()
    request = request or SegmentRequest()
    label = request.label
    outputs = _destinations(Path(output), overlay)
    check_destinations(outputs, [video, mask_path])
    eng = engine if engine is not None else request.load_engine()
    rgb = isinstance(eng, TrackerEngine) and (probe_video(video).colour if colour is None else colour)
    source = open_frames(video, cache_mb=cache_mb, colour=rgb)
    try:
        info = source.info
        mask = read_frame_mask(mask_path, source.frame_shape) if mask_path is not None else None
        vp = _frame_prompts(list(prompts), mask, mask_frame, info, label)
        limit = _walk_range(frames, info.frame_count, list(vp.by_frame))
        walked = limit if limit is not None else (0, info.frame_count - 1)
        total = walked[1] - walked[0] + 1
        if isinstance(eng, TrackerEngine):
            ids, results = _tracking(eng, source, vp, request.absent_patience(video=True), limit)
        else:
            ids, results = _slice_walk(eng, source, vp, settings or request.settings(video=True), label, limit)
        dtype = np.uint8 if max(ids) <= 255 else np.uint16
        with new_outputs_only(outputs):  # a failure or an interruption leaves nothing new behind
            sink = open_mask_sink(output, info.frame_count, source.frame_shape, info.fps, dtype)
            done = 0
            seen: list[int] = []
            try:
                for t, labels in results:
                    sink.write(t, labels)
                    if on_written is not None:
                        on_written(int(t))
                    done += 1
                    if labels.any():
                        seen.append(t)
                    if progress is not None:
                        progress("segmenting", done, total)
                overlay_path = _render(video, sink, info, Path(overlay), progress) if overlay is not None else None
                out = sink.finish()
            except BaseException:
                sink.abort()
                raise
            seconds = time.perf_counter() - t0
            frame_range = (min(seen), max(seen)) if seen else None
            sidecar = write_json(
                {
                    "video": info.to_json(),
                    "engine": eng.name,
                    "model": _model_name(eng, request.model),
                    "frames": "rgb" if rgb else "grey (BT.601 luma)",
                    "prompts": vp.described,
                    "objects": ids,
                    "masks": {
                        "output": str(out),
                        "layout": "npz: masks (T, H, W)" if str(out).lower().endswith(".npz") else "frame_NNNNNN.png",
                        "dtype": np.dtype(dtype).name,
                    },
                    "walk_range": list(walked),
                    "frames_segmented": done,
                    "frames_with_object": len(seen),
                    "frame_range": list(frame_range) if frame_range else None,
                    "seconds": round(seconds, 3),
                    "overlay": str(overlay_path) if overlay_path else None,
                },
                sidecar_path(out),
            )
        decoded = int(getattr(source, "decoded", 0))
    finally:
        source.close()
    log.info("segmented %d of %d frames in %.1f s; object on %d", done, total, seconds, len(seen))
    return VideoJobResult(
        out, sidecar, info, eng.name, done, len(seen), frame_range, seconds, overlay_path, decoded, ids, walked
    )


def _destinations(output: Path, overlay: str | Path | None) -> list[Destination]:
    """The job's outputs: the masks (a folder, or one .npz), their sidecar and the overlay video."""
    npz = mask_output_is_npz(output)
    outputs = [Destination(output, "masks", folder=not npz), Destination(sidecar_path(output), "sidecar")]
    if overlay is not None:
        outputs.append(Destination(Path(overlay), "overlay video"))
    return outputs


def _model_name(eng: Any, model: str | None) -> str:
    if model is not None:
        return str(model)
    net = getattr(eng, "net", None)
    path = getattr(getattr(net, "config", None), "_name_or_path", None)
    return str(path) if path else "default"


def _render(video: str | Path, sink: Any, info: VideoInfo, path: Path, progress: Progress | None) -> Path:
    """Second streamed pass: decode each frame in colour, draw its objects' contours, encode."""
    writer = OverlayVideoWriter(path, info.fps, (info.width, info.height), info.time_base)
    thickness = max(1, round(min(info.width, info.height) / 200))
    try:
        for tf in iter_frames(video, colour=True):
            if tf.index >= info.frame_count:
                break
            writer.add(render_contours(tf.picture, sink.read(tf.index), thickness), tf.pts)
            if progress is not None:
                progress("rendering", tf.index + 1, info.frame_count)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


__all__ = ["VideoJobResult", "segment_video"]
