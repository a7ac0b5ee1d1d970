"""Public home of volsam's typed errors (defined in :mod:`volsam.core.errors`).

Each carries ``exit_code`` (the CLI's exit status) and ``http_status`` (the server's answer);
:func:`error_class` turns the name a server sends back into the class (the remote client raises that).
"""

from volsam.core.errors import (
    Cancelled,
    EngineError,
    Forbidden,
    ImageTooLarge,
    InputError,
    LeaseRefused,
    ModelNotFound,
    NoDicomSource,
    OutputError,
    PromptError,
    RemoteError,
    ServerFull,
    SessionNotFound,
    SettingsError,
    Unauthorized,
    UploadTooLarge,
    VolsamError,
    error_class,
    error_name,
)

__all__ = [
    "Cancelled",
    "EngineError",
    "Forbidden",
    "ImageTooLarge",
    "InputError",
    "LeaseRefused",
    "ModelNotFound",
    "NoDicomSource",
    "OutputError",
    "PromptError",
    "RemoteError",
    "ServerFull",
    "SessionNotFound",
    "SettingsError",
    "Unauthorized",
    "UploadTooLarge",
    "VolsamError",
    "error_class",
    "error_name",
]
