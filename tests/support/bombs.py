"""Hostile picture and video files made on the spot, for the refusal tests of the readers and the server.

* :func:`resizing_video` -- a real video whose stream changes its picture size after its first frames (the
  container's header declares the first size; the decoder reports the new size from the later keyframes).
* :func:`png_bomb` -- a valid PNG whose header declares a huge picture, every row present, deflated to a small file.
* :func:`flat_video` -- an H.264 ``.mp4`` of flat frames: a large picture size or many frames in a few kB.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# codec -> (container format, pixel format): codecs whose every keyframe / picture carries its own size
RESIZING_CODECS = {"libvpx": ("webm", "yuv420p"), "mjpeg": ("avi", "yuvj420p")}


def resizing_video(path: Path, parts: list[np.ndarray], *, codec: str = "libvpx", fps: int = 10) -> Path:
    """Write grey ``(n, H, W)`` uint8 frame arrays ``parts`` one after the other into ONE video stream of
    ``path``, each part encoded at its own size by a fresh encoder (so its first frame is a keyframe that
    declares the new size). The stream's header declares the first part's size. ``codec``: ``libvpx`` (VP8 in
    WebM: the size is in every keyframe's header) or ``mjpeg`` (AVI: every picture is a JPEG with its size)."""
    fmt, pix = RESIZING_CODECS[codec]
    h0, w0 = parts[0].shape[1:3]
    tick = 0
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w0, h0, pix
        for frames in parts:
            enc = av.CodecContext.create(codec, "w")
            enc.height, enc.width = frames.shape[1:3]
            enc.pix_fmt, enc.time_base = pix, Fraction(1, fps)
            if codec == "libvpx":
                enc.options = {"deadline": "realtime", "cpu-used": "8"}
            pictures = []
            for f in frames:
                picture = av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, axis=2), format="rgb24")
                picture = picture.reformat(format=pix)
                picture.pts, picture.time_base = tick, Fraction(1, fps)
                tick += 1
                pictures.append(picture)
            for packet in [p for picture in pictures for p in enc.encode(picture)] + list(enc.encode(None)):
                packet.stream = stream
                out.mux(packet)
    return Path(path)


def png_bomb(width: int, height: int, colour_type: int = 0) -> bytes:
    """A valid 8-bit PNG of ``width`` x ``height`` black pixels (grey: colour type 0, RGB: 2), every row
    present (20000 x 20000 grey: 400 MB once decoded, ~0.4 MB of file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    line = bytes(1 + width * (3 if colour_type == 2 else 1))  # filter type 0, then the row's samples
    body = b"".join(packer.compress(line) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def flat_video(path: Path, frames: int, height: int, width: int, value: int = 90) -> Path:
    """An H.264 ``.mp4`` (ultrafast) of ``frames`` flat grey pictures of ``width`` x ``height``: its header
    declares the size and the frame count; the file is a few kB (8192 x 8192: ~30 kB a frame)."""
    picture = av.VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for t in range(frames):
            picture.pts = t
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)
