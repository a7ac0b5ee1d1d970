"""Segmentation engines behind one registry: ``volsam.engines.get(name)``; ``resolve`` takes a name or an
engine instance. Model code loads lazily."""

from volsam.engines.base import (
    Capabilities,
    FramePrompt,
    FrameSource,
    SliceEmbedding,
    SliceEngine,
    SlicePrediction,
    TrackerEngine,
)
from volsam.engines.registry import available, get, resolve

__all__ = [
    "Capabilities",
    "FramePrompt",
    "FrameSource",
    "SliceEmbedding",
    "SliceEngine",
    "SlicePrediction",
    "TrackerEngine",
    "available",
    "get",
    "resolve",
]
