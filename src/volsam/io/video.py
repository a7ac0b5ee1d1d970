"""Videos as streams of frames: containers through PyAV (FFmpeg) and DICOM multi-frame cine files.

* :func:`probe_video` -- frame count, fps (a :class:`~fractions.Fraction`), size, duration, codec, time base.
* :func:`open_frames` -- a frame source for tracking: ``len()``, ``frame_shape`` (H, W) and
  ``frames(indices)`` -> uint8 ``(n, H, W)`` (grey) or ``(n, H, W, 3)`` (colour), one frame decoded at a time.
* :func:`iter_frames` -- every frame in order with its timestamp (for rendering an overlay video).

Frame ``t`` is the t-th frame in presentation order (sorted timestamps), ``t = 0 .. len - 1``; pixel
``(x, y)`` is column x, row y of the decoded picture (no rotation metadata applied).

Intensities: video frames already are display values 0..255, so there is no CT/MR windowing or percentile
normalisation. Grey frames are the ITU-R BT.601 luma of the decoded RGB picture,
``Y = 0.299 R + 0.587 G + 0.114 B`` (rounded): FFmpeg converts the stream's own YUV (its matrix and range)
to full-range RGB first, so every codec gives the same grey for the same picture.

Memory bound (:class:`VideoFrames`): an index of one int64 timestamp per frame (8 bytes a frame: 144 kB for
a 10-minute 30 fps video), at most ``capacity`` decoded frames (H x W bytes each, x3 in colour) in an LRU,
and FFmpeg's decoder buffers (a few frames). Access pattern of tracking: forward from the prompted frame is
plain sequential decoding (one frame decoded per frame asked); going backward, a miss on frame ``t``
seeks to the keyframe at or before frame ``t - chunk + 1`` and decodes that chunk of ``chunk =
capacity // 2`` frames at once, so the backward walk costs about (1 + GOP / chunk) decodes per frame.

One picture size per video: a stream can change its picture size after its first frames (a VP8 / H.264
keyframe, an MJPEG picture, a container whose later frames are larger). Every decoded frame whose size is not
the one the video was opened with (its first picture, :attr:`VideoInfo.width` x ``height``) is refused with an
:class:`InputError` naming the frame and both sizes, before it is converted to RGB or kept; and the decoder
itself is held to :data:`GROWTH_LIMIT` x that many pixels (FFmpeg's ``max_pixels``, rounded up to 64-pixel
blocks, at least :data:`MIN_DECODER_PIXELS`), so a tiny file whose later keyframe declares a huge picture is
refused by FFmpeg before it allocates that picture.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from volsam.core.errors import InputError
from volsam.core.volume import luma
from volsam.io.video_index import VideoInfo, check_file, error_reason, open_container, probe_container

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".ogv")
DICOM_SUFFIXES = (".dcm", ".dicom")
DEFAULT_CACHE_MB = 256.0
MAX_CAPACITY = 64  # decoded frames kept at most, whatever the budget allows
GROWTH_LIMIT = 4  # the decoder refuses pictures over this many times the opened frame's pixels (module notes)
MIN_DECODER_PIXELS = 2**20  # ... and never caps below this (1.5 MB of YUV 4:2:0)


def is_video_path(path: str | Path) -> bool:
    """True when ``path`` names a video container by its suffix (see :data:`VIDEO_SUFFIXES`)."""
    return Path(path).name.lower().endswith(VIDEO_SUFFIXES)


def is_cine_file(path: str | Path) -> bool:
    """True for a DICOM file with several frames and frame timing (see :func:`cine_fps`): a cine loop."""
    import pydicom

    path = Path(path)
    if not path.is_file():
        return False
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 -- not DICOM
        return False
    return int(ds.get("NumberOfFrames", 1) or 1) > 1 and cine_fps(ds) is not None


def is_video_input(path: str | Path) -> bool:
    """True for a video container (by suffix) or a DICOM cine file (by its header)."""
    if is_video_path(path):
        return True
    return Path(path).name.lower().endswith(DICOM_SUFFIXES) and is_cine_file(path)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``(..., 3)`` RGB -> uint8 ``(...)`` BT.601 luma (rounded; :func:`volsam.core.volume.luma`)."""
    return luma(rgb)


def probe_video(path: str | Path) -> VideoInfo:
    """Timing and size of a video (or DICOM cine) file; InputError for a missing, empty, broken or
    unsupported file (the message names the path and the reason)."""
    path = Path(path)
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return DicomCineFrames(path).info
    container, stream = open_container(path)
    try:
        return probe_container(path, container, stream)[0]
    finally:
        container.close()


