"""A volume seen as frames, the window a small object is segmented in, and the box and mask arithmetic of
the walk.

Frame coordinates: frame index ``s`` along the propagation axis, rows ``y``, columns ``x``; boxes
``(x0, y0, x1, y1)`` inclusive, in pixels; windows ``(y0, y1, x0, x1)`` half-open.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError
from volsam.core.volume import luma

BoxXY = tuple[float, float, float, float]
Window = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open frame pixels


class FrameStack:
    """The volume seen as frames along one index axis, normalised lazily frame by frame (a
    :class:`~volsam.engines.base.FrameSource`).

    ``array`` is the image ``[k, j, i]``; ``axis`` is the index axis (0=i, 1=j, 2=k) frames are taken along.
    Frame ``s`` has rows = the higher remaining index axis and columns = the lower one (for axis k: rows j,
    columns i), so a :class:`~volsam.core.prompts.Box2D` ``(u0, v0, u1, v1)`` is ``(x0, y0, x1, y1)`` here.

    ``roi = (y0, y1, x0, x1)`` (half-open, frame pixels) restricts every frame to that window: frames, frame
    shapes and masks are then in window coordinates (prompts go there with
    :meth:`~volsam.engines.base.FramePrompt.in_window`) and :meth:`to_volume` puts them back in place.
    ``normalize`` must work pixel by pixel (a fitted :class:`~volsam.preprocess.Normalizer` does).

    ``colour``: the RGB picture ``[k, j, i, 3]`` uint8 of a colour image (``Volume.colour``); frames along k
    are then delivered as RGB ``(n, H, W, 3)`` display values, not normalised (every engine takes RGB);
    :func:`intensity` gives their grey where a rule needs one. Along i or j the grey frames are delivered.
    """

    def __init__(
        self,
        array: np.ndarray,
        axis: int,
        normalize: Callable[[np.ndarray], np.ndarray],
        roi: Window | None = None,
        colour: np.ndarray | None = None,
    ):
        if axis not in (0, 1, 2):
            raise PromptError(f"axis must be 0, 1 or 2, got {axis!r}")
        self.axis = axis
        self._view = np.moveaxis(array, 2 - axis, 0)
        self._colour = colour if axis == 2 else None
        self._normalize = normalize
        h, w = self._view.shape[1:]
        if roi is not None:
            y0, y1, x0, x1 = roi
            if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
                raise PromptError(f"window {roi} does not lie inside the {h}x{w} frames")
        self.roi = roi if roi is not None else (0, h, 0, w)

    def __len__(self) -> int:
        return self._view.shape[0]

    @property
    def full_shape(self) -> tuple[int, int]:
        """(H, W) of the whole frames."""
        return (self._view.shape[1], self._view.shape[2])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames as delivered (the window)."""
        y0, y1, x0, x1 = self.roi
        return (y1 - y0, x1 - x0)

    def frames(self, indices: list[int]) -> np.ndarray:
        """Normalised uint8 frames ``(n, H, W)`` (the window of each); RGB ``(n, H, W, 3)`` for a colour image."""
        y0, y1, x0, x1 = self.roi
        if self._colour is not None:
            return np.stack([self._colour[s, y0:y1, x0:x1] for s in indices])
        return np.stack([self._normalize(self._view[s, y0:y1, x0:x1]) for s in indices])

    def windowed(self, roi: Window | None) -> FrameStack:
        """The same frames cut to the window ``roi`` (None: whole frames)."""
        array = np.moveaxis(self._view, 0, 2 - self.axis)
        return FrameStack(array, self.axis, self._normalize, roi, colour=self._colour)

    def to_volume(self, masks: np.ndarray, dtype: np.dtype | type | None = None, value: int = 1) -> np.ndarray:
        """Inverse of the frame view: ``(n_frames, H, W)`` window masks -> array ``[k, j, i]`` of ``dtype``
        (default the masks' own), a mask's non-zero voxels holding ``value`` (bool masks) or their own value.

        The full-size array is made once, in its final type, and only frames with a mask are written (the
        others stay the kernel's untouched zero pages): a bool volume cast to uint8 afterwards would hold two
        157 MB arrays at once on a 512 x 512 x 600 CT (``benchmarks/bench_memory.py``)."""
        y0, y1, x0, x1 = self.roi
        full = np.zeros((len(self), *self.full_shape), dtype=masks.dtype if dtype is None else dtype)
        for s in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):  # empty frames stay untouched pages
            full[s, y0:y1, x0:x1] = masks[s]
            if value != 1:
                full[s, y0:y1, x0:x1] *= full.dtype.type(value)
        return np.moveaxis(full, 0, 2 - self.axis)


