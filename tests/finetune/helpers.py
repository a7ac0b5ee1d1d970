"""Small models and configs for the fine-tuning tests (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from volsam.finetune.config import FinetuneConfig, config_from_dict

CASES = ["dark-00", "ring-00", "small-00"]  # built-in lesions-crop cases: 2 for training, 1 for validation


def tiny_sam2_config(side: int, heads: tuple[int, ...] = (1, 1, 2, 2), **extra: Any):
    """A SAM 2.1-layout ``Sam2VideoConfig`` small enough for CPU tests: a 5-block Hiera of 16..128 channels
    with ``heads`` per stage, one memory-attention layer with a 256-wide feed-forward; ``extra`` adds or
    overrides top-level config keys."""
    from transformers import Sam2VideoConfig

    dims = [16, 32, 64, 128]
    backbone = {
        "model_type": "sam2_hiera_det_model",
        "hidden_size": dims[0],
        "num_attention_heads": 1,
        "image_size": [side, side],
        "blocks_per_stage": [1, 1, 2, 1],
        "embed_dim_per_stage": dims,
        "num_attention_heads_per_stage": list(heads),
        "window_size_per_stage": [8, 4, 4, 2],
        "global_attention_blocks": [3],
        "window_positional_embedding_background_size": [4, 4],
    }
    vision = {
        "backbone_config": backbone,
        "backbone_channel_list": dims[::-1],
        "backbone_feature_sizes": [[side // 4] * 2, [side // 8] * 2, [side // 16] * 2],
    }
    kwargs: dict[str, Any] = {
        "vision_config": vision,
        "prompt_encoder_config": {"image_size": side},
        "image_size": side,
        "memory_attention_rope_feat_sizes": [side // 16] * 2,
        "memory_attention_num_layers": 1,
        "memory_attention_feed_forward_hidden_size": 256,
    }
    return Sam2VideoConfig(**{**kwargs, **extra})


def tiny_sam2_dir(folder: Path, side: int = 64, seed: int = 0) -> Path:
    """A random-init SAM 2.1-layout model (5 Hiera blocks of 16..128 channels, one memory-attention layer)
    saved as a transformers directory; its object-score head says "present"."""
    from transformers import Sam2VideoModel

    config = tiny_sam2_config(
        side,
        mask_decoder_config={"mlp_dim": 256},
        memory_fuser_intermediate_dim=256,
    )
    torch.manual_seed(seed)
    model = Sam2VideoModel(config)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
        shared = model.prompt_encoder.shared_embedding.positional_embedding  # one matrix, as in Meta's model
        model.shared_image_embedding.positional_embedding.copy_(shared)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def small_config(out: Path, recipe: str = "medsam-lite", **sections: Any) -> FinetuneConfig:
    """A config on three built-in lesion cases, few clips, small steps; ``sections`` override keys."""
    raw: dict[str, Any] = {
        "recipe": recipe,
        "name": "run",
        "output": str(out),
        "data": {
            "dataset": "builtin:lesions-crop",
            "cases": CASES,
            "val_fraction": 0.34,
            "clip_stride": 5,
            "max_val_samples": 2,
        },
        "model": {"source": "random", "image_size": 64, "freeze": ["image_encoder"], "embedding_cache": 512},
        "optim": {"batch_size": 2, "lr": 1.0e-3, "clip_grad": 1.0},
        "schedule": {"max_steps": 4, "warmup_steps": 1, "kind": "cosine"},
        "checkpoint": {"every_steps": 2, "keep": 5},
        "log": {"every_steps": 1, "tensorboard": False},
        "validation": {"mode": "clips"},  # the small random models here are not the engines' 256 px
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(raw, source="test")
