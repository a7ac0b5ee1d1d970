"""Surface elements ("surfels") of a voxel mask and their sizes in mm -- the definition behind the challenges' NSD.

The surface of a mask is described on the lattice of voxel *corners*: a corner lies between 2 x 2 (2D) or
2 x 2 x 2 (3D) voxels, and its *code* says which of those voxels are inside (one bit per voxel). A corner is a
surface point when its neighbourhood is mixed (code neither empty nor full); it carries the piece of the
marching-squares contour (2D, a length in mm) or marching-cubes surface (3D, an area in mm^2) that passes
through its 2 x 2 (x 2) cell, with every vertex at the middle of a cell edge. This is how DeepMind's
``surface-distance`` (Nikolov et al. 2018, "Deep learning to achieve clinically applicable segmentation of head
and neck anatomy for radiotherapy", the package the CVPR 2024/2025 challenges and MedSAM score with) weights
its surface points; the tables here are computed from that geometric definition, not copied:

* polygons: the cut edges of each cell face are joined face by face; on a face whose diagonal corners agree
  (a saddle) the corners of the *minority* value are cut off on their own (the inside ones when four and four);
* triangles: each polygon (planar or not, at most six vertices) is split into triangles along the diagonals
  that give the largest total area at unit spacing -- for the non-planar pentagons and hexagons this is the
  choice surface-distance's table encodes (``tests/metrics/test_surfels.py`` checks all 256 codes at
  anisotropic spacings against it);
* sizes in mm: a triangle ``(a, b, c)`` with the half cross product ``n = (b - a) x (c - a) / 2`` in voxel
  units has area ``|(n0 s1 s2, n1 s0 s2, n2 s0 s1)|`` at spacing ``(s0, s1, s2)`` (array-axis order); a contour
  segment ``d`` has length ``|(d0 s0, d1 s1)|``.

Codes here use bit ``4 t0 + 2 t1 + t2`` (3D) or ``2 t0 + t1`` (2D) for the voxel at offset ``t`` in {0, 1}
per axis from the corner's lower neighbour.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache

import numpy as np

Point = tuple[float, ...]


def _offsets(ndim: int) -> list[tuple[int, ...]]:
    return list(itertools.product((0, 1), repeat=ndim))


def _bit(t: tuple[int, ...]) -> int:
    return int(sum(v << (len(t) - 1 - a) for a, v in enumerate(t)))


def _faces(ndim: int) -> list[list[tuple[int, ...]]]:
    """The square faces of the unit cell, each as its 4 corners in cyclic order (the cell itself in 2D)."""
    if ndim == 2:
        return [[(0, 0), (1, 0), (1, 1), (0, 1)]]
    faces = []
    for axis in range(3):
        a, b = (x for x in range(3) if x != axis)
        for side in (0, 1):
            ring = []
            for p, q in ((0, 0), (1, 0), (1, 1), (0, 1)):
                c = [0, 0, 0]
                c[axis], c[a], c[b] = side, p, q
                ring.append(tuple(c))
            faces.append(ring)
    return faces


def _midpoint(a: tuple[int, ...], b: tuple[int, ...]) -> Point:
    return tuple((x + y) / 2 for x, y in zip(a, b, strict=True))


def _segments(code: int, ndim: int) -> list[tuple[Point, Point]]:
    """The contour pieces on each face of the cell: pairs of cut-edge midpoints."""
    inside = {t: bool(code >> _bit(t) & 1) for t in _offsets(ndim)}
    minority = sum(inside.values()) <= len(inside) // 2  # the value whose corners a saddle cuts off alone
    segments = []
    for ring in _faces(ndim):
        edges = [(ring[n], ring[(n + 1) % 4]) for n in range(4)]
        cut = [e for e in edges if inside[e[0]] != inside[e[1]]]
        if len(cut) == 2:
            segments.append((_midpoint(*cut[0]), _midpoint(*cut[1])))
        elif len(cut) == 4:  # a saddle: cut off each corner of the minority value
            for n, corner in enumerate(ring):
                if inside[corner] == minority:
                    segments.append((_midpoint(*edges[n - 1]), _midpoint(*edges[n])))
    return segments


def _polygons(segments: list[tuple[Point, Point]]) -> list[list[Point]]:
    """Chain segments that share end points into closed polygons."""
    left = list(segments)
    polygons = []
    while left:
        start, end = left.pop(0)
        poly = [start, end]
        while True:
            nxt = next((s for s in left if poly[-1] in s), None)
            if nxt is None:
                break
            left.remove(nxt)
            point = nxt[1] if nxt[0] == poly[-1] else nxt[0]
            if point == poly[0]:
                break
            poly.append(point)
        polygons.append(poly)
    return polygons


def _half_cross(a: Point, b: Point, c: Point) -> np.ndarray:
    pa, pb, pc = (np.asarray(p, dtype=np.float64) for p in (a, b, c))
    return np.cross(pb - pa, pc - pa) / 2.0


def _largest_triangulation(poly: list[Point]) -> list[tuple[Point, Point, Point]]:
    """The triangulation of a polygon (by its diagonals) with the largest total area at unit spacing."""
    n = len(poly)
    best: dict[tuple[int, int], tuple[float, list[tuple[int, int, int]]]] = {}
    for gap in range(1, n):
        for i in range(n - gap):
            j = i + gap
            if gap == 1:
                best[i, j] = (0.0, [])
                continue
            options = []
            for k in range(i + 1, j):
                area = float(np.linalg.norm(_half_cross(poly[i], poly[k], poly[j])))
                options.append((best[i, k][0] + best[k, j][0] + area, best[i, k][1] + best[k, j][1] + [(i, k, j)]))
            best[i, j] = max(options, key=lambda o: o[0])
    return [(poly[i], poly[k], poly[j]) for i, k, j in best[0, n - 1][1]]


@cache
def _elements(ndim: int) -> np.ndarray:
    """Per code, the surface elements in voxel units, zero-padded: ``(2**2**ndim, max elements, ndim)``.

    3D: the half cross product of each triangle; 2D: the vector of each contour segment.
    """
    n_codes = 2 ** (2**ndim)
    per_code: list[list[np.ndarray]] = []
    for code in range(n_codes):
        segments = _segments(code, ndim)
        if ndim == 2:
            per_code.append([np.subtract(b, a) for a, b in segments])
            continue
        tris = [t for poly in _polygons(segments) for t in _largest_triangulation(poly)]
        per_code.append([_half_cross(*t) for t in tris])
    out = np.zeros((n_codes, max(len(e) for e in per_code), ndim))
    for code, elems in enumerate(per_code):
        if elems:
            out[code, : len(elems)] = elems
    out.setflags(write=False)
    return out


def surfel_sizes(spacing: Sequence[float]) -> np.ndarray:
    """Size of the surface element of every code at ``spacing`` (mm, array-axis order; 2 or 3 numbers):
    contour length in mm (2D, 16 codes) or surface area in mm^2 (3D, 256 codes). Codes 0 and full are 0."""
    s = np.asarray(spacing, dtype=np.float64)
    elems = _elements(len(s))
    # a segment's components stretch with their own axis; a triangle's normal with the other two
    scale = s if len(s) == 2 else np.array([s[1] * s[2], s[0] * s[2], s[0] * s[1]])
    return np.linalg.norm(elems * scale, axis=-1).sum(axis=-1)


def corner_codes(mask: np.ndarray) -> np.ndarray:
    """The code of every corner of ``mask`` (bool, 2D or 3D): shape ``mask.shape + 1`` per axis, uint8.

    Corner ``c`` lies between voxels ``c - 1`` and ``c`` along each axis; voxels outside the array count as
    background, so an object touching the border has surface points there.
    """
    padded = np.pad(np.asarray(mask, dtype=np.uint8), 1)
    codes = np.zeros(tuple(n + 1 for n in mask.shape), dtype=np.uint8)
    for t in _offsets(mask.ndim):
        window = tuple(slice(o, o + n + 1) for o, n in zip(t, mask.shape, strict=True))
        codes |= padded[window] << np.uint8(_bit(t))
    return codes
