"""Meta's reference SAM 2 (PyPI ``sam2==1.1.0``, installed by ``make dev`` with --no-deps) for parity tests.

Builds randomly initialised Meta models from the package's own Hydra configs; tests skip when the package
is missing (it is a test-only reference, never imported by volsam).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

sam2 = pytest.importorskip("sam2", reason="the reference sam2==1.1.0 is installed by `make dev`")


def _size_overrides(image_size: int) -> list[str]:
    """Hydra overrides for another input side (512 = MedSAM2): image size and the RoPE grids of memory
    attention (side / 16)."""
    if image_size == 1024:
        return []
    side = image_size // 16
    return [
        f"++model.image_size={image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{side},{side}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{side},{side}]",
    ]


def meta_model(config: str = "configs/sam2.1/sam2.1_hiera_t.yaml", image_size: int = 1024, seed: int = 0):
    """A random-init ``SAM2Base`` from one of Meta's configs; ``image_size`` 512 gives MedSAM2's layout."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    overrides = _size_overrides(image_size)
    GlobalHydra.instance().clear()
    with initialize_config_module("sam2", version_base="1.2"):
        cfg = compose(config_name=config, overrides=overrides)
    torch.manual_seed(seed)
    return instantiate(cfg.model, _recursive_=True).eval()


def save_meta(model, path: Path) -> Path:
    """Save as Meta does: ``{"model": state_dict}``."""
    torch.save({"model": model.state_dict()}, path)
    return path


def meta_video_predictor(checkpoint: Path, image_size: int = 512):
    """Meta's ``SAM2VideoPredictor`` (with the builder's usual overrides) loaded from ``checkpoint``."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2_video_predictor

    GlobalHydra.instance().clear()
    with initialize_config_module("sam2", version_base="1.2"):
        return build_sam2_video_predictor(
            "configs/sam2.1/sam2.1_hiera_t.yaml",
            str(checkpoint),
            device="cpu",
            hydra_overrides_extra=_size_overrides(image_size),
        )
