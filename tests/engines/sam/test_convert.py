"""SAM 1 / MedSAM checkpoint conversion: architecture detection, renaming, strict loading, the folder written
by ``volsam models convert``, and telling SAM from SAM 2 checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import SamModel

from tests.engines.sam.frames import disc_frame
from tests.engines.sam.meta_reference import meta_sam, save_meta
from volsam.core.errors import ModelNotFound, OutputError
from volsam.engines import checkpoints
from volsam.engines.sam.convert import (
    NAMED,
    VIT_B,
    VIT_H,
    VIT_L,
    convert_checkpoint,
    detect_architecture,
    from_meta_state,
    hf_config,
    meta_to_hf,
)
from volsam.engines.sam.engine import MedSAMEngine, SamEngine

LAYOUTS = {"vit-b": (VIT_B, (768, 12, 12, (2, 5, 8, 11))), "vit-l": (VIT_L, (1024, 24, 16, (5, 11, 17, 23)))}
LAYOUTS["vit-h"] = (VIT_H, (1280, 32, 16, (7, 15, 23, 31)))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_meta_layouts_are_detected_and_renamed_onto_samodel(name):
    """Meta's ViT-B / L / H at 1024 (built on the meta device: shapes only, no memory): the architecture is read
    back from the weights, and every renamed tensor is a SamModel tensor of the same shape, none missing."""
    arch, (hidden, depth, heads, glob) = LAYOUTS[name]
    with torch.device("meta"):
        meta = meta_sam(hidden, depth, heads, glob, image_size=1024)
        hf = SamModel(hf_config(arch))
    state = meta.state_dict()
    assert detect_architecture(state) == arch and arch.name == name
    renamed = {k: tuple(v.shape) for k, v in meta_to_hf(state).items()}
    expected = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    assert renamed == expected


def test_weights_carry_over_unchanged():
    meta = meta_sam(seed=2)
    state = meta.state_dict()
    model, arch = from_meta_state(state, "random")
    assert arch.name == "vit-64x2-256" and arch.global_attention == (1,) and arch.window == 14
    ours = model.state_dict()
    renamed = meta_to_hf(state)
    assert all(torch.equal(ours[k], v) for k, v in renamed.items())
    gaussian = state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    assert torch.equal(ours["shared_image_embedding.positional_embedding"], gaussian)
    assert torch.equal(ours["prompt_encoder.point_embed.3.weight"], state["prompt_encoder.point_embeddings.3.weight"])
    assert torch.equal(ours["mask_decoder.iou_prediction_head.layers.0.weight"],
                       state["mask_decoder.iou_prediction_head.layers.1.weight"])  # fmt: skip


def test_damaged_or_foreign_checkpoints_are_refused():
    state = meta_sam().state_dict()
    with pytest.raises(ModelNotFound, match="1 missing keys: mask_decoder.mask_tokens.weight"):
        from_meta_state({k: v for k, v in state.items() if k != "mask_decoder.mask_tokens.weight"})
    with pytest.raises(ModelNotFound, match="1 unexpected keys: extra"):
        from_meta_state({**state, "extra": torch.zeros(1)})
    wide = dict(state)
    wide["image_encoder.neck.2.weight"] = torch.zeros(256, 256, 5, 5)
    with pytest.raises(ModelNotFound, match="shape mismatches: vision_encoder.neck.conv2.weight"):
        from_meta_state(wide)
    with pytest.raises(ModelNotFound, match="looks like SAM 2"):
        detect_architecture({"sam_mask_decoder.iou_token.weight": torch.zeros(1, 256)})
    with pytest.raises(ModelNotFound, match="not a SAM checkpoint"):
        detect_architecture({"encoder.weight": torch.zeros(1)})


def test_convert_folder_gives_the_same_engine(tmp_path):
    meta = meta_sam(seed=3)
    pth = save_meta(meta, tmp_path / "sam_random.pth")
    out = tmp_path / "models" / "sam-small"
    assert checkpoints.checkpoint_family(pth) == "sam"
    assert checkpoints.convert_checkpoint(pth, out) == "SAM vit-64x2-256"
    assert (out / "model.safetensors").is_file() and json.loads((out / "volsam.json").read_text())["source"] == pth.name
    frame = disc_frame(48, 40)
    in_memory, folder = SamEngine(model=str(pth)), SamEngine(model=str(out))
    a = in_memory.predict(in_memory.encode(frame)[0], box=(8, 8, 30, 36))
    b = folder.predict(folder.encode(frame)[0], box=(8, 8, 30, 36))
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.logits, b.logits)
    medsam = MedSAMEngine(model=str(out))  # the same layout; MedSAM's preprocessing around it
    assert medsam.predict(medsam.encode(frame)[0], box=(8, 8, 30, 36)).mask.shape == (48, 40)
    with pytest.raises(OutputError, match="exists"):
        convert_checkpoint(pth, out)
    with pytest.raises(ModelNotFound, match="holds a SAM vit-64x2-256, not the sam-vit-b"):
        convert_checkpoint(pth, tmp_path / "other", config="sam-vit-b")
    assert not (tmp_path / "other").exists()
    with pytest.raises(ModelNotFound, match="unknown SAM configuration"):
        from volsam.engines.sam.convert import convert_checkpoint as convert_sam

        convert_sam(pth, tmp_path / "other", config="sam-vit-x")
    assert set(NAMED) == {"sam-vit-b", "sam-vit-l", "sam-vit-h", "medsam-vit-b"}


def test_folders_are_loaded_strictly(tmp_path):
    meta = meta_sam(seed=4)
    out = tmp_path / "sam"
    convert_checkpoint(save_meta(meta, tmp_path / "s.pth"), out)
    config = json.loads((out / "config.json").read_text())
    config["vision_config"]["num_hidden_layers"] = 3  # the weights have 2 blocks
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFound, match="do not match SamModel: .*missing keys"):
        SamEngine(model=str(out))
    config["model_type"] = "sam2_video"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFound, match="holds a 'sam2_video' model, not SAM"):
        SamEngine(model=str(out))


def test_checkpoint_family(tmp_path):
    torch.save({"model": {"sam_mask_decoder.iou_token.weight": torch.zeros(1)}}, tmp_path / "a.pt")
    assert checkpoints.checkpoint_family(tmp_path / "a.pt") == "sam2"
    torch.save({"w": torch.zeros(1)}, tmp_path / "b.pt")
    with pytest.raises(ModelNotFound, match="neither a SAM / MedSAM nor a SAM 2"):
        checkpoints.checkpoint_family(tmp_path / "b.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ModelNotFound, match="neither"):
        checkpoints.checkpoint_family(tmp_path / "legacy.pt")  # not memory-mappable: read whole


def test_models_cli_converts_and_lists_sam(capsys, tmp_path, monkeypatch):
    """``volsam models convert sam.pth DIR`` and ``volsam models list`` (size, licence, source, installed)."""
    from volsam.cli.main import run

    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    pth = save_meta(meta_sam(seed=6), tmp_path / "medsam_random.pth")
    out_dir = tmp_path / "models" / "medsam-vit-b"
    assert run(["models", "convert", str(pth), str(out_dir)]) == 0
    assert "SAM vit-64x2-256" in capsys.readouterr().out and (out_dir / "config.json").is_file()
    assert run(["models", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert rows["sam-vit-b"][1:6] == ["sam", "93.7M", "1024", "Apache-2.0", "no"]
    assert rows["sam-vit-h"][2] == "641.1M" and "sam_vit_h_4b8939.pth" in " ".join(rows["sam-vit-h"])
    assert rows["medsam-vit-b"][1] == "medsam" and rows["medsam-vit-b"][5] == str(out_dir)
    assert run(["models", "convert", str(pth), str(tmp_path / "x"), "--config", "sam-vit-l"]) == 4
    assert "holds a SAM vit-64x2-256, not the sam-vit-l" in capsys.readouterr().err
