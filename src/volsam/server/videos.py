"""Video sessions: a video (or DICOM cine) upload segmented in the page as ``volsam segment VIDEO`` does it.

The upload stays on disk in the session's own folder and is read as a stream (:mod:`volsam.io.video`): the
page asks for one frame at a time (``GET .../frames/{n}``, a PNG), and the masks live on disk as the per-frame
label PNGs that :func:`volsam.jobs.video.segment_video` writes -- the CLI's own job, so a box on a frame gives
the CLI's masks exactly. Nothing here holds the whole video, nor all of its masks, in memory.

Objects and prompts follow the volume protocol (``Box2D`` with ``slice`` = the frame, ``Point(x, y, frame)``):

* a tracker engine (SAM 2) tracks each object from all of its prompts at once (its memory takes prompts on
  several frames), so a correction on any frame re-tracks the object with the prompts of every frame;
* a slice engine (LiteMedSAM) walks from one prompted frame: each prompted frame of an object is a *run* of its
  own (that frame's box and clicks), and a frame shows the run of the nearest prompted frame (ties: the earlier
  one). A run writes only the frames it shows (:func:`shown_range`: up to halfway to the neighbouring prompted
  frames; ``segment_video(frames=...)``; LiteMedSAM's walk reads up to 2 frames past each end to smooth the
  last ones, and writes none of them), so a correction re-walks from the frame it is on to those halfway
  frames, and its neighbours' runs, whose shown ranges only shrink, are kept. Prompted frames are never
  removed from a state (a box replaces the box of its frame; undo, redo and reset swap whole states, each
  with its runs), so every frame is covered by the run that shows it in every state; a run that would not
  cover its range is re-walked. Clicks on a frame without a box of its own come with the box around the
  object's mask on that frame (kept as a prompt).

Each run writes a new folder, so undo / redo swap folders (no masks are copied); folders no state refers to are
deleted. Objects overlap as in volume sessions: the later object wins.

**While a run goes** (the page's live view): each walk of the run reports every frame it has written
(``segment_video(on_written=...)``; the PNG is complete then, written atomically), and :meth:`VideoSession.labels`
shows a frame that the running walk covers and has written from the walk's folder, every other frame as the
state before the run. Nothing more is kept in memory than the written frames' numbers (a set per walk, at most
the video's frame count); the masks stay on disk, where the run's result will be. The walks are forgotten when
the run ends: its result becomes the objects' state in the same step, and a failure or a stop forgets them
before their folders are deleted (a frame read meanwhile whose file is gone shows the state before the run).
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from volsam.core.changes import Change
from volsam.core.errors import InputError, PromptError
from volsam.core.prompts import Box2D, Point, Prompt
from volsam.engines.base import TrackerEngine
from volsam.jobs.request import SegmentRequest

log = logging.getLogger(__name__)

HISTORY = 32  # undo steps kept
FRAME_CACHE_MB = 32.0  # decoded frames kept for the page's frame requests

VIDEO_FORMATS = ("npz", "png-zip")  # label map downloads of a video session
DOWNLOADS = {  # format -> (file name, media type)
    "npz": ("masks.npz", "application/octet-stream"),
    "png-zip": ("masks.zip", "application/zip"),
    "overlay": ("overlay.mp4", "video/mp4"),
}

__all__ = ["VIDEO_FORMATS", "VideoSession", "VideoUpload", "shown_range", "video_download", "video_of", "volume_of"]


@dataclass(frozen=True)
class VideoUpload:
    """A checked video upload: its folder (owned by the session from now on) and the file in it."""

    folder: Path
    path: Path


@dataclass(frozen=True)
class _Run:
    """One run of ``segment_video``: the prompted frame it walked from (-1: a tracker's run of every prompt),
    its folder of label PNGs and the frames it walked, ``first..last`` inclusive."""

    frame: int
    folder: Path
    first: int
    last: int

    def covers(self, first: int, last: int) -> bool:
        return self.first <= first and last <= self.last


@dataclass
class _Live:
    """A walk of the running run: object ``label``'s masks of frames ``first..last`` (inclusive) going into
    ``folder``; ``done``: the frames written so far."""

    label: int
    folder: Path
    first: int
    last: int
    done: set[int] = field(default_factory=set)

    def shows(self, label: int, t: int) -> bool:
        return label == self.label and self.first <= t <= self.last and t in self.done


@dataclass(frozen=True)
class _State:
    """One object's state: its name, its prompts and its runs (in prompted-frame order)."""

    name: str
    order: int
    prompts: tuple[Prompt, ...] = ()
    runs: tuple[_Run, ...] = ()


@dataclass
class _History:
    undo: list[list[tuple[int, _State | None, _State | None]]] = field(default_factory=list)
    redo: list[list[tuple[int, _State | None, _State | None]]] = field(default_factory=list)


def _frame_of(p: Prompt) -> int:
    return p.slice if isinstance(p, Box2D) else p.k  # type: ignore[union-attr]


class VideoSession:
    """An interactive segmentation of one video (see the module notes).

    Args:
        upload: the video file and its folder (deleted by :meth:`close`).
        request: engine options (as for ``volsam segment VIDEO``).
        engine: the loaded engine (None: ``request.load_engine()``).
    """

    def __init__(self, upload: VideoUpload, request: SegmentRequest, engine: Any = None):
        from volsam.io.video import open_frames

        self.upload, self.request = upload, request
        self.engine = engine if engine is not None else request.load_engine()
        self._reader = open_frames(upload.path, colour=True, cache_mb=FRAME_CACHE_MB)
        self.info = self._reader.info
        self.frame_count = self.info.frame_count
        self.volume = None  # no Volume: the routes that need one refuse a video session
        self.axis = 2  # frames are the third index, as slices along k
        self.on_frame: Callable[[int], None] | None = None
        self.on_total: Callable[[int], None] | None = None  # the frames a step will walk, once known
        # the volume sessions' live preview hook (masks kept in memory); never called here: a running video
        # walk's written frames are shown from its folder by ``labels`` (see the module notes)
        self.on_preview: Callable[..., None] | None = None
        self._live: list[_Live] = []  # the running run's walks (under _state_lock)
        self._objects: dict[int, _State] = {}
        self._pending: list[tuple[int, Prompt]] = []
        self._history = _History()
        self._added = 0
        self._read_lock = threading.Lock()  # the frame reader (page requests run beside a model run)
        self._state_lock = threading.RLock()  # objects and their folders (label requests beside a run)
        self._runs = itertools.count()
        self.tracker = isinstance(self.engine, TrackerEngine)
        self._closed = False

    # -- what the page shows -------------------------------------------------------------------------------
    def geometry(self) -> dict:
        """The video's facts for the page and the client: ``video`` true, ``size`` = [width, height, frames]
        (prompts' x, y, frame), ``axis`` 2, fps, colour, codec."""
        info = self.info.to_json()
        info.pop("path", None)
        return {
            "video": True,
            "size": [self.info.width, self.info.height, self.frame_count],
            "spacing": [1.0, 1.0, 1.0],
            "axis": 2,
            "is_2d": False,
            "colour": bool(self.info.colour),
            "frames": self.frame_count,
            "fps": float(self.info.fps),
            "info": info,
            "engine_kind": "tracker" if self.tracker else "slice",
        }

    def _check_open(self) -> None:  # a page request may arrive while the session closes
        if self._closed:
            from volsam.core.errors import SessionNotFound

            raise SessionNotFound("this session was closed")

    def _check_frame(self, t: int) -> int:
        if not 0 <= int(t) < self.frame_count:
            raise InputError(f"frame {t} is outside the video (0..{self.frame_count - 1})")
        return int(t)

    def frame_png(self, t: int) -> bytes:
        """Frame ``t`` as a PNG (RGB, the decoded picture)."""
        t = self._check_frame(t)
        with self._read_lock:
            self._check_open()
            picture = self._reader.frame(t).copy()
        return _png(picture)

    def labels(self, t: int) -> np.ndarray:
        """Frame ``t``'s label map ``(H, W)`` (uint8; uint16 above 255): every object, the later one on top. While
        a run goes, an object's frame that the running walk covers and has written shows the walk's mask (the
        live view); its other frames show the state before the run."""
        t = self._check_frame(t)
        with self._state_lock:
            self._check_open()
            top = max(self._objects, default=0)
            out = np.zeros((self.info.height, self.info.width), np.uint8 if top <= 255 else np.uint16)
            for label, state in self._objects.items():
                mask = self._live_mask(label, t)
                if mask is None:
                    folder = _run_for(state, t)
                    mask = _read_png(folder / self._png_name(t)) != 0 if folder is not None else None
                if mask is not None:
                    out[mask] = label
        return out

    def _live_mask(self, label: int, t: int) -> np.ndarray | None:
        """Object ``label``'s mask (H, W) bool on frame ``t`` from the running walk that has written it; None when
        no walk has (or its file went: a failed or stopped walk removes its frames before it is forgotten)."""
        for live in self._live:
            if live.shows(label, t):
                try:
                    return _read_png(live.folder / self._png_name(t)) != 0
                except FileNotFoundError:
                    return None
        return None

    def frames_done(self) -> dict[int, list[int]]:
        """The running run's written frames by object (sorted; empty when no run goes): those that
        :meth:`labels` shows from the run."""
        with self._state_lock:
            out: dict[int, set[int]] = {}
            for live in self._live:
                out.setdefault(live.label, set()).update(t for t in live.done if live.first <= t <= live.last)
        return {label: sorted(done) for label, done in out.items()}

    def _png_name(self, t: int) -> str:  # as io.video_out.PngMaskFolder names them
        return f"frame_{t:0{max(6, len(str(self.frame_count - 1)))}d}.png"

    def labels_png(self, t: int) -> bytes:
        return _png(self.labels(t))

    # -- objects -------------------------------------------------------------------------------------------
    @property
    def objects(self) -> list[tuple[int, str]]:
        return [(label, s.name) for label, s in self._objects.items()]

    def _object(self, obj: int) -> _State:
        if obj not in self._objects:
            known = ", ".join(str(k) for k in self._objects) or "none yet"
            raise PromptError(f"no object {obj!r} in this session (objects: {known})")
        return self._objects[obj]

    def prompts(self, obj: int) -> list[Prompt]:
        return list(self._object(obj).prompts)

    def add_object(self, label: int | None = None, name: str | None = None) -> int:
        if label is None:
            label = max(self._objects, default=0) + 1
        if isinstance(label, bool) or not 1 <= int(label) <= 65535:
            raise PromptError(f"object labels are integers 1..65535, got {label!r}")
        label = int(label)
        if label in self._objects:
            raise PromptError(f"object {label} exists already")
        self._added += 1
        self._step([(label, None, _State(name or f"object {label}", self._added))])
        return label

    def remove_object(self, obj: int) -> Change:
        state = self._object(obj)
        self._step([(obj, state, None)])
        self._pending = [(label, p) for label, p in self._pending if label != obj]
        return self._change((obj,), state)

    def reset_object(self, obj: int) -> Change:
        state = self._object(obj)
        self._step([(obj, state, replace(state, prompts=(), runs=()))])
        return self._change((obj,), state)

    # -- prompts -------------------------------------------------------------------------------------------
    def add_box(self, obj: int, slice: int, box: Any, run: bool = True) -> Change:
        if len(box) != 4:
            raise PromptError(f"a box has 4 numbers (x0, y0, x1, y1), got {len(box)}")
        return self.add(obj, Box2D(*(int(v) for v in box), slice=int(slice)), run)

    def add_point(self, obj: int, ijk: Any, positive: bool = True, run: bool = True) -> Change:
        if len(ijk) != 3:
            raise PromptError(f"a point has 3 numbers (x, y, frame), got {len(ijk)}")
        return self.add(obj, Point(*(int(v) for v in ijk), positive=bool(positive)), run)

    def add_box3d(self, obj: int, box: Any, run: bool = True) -> Change:
        raise PromptError("a video takes boxes and clicks on frames, not 3D boxes")

    def add_mask(self, obj: int, mask: Any, run: bool = True) -> Change:
        raise PromptError("a video session takes boxes and clicks on frames, not mask prompts")

    def next_candidate(self, obj: int, slice: int) -> Change:
        raise PromptError("candidate masks are for volumes and 2D images, not videos")

    def add(self, obj: int, prompt: Prompt, run: bool = True) -> Change:
        self._object(obj)
        w, h = self.info.width, self.info.height
        self._check_frame(_frame_of(prompt))
        if isinstance(prompt, Box2D):
            if not (0 <= prompt.u0 <= prompt.u1 < w and 0 <= prompt.v0 <= prompt.v1 < h):
                raise PromptError(f"box {prompt.u0},{prompt.v0},{prompt.u1},{prompt.v1} is outside the {w}x{h} frames")
        elif not (0 <= prompt.i < w and 0 <= prompt.j < h):  # type: ignore[union-attr]
            raise PromptError(f"point {prompt.i},{prompt.j} is outside the {w}x{h} frames")  # type: ignore[union-attr]
        self._pending.append((obj, prompt))
        return self.run() if run else Change()

    def run(self) -> Change:
        """Track every object with queued prompts (one undo step). A failure or a stop leaves the session as it
        was; the folders the run wrote are deleted."""
        pending, self._pending = self._pending, []
        t0 = time.perf_counter()
        edits: list[tuple[int, _State | None, _State | None]] = []
        made: list[Path] = []
        last = self.frame_count - 1
        try:
            plans = []  # (label, state before, prompts, [(frame, first, last) to walk], runs kept)
            for label in dict.fromkeys(label for label, _ in pending):
                before = self._object(label)
                prompts = _merged(list(before.prompts), [p for lab, p in pending if lab == label])
                if self.tracker:
                    plans.append((label, before, prompts, [(-1, 0, last)], []))
                    continue
                frames = {_frame_of(p) for lab, p in pending if lab == label}
                prompts = self._boxed(before, prompts, frames)
                old = {run.frame: run for run in before.runs}
                prompted = sorted(frames | set(old))
                walks, kept = [], []
                for t in prompted:
                    first, end = shown_range(prompted, t, self.frame_count)
                    if t not in frames and old[t].covers(first, end):
                        kept.append(old[t])  # its shown frames only shrank: no re-walk
                    else:
                        walks.append((t, first, end))
                plans.append((label, before, prompts, walks, kept))
            if self.on_total is not None:
                self.on_total(sum(end - first + 1 for *_, walks, _kept in plans for _t, first, end in walks))
            for label, before, prompts, walks, kept in plans:
                runs = list(kept)
                for t, first, end in walks:
                    mine = prompts if t < 0 else [p for p in prompts if _frame_of(p) == t]
                    whole = t < 0 or (first, end) == (0, last)
                    folder = self._segment(label, mine, made, None if whole else (first, end))
                    runs.append(_Run(t, folder, first, end))
                runs.sort(key=lambda run: run.frame)
                edits.append((label, before, replace(before, prompts=tuple(prompts), runs=tuple(runs))))
        except BaseException:
            self._forget_live()  # the state before the run shows again, before its folders go
            for folder in made:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        change = Change()
        for label, before, _after in edits:
            change = change.merged(self._change((label,), before))
        self._step(edits)  # the walks' folders are the objects' runs now: the live view can go
        self._forget_live()
        for label, _before, _after in edits:
            change = change.merged(self._change((label,), self._objects[label]))
        return replace(change, seconds=time.perf_counter() - t0)

    def _forget_live(self) -> None:
        with self._state_lock:
            self._live = []

    def _boxed(self, state: _State, prompts: list[Prompt], frames: set[int]) -> list[Prompt]:
        """Slice engines walk from a frame's box: clicks on a frame without one get the box around the object's
        mask there (kept as a prompt, so the sidecar and a later re-walk see it); without a mask there, the
        clicks alone prompt the frame."""
        for t in frames:
            if any(isinstance(p, Box2D) and p.slice == t for p in prompts):
                continue
            folder = _run_for(state, t)
            mask = _read_png(folder / self._png_name(t)) != 0 if folder is not None else None
            if mask is not None and mask.any():
                ys, xs = np.nonzero(mask)
                prompts = [Box2D(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()), slice=t), *prompts]
        return prompts

    def _segment(
        self, label: int, prompts: list[Prompt], made: list[Path], frames: tuple[int, int] | None = None
    ) -> Path:
        """One run of ``volsam segment VIDEO`` for object ``label`` within ``frames`` = (first, last) frame
        (None: the whole video): its label PNGs in a new folder."""
        from volsam.jobs.video import segment_video

        folder = self.upload.folder / "runs" / f"{next(self._runs):05d}"
        made.append(folder)
        first, last = frames if frames is not None else (0, self.frame_count - 1)
        live = _Live(label, folder, first, last)
        with self._state_lock:
            self._live.append(live)

        def written(t: int) -> None:  # frame t's PNG is complete: the live view shows it, then the page hears
            with self._state_lock:
                live.done.add(t)
            if self.on_frame is not None:
                self.on_frame(t)  # may raise Cancelled (a stop): the run rolls back

        segment_video(
            self.upload.path,
            prompts,
            folder,
            replace(self.request, label=label),
            engine=self.engine,
            on_written=written,
            frames=frames,
        )
        return folder

    # -- undo -----------------------------------------------------------------------------------------------
    def _step(self, edits: list[tuple[int, _State | None, _State | None]]) -> None:
        self._apply(edits, backwards=False)
        self._history.undo.append(edits)
        del self._history.undo[:-HISTORY]
        self._history.redo.clear()
        self._collect()

    def _apply(self, edits: list[tuple[int, _State | None, _State | None]], backwards: bool) -> None:
        with self._state_lock:
            for label, before, after in reversed(edits) if backwards else edits:
                state = before if backwards else after
                if state is None:
                    self._objects.pop(label, None)
                else:
                    self._objects[label] = state
            self._objects = dict(sorted(self._objects.items(), key=lambda kv: kv[1].order))

    def undo(self) -> Change:
        if not self._history.undo:
            return Change()
        edits = self._history.undo.pop()
        self._apply(edits, backwards=True)
        self._history.redo.append(edits)
        return self._changes(edits)

    def redo(self) -> Change:
        if not self._history.redo:
            return Change()
        edits = self._history.redo.pop()
        self._apply(edits, backwards=False)
        self._history.undo.append(edits)
        return self._changes(edits)

    def _changes(self, edits: list[tuple[int, _State | None, _State | None]]) -> Change:
        change = Change()
        for label, before, after in edits:
            for state in (before, after):
                change = change.merged(self._change((label,), state))
        return change

    def _change(self, labels: tuple[int, ...], state: _State | None) -> Change:
        """The frames a state's runs cover (all of them once it has a run: tracking writes every frame)."""
        if state is None or not state.runs:
            return Change(labels)
        t1, w, h = self.frame_count - 1, self.info.width - 1, self.info.height - 1
        return Change(labels, (0, t1), (0, 0, 0, w, h, t1))

    def _collect(self) -> None:
        """Delete run folders that neither the objects nor the history refer to."""
        with self._state_lock:
            states = list(self._objects.values())
            for step in self._history.undo + self._history.redo:
                states += [s for _label, a, b in step for s in (a, b) if s is not None]
            keep = {run.folder for s in states for run in s.runs}
            runs = self.upload.folder / "runs"
            for folder in runs.iterdir() if runs.is_dir() else ():
                if folder not in keep:
                    shutil.rmtree(folder, ignore_errors=True)

    # -- downloads ------------------------------------------------------------------------------------------
    def sidecar(self) -> dict:
        """The JSON sidecar: the video, the engine, each object's prompts (as ``volsam segment`` describes
        them)."""
        info = self.info.to_json()
        info["path"] = "upload" + self.upload.path.suffix
        return {
            "video": info,
            "engine": self.engine.name,
            "model": self.request.model or "default",
            "objects": [
                {"label": label, "name": s.name, "prompts": [_describe(p) for p in s.prompts]}
                for label, s in self._objects.items()
            ],
            "masks": {"layout": "npz: masks (T, H, W); zip: frame_NNNNNN.png", "dtype": self._dtype().name},
        }

    def _dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if max(self._objects, default=0) <= 255 else np.uint16)

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for t in range(self.frame_count):
            yield t, self.labels(t)

    def write_npz(self, path: Path) -> Path:
        """The masks as ``volsam segment VIDEO -o masks.npz`` has them (``masks`` (T, H, W), ``fps``), streamed
        into the zip one frame at a time (no (T, H, W) array, not even a memory map)."""
        fmt = np.lib.format
        dtype, shape = self._dtype(), (self.frame_count, self.info.height, self.info.width)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            with zf.open("masks.npy", "w", force_zip64=True) as fh:
                fmt.write_array_header_1_0(
                    fh, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
                )
                for _t, labels in self._frames():
                    fh.write(np.ascontiguousarray(labels, dtype=dtype).tobytes())
            with zf.open("fps.npy", "w") as fh:
                fmt.write_array(fh, np.asarray(float(self.info.fps)))
        return path

    def write_png_zip(self, path: Path) -> Path:
        """A zip of ``frame_NNNNNN.png`` label masks (as ``volsam segment VIDEO -o masks/``) and
        ``segmentation.json`` (the sidecar), one frame at a time."""
        import json

        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for t, labels in self._frames():
                zf.writestr(self._png_name(t), _png(labels))
            zf.writestr("segmentation.json", json.dumps(self.sidecar(), indent=2) + "\n")
        return path

    def write_overlay(self, path: Path) -> Path:
        """The video with each object's contour, as ``volsam segment VIDEO --overlay`` renders it."""
        from volsam.io.video import iter_frames
        from volsam.io.video_out import OverlayVideoWriter, render_contours

        info = self.info
        writer = OverlayVideoWriter(path, info.fps, (info.width, info.height), info.time_base)
        thickness = max(1, round(min(info.width, info.height) / 200))
        try:
            for tf in iter_frames(self.upload.path, colour=True):
                if tf.index >= self.frame_count:
                    break
                writer.add(render_contours(tf.picture, self.labels(tf.index), thickness), tf.pts)
        except BaseException:
            writer.abort()
            raise
        return writer.close()

    def close(self) -> None:
        """Release the reader and delete the session's folder (the upload and every run)."""
        with self._read_lock, self._state_lock:
            self._closed = True
            self._reader.close()
            shutil.rmtree(self.upload.folder, ignore_errors=True)


