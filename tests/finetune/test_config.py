"""Config parsing: shipped recipes with their published numbers, overrides, and refusals that name the key."""

from __future__ import annotations

import pytest

from volsam.cli.main import run as cli
from volsam.core.errors import InputError
from volsam.finetune.config import RECIPES, config_from_dict, load_config


def test_shipped_recipes_hold_the_published_numbers():
    seed = load_config("seed-2024")
    assert (seed.optim.lr, seed.optim.weight_decay, seed.optim.batch_size) == (6e-5, 0.01, 16)
    assert (seed.loss.mask, seed.loss.dice, seed.loss.mask_kind, seed.data.clip_length) == (1.0, 1.0, "bce", 1)
    medsam2 = load_config("medsam2-2025")
    assert (medsam2.optim.lr, medsam2.optim.vision_lr, medsam2.schedule.kind) == (5e-5, 3e-5, "cosine")
    loss = medsam2.loss
    assert (loss.mask, loss.dice, loss.iou, loss.object_score, loss.mask_kind) == (20.0, 1.0, 1.0, 1.0, "focal")
    assert medsam2.data.clip_length == 8 and medsam2.model.variant == "medsam2"
    lite = load_config("medsam-lite")
    assert lite.model.source is None and lite.data.prompts.mask == 0 and lite.loss.object_score == 0
    # what slice-by-slice propagation needs: neighbour boxes, object-free end slices, a trained IoU estimate
    assert lite.data.neighbour_boxes >= 1 and lite.data.end_slices >= 1 and lite.loss.iou > 0
    # and best/ chosen in 3D, the stock model included
    assert lite.validation.mode == "volumes" and lite.log.validate_at_start
    assert {load_config(r).recipe for r in RECIPES} == set(RECIPES)


def test_a_file_overrides_the_recipe_key_by_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "recipe: medsam2-2025\nname: ct\ndata:\n  dataset: /data/Task03_Liver\n  augment: {flip: 0.0}\n"
        "optim: {lr: 1e-4}\n"  # YAML 1.1 reads 1e-4 as a string: accepted as a number
    )
    config = load_config(path)
    assert config.name == "ct" and config.data.dataset == "/data/Task03_Liver"
    assert config.data.augment.flip == 0.0 and config.data.augment.rotate_deg == 10.0  # the rest of the section kept
    assert config.data.clip_length == 8 and config.optim.lr == 1e-4 and config.optim.vision_lr == 3e-5
    assert config.run_dir.name == "ct"
    assert config_from_dict(config.to_dict()) == config  # what config.yaml of a run holds reads back the same


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"recipe": "seed-2024", "data": {"augmnt": {}}}, "unknown key data.augmnt"),
        ({"recipe": "seed-2024", "optimiser": {}}, "unknown key optimiser"),
        ({"recipe": "seed-2024", "optim": {"lr": "fast"}}, "optim.lr: expected a number, got 'fast'"),
        ({"recipe": "seed-2024", "optim": {"batch_size": 0}}, "optim.batch_size: 0 must be >= 1"),
        ({"recipe": "seed-2024", "optim": {"batch_size": 2.5}}, "optim.batch_size: expected an integer, got 2.5"),
        ({"recipe": "seed-2024", "data": {"clip_length": 8}}, "data.clip_length: 8 must be 1 for the 2D recipe"),
        ({"recipe": "medsam-lite", "data": {"neighbour_boxes": -1}}, "data.neighbour_boxes: -1 must be >= 0"),
        ({"recipe": "medsam2-2025", "schedule": {"kind": "linear"}}, "schedule.kind: 'linear' is not one of"),
        ({"recipe": "medsam-lite", "loss": {"object_score": 1.0}}, "loss.object_score: 1.0 must be 0"),
        ({"recipe": "medsam-lite", "data": {"prompts": {"mask": 0.5}}}, "data.prompts.mask: 0.5 must be 0"),
        ({"recipe": "seed-2024", "data": {"augment": {"enabled": "yes"}}}, "data.augment.enabled: expected true"),
        ({"recipe": "sam3"}, "recipe 'sam3' is not one of"),
        ({"recipe": "seed-2024", "data": {"split_group": "([a-z"}}, "data.split_group: '([a-z' is not a regular"),
        ({"name": "x"}, "the key recipe is required"),
    ],
)
def test_refusals_name_the_key_and_the_value(raw, message):
    with pytest.raises(InputError) as err:
        config_from_dict(raw)
    assert message in str(err.value)


def test_cli_reports_a_bad_config_on_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: medsam-lite\nschedule: {epochs: 0}\n")
    assert cli(["finetune", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "schedule.epochs: 0 must be >= 1" in err
    assert cli(["finetune", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert cli(["finetune", str(tmp_path / "list.yaml")]) == 2
    assert "mapping" in capsys.readouterr().err
