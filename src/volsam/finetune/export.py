"""Export a trained model as a folder that ``volsam segment --model`` and ``volsam bench --model`` load directly.

* SAM 2 recipes (``seed-2024``, ``medsam2-2025``): a transformers directory (``config.json`` +
  ``model.safetensors``, ``save_pretrained``) for ``--engine sam2 --model DIR``; with ``export.meta_pt`` also a
  Meta-format ``model.pt`` (``{"model": state_dict}``) that Meta's ``build_sam2`` and ``volsam models convert``
  read.
* ``medsam-lite``: ``lite_medsam.pth``, a flat state dict with the checkpoint's names, for
  ``--engine medsam-lite --model DIR`` (or the file itself).

Each folder gets a ``README.md`` model card (data, recipe, steps, validation Dice, date, versions, licence)
and ``training.json`` with the same facts. The folder is written next to its final place and swapped in with
renames, so a reader never sees half a model.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from volsam.core.errors import OutputError
from volsam.finetune.config import FinetuneConfig
from volsam.finetune.models import TrainModel

log = logging.getLogger(__name__)

LITEMEDSAM_FILE = "lite_medsam.pth"
META_FILE = "model.pt"

_LICENCE = {
    "medsam-lite": "LiteMedSAM weights come from bowang-lab's MedSAM (LiteMedSAM branch, Apache-2.0); a fine-tuned "
    "model inherits the licence of the weights it started from and the terms of the training data.",
    "sam2": "Weights derived from SAM 2 / 2.1 inherit Apache-2.0; weights derived from MedSAM2 inherit "
    "CC-BY-SA-4.0 (share alike). The training data's terms apply as well.",
}


_VALIDATION_TEXT = {
    "clips": "true box on the first slice, per clip",
    "volumes": "3D, volsam's propagation from the true box on the middle slice, per object",
}


def _card(config: FinetuneConfig, facts: dict[str, Any], files: list[str]) -> str:
    from volsam import __version__

    split = facts.get("split", {})
    dice = facts.get("val_dice")
    dice_text = f"{dice:.4f}" if isinstance(dice, float) else "not measured (no validation cases)"
    engine = "medsam-lite" if config.recipe == "medsam-lite" else "sam2"
    lines = [
        f"# {config.name} ({config.recipe})",
        "",
        f"Fine-tuned with volsam {__version__} on {facts['date']}.",
        "",
        "| | |",
        "|---|---|",
        f"| recipe | `{config.recipe}` |",
        f"| started from | `{config.model.source or 'bundled LiteMedSAM weights'}` |",
        f"| data | `{config.data.dataset}` ({len(split.get('train', []))} training cases, "
        f"{len(split.get('val', []))} validation cases, clips of {config.data.clip_length} slice(s) along "
        f"{config.data.axis}) |",
        f"| steps | {facts['step']} of {facts.get('total_steps', '?')} |",
        f"| validation Dice ({_VALIDATION_TEXT[config.validation.mode]}) | {dice_text} |",
        f"| files | {', '.join(files)} |",
        "",
        "Use:",
        "",
        "```",
        f"volsam segment IMAGE --engine {engine} --model {{this folder}} --box I0,J0,I1,J1 --slice K -o out.nii.gz",
        f"volsam bench DATASET --engine {engine} --model {{this folder}} -o results/",
        "```",
        "",
        f"Validation cases: {', '.join(split.get('val', [])) or 'none'}.",
        "",
        "## Licence",
        "",
        _LICENCE["medsam-lite" if config.recipe == "medsam-lite" else "sam2"],
        "",
    ]
    return "\n".join(lines)


def _write_model(model: TrainModel, config: FinetuneConfig, folder: Path) -> list[str]:
    if config.recipe == "medsam-lite":
        state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
        torch.save(state, folder / LITEMEDSAM_FILE)
        return [LITEMEDSAM_FILE]
    model.net.save_pretrained(folder, safe_serialization=True)
    files = sorted(p.name for p in folder.iterdir())
    if config.export.meta_pt:
        from volsam.engines.sam2 import convert

        to_meta = getattr(convert, "to_meta_state_dict", None)
        if to_meta is None:
            raise OutputError("export.meta_pt: this volsam has no Meta-format converter (to_meta_state_dict) yet")
        hf_state = {k: v.detach().cpu() for k, v in model.net.state_dict().items()}
        meta = to_meta(hf_state, variant_of(model.net))
        torch.save({"model": meta}, folder / META_FILE)
        files.append(META_FILE)
    return files


def variant_of(net: Any) -> Any:
    """The SAM 2 variant of a transformers model, from its layout and input size."""
    import dataclasses

    from volsam.engines.sam2.variants import SIZES, Variant

    cfg = net.config
    backbone = cfg.vision_config.backbone_config
    v21 = bool(getattr(cfg, "enable_occlusion_spatial_embedding", True))
    for size in SIZES.values():
        if size.hidden == backbone.hidden_size and tuple(size.blocks) == tuple(backbone.blocks_per_stage):
            return dataclasses.replace(Variant(size, "2.1" if v21 else "2.0"), image_size=int(cfg.image_size))
    raise OutputError(f"cannot name the SAM 2 variant of this model (hidden size {backbone.hidden_size})")


def export_model(model: TrainModel, config: FinetuneConfig, folder: Path, facts: dict[str, Any]) -> Path:
    """Write the model, ``training.json`` and ``README.md`` into ``folder`` (replaced whole); returns it."""
    folder = Path(folder)
    facts = {**facts, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    except OSError as exc:
        raise OutputError(f"cannot write the exported model to {folder}: {exc}") from exc
    old: Path | None = None
    try:
        files = _write_model(model, config, tmp)
        record = {"recipe": config.recipe, "name": config.name, **facts, "files": files, "config": config.to_dict()}
        (tmp / "training.json").write_text(json.dumps(record, indent=1) + "\n")
        (tmp / "README.md").write_text(_card(config, facts, files))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
    except BaseException:  # Ctrl-C included: the previous export stays in place
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not folder.exists():
            old.rename(folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("exported %s model (step %s) to %s", config.recipe, facts.get("step"), folder)
    return folder