def intensity(frame: np.ndarray) -> np.ndarray:
    """A delivered frame as grey ``(H, W)``: RGB ``(H, W, 3)`` becomes its BT.601 luma (grey frames as they are)."""
    return luma(frame) if frame.ndim == 3 else frame


def frames_view(array: np.ndarray, axis: int) -> np.ndarray:
    """``array`` ``[k, j, i]`` as frames ``(n, H, W)`` along index axis ``axis`` (a view: writes land in it)."""
    return np.moveaxis(array, 2 - axis, 0)


def focus_window(
    extent: BoxXY, shape: tuple[int, int], context: float, min_side: int, max_fraction: float = 0.8
) -> Window | None:
    """A square window ``(y0, y1, x0, x1)`` (half-open) of side ``max(min_side, context x longer side of
    extent)`` centred on ``extent`` = ``(x0, y0, x1, y1)`` (inclusive) and shifted to lie inside frames of
    ``shape`` = (H, W); None when its side would reach ``max_fraction`` of the frame's longer side (whole
    frames are then as good) or ``context`` is 0."""
    if context <= 0:
        return None
    h, w = shape
    x0, y0, x1, y1 = extent
    side = int(np.ceil(max(min_side, context * max(x1 - x0 + 1, y1 - y0 + 1))))
    if side >= max_fraction * max(h, w):
        return None

    def span(lo: float, hi: float, n: int) -> tuple[int, int]:
        size = min(side, n)
        start = int(round((lo + hi + 1) / 2 - size / 2))
        start = min(max(start, 0), n - size)
        return start, start + size

    (wy0, wy1), (wx0, wx1) = span(y0, y1, h), span(x0, x1, w)
    return (wy0, wy1, wx0, wx1)


def touches_window_edge(masks: np.ndarray, roi: Window, shape: tuple[int, int]) -> bool:
    """True when window masks ``(n, h, w)`` reach a window edge that is not also the frame's edge."""
    y0, y1, x0, x1 = roi
    h, w = shape
    edges = [(y0 > 0, masks[:, 0, :]), (y1 < h, masks[:, -1, :]), (x0 > 0, masks[:, :, 0]), (x1 < w, masks[:, :, -1])]
    return any(inner and bool(edge.any()) for inner, edge in edges)


def mask_box(mask: np.ndarray) -> BoxXY | None:
    """Tight box ``(x0, y0, x1, y1)`` of a 2D mask, None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1]))


def expand_box(box: BoxXY, margin: float, shape: tuple[int, int]) -> BoxXY:
    """``box`` grown by ``margin`` pixels on each side, clipped to frames of ``shape`` = (H, W)."""
    h, w = shape
    x0, y0, x1, y1 = box
    return (
        max(0.0, x0 - margin),
        max(0.0, y0 - margin),
        min(w - 1.0, x1 + margin),
        min(h - 1.0, y1 + margin),
    )


def shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` shifted by (dx, dy) pixels, nothing wrapping around."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def centroid(mask: np.ndarray) -> np.ndarray:
    """Centre of mass ``(x, y)`` of a 2D mask."""
    return np.array(ndimage.center_of_mass(mask))[::-1]
