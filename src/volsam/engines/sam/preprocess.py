"""The two preprocessings of the SAM 1 model, on numpy arrays (no torch): SAM's and MedSAM's.

Frames are uint8 ``(H, W)`` grey (used as RGB with three equal channels, as both references do with a grey
image) or ``(H, W, 3)`` RGB. ``side`` is the model's square input (1024 for every released SAM / MedSAM).

**SAM** (``segment_anything`` 1.0: ``SamPredictor.set_image`` -> ``ResizeLongestSide.apply_image`` ->
``Sam.preprocess``):

* ``scale = side / max(H, W)``; ``h = int(H * scale + 0.5)``, ``w = int(W * scale + 0.5)``
  (``ResizeLongestSide.get_preprocess_shape``);
* the uint8 image resized to ``(h, w)`` by PIL's bilinear ``Image.resize`` and kept uint8 (what torchvision's
  ``resize`` of a PIL image does); for grey frames the single channel is resized once (PIL's bilinear filter
  works per channel, so this equals resizing the three equal channels);
* ``x = (x - mean) / std`` per channel with ``mean = (123.675, 116.28, 103.53)``,
  ``std = (58.395, 57.12, 57.375)`` (ImageNet statistics on the 0..255 scale);
* zero padding at the bottom and right to ``side x side`` (after normalisation, so padding is 0 = the mean).

Prompts: ``x' = x * w / W``, ``y' = y * h / H`` (``ResizeLongestSide.apply_coords``; the prompt encoder adds
the half pixel). Masks: the 256x256 logits resized bilinearly to ``side x side``, cropped to ``(h, w)``,
resized bilinearly to ``(H, W)``, ``> 0`` (``Sam.postprocess_masks``, ``mask_threshold = 0``).

**MedSAM** (bowang-lab/MedSAM, ``MedSAM_Inference.py``):

* ``img_1024 = skimage.transform.resize(img_3c, (1024, 1024), order=3, preserve_range=True,
  anti_aliasing=True).astype(np.uint8)``: the aspect is not kept; order-3 spline interpolation in
  ``mirror`` mode on pixel centres (``scipy.ndimage.zoom(..., grid_mode=True)``), after a Gaussian blur of
  ``sigma = max(0, (H / side - 1) / 2)`` (and ``W``) when shrinking; values clipped to the input's range,
  then truncated (not rounded) to uint8;
* ``img_1024 = (img_1024 - min) / clip(max - min, 1e-8, None)`` over the whole image (float64, then
  float32): [0, 1], no ImageNet normalisation, no padding.

Prompts: ``box_1024 = box / [W, H, W, H] * 1024``. Masks: ``sigmoid`` of the 256x256 logits, resized
bilinearly to ``(H, W)``, ``> 0.5`` (``medsam_inference``).

:func:`medsam_resize` computes the spline per channel by default (a grey frame once). skimage runs the same
filter over a 3-D array whose third axis it does not resize; the two agree to floating-point rounding, which
the truncation to uint8 turns into one grey level where a value lands on an integer (flat regions): none on
an MNI152 slice, 0.012% to 0.022% of the values of noise images with a flat patch, where skimage's own
three channels of the grey image differ from each other about as often (tests/engines/sam/test_medsam.py).
``exact=True`` runs skimage's 3-D computation instead.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)


def sam_resized_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """``(h, w)`` of a ``(height, width)`` frame whose longest side becomes ``side`` (Meta's rounding)."""
    scale = side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def sam_resize(frame: np.ndarray, side: int) -> np.ndarray:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` frame resized so its longest side is ``side`` (PIL bilinear, uint8)."""
    h, w = sam_resized_shape(frame.shape[0], frame.shape[1], side)
    image = Image.fromarray(np.ascontiguousarray(frame))
    return np.array(image.resize((w, h), Image.BILINEAR))


def _spline_resize(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array resized to ``shape`` as ``skimage.transform.resize(order=3, anti_aliasing=True,
    mode='reflect')`` does, before clipping."""
    factors = np.divide(array.shape, shape)
    sigma = np.maximum(0, (factors - 1) / 2)
    if np.any(sigma > 0):
        array = ndimage.gaussian_filter(array, sigma, mode="mirror")
    zoom = [1 / f for f in factors]
    return ndimage.zoom(array, zoom, order=3, mode="mirror", grid_mode=True)


def medsam_resize(frame: np.ndarray, side: int = 1024, exact: bool = False) -> np.ndarray:
    """MedSAM's image resize: uint8 ``(H, W)`` / ``(H, W, 3)`` -> uint8 ``(side, side)`` / ``(side, side, 3)``
    (order-3 spline, anti-aliased, range kept, truncated to uint8; see the module docstring).

    ``exact``: filter the three-channel image as one 3-D array, as skimage does (a grey frame repeated to
    three channels first; the result is then always ``(side, side, 3)``): bit-identical to MedSAM's script,
    about 20x slower than the per-channel default (1.8 s vs 0.09 s for a 512x512 frame here).
    """
    x = np.asarray(frame, dtype=np.float64)
    lo, hi = x.min(), x.max()
    if exact:
        x3 = x if x.ndim == 3 else np.repeat(x[..., None], 3, axis=-1)
        out = _spline_resize(x3, (side, side, x3.shape[2]))
    else:
        channels = [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]
        out = np.stack([_spline_resize(c, (side, side)) for c in channels], axis=-1)
        out = out[..., 0] if x.ndim == 2 else out
    np.clip(out, lo, hi, out=out)
    return out.astype(np.uint8)


def medsam_normalise(image: np.ndarray) -> np.ndarray:
    """``(image - min) / clip(max - min, 1e-8)`` over the whole uint8 image, in float64 as MedSAM computes it,
    returned as float32 (what ``torch.tensor(...).float()`` makes of it)."""
    x = image.astype(np.float64)
    lo, hi = x.min(), x.max()
    return ((x - lo) / np.clip(hi - lo, a_min=1e-8, a_max=None)).astype(np.float32)
