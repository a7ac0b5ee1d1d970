"""What every engine promises. Engines see arrays and frame-pixel prompts only -- never a path, a file
format or world coordinates.

Frame conventions: a *frame* is one 2D slice along the propagation axis, an array ``(H, W)`` = (rows,
columns) of uint8 intensities already normalised to 0..255 by :mod:`volsam.preprocess`. Prompt coordinates
are in frame pixels, ``x`` = column, ``y`` = row; boxes are ``(x0, y0, x1, y1)`` with inclusive corners.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from volsam.core.errors import EngineError

PRECISIONS = ("auto", "fp32", "bf16")  # numeric precision of forward passes (see volsam.engines.precision)


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; an :class:`EngineError` otherwise."""
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


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
    """A 2D promptable model; 3D comes from :mod:`volsam.propagation`."""

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

    def predict_candidates(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> list[SlicePrediction]:
        """Every mask the model proposes for this prompt, :meth:`predict`'s answer first (SAM-family decoders
        make several for an ambiguous prompt). The default: that one answer only."""
        return [self.predict(embedding, box=box, points=points, point_labels=point_labels, mask_logits=mask_logits)]

    def predict_boxes(
        self, embedding: SliceEmbedding, boxes: Sequence[tuple[float, float, float, float]]
    ) -> list[SlicePrediction]:
        """One :class:`SlicePrediction` per box (each ``(x0, y0, x1, y1)`` in frame pixels, inclusive) on the
        same encoded frame, in the order given: what :meth:`predict` answers for each box alone. Engines that
        can run several prompts in one decoder pass override this (same masks); the default loops."""
        return [self.predict(embedding, box=box) for box in boxes]


@dataclass(frozen=True)
class FramePrompt:
    """Prompts of one object on one frame (frame pixels, see the module docstring).

    ``box`` ``(x0, y0, x1, y1)`` inclusive; ``points`` ``(n, 2)`` float32 ``(x, y)`` with ``point_labels``
    ``(n,)`` int64 (1 = object, 0 = background); ``mask`` bool ``(H, W)``. Tracker engines take a frame's
    ``mask`` alone when it is given (it replaces the box and clicks there); the slice walk adds the mask to
    what the box and clicks give.
    """

    box: tuple[float, float, float, float] | None = None
    points: np.ndarray | None = None  # (n, 2) float (x, y)
    point_labels: np.ndarray | None = None  # (n,) 1 = object, 0 = background
    mask: np.ndarray | None = None

    @property
    def clicked(self) -> bool:
        """True when the frame has a box or clicks (what an engine predicts from, as opposed to a mask)."""
        return self.box is not None or self.points is not None

    @property
    def can_start(self) -> bool:
        """True when the box or clicks can start an object here: a box or at least one object click."""
        return self.box is not None or (self.point_labels is not None and bool(np.any(self.point_labels == 1)))

    def shifted(self, dx: float, dy: float) -> FramePrompt:
        """The box and clicks moved by ``(dx, dy)`` pixels (integer coordinates stay integers); the mask as it is."""
        box = None if self.box is None else (self.box[0] + dx, self.box[1] + dy, self.box[2] + dx, self.box[3] + dy)
        points = None if self.points is None else self.points + np.asarray([dx, dy], dtype=self.points.dtype)
        return replace(self, box=box, points=points)

    def in_window(self, roi: tuple[int, int, int, int]) -> FramePrompt:
        """This prompt in the coordinates of the window ``roi = (y0, y1, x0, x1)`` (half-open frame pixels):
        box and clicks shifted by ``(-x0, -y0)``, the mask cut to the window."""
        y0, y1, x0, x1 = roi
        moved = self.shifted(-x0, -y0)
        return moved if self.mask is None else replace(moved, mask=self.mask[y0:y1, x0:x1])

    def scaled(self, sx: float, sy: float) -> FramePrompt:
        """Box and clicks on a grid ``sx`` x ``sy`` times as fine (``x * sx``, ``y * sy``, float32, how SAM 2 maps
        frame pixels to its square input); the mask stays as it is (engines resize masks their own way)."""
        scale = np.asarray([sx, sy], dtype=np.float32)
        box = None
        if self.box is not None:
            corners = np.asarray(self.box, dtype=np.float32).reshape(2, 2) * scale
            box = tuple(float(v) for v in corners.reshape(-1))
        points = None if self.points is None else np.asarray(self.points, dtype=np.float32).reshape(-1, 2) * scale
        return replace(self, box=box, points=points)


@runtime_checkable
class FrameSource(Protocol):
    """What the slice walk and the trackers read: ``len()`` frames of ``frame_shape`` (H, W), delivered as
    uint8 arrays ``(n, H, W)`` (or ``(n, H, W, 3)`` RGB for trackers that take colour) by ``frames(indices)``.

    Implemented by :class:`volsam.propagation.FrameStack` (a volume's slices) and
    :class:`volsam.io.video.VideoFrames` (a video, streamed)."""

    def __len__(self) -> int: ...

    @property
    def frame_shape(self) -> tuple[int, int]: ...

    def frames(self, indices: list[int]) -> np.ndarray: ...


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
        frames: FrameSource,
        prompts: dict[int, dict[int, FramePrompt]],
        *,
        limit: tuple[int, int] | None = None,
        absent_patience: int | None = 3,
        start: int | None = None,
    ) -> Iterator[TrackedFrame]:
        """Segment the prompted frames, then propagate forward and backward from the first prompted frame
        (or from ``start``).

        Args:
            frames: the frames (:class:`FrameSource`), read one at a time.
            prompts: frame index -> object id -> prompt.
            limit: (first, last) frame, inclusive.
            absent_patience: stop a direction after this many consecutive frames where no object is present
                (None = run to the limit).
            start: a prompted frame inside ``limit`` to propagate from (a correction resuming there); every
                prompted frame still conditions the memory, and prompted frames outside ``limit`` are then
                allowed (processed, not yielded).

        Yields the prompted frames inside ``limit`` first (in order), then each propagated frame.
        """
