"""Safe unpacking of a ``.zip`` (a DICOM series as users send it) into a temporary folder.

Refused, with :class:`InputError` naming the entry: absolute names, drive letters, ``..`` components
("zip slip"), symbolic links, more than :data:`MAX_FILES` entries, more than :data:`MAX_BYTES` uncompressed
(checked on the declared sizes first, then on the bytes actually inflated, so a lying header cannot fill
the disk), encrypted or corrupt archives. The folder is deleted when the ``with`` block ends.

:func:`check_decoded` is the one decoded-size check every reader makes from the sizes a file *declares*
(NIfTI / NRRD / MetaImage headers, DICOM rows x columns x frames, ``.npy`` shapes inside an ``.npz``), before
anything is decompressed: a small compressed file cannot make volsam allocate more than its limit.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from volsam.core.errors import ImageTooLarge, InputError

MAX_FILES = 20_000
MAX_BYTES = 4 * 1024**3  # 4 GiB uncompressed
_CHUNK = 1 << 20
# what a corrupt entry raises while it inflates (ValueError: e.g. an undecodable name in its local header)
_UNPACK_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError, ValueError)


def check_decoded(nbytes: int, max_bytes: int | None, source: object) -> None:
    """Refuse (:class:`ImageTooLarge`) an image whose declared voxels need more than ``max_bytes`` (None: no limit)."""
    if max_bytes is not None and nbytes > max_bytes:
        raise ImageTooLarge(
            f"{source}: the image would decode to {nbytes / 2**20:,.0f} MB, more than the limit of "
            f"{max_bytes / 2**20:,.0f} MB"
        )


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    """Path components of a zip entry name, refusing anything that could leave the target folder."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if not parts or clean.startswith("/") or "\x00" in clean or ":" in parts[0] or any(part == ".." for part in parts):
        raise InputError(f"{archive}: refusing unsafe zip entry {name!r} (absolute path or '..')")
    return tuple(p for p in parts if p not in (".", ""))


@contextmanager
def unpacked_zip(archive: Path, *, max_files: int | None = None, max_bytes: int | None = None) -> Iterator[Path]:
    """Unpack ``archive`` into a fresh temporary folder, yield it, delete it afterwards."""
    max_files = MAX_FILES if max_files is None else max_files
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # ValueError: undecodable entry names
        raise InputError(f"{archive}: not a readable zip archive ({exc})") from exc
    target = Path(tempfile.mkdtemp(prefix="volsam-zip-"))
    try:
        with zf:
            _extract_all(zf, archive, target, max_files, max_bytes)
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _extract_all(zf: zipfile.ZipFile, archive: Path, target: Path, max_files: int, max_bytes: int) -> None:
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_files:
        raise InputError(f"{archive}: zip holds {len(files)} files, more than the limit of {max_files}")
    declared = sum(i.file_size for i in files)
    if declared > max_bytes:
        raise InputError(f"{archive}: zip would unpack to {declared} bytes, more than the limit of {max_bytes}")
    plans = []
    for info in infos:
        parts = _safe_parts(info.filename, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(f"{archive}: refusing symbolic link entry {info.filename!r}")
        if parts:
            plans.append((info, target.joinpath(*parts)))
    root = target.resolve()
    written = 0
    for info, dest in plans:
        if root not in dest.resolve().parents:
            raise InputError(f"{archive}: refusing zip entry {info.filename!r} outside the target")
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise InputError(f"{archive}: zip unpacks to more than the limit of {max_bytes} bytes")
                    out.write(chunk)
        except _UNPACK_ERRORS as exc:
            raise InputError(f"{archive}: cannot unpack entry {info.filename!r} ({exc})") from exc
