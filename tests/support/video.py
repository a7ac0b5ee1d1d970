"""Small test videos made on the spot with PyAV, and a DICOM ultrasound cine made with pydicom.

:func:`moving_disc_video` writes a bright ellipse that moves and deforms over a textured background and
returns its exact masks, so segmentations can be scored per frame. :func:`write_cine` writes an
"US Multi-frame Image Storage" file with frame timing.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"


def disc_frames(
    n: int = 12, size: tuple[int, int] = (80, 96), speed: float = 2.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(grey frames uint8 (n, H, W), truth masks bool (n, H, W)): an ellipse (value 200) whose centre moves
    ``speed`` px per frame to the right (and drifts down), whose radii breathe by +-2 px, over a sinusoidal
    texture (40..110) with noise; ``size`` = (H, W)."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    texture = 75 + 25 * np.sin(x / 4.0) * np.cos(y / 6.0)
    frames, truth = [], []
    for t in range(n):
        cx, cy = 0.3 * w + speed * t, 0.45 * h + 0.5 * t
        rx, ry = 0.15 * w + 2 * np.sin(t / 2), 0.15 * h - 2 * np.sin(t / 2)
        disc = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        frames.append(np.clip(np.where(disc, 200, texture) + rng.normal(0, 5, (h, w)), 0, 255).astype(np.uint8))
        truth.append(disc)
    return np.stack(frames), np.stack(truth)


def write_video(
    path: Path,
    frames: np.ndarray,
    *,
    fps: Fraction | int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
) -> Path:
    """Encode grey ``(n, H, W)`` or RGB ``(n, H, W, 3)`` uint8 frames; ``gop`` = frames between keyframes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
            if codec == "libx264":
                stream.options = {"keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"}
        for f in frames:
            rgb = f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def moving_disc_video(path: Path, n: int = 12, size: tuple[int, int] = (80, 96), **kw) -> np.ndarray:
    """Write :func:`disc_frames` as a video at ``path``; returns the truth masks (n, H, W)."""
    frames, truth = disc_frames(n, size)
    write_video(path, frames, **kw)
    return truth


def write_cine(path: Path, frames: np.ndarray, *, frame_time_ms: float | None = 40.0, rate: int | None = None) -> Path:
    """A DICOM US multi-frame file of uint8 grey ``(n, H, W)`` or RGB ``(n, H, W, 3)`` frames, with
    FrameTime (ms) and/or RecommendedDisplayFrameRate ``rate`` (neither: no timing at all)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "US", "Test^Cine", "cine-1"
    rgb = frames.ndim == 4
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape[0], frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frame_time_ms is not None:
        ds.FrameTime = f"{frame_time_ms:g}"
        ds.FrameIncrementPointer = pydicom.tag.Tag(0x0018, 0x1063)
    if rate is not None:
        ds.RecommendedDisplayFrameRate = rate
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return Path(path)
