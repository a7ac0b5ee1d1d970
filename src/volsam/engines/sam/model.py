"""Load a SAM 1 / MedSAM ``SamModel`` from whatever :func:`~volsam.engines.checkpoints.resolve_weights` found."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

from volsam.core.errors import ModelNotFound
from volsam.engines.checkpoints import WeightsSource, resolve_weights

if TYPE_CHECKING:
    from transformers import SamModel

log = logging.getLogger(__name__)


def load_folder(source: WeightsSource) -> SamModel:
    """A transformers ``SamModel`` folder, loaded strictly (a missing or unexpected tensor is refused, where
    transformers alone would initialise it at random and only warn)."""
    from transformers import SamModel

    config = source.path / "config.json"
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"{source.label!r}: cannot read config.json ({exc})") from exc
    if model_type != "sam":
        raise ModelNotFound(f"{source.label!r} holds a {model_type!r} model, not SAM / MedSAM (model_type 'sam')")
    try:
        net, info = SamModel.from_pretrained(source.path, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load {source.label!r}: {exc}".splitlines()[0]) from exc
    bad = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        detail = "; ".join(f"{len(v)} {k.replace('_', ' ')}: {', '.join(map(str, v[:3]))}" for k, v in bad.items())
        raise ModelNotFound(f"weights {source.label!r} do not match SamModel: {detail}")
    return net


def load_model(model: str | os.PathLike[str] | None, engine: str, default: str, device: str) -> SamModel:
    """The ``SamModel`` for ``model`` (a ``.pth``, a transformers folder, a catalogue name of ``engine`` or a
    cached hub id; None = ``default``) on ``device``, in eval mode."""
    source = resolve_weights(model, engine, default)
    if source.kind == "checkpoint":
        from volsam.engines.sam.convert import load_meta_checkpoint

        net, _ = load_meta_checkpoint(source.path)
    else:
        net = load_folder(source)
    log.info("%s weights from %s (%s)", engine, source.label, source.kind)
    return net.to(device).eval()
