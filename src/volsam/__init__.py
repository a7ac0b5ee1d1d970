"""volsam: prompt one slice, segment the whole volume.

Python API::

    import volsam
    vol = volsam.read_volume("scan.nii.gz")
    seg = volsam.segment(vol, volsam.Box2D(113, 72, 134, 96, slice=102), engine="medsam-lite")
    volsam.write_volume(seg, "lesion.nii.gz")

    photo = volsam.read_image("lesion.png")  # a 2D image: a Volume of one slice (colour in photo.colour)
    mask = volsam.segment(photo, volsam.Box2D(40, 30, 90, 75, slice=0), engine="medsam")  # x = column, y = row
    volsam.write_labels(mask, "mask.png")

Heavy modules (SimpleITK, torch) load on first use, so ``import volsam`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from volsam.core import Box2D, Box3D, MaskPrompt, Point, Volume
from volsam.core.errors import EngineError, InputError, ModelNotFound, OutputError, PromptError, VolsamError

__version__ = "0.1.0"

_LAZY = {
    "read_volume": "volsam.io",
    "read_image": "volsam.io",
    "write_volume": "volsam.io",
    "write_labels": "volsam.io",
    "segment": "volsam.segmentation",
    "Session": "volsam.session",
    "PropagationSettings": "volsam.propagation",
}

__all__ = [
    "Box2D",
    "Box3D",
    "EngineError",
    "InputError",
    "MaskPrompt",
    "ModelNotFound",
    "OutputError",
    "Point",
    "PromptError",
    "PropagationSettings",
    "Session",
    "Volume",
    "VolsamError",
    "__version__",
    "read_image",
    "read_volume",
    "segment",
    "write_labels",
    "write_volume",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'volsam' has no attribute {name!r}")
