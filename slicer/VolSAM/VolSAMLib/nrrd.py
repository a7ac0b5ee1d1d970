"""A volume's voxels and geometry as an NRRD file, with the standard library and numpy only.

Slicer keeps a volume as voxels ``[k, j, i]`` plus an IJK -> RAS matrix; NRRD files (and volsam, like ITK)
describe the same grid in LPS: ``space directions`` are the columns of IJK -> LPS (each index axis' direction
times its spacing) and ``space origin`` is where voxel (0, 0, 0) lies. RAS and LPS differ by the sign of
their first two axes, so IJK -> LPS = diag(-1, -1, 1, 1) @ IJK -> RAS. The file's (i, j, k) are the node's:
what volsam reads is voxel for voxel what Slicer shows.
"""

from __future__ import annotations

import gzip

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

NRRD_TYPES = {  # numpy dtype -> NRRD type
    "int8": "signed char",
    "uint8": "uchar",
    "int16": "short",
    "uint16": "ushort",
    "int32": "int",
    "uint32": "uint",
    "int64": "longlong",
    "uint64": "ulonglong",
    "float32": "float",
    "float64": "double",
}


def _vector(values) -> str:
    return "(" + ",".join(repr(float(v)) for v in values) + ")"


def nrrd_header(shape_kji: tuple[int, int, int], dtype: np.dtype, ijk_to_ras: np.ndarray, gzipped: bool) -> bytes:
    """The header of a 3D NRRD holding an array of ``shape_kji`` and ``dtype`` on the grid ``ijk_to_ras``."""
    name = np.dtype(dtype).name
    if name not in NRRD_TYPES:
        raise ValueError(f"voxels of type {name} cannot be sent; convert the volume to a scalar type first")
    ijk_to_lps = RAS_TO_LPS @ np.asarray(ijk_to_ras, dtype=float)
    nk, nj, ni = (int(v) for v in shape_kji)
    lines = [
        "NRRD0004",
        "# written by the VolSAM module of 3D Slicer",
        f"type: {NRRD_TYPES[name]}",
        "dimension: 3",
        "space: left-posterior-superior",
        f"sizes: {ni} {nj} {nk}",
        "space directions: " + " ".join(_vector(ijk_to_lps[:3, axis]) for axis in range(3)),
        "kinds: domain domain domain",
        "endian: little",
        f"encoding: {'gzip' if gzipped else 'raw'}",
        "space origin: " + _vector(ijk_to_lps[:3, 3]),
    ]
    return ("\n".join(lines) + "\n\n").encode("ascii")


def write_nrrd(path: str, array_kji: np.ndarray, ijk_to_ras: np.ndarray, gzipped: bool = False) -> str:
    """Write ``array_kji`` (``[k, j, i]``, C order) on the grid ``ijk_to_ras`` (4x4) to ``path``; returns it.

    ``gzipped``: compress the voxels (gzip level 1: a fraction of the bytes for a remote server, for a few
    seconds of CPU on a large CT); raw is faster for a server on the same computer."""
    array = np.asarray(array_kji)
    if array.ndim != 3:
        raise ValueError(f"a volume has 3 dimensions, this one has {array.ndim}")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    data = memoryview(np.ascontiguousarray(little)).cast("B")
    with open(path, "wb") as fh:
        fh.write(nrrd_header(array.shape, array.dtype, ijk_to_ras, gzipped))
        if gzipped:
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1, mtime=0) as gz:
                for start in range(0, len(data), 1 << 24):
                    gz.write(data[start : start + (1 << 24)])
        else:
            fh.write(data)
    return path
