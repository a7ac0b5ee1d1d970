"""numpy-only foundation: the Volume, prompt types and typed errors."""

from volsam.core.errors import EngineError, InputError, ModelNotFound, OutputError, PromptError, VolsamError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt, in_plane_axes
from volsam.core.volume import Volume

__all__ = [
    "Box2D",
    "Box3D",
    "EngineError",
    "InputError",
    "MaskPrompt",
    "ModelNotFound",
    "OutputError",
    "Point",
    "Prompt",
    "PromptError",
    "Volume",
    "VolsamError",
    "in_plane_axes",
]
