"""Outputs of a video segmentation: per-frame label masks, a JSON sidecar and an overlay video.

* :func:`open_mask_sink` -- ``-o masks/`` (a folder: ``frame_000123.png`` per frame, label values, uint8 or
  uint16 PNG) or ``-o masks.npz`` (one array ``masks`` (T, H, W) plus ``fps``). Masks arrive in any order
  (tracking runs forward, then backward) and are written as they come: PNGs one by one (each atomically),
  the ``.npz`` through a disk-backed ``.npy`` memory map in the target folder that is zipped into place at
  the end -- memory never holds the whole (T, H, W) array. Frames never written are empty masks.
* :func:`write_json` -- the sidecar (fps, frame count, size, engine, model, prompts), atomically.
* :class:`OverlayVideoWriter` -- the video with coloured contours of each object (H.264 through libx264
  where FFmpeg has it, else MPEG-4 part 2), same fps and frame timestamps as the input, written frame by
  frame to a temporary file in the target folder and moved into place when complete.
* :func:`read_frame_mask` -- a mask PNG given as a prompt.

Arrays are ``(H, W)`` = (rows, columns) of one frame; label 0 is background.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from volsam.core.errors import InputError, OutputError
from volsam.io.atomic import atomic_target, temp_path
from volsam.io.labels import colour_of

log = logging.getLogger(__name__)

_FRAME_PNG = re.compile(r"^frame_(\d{6,})\.png$")
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {folder}: {exc.strerror}") from None


def _save_png(array: np.ndarray, path: Path) -> None:
    with atomic_target(path, ".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


class PngMaskFolder:
    """Per-frame label PNGs ``frame_NNNNNN.png`` in ``folder`` (six digits at least)."""

    def __init__(self, folder: str | Path, count: int, shape: tuple[int, int], dtype: type = np.uint8):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputError(f"{self.folder} is a file; give a folder (masks/) or a .npz for the masks")
        _mkdir(self.folder)
        self.count, self.shape, self.dtype = count, shape, np.dtype(dtype)
        self.digits = max(6, len(str(count - 1)))
        self._written: set[int] = set()

    @property
    def output(self) -> Path:
        return self.folder

    def path(self, t: int) -> Path:
        return self.folder / f"frame_{t:0{self.digits}d}.png"

    def write(self, t: int, labels: np.ndarray) -> None:
        """Store frame ``t``'s labels ``(H, W)``."""
        _save_png(np.ascontiguousarray(labels, dtype=self.dtype), self.path(t))
        self._written.add(t)

    def read(self, t: int) -> np.ndarray:
        """Frame ``t``'s labels (zeros when never written)."""
        if t not in self._written:
            return np.zeros(self.shape, self.dtype)
        return np.asarray(Image.open(self.path(t))).astype(self.dtype)

    def finish(self) -> Path:
        """Write the frames never written as empty masks and remove stale ``frame_*.png`` beyond the video."""
        empty = np.zeros(self.shape, self.dtype)
        for t in range(self.count):
            if t not in self._written:
                self.write(t, empty)
        for old in self.folder.iterdir():
            match = _FRAME_PNG.match(old.name)
            if match and int(match.group(1)) >= self.count:
                old.unlink()
        return self.folder

    def abort(self) -> None:
        """Remove the frames this run wrote (an interrupted run leaves no partial set of masks behind)."""
        for t in self._written:
            self.path(t).unlink(missing_ok=True)
        self._written.clear()


