"""Propagation: from prompts on one or more frames to the object on every frame.

Frames are the slices of a volume along the propagation axis (:class:`FrameStack`) or the frames of a video;
inside this package everything is in frame coordinates: frame index ``s``, rows ``y``, columns ``x``; boxes
``(x0, y0, x1, y1)`` inclusive, in pixels.

Modules, one job each:

* :mod:`~volsam.propagation.settings` -- :class:`PropagationSettings`, :class:`CorrectionSettings`,
  :class:`Strategy`, :class:`StopReason`: every threshold, named, with its reason.
* :mod:`~volsam.propagation.prompts` -- voxel prompts -> :class:`~volsam.engines.base.FramePrompt` per frame.
* :mod:`~volsam.propagation.frames` -- :class:`FrameStack`, the focus window, box and mask arithmetic.
* :mod:`~volsam.propagation.cache` -- :class:`EmbeddingCache` (frame embeddings of a walk).
* :mod:`~volsam.propagation.appearance` -- the object / surroundings grey-level model.
* :mod:`~volsam.propagation.seed` -- the prompted frame's mask (:func:`predict_seed`).
* :mod:`~volsam.propagation.stops` -- the rules that end a direction.
* :mod:`~volsam.propagation.walk` -- :func:`propagate`, the walk from one frame.
* :mod:`~volsam.propagation.follow` -- :func:`~volsam.propagation.follow.follow`, the walk through a video
  (appearance boxes, search for a lost object).
* :mod:`~volsam.propagation.stack` -- :func:`segment_stack` (walks between seeds), :func:`cleanup_3d`.
* :mod:`~volsam.propagation.slices` -- :func:`segment_slices` (a slice engine on a volume, in a window).
* :mod:`~volsam.propagation.tracking` -- :func:`track_labels` (the tracker loop).
"""

from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.frames import FrameStack, focus_window, mask_box
from volsam.propagation.prompts import ObjectPrompts, frame_prompts
from volsam.propagation.seed import predict_seed
from volsam.propagation.settings import CorrectionSettings, PropagationSettings, StopReason, Strategy
from volsam.propagation.stack import StackResult, WalkStop, cleanup_3d, segment_stack
from volsam.propagation.walk import SliceResult, propagate

__all__ = [
    "CorrectionSettings",
    "EmbeddingCache",
    "FrameStack",
    "ObjectPrompts",
    "PropagationSettings",
    "SliceResult",
    "StackResult",
    "StopReason",
    "Strategy",
    "WalkStop",
    "cleanup_3d",
    "focus_window",
    "frame_prompts",
    "mask_box",
    "predict_seed",
    "propagate",
    "segment_stack",
]
