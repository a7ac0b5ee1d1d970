"""What every engine promises. Engines see arrays and frame-pixel prompts only -- never a path, a file
format or world coordinates.

Frame conventions: a *frame* is one 2D slice along the propagation axis, an array ``(H, W)`` = (rows,
columns) of uint8 intensities already normalised to 0..255 by :mod:`volsam.preprocess`. Prompt coordinates
are in frame pixels, ``x`` = column, ``y`` = row; boxes are ``(x0, y0, x1, y1)`` with inclusive corners.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Capabilities:
    """What an engine can take and do."""

    box: bool
    points: bool
    mask: bool
    memory: bool  # True for tracker engines (SAM 2 memory attention), False for slice engines
    input_size: int  # side of the square the model works in (pixels)
    devices: tuple[str, ...]


@dataclass(frozen=True)
class SliceEmbedding:
    """An encoded frame: the engine's features plus the frame size they came from.

    ``features`` is engine-specific (a torch tensor for LiteMedSAM); callers treat it as opaque.
    """

    features: Any
    frame_shape: tuple[int, int]  # (H, W) of the original frame


@dataclass(frozen=True)
class SlicePrediction:
    """One frame's result.

    Attributes:
        mask: bool (H, W) at the frame's own resolution.
        score: the model's own quality estimate (predicted IoU, 0..1 nominally).
        logits: float32 low-resolution logits in the model's square input space (e.g. 256x256 for LiteMedSAM,
            padded area included); can be fed back as ``mask_logits`` to the next prediction.
    """

    mask: np.ndarray
    score: float
    logits: np.ndarray


class SliceEngine(ABC):
    """A 2D promptable model; 3D comes from :mod:`volsam.propagate`."""

    name: str
    capabilities: Capabilities

    @abstractmethod
    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        """Encode a batch of frames ``(n, H, W)`` uint8 0..255; returns one embedding per frame."""

    @abstractmethod
    def predict(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> SlicePrediction:
        """Segment one encoded frame.

        Args:
            embedding: from :meth:`encode`.
            box: ``(x0, y0, x1, y1)`` in frame pixels, inclusive.
            points: ``(n, 2)`` array of ``(x, y)`` frame pixels.
            point_labels: ``(n,)`` 1 = object, 0 = background.
            mask_logits: low-resolution logits from an earlier :class:`SlicePrediction` (model space).
        """


@dataclass(frozen=True)
class FramePrompt:
    """Prompts of one object on one frame (frame pixels, see the module docstring).

    ``mask`` (bool (H, W)) replaces the other prompts on that frame when given.
    """

    box: tuple[float, float, float, float] | None = None
    points: np.ndarray | None = None  # (n, 2) float (x, y)
    point_labels: np.ndarray | None = None  # (n,) 1 = object, 0 = background
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class TrackedFrame:
    """One frame's result for every object of a tracking run: bool masks ``(n_objects, H, W)`` and the
    model's object-presence scores (logits, > 0 = present); ``logits`` the mask logits ``(n_objects, H, W)``
    (float32, > 0 = object) when the engine was asked to keep them (None otherwise)."""

    index: int
    masks: np.ndarray
    presence: np.ndarray
    logits: np.ndarray | None = None


class TrackerEngine(ABC):
    """A promptable video model (SAM 2 family): memory attention carries objects from frame to frame."""

    name: str
    capabilities: Capabilities

    @abstractmethod
    def track(
        self,
        frames: Any,
        prompts: dict[int, dict[int, FramePrompt]],
        *,
        limit: tuple[int, int] | None = None,
        absent_patience: int | None = 3,
        start: int | None = None,
    ) -> Iterator[TrackedFrame]:
        """Segment the prompted frames, then propagate forward and backward from the first prompted frame
        (or from ``start``).

        Args:
            frames: a frame source with ``len()``, ``frame_shape`` and ``frames(indices)`` returning uint8
                ``(n, H, W)`` (:class:`volsam.propagate.FrameStack`); frames are read one at a time.
            prompts: frame index -> object id -> prompt.
            limit: (first, last) frame, inclusive.
            absent_patience: stop a direction after this many consecutive frames where no object is present
                (None = run to the limit).
            start: a prompted frame inside ``limit`` to propagate from (a correction resuming there); every
                prompted frame still conditions the memory, and prompted frames outside ``limit`` are then
                allowed (processed, not yielded).

        Yields the prompted frames inside ``limit`` first (in order), then each propagated frame.
        """
