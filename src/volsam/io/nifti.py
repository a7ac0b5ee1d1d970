"""NIfTI checks that ITK (as bundled in SimpleITK 2.x) does not do.

* Truncation: ITK reads a truncated ``.nii`` / ``.nii.gz`` without complaint (missing voxels come back as
  zeros), so before reading we compare the bytes the header promises with the bytes present.
* Non-finite voxels: ITK's nifticlib replaces every NaN and +-Inf of a float image by 0 when reading
  (fixed only in ITK 6, InsightSoftwareConsortium/ITK pull request 6683). volsam keeps NaN voxels, so for
  float32/float64 files the raw voxels are read again with numpy and the non-finite ones put back.

Header fields used (NIfTI-1, 348-byte header / NIfTI-2, 540-byte header, either byte order): ``dim``,
``datatype``, ``bitpix``, ``vox_offset``, ``scl_slope``, ``scl_inter``; data size =
``vox_offset + prod(dim[1..dim[0]]) * bitpix / 8``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from volsam.core.errors import InputError
from volsam.io.archive import check_decoded

_CHUNK = 1 << 20
_FLOAT_TYPES = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 / float64
_TYPE_NAMES = {
    2: "uint8",
    4: "int16",
    8: "int32",
    16: "float32",
    64: "float64",
    256: "int8",
    512: "uint16",
    768: "uint32",
    1024: "int64",
    1280: "uint64",
    128: "rgb24",
    2304: "rgba32",
}


@dataclass(frozen=True)
class NiftiHeader:
    endian: str  # "<" or ">"
    dims: tuple[int, ...]  # dim[1..dim[0]]
    datatype: int
    bitpix: int
    vox_offset: int
    slope: float
    inter: float

    @property
    def type_name(self) -> str:
        """Stored voxel type (before any scl_slope / scl_inter), e.g. "int16"."""
        return _TYPE_NAMES.get(self.datatype, f"nifti-datatype-{self.datatype}")

    @property
    def data_bytes(self) -> int:
        count = 1
        for d in self.dims:
            count *= d
        return count * (self.bitpix // 8)


def parse_header(header: bytes, path: Path) -> NiftiHeader:
    """The fields volsam needs from a single-file NIfTI header; InputError when it is not one."""
    if len(header) < 348:
        raise InputError(f"{path}: not a NIfTI image (only {len(header)} header bytes)")
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
        if sizeof_hdr == 348:
            if header[344:347] != b"n+1":
                raise InputError(f"{path}: not a single-file NIfTI image (no 'n+1' magic)")
            dims = struct.unpack(endian + "8h", header[40:56])
            datatype, bitpix = struct.unpack(endian + "hh", header[70:74])
            vox_offset, slope, inter = struct.unpack(endian + "fff", header[108:120])
            break
        if sizeof_hdr == 540:
            if len(header) < 540 or header[4:7] != b"n+2":
                raise InputError(f"{path}: not a NIfTI image (no NIfTI-2 magic)")
            datatype, bitpix = struct.unpack(endian + "hh", header[12:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            vox_offset, slope, inter = struct.unpack(endian + "qdd", header[168:192])
            break
    else:
        raise InputError(f"{path}: not a NIfTI image (header size field is neither 348 nor 540)")
    ndim = dims[0]
    if not (math.isfinite(vox_offset) and 0 <= vox_offset < 2**62):
        raise InputError(f"{path}: corrupt NIfTI header (vox_offset={vox_offset})")
    if not 1 <= ndim <= 7 or any(d < 1 for d in dims[1 : ndim + 1]) or bitpix <= 0 or bitpix % 8:
        raise InputError(f"{path}: corrupt NIfTI header (dim={list(dims)}, bitpix={bitpix})")
    return NiftiHeader(
        endian=endian,
        dims=tuple(int(d) for d in dims[1 : ndim + 1]),
        datatype=int(datatype),
        bitpix=int(bitpix),
        vox_offset=int(vox_offset),
        slope=float(slope),
        inter=float(inter),
    )


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def _gzip_trailer_size(path: Path) -> int | None:
    """ISIZE field of the last gzip member (uncompressed size mod 2**32), None when unreadable."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return struct.unpack("<I", fh.read(4))[0]
    except OSError:
        return None


def check_nifti(path: Path, max_bytes: int | None = None) -> NiftiHeader:
    """Raise InputError unless ``path`` (``.nii`` / ``.nii.gz``) is a complete single-file NIfTI whose voxels
    (as the header declares them) fit in ``max_bytes`` (ImageTooLarge otherwise, before decompressing them).
    A ``.gz`` is inflated at most up to the bytes the header needs, in chunks, and never held whole."""
    try:
        with _open(path) as fh:
            header = fh.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable NIfTI file ({exc})") from exc
    info = parse_header(header, path)
    check_decoded(info.data_bytes, max_bytes, path)
    expected = info.vox_offset + info.data_bytes
    if not path.name.lower().endswith(".gz"):
        size = path.stat().st_size
        if size < expected:
            raise InputError(f"{path}: truncated NIfTI ({size} bytes, the header needs {expected})")
        return info
    if _gzip_trailer_size(path) == expected % 2**32:
        return info  # fast path; a mismatch may still be a multi-member gzip, so count for real
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while total < expected and (chunk := fh.read(_CHUNK)):
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: truncated or corrupt gzip data ({exc})") from exc
    if total < expected:
        raise InputError(f"{path}: truncated NIfTI ({total} bytes uncompressed, the header needs {expected})")
    return info


def restore_non_finite(path: Path, info: NiftiHeader, array: np.ndarray, block: int = 0) -> int:
    """Put the file's NaN/Inf voxels back into ``array`` (the [k, j, i] volume ITK read, 3D block
    ``block`` of a 4D file); returns how many were restored. No-op for non-float files."""
    code = _FLOAT_TYPES.get(info.datatype)
    scaled = info.slope != 0.0 and np.isfinite(info.slope)  # then ITK applies scl_slope / scl_inter
    if code is None or array.dtype.kind != "f" or not np.any(array == (info.inter if scaled else 0.0)):
        return 0  # ITK turned NaN/Inf into 0 (then scaled it): no such value, nothing to restore
    nx, ny, nz = (list(info.dims) + [1, 1])[:3]
    count = nx * ny * nz
    if array.size != count:
        return 0
    dtype = np.dtype(info.endian + code)
    with _open(path) as fh:
        fh.seek(info.vox_offset + block * count * dtype.itemsize)
        raw = np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype)
    if raw.size != count:
        return 0
    bad = ~np.isfinite(raw)
    n_bad = int(bad.sum())
    if n_bad:
        values = raw[bad].astype(np.float64)
        if scaled:
            values = values * info.slope + info.inter
        np.put(array, np.flatnonzero(bad), values)
    return n_bad