class NpzMasks:
    """One ``.npz`` with ``masks`` (T, H, W) and ``fps``; filled through a memory-mapped ``.npy`` on disk."""

    def __init__(self, path: str | Path, count: int, shape: tuple[int, int], fps: Fraction, dtype: type = np.uint8):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{self.path} is a folder; give a .npz file name")
        _mkdir(self.path.parent)
        self.fps = fps
        self._npy = temp_path(self.path, ".npy")
        try:
            self._map = np.lib.format.open_memmap(self._npy, mode="w+", dtype=dtype, shape=(count, *shape))
        except OSError as exc:
            self._npy.unlink(missing_ok=True)
            raise OutputError(f"cannot write next to {self.path}: {exc}") from None

    @property
    def output(self) -> Path:
        return self.path

    def write(self, t: int, labels: np.ndarray) -> None:
        self._map[t] = labels

    def read(self, t: int) -> np.ndarray:
        return np.array(self._map[t])

    def finish(self) -> Path:
        """Zip the memory map (streamed, deflated) and ``fps`` into the ``.npz``; atomically."""
        self._map.flush()
        del self._map
        try:
            with atomic_target(self.path, ".npz") as tmp:
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                    zf.write(self._npy, arcname="masks.npy")
                    with zf.open("fps.npy", "w") as fh:
                        np.lib.format.write_array(fh, np.asarray(float(self.fps)))
        finally:
            self._npy.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Remove the temporary memory map."""
        self.__dict__.pop("_map", None)
        self._npy.unlink(missing_ok=True)


def mask_output_is_npz(output: str | Path) -> bool:
    """True when video masks go to one ``.npz``, False for a PNG folder; refuses volume and image file names."""
    out = Path(output)
    name = out.name.lower()
    if name.endswith(".npz"):
        return True
    if name.endswith((".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".json")):
        raise OutputError(f"{out}: video masks go to a folder (-o masks/) or one .npz (-o masks.npz)")
    return False


def open_mask_sink(
    output: str | Path, count: int, shape: tuple[int, int], fps: Fraction, dtype: type = np.uint8
) -> PngMaskFolder | NpzMasks:
    """A ``.npz`` sink when ``output`` ends in ``.npz``, else a PNG folder; refuses volume file names."""
    if mask_output_is_npz(output):
        return NpzMasks(Path(output), count, shape, fps, dtype)
    return PngMaskFolder(Path(output), count, shape, dtype)


def sidecar_path(output: Path) -> Path:
    """Where the JSON sidecar of a mask output goes: ``masks/segmentation.json`` or ``masks.json``."""
    return output / "segmentation.json" if not output.name.lower().endswith(".npz") else output.with_suffix(".json")


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_target(path, ".json") as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def read_frame_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask image (PNG, or anything PIL reads) as an integer label array ``(H, W)`` of ``shape``;
    colour or alpha images count any non-zero pixel as label 1."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such mask file")
    try:
        with Image.open(path) as img:
            array = np.asarray(img)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable mask image ({exc})") from None
    if array.ndim == 3:
        array = array.any(axis=2).astype(np.uint8)
    if array.shape != tuple(shape):
        raise InputError(f"{path}: mask is {array.shape[1]}x{array.shape[0]} (WxH), the video {shape[1]}x{shape[0]}")
    return array.astype(np.int64)


def render_contours(picture: np.ndarray, labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` of ``picture`` (grey ``(H, W)`` or RGB) with each label's outline,
    ``thickness`` pixels wide inside the object, in the label's colour (:func:`volsam.io.labels.colour_of`)."""
    rgb = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture.copy()
    for lab in np.unique(labels):
        if lab == 0:
            continue
        region = labels == lab
        edge = region & ~ndimage.binary_erosion(region, iterations=thickness, border_value=0)
        rgb[edge] = colour_of(int(lab))
    return rgb


def pick_codec(container: str = "mp4") -> str:
    """``libx264`` (H.264) when FFmpeg has the encoder, else ``mpeg4``; AVI prefers ``mpeg4`` (its classic)."""
    import av

    for name in ("mpeg4", "libx264") if container == "avi" else ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        return name
    raise OutputError("FFmpeg here has neither the libx264 nor the mpeg4 encoder: cannot write an overlay video")


class OverlayVideoWriter:
    """Encode RGB frames into ``path`` (``.mp4``, ``.mov``, ``.mkv`` or ``.avi``) at ``fps``, frame by frame.

    Timestamps: give each frame its input ``pts`` in the input's ``time_base`` (the stream is created with
    that time base, so variable frame rates survive; the muxer may still rescale: Matroska stores
    milliseconds). Without a time base, and always in AVI (a frame-counting container), frame ``t`` is
    shown at ``t / fps``.
    H.264 wants even sizes in 4:2:0: odd-sized videos are encoded 4:4:4 instead (same size, fewer players).
    The file appears at ``path`` only when :meth:`close` succeeds.
    """

    def __init__(self, path: str | Path, fps: Fraction, size: tuple[int, int], time_base: Fraction | None = None):
        import av

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _CONTAINERS:
            raise OutputError(f"overlay {self.path}: give a .mp4, .mov, .mkv or .avi file name")
        _mkdir(self.path.parent)
        self.codec = pick_codec(_CONTAINERS[suffix])
        width, height = size
        self._tmp = temp_path(self.path, suffix)
        self._container = av.open(str(self._tmp), mode="w", format=_CONTAINERS[suffix])
        self.fps = Fraction(fps)
        self.frame_indexed = time_base is None or suffix == ".avi"  # AVI counts frames: 1/fps ticks only
        self.time_base = 1 / self.fps if self.frame_indexed else Fraction(time_base)
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        stream.pix_fmt = "yuv420p" if even or self.codec != "libx264" else "yuv444p"
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        if self.codec == "libx264":
            stream.options = {"crf": "20", "preset": "veryfast"}
        self._stream = stream
        self._count = 0
        self._last_pts: int | None = None

    def add(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Append one RGB uint8 ``(H, W, 3)`` frame shown at ``pts`` (ticks of ``time_base``)."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if pts is None or self.frame_indexed:
            pts = self._count
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need increasing timestamps
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._count += 1

    def close(self) -> Path:
        """Flush, close and move the file into place."""
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            os.replace(self._tmp, self.path)
        except Exception as exc:
            self.abort()
            raise OutputError(f"cannot write overlay video {self.path}: {exc}") from None
        log.info("wrote %d frames to %s (%s)", self._count, self.path, self.codec)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 -- already broken; the temp file goes anyway
            pass
        self._tmp.unlink(missing_ok=True)
