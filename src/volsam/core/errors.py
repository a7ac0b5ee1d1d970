"""Typed errors. Every refusal of volsam is one of these, with a one-line message that names the bad value.

The CLI prints ``str(error)`` on one line and exits non-zero; the server (later) maps them to 4xx.
"""

from __future__ import annotations


class VolsamError(Exception):
    """Base class of every error volsam raises on purpose."""

    exit_code: int = 1


class InputError(VolsamError):
    """An input file or array cannot be used (missing, truncated, not an image, wrong shape...)."""

    exit_code = 2


class PromptError(VolsamError):
    """A prompt does not fit the image (outside it, empty, malformed numbers)."""

    exit_code = 3


class ModelNotFound(VolsamError):
    """Model weights cannot be found or do not verify."""

    exit_code = 4


class EngineError(VolsamError):
    """An engine cannot run as asked (unsupported prompt kind, device not available)."""

    exit_code = 5


class OutputError(VolsamError):
    """An output cannot be written where asked."""

    exit_code = 6
