"""Uploaded volumes: stored under a name the server chooses, size-limited (also while the body streams in:
:class:`BodyLimit`), unpacked safely, read.

The client's file name is used for one thing only: its extension, from a fixed list. Zip archives (DICOM
series) are unpacked by :func:`volsam.io.archive.unpacked_zip` (no absolute or ``..`` entries, no links,
limited file count and inflated size).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from volsam.core.errors import InputError, UploadTooLarge
from volsam.core.volume import Volume

SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".zip", ".npz")
ZIP_INFLATION = 4  # a zip may unpack to this many times the upload limit
MAX_ZIP_FILES = 5000
CHUNK = 1 << 20  # bytes read at a time; also the room left for the multipart framing around a file

__all__ = [  # UploadTooLarge lives in volsam.core.errors; kept importable from here
    "CHUNK",
    "BodyLimit",
    "UploadTooLarge",
    "discard",
    "read_upload",
    "save_upload",
    "scratch",
    "suffix_of",
]


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit`` bytes stops with :class:`UploadTooLarge` (413)
    while it streams in, whether or not the client declared its length (chunked uploads too)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge(f"the upload is larger than this server's limit of {self.limit // 2**20} MB")
            return message

        await self.app(scope, limited, send)


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


def read_upload(path: Path, limit_bytes: int) -> Volume:
    """Read a saved upload as a Volume (a zip as a DICOM series, within the inflation limits)."""
    from volsam.io.archive import unpacked_zip
    from volsam.io.readers import read_volume

    if path.suffix == ".zip":
        with unpacked_zip(path, max_files=MAX_ZIP_FILES, max_bytes=ZIP_INFLATION * limit_bytes) as folder:
            volume = read_volume(folder)
    else:
        volume = read_volume(path)
    volume.meta["source"] = "upload"  # never echo a server path back
    return volume


def scratch() -> Path:
    """A fresh private folder for one upload."""
    return Path(tempfile.mkdtemp(prefix="volsam-upload-"))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
