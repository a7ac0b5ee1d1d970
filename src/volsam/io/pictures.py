"""2D pictures: PNG, JPEG, BMP (Pillow) and TIFF (tifffile), read as a :class:`~volsam.core.volume.Volume`
with one slice (``nk == 1``; a multi-page TIFF of equal pages is a stack, one page per k).

Pixels -> ``array`` / ``colour`` (the rule :mod:`volsam.core.volume` documents):

* grey (Pillow ``L``, ``1``, ``LA``; TIFF one sample): ``array`` as stored (uint8, uint16, int32, float32; a
  bilevel image as 0 / 255), no ``colour``.
* colour (``RGB``, ``RGBA``, ``P`` palette, ``CMYK``, ``YCbCr``; TIFF 3 or 4 samples): ``colour`` = the RGB
  picture (alpha dropped), ``array`` = its BT.601 luma; when R = G = B everywhere (a grey picture saved as
  RGB) the image is grey: nothing is lost and no engine sees a difference. 16-bit colour TIFFs are refused.
* JPEG / PNG / TIFF EXIF orientation is applied, so x = column and y = row as image viewers show them
  (``meta["exif_transposed"]``).
* 8-bit images carry ``meta["display_values"] = True``: their 0..255 values are used as they are
  (:func:`volsam.preprocess.fit_normalizer`); 16-bit and float ones are scaled like MR.

Geometry: pixel spacing 1 mm (resolution tags in dots per inch are no patient geometry), origin 0, identity
direction. ``meta``: ``format`` (png, jpeg, bmp, tiff), ``modality`` None, ``pixel_type``, ``source``.

Limits: the width x height x samples x bytes the header declares are checked against ``max_bytes``
(:class:`~volsam.core.errors.ImageTooLarge`) before anything is decoded, and so is Pillow's decompression-bomb
limit (``PIL.Image.MAX_IMAGE_PIXELS`` pixels, whatever ``max_bytes`` says).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from volsam.core.errors import ImageTooLarge, InputError
from volsam.core.volume import Volume, luma
from volsam.io.archive import check_decoded

PICTURE_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}
_EXIF_ORIENTATION = 0x0112
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP"}
_MODE_BYTES = {"1": 1, "L": 1, "LA": 2, "P": 3, "RGB": 3, "RGBA": 4, "CMYK": 4, "YCbCr": 3, "I": 4, "F": 4}
_MODE_BYTES.update({"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "PA": 4, "RGBX": 4, "RGBa": 4, "La": 2})
# warnings.catch_warnings changes process-wide state: opens (header parsing only) are serialised so that
# concurrent uploads in the server cannot restore each other's filters half-way.
_OPEN_LOCK = threading.Lock()


def picture_format(path: Path) -> str | None:
    """png, jpeg, bmp or tiff from the name, None for anything else."""
    return PICTURE_SUFFIXES.get(path.suffix.lower())


def _check_pixels(pixels: int, path: Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        raise ImageTooLarge(f"{path}: {pixels:,} pixels, more than the decompression-bomb limit of {limit:,}")


def _volume(pixels: np.ndarray, path: Path, fmt: str, meta: dict[str, Any]) -> Volume:
    """(k, H, W) grey or (k, H, W, 3) RGB pixels -> Volume (the module's colour rule)."""
    colour = None
    if pixels.ndim == 4:
        rgb = pixels[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            grey = np.ascontiguousarray(rgb[..., 0])
        else:
            colour = np.ascontiguousarray(rgb)
            grey = luma(colour)
    else:
        grey = pixels
    if grey.dtype == bool:
        grey = grey.astype(np.uint8) * np.uint8(255)
    if grey.dtype.kind not in "biuf" or grey.size == 0:
        raise InputError(f"{path}: no usable pixels (dtype {grey.dtype}, shape {grey.shape})")
    info = {
        "modality": None,
        "source": str(path),
        "format": fmt,
        "series_uid": None,
        "series_description": None,
        "pixel_type": pixels.dtype.name,
        "display_values": grey.dtype == np.uint8,
        "rgb": colour is not None,
        **meta,
    }
    return Volume(np.ascontiguousarray(grey), meta=info, colour=colour)


def _read_pil(path: Path, fmt: str, max_bytes: int | None) -> Volume:
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=[_PIL_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{path}: {exc}".splitlines()[0]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: not a readable {fmt.upper()} image ({exc})".splitlines()[0]) from None
    with im:
        width, height = im.size
        _check_pixels(width * height, path)
        check_decoded(width * height * _MODE_BYTES.get(im.mode, 4), max_bytes, path)
        if getattr(im, "n_frames", 1) > 1:
            raise InputError(f"{path}: an animated image with {im.n_frames} frames; volsam reads one 2D image")
        try:
            im.load()
            orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            pixels = _pil_pixels(ImageOps.exif_transpose(im) if orientation != 1 else im, path)
        except (OSError, ValueError, SyntaxError, TypeError, Image.DecompressionBombError) as exc:
            raise InputError(f"{path}: truncated or corrupt {fmt.upper()} image ({exc})".splitlines()[0]) from None
    return _volume(pixels[None], path, fmt, {"exif_transposed": orientation != 1, "mode": im.mode})


def _pil_pixels(im: Image.Image, path: Path) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB array of an opened Pillow image."""
    mode = im.mode
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        array = np.asarray(im)
        return array.astype(np.uint16) if mode.startswith("I;16") else array
    if mode in ("LA", "La"):
        return np.asarray(im.getchannel(0))
    if mode in ("P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr"):
        return np.asarray(im.convert("RGB"))
    raise InputError(f"{path}: pixel mode {mode!r} is not supported")


def _read_tiff(path: Path, max_bytes: int | None) -> Volume:
    import tifffile  # loads only when a TIFF is read

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            if not series:
                raise InputError(f"{path}: a TIFF without images")
            if len(series) > 1:
                shapes = ", ".join(str(tuple(s.shape)) for s in series[:4])
                raise InputError(
                    f"{path}: a TIFF with {len(series)} images of different sizes ({shapes}); volsam reads one"
                )
            first = series[0]
            shape, axes, dtype = tuple(first.shape), first.axes, np.dtype(first.dtype)
            n = int(np.prod(shape))
            check_decoded(n * dtype.itemsize, max_bytes, path)
            _check_pixels(n // (shape[axes.index("S")] if "S" in axes else 1), path)
            layout = _tiff_layout(shape, axes, path)
            pixels = first.asarray()
            orientation = tif.pages[0].tags.get("Orientation")
    except (InputError, ImageTooLarge):
        raise
    except Exception as exc:  # noqa: BLE001 -- tifffile raises many types for broken files
        raise InputError(f"{path}: not a readable TIFF image ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    pixels = np.transpose(pixels, layout[1]).reshape(layout[0])
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 4 and pixels.shape[-1] not in (3, 4):
        raise InputError(f"{path}: {pixels.shape[-1]} samples per pixel; volsam reads grey or RGB(A) TIFFs")
    if pixels.ndim == 4 and pixels.dtype != np.uint8:
        raise InputError(f"{path}: a colour TIFF with {pixels.dtype} samples; volsam reads 8-bit colour")
    value = None if orientation is None else int(orientation.value)
    if value not in (None, 1):
        raise InputError(f"{path}: TIFF orientation {value} (rotated / mirrored storage) is not supported")
    return _volume(pixels, path, "tiff", {"pages": pixels.shape[0]})


def _tiff_layout(shape: tuple[int, ...], axes: str, path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the (k, H, W[, S]) shape, the transpose that puts a TIFF series' axes in that order): at most one axis
    besides Y, X and S (samples) may be longer than 1 -- it becomes k."""
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"{path}: TIFF axes {axes!r} hold no 2D image")
    others = [i for i, a in enumerate(axes) if a not in "YXS"]
    if sum(shape[i] > 1 for i in others) > 1:
        raise InputError(f"{path}: TIFF with axes {axes!r} {shape}; volsam reads a 2D image or one stack of them")
    y, x = axes.index("Y"), axes.index("X")
    samples = [axes.index("S")] if "S" in axes else []
    order = (*others, y, x, *samples)
    stack = int(np.prod([shape[i] for i in others])) if others else 1
    return (stack, shape[y], shape[x], *[shape[i] for i in samples]), order


def read_picture(path: Path, *, max_bytes: int | None = None) -> Volume:
    """Read a PNG, JPEG, BMP or TIFF (see the module notes); InputError for anything else."""
    fmt = picture_format(path)
    if fmt is None:
        raise InputError(f"{path}: not a PNG, JPEG, BMP or TIFF name")
    if fmt == "tiff":
        return _read_tiff(path, max_bytes)
    return _read_pil(path, fmt, max_bytes)
