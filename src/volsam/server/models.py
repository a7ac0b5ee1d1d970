"""Which weights a client may name: the catalogue's models and those in the server's ``--models-dir``; nothing
else. A name never reaches the engines as a path relative to the server's working directory (which would let
a client probe for files through different error texts), and no answer names a server folder.

Names are ``[A-Za-z0-9][A-Za-z0-9._-]*`` (at most 100 characters). Resolution, for engine ``medsam-lite``:
``medsam-lite`` (the bundled weights), else ``MODELS_DIR/NAME.pth`` or ``MODELS_DIR/NAME/lite_medsam.pth``;
for ``sam2``: a catalogue name installed in the local model folder (``volsam models download``), else
``MODELS_DIR/NAME/`` (a transformers directory) or ``MODELS_DIR/NAME.pt`` (a Meta / MedSAM2 checkpoint).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from volsam.core.errors import InputError, ModelNotFound, SettingsError
from volsam.engines.backends import check_backend

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _candidates(engine: str, name: str, folder: Path) -> list[Path]:
    if engine == "medsam-lite":
        return [folder / f"{name}.pth", folder / name / "lite_medsam.pth"]
    return [folder / name / "config.json", folder / f"{name}.pt"]


def _found(engine: str, name: str, folder: Path | None) -> Path | None:
    if folder is None:
        return None
    for path in _candidates(engine, name, folder):
        # resolve(): a link inside the folder may not lead out of it
        if path.is_file() and folder in path.resolve().parents:
            return path.parent if path.name == "config.json" else path
    return None


def local_models(folder: Path | None) -> list[dict]:
    """The models a ``--models-dir`` offers, as ``{"name", "engine"}`` (for /api/capabilities)."""
    if folder is None:
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        name = entry.name.removesuffix(".pth").removesuffix(".pt")
        if not NAME.match(name):
            continue
        for engine in ("medsam-lite", "sam2"):
            if _found(engine, name, folder) is not None:
                out.append({"name": name, "engine": engine})
    return out


def resolve_model(engine: str, name: str | None, folder: Path | None) -> str | None:
    """The weights to load for ``name`` (None: the engine's default), as the path the server chose.

    Raises:
        InputError: ``name`` is not a plain name (a path, a URL...).
        SettingsError: a catalogue model of another engine.
        ModelNotFound: no such model on this server (the message lists the names it knows, never a folder).
    """
    if name is None:
        return None
    if engine not in ("medsam-lite", "sam2"):
        raise SettingsError(f"engine {engine!r} takes no model name on this server")
    if not NAME.match(name):
        raise InputError("model must be a model name from GET /api/capabilities, not a path")
    from volsam.engines.catalog import CATALOG, installed

    info = CATALOG.get(name.lower())
    if info is not None:
        if info.engine != engine:
            raise SettingsError(f"model {name!r} runs on engine {info.engine!r}, not {engine!r}")
        if engine == "medsam-lite":
            return None  # the bundled weights (verified when the engine loads)
        path = installed(info)
        if path is None:
            raise ModelNotFound(f"model {name!r} is not installed on this server (its operator can download it)")
        return str(path)
    path = _found(engine, name, folder)
    if path is not None:
        return str(path)
    known = [n for n, i in CATALOG.items() if i.engine == engine]
    known += [m["name"] for m in local_models(folder) if m["engine"] == engine]
    raise ModelNotFound(f"unknown model {name!r} for engine {engine!r}; this server knows: {', '.join(known)}")


def takes_backend(engine: str) -> bool:
    """Whether engine ``engine``'s constructor has a ``backend`` option (what ``--backend`` chooses); False for
    an unknown name (the request refuses it with its own message). Imports the engine's module, not its
    weights."""
    from volsam.engines.registry import engine_options

    return "backend" in engine_options(engine)


def session_backend(engine: str, asked: str | None, default: str) -> str:
    """The ``backend`` of a new session's request: the client's ``asked`` when it gave one (checked as
    ``volsam segment --backend``: SettingsError, the same line; an engine without the choice then refuses
    anything but ``auto``, as on the command line), else the server's ``default`` (``volsam serve --backend``)
    for an engine that offers the choice and ``auto`` for the others."""
    if asked is not None:
        return check_backend(asked)
    return default if default == "auto" or takes_backend(engine) else "auto"


def backend_in_use(session: Any) -> str:
    """What runs the image encoder of ``session``'s engine (a :class:`volsam.Session` or a video session):
    ``torch`` or ``openvino``, after ``auto`` and any fallback were resolved; ``torch`` for engines without
    the choice. Looks through an embedding cache to the engine it wraps."""
    engine = getattr(session, "engine", None)
    engine = getattr(engine, "inner", engine)
    return str(getattr(engine, "backend", "torch"))
