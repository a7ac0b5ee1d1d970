"""Segmentation engines behind one registry: ``volsam.engines.get(name)``. Model code loads lazily."""

from volsam.engines.base import Capabilities, SliceEmbedding, SliceEngine, SlicePrediction
from volsam.engines.registry import available, get

__all__ = ["Capabilities", "SliceEmbedding", "SliceEngine", "SlicePrediction", "available", "get"]
