"""Overlay PNGs: slices of the (normalised) image with the label map's outline and a light fill.

Images are written with rows = j and columns = i for k-slices (the array's own layout, no flipping), so a
pixel (x, y) of ``slice_0042.png`` is voxel (i=x, j=y, k=42). Labels take the web page's colours
(:data:`volsam.io.labels.PALETTE`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from volsam.core.errors import OutputError
from volsam.io.labels import PALETTE, colour_of

log = logging.getLogger(__name__)

_COLOURS = np.array(PALETTE, dtype=np.float32)  # label id n -> row (n - 1) % len(PALETTE)

__all__ = ["colour_of", "render_overlay", "write_overlays"]  # colour_of lives in volsam.io.labels


def render_overlay(image_u8: np.ndarray, labels: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a grey slice with each label filled at ``alpha`` and outlined opaque."""
    rgb = np.repeat(image_u8[..., None].astype(np.float32), 3, axis=2)
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
    image_u8: np.ndarray, labels: np.ndarray, folder: str | Path, *, max_slices: int = 400
) -> list[Path]:
    """Write ``slice_KKKK.png`` for every k-slice holding a label, plus ``montage.png`` (up to 16 slices).

    Args:
        image_u8: the normalised image, uint8 ``[k, j, i]``.
        labels: the label map ``[k, j, i]`` on the same grid.
    Returns the written paths (montage last).
    """
    if image_u8.shape != labels.shape:
        raise OutputError(f"overlay image {image_u8.shape} and labels {labels.shape} differ in shape")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create overlay folder {folder}: {exc.strerror}") from None
    ks = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[:max_slices]
    paths = []
    tiles = []
    for k in ks:
        rgb = render_overlay(image_u8[k], labels[k])
        path = folder / f"slice_{k:04d}.png"
        Image.fromarray(rgb).save(path)
        paths.append(path)
    if len(ks):
        pick = ks[np.linspace(0, len(ks) - 1, min(16, len(ks))).round().astype(int)]
        tiles = [render_overlay(image_u8[k], labels[k]) for k in pick]
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
    log.info("wrote %d overlay PNGs to %s", len(paths), folder)
    return paths
