"""Typed errors: each carries its CLI exit code and its HTTP status, and the name the server sends back turns
into the same class on the client (error_name / error_class)."""

from __future__ import annotations

import pytest

import volsam.errors
from volsam.core import errors as core_errors
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

# class, base, exit code, HTTP status
TABLE = [
    (VolsamError, Exception, 1, 500),
    (InputError, VolsamError, 2, 400),
    (PromptError, VolsamError, 3, 400),
    (ModelNotFound, VolsamError, 4, 400),
    (EngineError, VolsamError, 5, 400),
    (OutputError, VolsamError, 6, 500),
    (SettingsError, VolsamError, 2, 400),
    (UploadTooLarge, InputError, 2, 413),
    (ImageTooLarge, InputError, 2, 413),
    (NoDicomSource, OutputError, 6, 409),
    (RemoteError, VolsamError, 1, 500),
    (Unauthorized, RemoteError, 1, 401),
    (LeaseRefused, RemoteError, 1, 403),
    (Forbidden, RemoteError, 1, 403),
    (SessionNotFound, RemoteError, 1, 404),
    (ServerFull, RemoteError, 1, 503),
    (Cancelled, VolsamError, 130, 409),
]


@pytest.mark.parametrize(("cls", "base", "exit_code", "http_status"), TABLE, ids=[row[0].__name__ for row in TABLE])
def test_each_error_has_its_exit_code_and_http_status(cls, base, exit_code, http_status):
    assert cls.__bases__ == (base,)
    assert (cls.exit_code, cls.http_status) == (exit_code, http_status)
    error = cls("bad value 7")
    assert (error.exit_code, error.http_status, str(error)) == (exit_code, http_status, "bad value 7")


@pytest.mark.parametrize("cls", [row[0] for row in TABLE], ids=[row[0].__name__ for row in TABLE])
def test_the_name_sent_turns_back_into_the_class(cls):
    assert error_name(cls("x")) == cls.__name__
    assert error_class(cls.__name__) is cls


def test_every_error_class_of_core_errors_is_in_the_table_and_public():
    defined = {
        obj
        for obj in vars(core_errors).values()
        if isinstance(obj, type) and issubclass(obj, VolsamError) and obj.__module__ == core_errors.__name__
    }
    assert defined == {row[0] for row in TABLE}
    assert all(getattr(volsam.errors, cls.__name__) is cls for cls in defined)
    assert volsam.errors.error_class is error_class and volsam.errors.error_name is error_name


@pytest.mark.parametrize("name", ["NoSuchError", "", None, "internal", "Exception", "ValueError", "__class__"])
def test_unknown_names_become_remote_error(name):
    assert error_class(name) is RemoteError


def test_an_error_defined_elsewhere_travels_as_the_volsam_type_it_refines():
    class CheckpointMissing(ModelNotFound):
        pass

    class WrongFrame(PromptError):
        pass

    assert error_name(CheckpointMissing("x")) == "ModelNotFound"
    assert error_name(WrongFrame("x")) == "PromptError"
    assert error_class("CheckpointMissing") is RemoteError  # only core's classes are known by name


def test_old_import_locations_still_give_the_same_classes():
    from volsam.client import RemoteError as client_remote_error
    from volsam.server import app, store, uploads

    assert client_remote_error is RemoteError
    assert (app.Unauthorized, app.NoDicomSource) == (Unauthorized, NoDicomSource)
    assert (store.SessionNotFound, store.LeaseRefused, store.ServerFull) == (SessionNotFound, LeaseRefused, ServerFull)
    assert uploads.UploadTooLarge is UploadTooLarge
