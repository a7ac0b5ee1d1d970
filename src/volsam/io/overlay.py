"""Overlay PNGs: slices of the (normalised) image with the label map's outline and a light fill, shown the
way radiology viewers show them.

Each k-slice is turned to its display orientation from the direction matrix (:func:`display_orientation`):
axial and coronal slices in the radiological convention by default (the patient's right on the screen's
left; ``neurological`` swaps that), anterior up on axial slices, superior up on coronal and sagittal ones,
anterior on the left of sagittal ones. Each image carries its slice index (``k=42``) and the orientation
letters of its edges; ``orientation.json`` in the folder says how to go back from a PNG pixel to a voxel.
Labels take the web page's colours (:data:`volsam.io.labels.PALETTE`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from volsam.core.errors import OutputError
from volsam.io.labels import PALETTE, colour_of

log = logging.getLogger(__name__)

_COLOURS = np.array(PALETTE, dtype=np.float32)  # label id n -> row (n - 1) % len(PALETTE)
CONVENTIONS = ("radiological", "neurological")
_PLANES = ("sagittal", "coronal", "axial")  # slices stacked along L, P, S (LPS world axes 0, 1, 2)
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # the negative and positive end of each LPS axis

__all__ = ["CONVENTIONS", "DisplayOrientation", "colour_of", "display_orientation", "render_overlay", "write_overlays"]


@dataclass(frozen=True)
class DisplayOrientation:
    """How a k-slice (rows j, columns i) becomes a screen image: ``transpose`` first (rows i, columns j),
    then ``flip_x`` (columns reversed) and ``flip_y`` (rows reversed); ``edges`` are the patient directions at
    the screen's left, right, top and bottom; ``plane`` the slices' anatomical plane."""

    plane: str
    convention: str
    transpose: bool
    flip_x: bool
    flip_y: bool
    edges: tuple[str, str, str, str]

    def apply(self, slice_2d: np.ndarray) -> np.ndarray:
        """A ``(rows j, columns i, ...)`` slice in screen orientation."""
        out = np.swapaxes(slice_2d, 0, 1) if self.transpose else slice_2d
        if self.flip_y:
            out = out[::-1]
        if self.flip_x:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


def display_orientation(direction: np.ndarray, convention: str = "radiological") -> DisplayOrientation:
    """The display orientation of k-slices of an image whose direction matrix (LPS, columns = the i, j, k
    index axes) is ``direction``.

    The screen's rightward and downward directions in patient space: axial -- left (radiological) or right
    (neurological), posterior; coronal -- left or right, inferior; sagittal -- posterior, inferior. Each goes
    to the in-plane index axis closest to it, with its sign.
    """
    if convention not in CONVENTIONS:
        raise OutputError(f"overlay convention {convention!r} is not one of {', '.join(CONVENTIONS)}")
    d = np.asarray(direction, dtype=float)
    world = int(np.argmax(np.abs(d[:, 2])))  # the patient axis the slices are stacked along
    plane = _PLANES[world]
    lps = np.eye(3)
    side = lps[0] if convention == "radiological" else -lps[0]
    right, down = {
        "axial": (side, lps[1]),
        "coronal": (side, -lps[2]),
        "sagittal": (lps[1], -lps[2]),
    }[plane]
    in_plane = d[:, :2]  # world directions of i (columns) and j (rows)
    horizontal = int(np.argmax(np.abs(right @ in_plane)))  # 0: i runs across the screen, 1: j does
    vertical = 1 - horizontal
    flip_x = bool(right @ in_plane[:, horizontal] < 0)
    flip_y = bool(down @ in_plane[:, vertical] < 0)

    def letter(vector: np.ndarray) -> str:
        axis = int(np.argmax(np.abs(vector)))
        return _LETTERS[axis][int(vector[axis] > 0)]

    edges = (letter(-right), letter(right), letter(-down), letter(down))
    return DisplayOrientation(plane, convention, horizontal == 1, flip_x, flip_y, edges)


def _annotate(rgb: np.ndarray, k: int, orientation: DisplayOrientation) -> np.ndarray:
    """The slice index in the top-left corner and the edge letters, in white on a dark shadow."""
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    h, w = rgb.shape[:2]
    left, right, top, bottom = orientation.edges
    top_y = 2 if w >= 80 else 12  # below the slice index when the image is too narrow for both
    marks = [
        ((2, 2), f"k={k}"),
        ((2, h // 2 - 5), left),
        ((w - 8, h // 2 - 5), right),
        ((w // 2 - 3, top_y), top),
        ((w // 2 - 3, h - 12), bottom),
    ]
    for (x, y), text in marks:
        draw.text((x + 1, y + 1), text, fill=(0, 0, 0))
        draw.text((x, y), text, fill=(255, 255, 255))
    return np.asarray(picture)


def render_overlay(image_u8: np.ndarray, labels: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a grey (H, W) or colour (H, W, 3) slice with each label filled at ``alpha`` and
    outlined opaque."""
    grey = image_u8.ndim == 2
    rgb = np.repeat(image_u8[..., None], 3, axis=2).astype(np.float32) if grey else image_u8.astype(np.float32)
    for lab in np.unique(labels):
        if lab == 0:
            continue
        region = labels == lab
        edge = region & ~ndimage.binary_erosion(region)
        colour = _COLOURS[(int(lab) - 1) % len(_COLOURS)]
        rgb[region] = (1 - alpha) * rgb[region] + alpha * colour
        rgb[edge] = colour
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_overlays(
    image_u8: np.ndarray,
    labels: np.ndarray,
    folder: str | Path,
    *,
    direction: np.ndarray | None = None,
    convention: str = "radiological",
    max_slices: int = 400,
) -> list[Path]:
    """Write ``slice_KKKK.png`` for every k-slice holding a label, ``montage.png`` (up to 16 slices) and
    ``orientation.json``, each slice in display orientation (see the module notes).

    Args:
        image_u8: the normalised image, uint8 ``[k, j, i]``, or a colour image's RGB ``[k, j, i, 3]``.
        labels: the label map ``[k, j, i]`` on the same grid.
        direction: the image's direction matrix (LPS; identity when None).
        convention: ``radiological`` (default) or ``neurological``.
    Returns the written paths (montage, then orientation.json, last).
    """
    if image_u8.shape[:3] != labels.shape or image_u8.ndim not in (3, 4):
        raise OutputError(f"overlay image {image_u8.shape} and labels {labels.shape} differ in shape")
    orientation = display_orientation(np.eye(3) if direction is None else direction, convention)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create overlay folder {folder}: {exc.strerror}") from None

    def shown(k: int) -> np.ndarray:
        rgb = render_overlay(orientation.apply(image_u8[k]), orientation.apply(labels[k]))
        return _annotate(rgb, int(k), orientation)

    ks = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[:max_slices]
    paths = []
    for k in ks:
        path = folder / f"slice_{k:04d}.png"
        Image.fromarray(shown(int(k))).save(path)
        paths.append(path)
    if len(ks):
        pick = ks[np.linspace(0, len(ks) - 1, min(16, len(ks))).round().astype(int)]
        tiles = [shown(int(k)) for k in pick]
        cols = int(np.ceil(np.sqrt(len(tiles))))
        rows = int(np.ceil(len(tiles) / cols))
        h, w = tiles[0].shape[:2]
        sheet = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
        for n, tile in enumerate(tiles):
            r, c = divmod(n, cols)
            sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
        montage = folder / "montage.png"
        Image.fromarray(sheet).save(montage)
        paths.append(montage)
    about = folder / "orientation.json"
    about.write_text(
        json.dumps(
            {
                **asdict(orientation),
                "to_voxel": "PNG pixel (x, y): undo flip_x (x -> width-1-x) and flip_y (y -> height-1-y), then "
                "(x, y) is (i, j) of slice k, or (j, i) when transpose is true",
            },
            indent=2,
        )
        + "\n"
    )
    paths.append(about)
    log.info("wrote %d overlay PNGs to %s (%s, %s)", len(paths) - 1, folder, orientation.plane, convention)
    return paths
