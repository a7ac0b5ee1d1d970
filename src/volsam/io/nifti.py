"""NIfTI integrity check: ITK reads a truncated ``.nii`` / ``.nii.gz`` without complaint (missing voxels
come back as zeros), so before reading we compare the bytes the header promises with the bytes present.

Header fields used (NIfTI-1, 348-byte header / NIfTI-2, 540-byte header, either byte order): ``dim``,
``bitpix`` and ``vox_offset``; expected size = ``vox_offset + prod(dim[1..dim[0]]) * bitpix / 8``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

from volsam.core.errors import InputError

_CHUNK = 1 << 20


def _expected_bytes(header: bytes, path: Path) -> int:
    """Bytes a single-file NIfTI must hold, from its header; InputError when it is not a NIfTI header."""
    if len(header) < 348:
        raise InputError(f"{path}: not a NIfTI image (only {len(header)} header bytes)")
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
        if sizeof_hdr == 348:
            if header[344:347] not in (b"n+1", b"ni1"):
                raise InputError(f"{path}: not a NIfTI image (no NIfTI-1 magic)")
            dims = struct.unpack(endian + "8h", header[40:56])
            (bitpix,) = struct.unpack(endian + "h", header[72:74])
            (vox_offset,) = struct.unpack(endian + "f", header[108:112])
            break
        if sizeof_hdr == 540:
            if len(header) < 540 or header[4:7] != b"n+2":
                raise InputError(f"{path}: not a NIfTI image (no NIfTI-2 magic)")
            (bitpix,) = struct.unpack(endian + "h", header[14:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            (vox_offset,) = struct.unpack(endian + "q", header[168:176])
            break
    else:
        raise InputError(f"{path}: not a NIfTI image (header size field is neither 348 nor 540)")
    ndim = dims[0]
    if not 1 <= ndim <= 7 or any(d < 1 for d in dims[1 : ndim + 1]) or bitpix <= 0 or bitpix % 8:
        raise InputError(f"{path}: corrupt NIfTI header (dim={list(dims)}, bitpix={bitpix})")
    count = 1
    for d in dims[1 : ndim + 1]:
        count *= int(d)
    return int(vox_offset) + count * (bitpix // 8)


def _gzip_trailer_size(path: Path) -> int | None:
    """ISIZE field of the last gzip member (uncompressed size mod 2**32), None when unreadable."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return struct.unpack("<I", fh.read(4))[0]
    except OSError:
        return None


def check_nifti(path: Path) -> None:
    """Raise InputError when ``path`` (``.nii`` or ``.nii.gz``) is not a complete single-file NIfTI."""
    gz = path.name.lower().endswith(".gz")
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                header = fh.read(540)
        else:
            with open(path, "rb") as fh:
                header = fh.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable gzip-compressed NIfTI ({exc})") from exc
    if header[344:347] == b"ni1":
        return  # header/image pair (.hdr + .img): nothing to compare here
    expected = _expected_bytes(header, path)
    if not gz:
        size = path.stat().st_size
        if size < expected:
            raise InputError(f"{path}: truncated NIfTI ({size} bytes, the header needs {expected})")
        return
    if _gzip_trailer_size(path) == expected % 2**32:
        return  # fast path; a mismatch may still be a multi-member gzip, so count for real
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: truncated or corrupt gzip data ({exc})") from exc
    if total < expected:
        raise InputError(f"{path}: truncated NIfTI ({total} bytes uncompressed, the header needs {expected})")
