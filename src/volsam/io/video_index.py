"""Opening a video container with PyAV (FFmpeg) and indexing its frames: :class:`VideoInfo` (frame count,
fps, size, duration, codec, time base) and the presentation-order index of frame timestamps that
:class:`volsam.io.video.VideoFrames` seeks with.

The frame count is exact: it comes from the demuxed packets, not from the container's (often missing or
wrong) header; fps is a :class:`~fractions.Fraction`. Missing, empty, truncated, audio-only or unsupported
files raise :class:`InputError` naming the path and the reason.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from volsam.core.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about its timing and pictures.

    Attributes:
        frame_count: frames in the video stream (counted from its packets, not the header's estimate).
        fps: average frame rate (frames per second), exact (e.g. 30000/1001).
        width, height: picture size in pixels.
        duration: seconds (frame_count / fps when the container does not say).
        codec: decoder name (``h264``, ``mpeg4``, ... ; ``dicom`` for a cine file).
        time_base: seconds per timestamp tick of the stream (None for DICOM).
        container: container format name (``mov,mp4,m4a,3gp,3g2,mj2``, ``avi``, ``dicom``, ...).
        colour: True when the pictures have colour (RGB / YUV with chroma), False for grey sources.
    """

    path: str
    frame_count: int
    fps: Fraction
    width: int
    height: int
    duration: float
    codec: str
    time_base: Fraction | None
    container: str
    colour: bool

    def describe(self) -> str:
        """The facts ``volsam info`` prints, one per line."""
        rows = [
            ("video", self.path),
            ("frames", str(self.frame_count)),
            ("fps", f"{self.fps.numerator}/{self.fps.denominator} ({float(self.fps):.3f})"),
            ("size", f"{self.width} x {self.height} (W x H pixels)"),
            ("duration", f"{self.duration:.3f} s"),
            (
                "codec",
                f"{self.codec} in {self.container}" + (f", time base {self.time_base}" if self.time_base else ""),
            ),
            ("colour", "yes (RGB frames for SAM 2)" if self.colour else "no (grey)"),
        ]
        return "\n".join(f"{name + ':':<10}{value}" for name, value in rows)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (fractions as ``"num/den"`` strings plus ``fps_float``)."""
        out = asdict(self)
        out["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        out["fps_float"] = float(self.fps)
        out["time_base"] = None if self.time_base is None else str(self.time_base)
        return out


def check_file(path: Path) -> None:
    """InputError unless ``path`` is a non-empty file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")


def open_container(path: Path) -> Any:
    """An open PyAV input container and its first video stream; InputError for anything unreadable."""
    import av

    check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({error_reason(exc)})") from None
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        container.close()
        raise InputError(f"{path}: no video stream in the file (streams: {kinds})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise InputError(f"{path}: video codec {stream.codec.name if stream.codec else '?'} cannot be decoded here")
    stream.thread_type = "AUTO"
    return container, stream


def error_reason(exc: BaseException) -> str:
    """FFmpeg's message for ``exc`` on one line, cut to 200 characters (for InputError messages)."""
    text = " ".join(str(exc).split())
    return text if len(text) < 200 else text[:200] + "..."


@dataclass(frozen=True)
class FrameIndex:
    """Presentation timestamps of every frame (sorted; None when the stream lacks unique timestamps)."""

    count: int
    pts: np.ndarray | None


def _index(path: Path, container: Any, stream: Any) -> FrameIndex:
    """Demux (no decoding) every packet of ``stream``: the exact frame count and the frames' timestamps."""
    import av

    stamps: list[int | None] = []
    packets = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # flush packets
                continue
            packets += 1
            if not packet.is_discard:  # edit-list leaders are decoded but never shown
                stamps.append(packet.pts if packet.pts is not None else packet.dts)
    except av.FFmpegError as exc:
        raise InputError(f"{path}: broken video data after {len(stamps)} frames ({error_reason(exc)})") from None
    if not stamps:
        raise InputError(f"{path}: the video stream holds no frames")
    _check_complete(path, container, stream, packets)
    pts: np.ndarray | None = None
    if all(s is not None for s in stamps):
        pts = np.sort(np.asarray(stamps, dtype=np.int64))
        if np.any(np.diff(pts) <= 0):
            pts = None  # repeated timestamps: frames are identified by counting from the start
    return FrameIndex(len(stamps), pts)


def _check_complete(path: Path, container: Any, stream: Any, packets: int) -> None:
    """InputError when the headers promise clearly more frames than the file holds (a truncated or
    damaged file that FFmpeg would otherwise read as a shorter video)."""
    promised = int(stream.frames or 0)
    if promised <= 0 and container.duration and stream.average_rate:
        promised = int(container.duration / 1_000_000 * float(stream.average_rate) * 0.9) - 2  # rough: VFR
    if packets < promised:
        raise InputError(
            f"{path}: truncated or damaged: the headers promise about {promised} frames, the file holds {packets}"
        )


def _fps(stream: Any, count: int) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    if stream.duration and stream.time_base and count > 1:
        return Fraction(count) / (stream.duration * Fraction(stream.time_base))
    return Fraction(25)  # FFmpeg's own fallback for streams without any rate


def _first_picture(path: Path, container: Any, stream: Any) -> Any:
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode its {stream.codec_context.name} video ({error_reason(exc)})") from None
    raise InputError(f"{path}: no frame could be decoded from its {stream.codec_context.name} video")


def probe_container(path: Path, container: Any, stream: Any) -> tuple[VideoInfo, FrameIndex]:
    """:class:`VideoInfo` and the :class:`FrameIndex` of an open container's ``stream`` (demuxes every packet,
    decodes the first picture); the container is left seeked to the start."""
    index = _index(path, container, stream)
    container.seek(0)
    first = _first_picture(path, container, stream)
    fps = _fps(stream, index.count)
    tb = Fraction(stream.time_base) if stream.time_base else None
    if stream.duration and tb is not None:
        duration = float(stream.duration * tb)
    else:
        duration = float(index.count / fps)
    colour = "gray" not in first.format.name and not first.format.name.startswith(("y8", "y16"))
    info = VideoInfo(
        path=str(path),
        frame_count=index.count,
        fps=fps,
        width=int(first.width),
        height=int(first.height),
        duration=duration,
        codec=str(stream.codec_context.name),
        time_base=tb,
        container=str(container.format.name),
        colour=bool(colour),
    )
    return info, index


__all__ = ["FrameIndex", "VideoInfo", "check_file", "error_reason", "open_container", "probe_container"]
