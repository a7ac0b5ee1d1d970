"""Typed errors. Every refusal of volsam is one of these, with a one-line message that names the bad value.

Each class carries the two ways it leaves the program: ``exit_code`` (the CLI's exit status; it prints
``str(error)`` on one line) and ``http_status`` (the server's answer, a JSON body
``{"detail": str(error), "error": <class name>}``). The server-protocol errors live here too, so that the
torch-free client raises the very type the server named (:func:`error_name` on the server,
:func:`error_class` on the client) without importing the server.
"""

from __future__ import annotations


class VolsamError(Exception):
    """Base class of every error volsam raises on purpose."""

    exit_code: int = 1
    http_status: int = 500


class InputError(VolsamError):
    """An input file or array cannot be used (missing, truncated, not an image, wrong shape...)."""

    exit_code = 2
    http_status = 400


class PromptError(VolsamError):
    """A prompt does not fit the image (outside it, empty, malformed numbers)."""

    exit_code = 3
    http_status = 400


class ModelNotFound(VolsamError):
    """Model weights cannot be found or do not verify."""

    exit_code = 4
    http_status = 400


class EngineError(VolsamError):
    """An engine cannot run as asked (unsupported prompt kind, device not available)."""

    exit_code = 5
    http_status = 400


class OutputError(VolsamError):
    """An output cannot be written where asked."""

    exit_code = 6
    http_status = 500


class SettingsError(VolsamError):
    """An option or setting has a value volsam does not know (e.g. an unknown propagation strategy)."""

    exit_code = 2
    http_status = 400


class UploadTooLarge(InputError):
    """An upload is larger than the server accepts."""

    http_status = 413


class ImageTooLarge(InputError):
    """An image whose decoded voxels would exceed the limit (a server's ``--max-image-mb``): refused from the
    sizes its header declares, before anything is decompressed."""

    http_status = 413


class NoDicomSource(OutputError):
    """A DICOM-SEG asked of an image that was not read from a DICOM series (or, on the server, of a session
    with no object yet): there is nothing for the SEG to reference."""

    http_status = 409


# -- the server protocol: refusals for reasons other than the input --------------------------------------
class RemoteError(VolsamError):
    """The server refused a request for a reason other than the input (auth, lease, full, internal)."""


class Unauthorized(RemoteError):
    """Missing or wrong bearer token."""

    http_status = 401


class LeaseRefused(RemoteError):
    """The request did not show the session's lease token."""

    http_status = 403


class Forbidden(RemoteError):
    """The request comes from where the server does not answer: a ``Host`` that is not one of the server's
    own names, or a browser page of another origin changing state (DNS rebinding, cross-site requests)."""

    http_status = 403


class SessionNotFound(RemoteError):
    """No open session has this id (closed, expired or never created)."""

    http_status = 404


class ServerFull(RemoteError):
    """The server holds its maximum number of sessions."""

    http_status = 503


class Cancelled(VolsamError):
    """A running propagation was stopped on request (the server's cancel); the session is as it was before
    the stopped step."""

    exit_code = 130
    http_status = 409


def _defined_here(cls: type[VolsamError]) -> list[type[VolsamError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        if sub.__module__ == __name__:
            found.extend(_defined_here(sub))
    return found


_BY_NAME: dict[str, type[VolsamError]] = {cls.__name__: cls for cls in _defined_here(VolsamError)}


def error_name(exc: VolsamError) -> str:
    """The name the server sends for ``exc``: its class's, or that of its nearest base defined here (an error
    class defined elsewhere travels as the volsam type it refines)."""
    return next(cls.__name__ for cls in type(exc).__mro__ if _BY_NAME.get(cls.__name__) is cls)


def error_class(name: str | None) -> type[VolsamError]:
    """The error class the server named (``error`` in its JSON body); :class:`RemoteError` for unknown names."""
    return _BY_NAME.get(name or "", RemoteError)
