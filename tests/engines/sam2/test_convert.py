"""Meta / MedSAM2 checkpoint conversion: variant detection, strict loading, parity with Meta's modules."""

from __future__ import annotations

import pytest
import torch

from tests.engines.sam2.meta_reference import meta_model, save_meta
from volsam.core.errors import ModelNotFound, OutputError
from volsam.engines.sam2.convert import build_model, convert_checkpoint, load_meta_checkpoint, meta_to_hf
from volsam.engines.sam2.variants import SIZES, detect_variant, named_variant


@pytest.fixture(scope="module")
def medsam2_like(tmp_path_factory):
    """A random-init SAM 2.1-tiny at 512 (MedSAM2's layout), saved under a MedSAM2 file name."""
    model = meta_model(image_size=512)
    path = save_meta(model, tmp_path_factory.mktemp("ckpt") / "MedSAM2_random.pt")
    return model, path


def _shape_only_state(size: str, version: str) -> dict[str, torch.Tensor]:
    """The few tensors detection looks at, shaped like a Meta checkpoint of that size and version."""
    spec = SIZES[size]
    state = {
        "image_encoder.trunk.patch_embed.proj.weight": torch.zeros(spec.hidden, 3, 7, 7),
        "image_encoder.trunk.pos_embed": torch.zeros(1, spec.hidden, spec.window_background, spec.window_background),
    }
    for n in range(sum(spec.blocks)):
        state[f"image_encoder.trunk.blocks.{n}.attn.qkv.weight"] = torch.zeros(1)
    if version == "2.1":
        state["no_obj_embed_spatial"] = torch.zeros(1, 64)
    return state


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_every_size_and_version_is_told_apart(size, version):
    variant = detect_variant(_shape_only_state(size, version))
    assert (variant.size.name, variant.version, variant.image_size) == (size, version, 1024)


def test_real_meta_state_dicts_are_detected():
    assert detect_variant(meta_model("configs/sam2/sam2_hiera_t.yaml").state_dict()).name == "sam2.0-hiera-tiny"
    assert detect_variant(meta_model("configs/sam2.1/sam2.1_hiera_s.yaml").state_dict()).name == "sam2.1-hiera-small"


@pytest.mark.parametrize("version", ["2", "2.1"])
@pytest.mark.parametrize("size", ["t", "s", "b+", "l"])
def test_every_meta_variant_converts_strictly(version, size):
    """Each of Meta's eight configurations, random-initialised: detected, renamed and loaded strictly (every
    tensor used, none missing), with the weights carried over unchanged."""
    from volsam.engines.checkpoints import load_strict

    meta = meta_model(f"configs/sam{version}/sam{version}_hiera_{size}.yaml")
    state = meta.state_dict()
    variant = detect_variant(state)
    expected = {"t": "tiny", "s": "small", "b+": "base-plus", "l": "large"}[size]
    assert (variant.size.name, variant.version) == (expected, "2.1" if version == "2.1" else "2.0")
    hf = meta_to_hf(state)
    model = build_model(variant)
    load_strict(model, hf, f"{variant.name} (random)")
    ours = model.state_dict()
    name = "image_encoder.trunk.patch_embed.proj.weight"
    assert torch.equal(ours["vision_encoder.backbone.patch_embed.projection.weight"], state[name])
    del meta, model


def test_names_and_unknowns():
    assert named_variant("sam2.1_hiera_b+").name == "sam2.1-hiera-base-plus"
    assert named_variant("MedSAM2").image_size == 512
    with pytest.raises(ModelNotFound, match="unknown SAM 2 configuration"):
        named_variant("sam3-huge")
    with pytest.raises(ModelNotFound, match="not a SAM 2 checkpoint"):
        detect_variant({"encoder.weight": torch.zeros(1)})
    odd = _shape_only_state("tiny", "2.1")
    odd["image_encoder.trunk.blocks.20.attn.qkv.weight"] = torch.zeros(1)
    with pytest.raises(ModelNotFound, match="21 Hiera blocks"):
        detect_variant(odd)
    with pytest.raises(ModelNotFound, match="named MedSAM2 but holds a SAM 2.0"):
        detect_variant(_shape_only_state("tiny", "2.0"), name_hint="MedSAM2_latest.pt")


def test_medsam2_converts_strictly_and_its_image_features_match_meta(medsam2_like):
    meta, path = medsam2_like
    model, variant = load_meta_checkpoint(path)
    assert variant.name == "sam2.1-hiera-tiny-512" and model.config.image_size == 512
    torch.manual_seed(1)
    image = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        ref = meta.forward_image(image)
        ours = model.get_image_features(image)
    # Meta: backbone_fpn (N, C, H, W) with conv_s0/conv_s1 applied to the two high-resolution levels;
    # transformers: the same levels flattened to (HW, N, C)
    assert len(ref["backbone_fpn"]) == len(ours.fpn_hidden_states) == 3
    for level, (a, b) in enumerate(zip(ref["backbone_fpn"], ours.fpn_hidden_states)):
        a = a.flatten(2).permute(2, 0, 1)
        assert a.shape == b.shape, level
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_damaged_checkpoint_names_what_does_not_match(tmp_path, medsam2_like):
    meta, _ = medsam2_like
    state = meta.state_dict()
    state.pop("sam_mask_decoder.iou_token.weight")
    state["sam_mask_decoder.conv_s0.weight"] = torch.zeros(3, 3, 1, 1)
    bad = tmp_path / "MedSAM2_broken.pt"
    torch.save({"model": state}, bad)
    with pytest.raises(ModelNotFound, match=r"1 missing keys: mask_decoder\.iou_token\.weight.*shape mismatches"):
        load_meta_checkpoint(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFound, match="cannot read weights"):
        load_meta_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelNotFound, match="not a file"):
        load_meta_checkpoint(tmp_path / "missing.pt")


def test_config_must_agree_with_the_weights(medsam2_like):
    _, path = medsam2_like
    with pytest.raises(ModelNotFound, match="not the sam2.1-hiera-small"):
        load_meta_checkpoint(path, config="sam2.1-hiera-small")


def test_convert_writes_a_directory_transformers_loads(tmp_path, medsam2_like):
    from transformers import Sam2VideoModel

    meta, path = medsam2_like
    out = tmp_path / "models" / "medsam2"
    variant = convert_checkpoint(path, out)
    assert variant.name == "sam2.1-hiera-tiny-512"
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    loaded = Sam2VideoModel.from_pretrained(out).eval()
    expected = meta_to_hf(meta.state_dict())
    state = loaded.state_dict()
    for key in ("vision_encoder.backbone.blocks.3.attn.qkv.weight", "prompt_encoder.point_embed.weight"):
        torch.testing.assert_close(state[key], expected[key])
    with pytest.raises(OutputError, match="exists"):
        convert_checkpoint(path, out)
