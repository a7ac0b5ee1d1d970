"""Fetch a transformers-format SAM 2 model from the Hugging Face hub (only when asked; nothing else in volsam
goes online)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from volsam.core.errors import ModelNotFound, OutputError
from volsam.engines.catalog import ModelInfo

log = logging.getLogger(__name__)


def download(info: ModelInfo, out_dir: Path, overwrite: bool = False) -> Path:
    """Download ``info.hub_id`` into ``out_dir`` (a temporary sibling renamed into place).

    Raises ModelNotFound when the model has no hub id or the hub cannot be reached, OutputError when
    ``out_dir`` exists (unless ``overwrite``).
    """
    if info.hub_id is None:
        raise ModelNotFound(f"{info.name} is not downloadable in transformers format: {info.source}")
    if out_dir.exists() and not overwrite:
        raise OutputError(f"{out_dir} exists; choose another directory or pass --overwrite")
    from huggingface_hub import snapshot_download

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        snapshot_download(repo_id=info.hub_id, local_dir=tmp, allow_patterns=["*.json", "*.safetensors", "*.md"])
    except Exception as exc:  # noqa: BLE001 -- offline, DNS, HTTP or auth errors all mean "could not fetch"
        shutil.rmtree(tmp, ignore_errors=True)
        reason = " ".join(str(exc).split())[:200]
        raise ModelNotFound(
            f"cannot download {info.hub_id} from the Hugging Face hub ({type(exc).__name__}: {reason}); "
            "check the network or HF_HUB_OFFLINE, or convert a local .pt with `volsam models convert`"
        ) from exc
    if not (tmp / "config.json").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelNotFound(f"{info.hub_id} holds no config.json: not a transformers model")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    log.info("downloaded %s to %s", info.hub_id, out_dir)
    return out_dir
