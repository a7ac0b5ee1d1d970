"""transformers -> Meta state dicts (volsam.engines.sam2.convert.to_meta_state_dict): the exact inverse of the
Meta -> transformers conversion, for SAM 2.1-tiny at 1024 and the MedSAM2 layout (512), checked against Meta's
own builder (test-only ``sam2``)."""

from __future__ import annotations

import pytest
import torch

from tests.engines.sam2.meta_reference import _size_overrides, meta_model
from volsam.core.errors import ModelNotFound
from volsam.engines.checkpoints import load_strict
from volsam.engines.sam2.convert import build_model, load_meta_checkpoint, meta_to_hf, to_meta_state_dict
from volsam.engines.sam2.variants import named_variant

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
CASES = {
    "sam2.1-tiny": ("sam2.1-hiera-tiny", 1024, "sam2.1_hiera_tiny_finetuned.pt"),
    "medsam2": ("medsam2", 512, "MedSAM2_finetuned.pt"),
}


def _build_sam2(checkpoint, image_size: int):
    """Meta's ``build_sam2`` (strict ``load_state_dict`` of ``{"model": ...}``) on the 2.1-tiny config."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2

    GlobalHydra.instance().clear()
    with initialize_config_module("sam2", version_base="1.2"):
        return build_sam2(CONFIG, str(checkpoint), device="cpu", hydra_overrides_extra=_size_overrides(image_size))


@pytest.fixture(scope="module")
def original() -> dict[str, torch.Tensor]:
    """A random-init Meta SAM 2.1-tiny state dict (MedSAM2 has the same tensors: only its config differs)."""
    return meta_model(CONFIG, seed=5).state_dict()


@pytest.fixture(scope="module")
def hf_state(original) -> dict[str, torch.Tensor]:
    """``original`` loaded strictly into transformers' model, read back as that model's state dict."""
    model = build_model(named_variant("sam2.1-hiera-tiny"))
    load_strict(model, meta_to_hf(original), "random Meta 2.1-tiny")
    return model.state_dict()


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_is_exact_and_loads_in_metas_builder(tmp_path, case, original, hf_state):
    name, side, filename = CASES[case]
    variant = named_variant(name)
    back = to_meta_state_dict(hf_state, variant)
    assert set(back) == set(original)
    for key, tensor in original.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key

    # a fine-tuned model: changed weights go out to Meta's layout and come back through `volsam models convert`
    tuned = dict(hf_state)
    for key in ("vision_encoder.backbone.blocks.0.attn.qkv.weight", "prompt_encoder.point_embed.weight"):
        tuned[key] = tuned[key] + torch.randn_like(tuned[key])
    tuned["memory_encoder.memory_fuser.layers.1.scale"] = torch.full((256,), 0.5)
    path = tmp_path / filename
    torch.save({"model": to_meta_state_dict(tuned, name)}, path)

    meta = _build_sam2(path, side)  # raises on any missing or unexpected key
    loaded = meta.state_dict()
    assert torch.equal(
        loaded["image_encoder.trunk.blocks.0.attn.qkv.weight"],
        tuned["vision_encoder.backbone.blocks.0.attn.qkv.weight"],
    )
    assert torch.equal(
        loaded["sam_prompt_encoder.point_embeddings.2.weight"], tuned["prompt_encoder.point_embed.weight"][2:3]
    )
    assert torch.equal(loaded["memory_encoder.fuser.layers.1.gamma"], torch.full((256,), 0.5))
    assert meta.image_size == side

    again, detected = load_meta_checkpoint(path)  # volsam's own reader (variant told by the file name)
    assert detected == variant
    for key, tensor in again.state_dict().items():
        assert torch.equal(tensor, tuned[key]), key


def test_weights_of_another_layout_are_refused(hf_state):
    variant = named_variant("sam2.1-hiera-tiny")
    state = hf_state
    with pytest.raises(ModelNotFound, match=r"not a sam2.1-hiera-small: 50 missing keys: .*2 unexpected keys"):
        to_meta_state_dict(state, "sam2.1-hiera-small")
    with pytest.raises(ModelNotFound, match=r"not a sam2.0-hiera-tiny: 3 unexpected keys: occlusion_spatial"):
        to_meta_state_dict(state, "sam2.0-hiera-tiny")
    odd = dict(state)
    odd["mask_decoder.extra_head.weight"] = torch.zeros(1)
    odd["prompt_encoder.point_embed.weight"] = torch.zeros(5, 256)
    with pytest.raises(ModelNotFound, match=r"1 unexpected keys: mask_decoder.extra_head.weight; 1 shape mismatches"):
        to_meta_state_dict(odd, variant)