def decoder_pixel_cap(width: int, height: int) -> int:
    """The most pixels the decoder may allocate for one picture of a ``width`` x ``height`` video:
    :data:`GROWTH_LIMIT` x the frame, each side rounded up to 64 (codecs' coded sizes are whole blocks), and at
    least :data:`MIN_DECODER_PIXELS` (FFmpeg checks some codecs' scratch buffers against the same limit: the
    MPEG-4 part 2 decoder needs 53,760 whatever the picture size, measured with FFmpeg 7)."""
    return max(MIN_DECODER_PIXELS, GROWTH_LIMIT * (-(-width // 64) * 64) * (-(-height // 64) * 64))


def cap_decoder(stream: Any, width: int, height: int) -> None:
    """Hold the (not yet opened) decoder of ``stream`` to :func:`decoder_pixel_cap` pixels per picture."""
    if width > 0 and height > 0:
        stream.codec_context.options = {
            **stream.codec_context.options,
            "max_pixels": str(decoder_pixel_cap(width, height)),
        }


def check_frame_size(path: Path, t: int, frame: Any, width: int, height: int) -> None:
    """InputError when decoded ``frame`` (frame ``t`` of ``path``) is not ``width`` x ``height`` pixels: the
    stream changed its picture size mid-stream. Reads the frame's header only (nothing is converted)."""
    if (int(frame.width), int(frame.height)) != (width, height):
        raise InputError(
            f"{path}: frame {t} is {frame.width}x{frame.height} pixels but the video was opened as "
            f"{width}x{height} (W x H): a picture size that changes mid-stream is not supported; re-encode the "
            f"video at one size (e.g. ffmpeg -i IN -vf scale={width}:{height} OUT.mp4)"
        )


def _broken(path: Path, t: int, exc: BaseException, width: int, height: int) -> InputError:
    """The InputError for an FFmpeg failure near frame ``t`` (which may be the decoder's picture-size cap; with
    frame threading FFmpeg reports it a few frames early, while it decodes the frames before it)."""
    return InputError(
        f"{path}: broken video data near frame {t} ({error_reason(exc)}); this reader also refuses any picture "
        f"over {decoder_pixel_cap(width, height):,} pixels ({GROWTH_LIMIT} x the video's {width}x{height} frames)"
    )


def _picture(frame: Any, colour: bool) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    return rgb if colour else to_grey(rgb)


_Source = TypeVar("_Source", bound="_FrameSource")


class _FrameSource:
    """What every frame source shares: ``len()``, ``frame_shape``, ``frames(indices)`` (copies) and the
    context-manager protocol; subclasses set ``path`` and ``info`` and define ``frame(t)`` and ``close()``."""

    path: Path
    info: VideoInfo

    def __len__(self) -> int:
        return self.info.frame_count

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return (self.info.height, self.info.width)

    def frames(self, indices: list[int]) -> np.ndarray:
        """uint8 ``(n, H, W)`` grey (``(n, H, W, 3)`` in colour) frames, copies."""
        return np.stack([self.frame(int(t)).copy() for t in indices])

    def frame(self, t: int) -> np.ndarray:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _check_index(self, t: int) -> None:
        if not 0 <= t < len(self):
            raise InputError(f"{self.path}: frame {t} is outside 0..{len(self) - 1}")

    def __enter__(self: _Source) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoFrames(_FrameSource):
    """A video as a frame source for tracking, decoded as a stream with bounded memory (module notes).

    Args:
        path: a video file (see :data:`VIDEO_SUFFIXES`; any container FFmpeg reads works).
        colour: frames ``(n, H, W, 3)`` RGB instead of BT.601 grey ``(n, H, W)``.
        cache_mb: memory for decoded frames; ``capacity`` = that many frames, 4 .. :data:`MAX_CAPACITY`.
        capacity: the number of decoded frames kept, instead of ``cache_mb``.

    Attributes ``decoded`` (frames decoded so far), ``seeks`` and ``max_cached`` (the most frames held at
    once) show what the stream cost. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self, path: str | Path, *, colour: bool = False, cache_mb: float = DEFAULT_CACHE_MB, capacity: int | None = None
    ):
        self.path = Path(path)
        self.colour = colour
        container, stream = open_container(self.path)
        try:
            self.info, index = probe_container(self.path, container, stream)
        finally:
            container.close()
        # the probe opened its decoder uncapped (the size was not known yet): decode with a fresh, capped one
        self._container, self._stream = open_container(self.path)
        cap_decoder(self._stream, self.info.width, self.info.height)
        self._pts = index.pts
        frame_bytes = self.info.width * self.info.height * (3 if colour else 1)
        if capacity is None:
            capacity = int(cache_mb * 2**20 // max(frame_bytes, 1))
        self.capacity = max(4, min(MAX_CAPACITY, int(capacity)))
        self.chunk = self.capacity // 2
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder: Iterator[Any] | None = None
        self._next = 0  # index of the frame the decoder gives next
        self._last: int | None = None
        self.decoded = 0
        self.seeks = 0
        self.max_cached = 0

    # -- frame source protocol --------------------------------------------------------------------------
    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` (the cached array itself: do not modify it)."""
        self._check_index(t)
        if t in self._cache:
            self._cache.move_to_end(t)
            self._last = t
            return self._cache[t]
        backward = self._last is not None and t < self._last
        ahead = self._decoder is not None and self._next <= t < self._next + self.chunk
        if ahead:
            self._decode_until(t, keep_from=t)
        else:
            start = max(0, t - self.chunk + 1) if backward else t
            self._seek(start)
            self._decode_until(t, keep_from=start)
        self._last = t
        self._cache.move_to_end(t)
        return self._cache[t]

    # -- decoding ----------------------------------------------------------------------------------------
    def _seek(self, start: int) -> None:
        self.seeks += 1
        if self._pts is None or start == 0:
            self._container.seek(0)
            self._decoder = self._container.decode(self._stream)
            self._next = 0
            return
        self._container.seek(int(self._pts[start]), stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(self._stream)
        self._next = -1  # known once the first frame arrives

    def _index_of(self, frame: Any) -> int | None:
        """The frame's index: by timestamp, or by counting when the stream has no usable timestamps."""
        if self._pts is None:
            return self._next
        if frame.pts is None:
            return None
        at = int(np.searchsorted(self._pts, frame.pts))
        return at if at < len(self._pts) and self._pts[at] == frame.pts else None

    def _decode_until(self, t: int, keep_from: int) -> None:
        """Decode on to frame ``t``, keeping the frames from ``keep_from`` on."""
        import av

        if self._decoder is None:
            self._seek(keep_from)
        try:
            for frame in self._decoder:  # type: ignore[union-attr]
                self.decoded += 1
                at = self._index_of(frame)
                if at is None or (self._next == -1 and at > keep_from):
                    # a timestamp the index does not know, or a seek that landed after the wanted frame:
                    # count frames from the start instead (always right, slower going backward)
                    log.debug("%s: frame %s not where expected; decoding from the start", self.path, frame.pts)
                    self._pts = None if at is None else self._pts
                    self._seek(0)
                    self._decode_until(t, keep_from)
                    return
                if (frame.width, frame.height) != (self.info.width, self.info.height):
                    self._decoder = None  # the stream is past the refused frame: the next request seeks
                    check_frame_size(self.path, at, frame, self.info.width, self.info.height)
                self._next = at + 1
                if at >= keep_from:
                    self._store(at, _picture(frame, self.colour))
                if at >= t:
                    return
        except av.FFmpegError as exc:
            near = self._next if self._next >= 0 else keep_from  # -1: just after a seek aimed at keep_from
            self._decoder = None
            raise _broken(self.path, near, exc, self.info.width, self.info.height) from None
        self._decoder = None
        raise InputError(
            f"{self.path}: frame {t} could not be decoded: the stream ended after frame {self._next - 1} "
            f"of {len(self)} (truncated file?)"
        )

    def _store(self, t: int, picture: np.ndarray) -> None:
        self._cache[t] = picture
        self._cache.move_to_end(t)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.max_cached = max(self.max_cached, len(self._cache))

    def close(self) -> None:
        """Release the file and every decoded frame."""
        self._cache.clear()
        self._decoder = None
        self._container.close()


@dataclass(frozen=True)
class TimedFrame:
    """One decoded frame in presentation order: its index, timestamp (ticks of ``time_base``) and pixels."""

    index: int
    pts: int | None
    time_base: Fraction | None
    picture: np.ndarray


def iter_frames(path: str | Path, *, colour: bool = True) -> Iterator[TimedFrame]:
    """Every frame of a video (or DICOM cine) file in order, decoded one at a time."""
    import av

    path = Path(path)
    if path.name.lower().endswith(DICOM_SUFFIXES):
        cine = DicomCineFrames(path, colour=colour)
        for t in range(len(cine)):
            yield TimedFrame(t, None, None, cine.frame(t))
        return
    container, stream = open_container(path)
    tb = Fraction(stream.time_base) if stream.time_base else None
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    cap_decoder(stream, width, height)  # the header's size; the first picture's is the one every frame must have
    t = 0
    try:
        for frame in container.decode(stream):
            if t == 0:
                width, height = int(frame.width), int(frame.height)
            check_frame_size(path, t, frame, width, height)
            yield TimedFrame(t, frame.pts, tb, _picture(frame, colour))
            t += 1
    except av.FFmpegError as exc:
        raise _broken(path, t, exc, width, height) from None
    finally:
        container.close()


class DicomCineFrames(_FrameSource):
    """A DICOM multi-frame file (ultrasound cine, XA) as a frame source: one frame read at a time.

    fps comes from FrameTime (ms per frame), else the mean of FrameTimeVector, else
    RecommendedDisplayFrameRate, else CineRate; a file with none of them is not a cine (InputError: read it as
    a volume). Pixels: 8-bit frames as stored; deeper ones scaled from their BitsStored range to 0..255;
    MONOCHROME1 inverted; colour (RGB, YBR) converted to RGB by pydicom, then to BT.601 luma unless
    ``colour``. A small LRU of frames is kept (random access costs one frame read).
    """

    def __init__(self, path: str | Path, *, colour: bool = False, capacity: int = 8):
        import pydicom

        self.path = Path(path)
        self.colour = colour
        check_file(self.path)
        try:
            ds = pydicom.dcmread(self.path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 -- any parse failure: not DICOM
            raise InputError(f"{self.path}: not a readable DICOM file ({error_reason(exc)})") from None
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames < 2:
            raise InputError(f"{self.path}: a single-frame DICOM image is not a cine (read it as a volume)")
        fps = cine_fps(ds)
        if fps is None:
            raise InputError(
                f"{self.path}: {frames} frames but no FrameTime, FrameTimeVector, RecommendedDisplayFrameRate or "
                "CineRate: not a cine (read it as a volume)"
            )
        self._photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
        self._bits = int(ds.get("BitsStored", 8) or 8)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        self.info = VideoInfo(
            path=str(self.path),
            frame_count=frames,
            fps=fps,
            width=int(ds.Columns),
            height=int(ds.Rows),
            duration=float(frames / fps),
            codec="dicom",
            time_base=None,
            container="dicom",
            colour=samples == 3,
        )
        self.capacity = max(1, capacity)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.decoded = 0

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` (the cached array itself: do not modify it)."""
        self._check_index(t)
        if t not in self._cache:
            self._cache[t] = self._read(t)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        self._cache.move_to_end(t)
        return self._cache[t]

    def _read(self, t: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        try:
            raw = np.asarray(pixel_array(self.path, index=t))
        except Exception as exc:  # noqa: BLE001 -- decoder failures of every kind
            raise InputError(f"{self.path}: cannot read frame {t} ({error_reason(exc)})") from None
        self.decoded += 1
        if raw.dtype != np.uint8:
            top = float(2 ** min(self._bits, 16) - 1)
            raw = np.clip(np.rint(raw.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
        if self._photometric == "MONOCHROME1":
            raw = 255 - raw
        if raw.ndim == 3:
            return raw if self.colour else to_grey(raw)
        return np.repeat(raw[..., None], 3, axis=2) if self.colour else raw

    def close(self) -> None:
        """Forget the kept frames."""
        self._cache.clear()


def cine_fps(ds: Any) -> Fraction | None:
    """Frames per second of a DICOM multi-frame dataset (pydicom), None when it carries no timing."""

    def number(keyword: str) -> float | None:
        try:
            value = ds.get(keyword)
            return None if value in (None, "") else float(value)
        except (TypeError, ValueError):
            return None

    frame_time = number("FrameTime")
    if frame_time and frame_time > 0:
        return Fraction(1000) / Fraction(str(frame_time))
    vector = ds.get("FrameTimeVector")
    if vector is not None:
        try:
            times = [float(v) for v in vector][1:]  # the first entry is 0 (time before the first frame)
        except (TypeError, ValueError):
            times = []
        if times and sum(times) > 0:
            return Fraction(1000 * len(times)) / Fraction(str(round(sum(times), 6)))
    for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
        rate = number(keyword)
        if rate and rate > 0:
            return Fraction(str(rate))
    return None


def open_frames(path: str | Path, *, colour: bool = False, cache_mb: float = DEFAULT_CACHE_MB):
    """The frame source for ``path``: :class:`DicomCineFrames` for ``.dcm``, else :class:`VideoFrames`."""
    path = Path(path)
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return DicomCineFrames(path, colour=colour)
    return VideoFrames(path, colour=colour, cache_mb=cache_mb)


__all__ = [
    "DicomCineFrames",
    "TimedFrame",
    "VideoFrames",
    "VideoInfo",
    "cap_decoder",
    "check_frame_size",
    "cine_fps",
    "decoder_pixel_cap",
    "is_cine_file",
    "is_video_input",
    "is_video_path",
    "iter_frames",
    "open_frames",
    "probe_video",
    "to_grey",
]
