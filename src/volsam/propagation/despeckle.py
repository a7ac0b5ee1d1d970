"""Speckle reduction of the frames the model encodes in a video walk (:func:`~volsam.propagation.follow.follow`).

Ultrasound-like frames are grainy: a multiplicative speckle whose bright specks make the object's edge ragged
to the model, and whose peaks set the top of LiteMedSAM's per-frame min-max scaling. A median over ``size`` x
``size`` pixels of the frame (its own grid, before the engine resizes it) removes the specks and keeps edges:
the textbook first step of ultrasound image analysis.

Only what the engine encodes changes: the walk's appearance checks keep their own smoothing
(``appearance_smooth``), the written masks stay on the frame's grid, and the frames shown or written are the
video's own. A frame the engine shrinks by more than ``size / 2`` (a 5 px median on a frame over 640 px for
LiteMedSAM's 256 px input) is passed as it is: the engine's own antialiased shrinking already averages grain that
fine, so the median would cost time (0.7 s a 1920 x 1080 frame) for a change below one model pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from volsam.engines.base import FrameSource
from volsam.engines.prompt_checks import check_frames
from volsam.errors import SettingsError


def applies(frame_shape: tuple[int, int], size: int, input_size: int) -> bool:
    """Whether a ``size`` px median changes what an engine of ``input_size`` px (square input) sees of frames of
    ``frame_shape`` (H, W): ``size`` > 1 and the engine shrinks the frame by at most ``size / 2``. An engine that
    declares no input size (0) gets no median."""
    return size > 1 and 2 * max(frame_shape) <= size * input_size


def despeckle(frames: np.ndarray, size: int) -> np.ndarray:
    """The median over ``size`` x ``size`` px (odd, edges replicated) of each frame of uint8 ``(n, H, W)`` grey or
    ``(n, H, W, 3)`` RGB frames (each colour channel on its own; one ``(H, W)`` frame is taken as ``(1, H, W)``,
    as the engines take it: :func:`~volsam.engines.prompt_checks.check_frames`); a new array."""
    if size < 3 or size % 2 == 0:
        raise SettingsError(f"the despeckling median needs an odd size of at least 3 px, not {size}")
    frames = check_frames(frames)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).filter(ImageFilter.MedianFilter(size)))
    return out


class DespeckledFrames:
    """``source`` as the model sees it: each frame :func:`despeckle`-d by ``size`` px (a :class:`FrameSource`)."""

    def __init__(self, source: FrameSource, size: int):
        self.source = source
        self.size = size

    def __len__(self) -> int:
        return len(self.source)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.source.frame_shape

    def frames(self, indices: list[int]) -> np.ndarray:
        return despeckle(self.source.frames(indices), self.size)


def model_frames(source: FrameSource, size: int, input_size: int) -> FrameSource:
    """The frames an engine of ``input_size`` px should encode: ``source`` despeckled by ``size`` px where
    :func:`applies`, else ``source`` itself."""
    return DespeckledFrames(source, size) if applies(source.frame_shape, size, input_size) else source