def _merged(old: list[Prompt], new: list[Prompt]) -> list[Prompt]:
    """A box on a frame replaces that frame's box; clicks add up."""
    out = list(old)
    for p in new:
        if isinstance(p, Box2D):
            out = [q for q in out if not (isinstance(q, Box2D) and q.slice == p.slice)]
        out.append(p)
    return out


def shown_range(prompted: list[int], t: int, count: int) -> tuple[int, int]:
    """The frames (first, last), inclusive, that show the run of prompted frame ``t`` among an object's
    ``prompted`` frames (sorted) in a video of ``count`` frames: those nearer to ``t`` than to any other
    prompted frame, a tie going to the earlier one (as :func:`_run_for` picks)."""
    i = prompted.index(t)
    first = (prompted[i - 1] + t) // 2 + 1 if i > 0 else 0  # the midpoint itself goes to the earlier frame
    last = (t + prompted[i + 1]) // 2 if i + 1 < len(prompted) else count - 1
    return first, last


def _run_for(state: _State, t: int) -> Path | None:
    """The folder of the run that shows frame ``t``: the tracker's, else that of the nearest prompted frame
    (ties: the earlier). It covers ``t``: each state's runs were walked over their shown ranges (see the module
    notes)."""
    if not state.runs:
        return None
    return min(state.runs, key=lambda run: (abs(run.frame - t), run.frame)).folder


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _png(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _describe(p: Prompt) -> dict:
    if isinstance(p, Box2D):
        return {"box": [p.u0, p.v0, p.u1, p.v1], "frame": p.slice}
    return {"point": [p.i, p.j], "frame": p.k, "positive": p.positive}  # type: ignore[union-attr]


def video_of(session: Any) -> VideoSession:
    """``session`` if it is a video session; SessionNotFound when it was closed, InputError (400) otherwise."""
    from volsam.core.errors import SessionNotFound

    if session is None:
        raise SessionNotFound("this session was closed")
    if not isinstance(session, VideoSession):
        raise InputError("frames, video masks and the overlay video are for video sessions; this one is an image")
    return session


def volume_of(session: Any) -> Any:
    """``session`` if it is an image session; InputError (400) for a video session (whose label map is never
    assembled whole: ask for ``labelmap/frames/{n}``, ``format=npz`` or ``format=png-zip``)."""
    if isinstance(session, VideoSession):
        raise InputError(
            "this is a video session: its image and label map come by frame (frames/{n}, labelmap/frames/{n}) "
            "or as format=npz / png-zip"
        )
    return session


def video_download(session: VideoSession, what: str) -> Any:
    """A file response of ``what`` (``npz``, ``png-zip``, ``overlay``), written to a private temporary folder
    frame by frame and deleted once sent."""
    import tempfile

    from fastapi.responses import FileResponse
    from starlette.background import BackgroundTask

    name, media = DOWNLOADS[what]
    folder = Path(tempfile.mkdtemp(prefix="volsam-video-"))
    try:
        write = {"npz": session.write_npz, "png-zip": session.write_png_zip, "overlay": session.write_overlay}[what]
        path = write(folder / name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path, media_type=media, filename=name, background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    )
