"""Uploaded images: stored under a name the server chooses, size-limited (also while the body streams in:
:class:`volsam.server.guard.Guard`), unpacked safely, read within the decoded-size limit.

The client's file name is used for one thing only: its extension, from a fixed list (volumes, a DICOM series
as ``.zip``, and 2D images: ``.png .jpg .jpeg .bmp .tif .tiff`` and a single ``.dcm``). The extension only
picks the reader; the content must then be that format (a PNG named ``.jpg`` is refused: Pillow is given the
one format the name says, tifffile and pydicom check their own headers). Zip archives (DICOM
series) are unpacked by :func:`volsam.io.archive.unpacked_zip` (no absolute or ``..`` entries, no links,
limited file count and inflated size). Images are read with ``max_bytes`` (``--max-image-mb``: refused from
their headers before anything is decompressed; pictures also meet Pillow's decompression-bomb limit) and
``untrusted`` (no NRRD / MetaImage data in another file).
Refusals name the upload as ``upload.<ext>``, never the server's temporary folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from volsam.core.errors import ImageTooLarge, InputError, UploadTooLarge, VolsamError
from volsam.core.volume import Volume

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".zip", ".npz")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")  # 2D images (one-slice Volumes)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")  # video sessions (a .dcm cine too: by its header)
SUFFIXES = VOLUME_SUFFIXES + PICTURE_SUFFIXES + VIDEO_SUFFIXES
ZIP_INFLATION = 4  # a zip may unpack to this many times the upload limit
MAX_ZIP_FILES = 5000
CHUNK = 1 << 20  # bytes read at a time; also the room left for the multipart framing around a file

__all__ = [  # UploadTooLarge lives in volsam.core.errors; kept importable from here
    "CHUNK",
    "UploadTooLarge",
    "check_video",
    "discard",
    "renamed",
    "is_video_upload",
    "read_upload",
    "save_upload",
    "scratch",
    "suffix_of",
]


def suffix_of(filename: str | None) -> str:
    """The accepted extension of a client file name; refuses anything else."""
    name = (filename or "").lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(f"unsupported upload {filename!r}: send one of {', '.join(SUFFIXES)} (DICOM series as .zip)")


def save_upload(chunks: Iterable[bytes], filename: str | None, limit_bytes: int, folder: Path) -> Path:
    """Write ``chunks`` to ``folder/upload<suffix>``, stopping with :class:`UploadTooLarge` past the limit."""
    path = folder / f"upload{suffix_of(filename)}"
    written = 0
    with path.open("wb") as fh:
        for chunk in chunks:
            written += len(chunk)
            if written > limit_bytes:
                raise UploadTooLarge(f"the upload is larger than this server's limit of {limit_bytes // 2**20} MB")
            fh.write(chunk)
    if written == 0:
        raise InputError("the upload is empty")
    return path


def read_upload(path: Path, limit_bytes: int, max_image_bytes: int | None = None, channel: int | None = None) -> Volume:
    """Read a saved upload as a Volume (a zip as a DICOM series, within the inflation limits; ``channel``: the
    volume of a 4D file). Refusals name ``upload.<ext>`` and the files inside a zip, not the server's folders."""
    from volsam.io.archive import unpacked_zip
    from volsam.io.readers import read_volume

    try:
        if path.suffix == ".zip":
            if channel is not None:
                raise InputError("channel applies to 4D or vector NIfTI/NRRD/MetaImage uploads only")
            with unpacked_zip(path, max_files=MAX_ZIP_FILES, max_bytes=ZIP_INFLATION * limit_bytes) as folder:
                try:
                    volume = read_volume(folder, max_bytes=max_image_bytes)
                except VolsamError as exc:
                    raise renamed(exc, str(folder), to=path.name) from None
        else:
            volume = read_volume(path, channel=channel, max_bytes=max_image_bytes, untrusted=True)
    except VolsamError as exc:
        raise renamed(exc, f"{path.parent}/", to="") from None
    volume.meta["source"] = "upload"  # never echo a server path back
    return volume


def is_video_upload(path: Path) -> bool:
    """A video container by its (server-chosen) name, or a ``.dcm`` with several frames and frame timing."""
    from volsam.io.video import is_cine_file

    return path.suffix in VIDEO_SUFFIXES or (path.suffix == ".dcm" and is_cine_file(path))


def check_video(path: Path, max_image_bytes: int) -> None:
    """Refuse (:class:`ImageTooLarge`, 413) a video whose frames would pass ``max_image_bytes``, before the
    session decodes a frame: one RGB frame (width x height x 3, from the stream's header; FFmpeg's probing
    decoders are held to that many pixels by ``max_pixels``) and the session's label frames (width x height x
    frames, one byte each: the header's count, then the demuxed packets counted without decoding, stopping at
    the limit). A DICOM cine: rows x columns x samples x bytes per sample x frames from its header. Refusals
    name ``upload.<ext>``."""
    name = path.name
    if path.suffix == ".dcm":
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        frame = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
        frame *= max(1, (int(ds.get("BitsAllocated", 8) or 8) + 7) // 8)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        _fits(name, f"{frames} frames of {ds.Columns}x{ds.Rows}", frame * frames, max_image_bytes)
        return
    import av

    try:
        # FFmpeg decodes the first pictures while it opens the file (to learn the stream's format): its
        # decoders' own limit keeps those within one RGB frame of the image limit (a 4096 x 4096 frame: peak
        # +43 MB without it, +9.5 MB with it)
        container = av.open(str(path), mode="r", options={"max_pixels": str(max(1, max_image_bytes // 3))})
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{name}: not a readable video ({' '.join(str(exc).split())[:200]})") from None
    try:
        if not container.streams.video:
            raise InputError(f"{name}: no video stream in the file")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise InputError(f"{name}: the video stream declares no picture size")
        size = f"{width}x{height}"
        _fits(name, f"one {size} RGB frame", width * height * 3, max_image_bytes)
        declared = int(stream.frames or 0)  # the header's count, when it has one
        _fits(name, f"the masks of {declared} frames of {size}", width * height * declared, max_image_bytes)
        packets = 0
        try:
            for packet in container.demux(stream):
                packets += packet.size > 0
                if packets * width * height > max_image_bytes:
                    _fits(name, f"the masks of {packets}+ frames of {size}", width * height * packets, max_image_bytes)
        except av.FFmpegError:
            pass  # a broken stream is the reader's to refuse, with its own message
    finally:
        container.close()


def _fits(name: str, what: str, size: int, limit: int) -> None:
    if size > limit:
        raise ImageTooLarge(
            f"{name}: {what} would take {size / 2**20:,.2f} MB, more than this server's image limit of "
            f"{limit / 2**20:,.2f} MB"
        )


def renamed(exc: VolsamError, *prefixes: str, to: str) -> VolsamError:
    """``exc`` with each of ``prefixes`` (server folders) replaced by ``to`` in its message."""
    text = str(exc)
    for prefix in prefixes:
        text = text.replace(prefix, to)
    return type(exc)(text)


def scratch() -> Path:
    """A fresh private folder for one upload."""
    return Path(tempfile.mkdtemp(prefix="volsam-upload-"))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
