"""numpy-only foundation: the Volume, prompt types, typed errors and the :class:`Change` an edit reports."""

from volsam.core.changes import Change
from volsam.core.errors import (
    EngineError,
    InputError,
    ModelNotFound,
    OutputError,
    PromptError,
    RemoteError,
    SettingsError,
    VolsamError,
)
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt, in_plane_axes
from volsam.core.volume import Volume

__all__ = [
    "Box2D",
    "Box3D",
    "Change",
    "EngineError",
    "InputError",
    "MaskPrompt",
    "ModelNotFound",
    "OutputError",
    "Point",
    "Prompt",
    "PromptError",
    "RemoteError",
    "SettingsError",
    "Volume",
    "VolsamError",
    "in_plane_axes",
]
