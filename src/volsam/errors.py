"""Public home of volsam's typed errors (defined in :mod:`volsam.core.errors`)."""

from volsam.core.errors import (
    EngineError,
    InputError,
    ModelNotFound,
    OutputError,
    PromptError,
    VolsamError,
)

__all__ = ["EngineError", "InputError", "ModelNotFound", "OutputError", "PromptError", "VolsamError"]
