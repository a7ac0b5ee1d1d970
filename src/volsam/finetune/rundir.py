"""The run folder of a fine-tuning run: refuse an existing run without ``--resume``, fix (or read back) the
train/validation split, warn in one line about a resumed run's changed config, create the folder only once
a start has been checked whole, and find the newest complete checkpoint.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from volsam.core.errors import InputError
from volsam.finetune.checkpoint import checkpoints_of
from volsam.finetune.config import FinetuneConfig, plain_data
from volsam.finetune.data import (
    Split,
    atomic_text,
    make_split,
    read_split,
    write_split,
)
from volsam.finetune.distributed import Dist, barrier

log = logging.getLogger(__name__)
_ABSENT = object()  # a key one of two configs lacks


def refuse_existing_run(run_dir: Path, resume: bool) -> None:
    if checkpoints_of(run_dir) and not resume:
        raise InputError(f"{run_dir} already holds checkpoints: pass --resume, or choose another --output/name")


def fixed_split(config: FinetuneConfig, run_dir: Path, case_ids: list[str]) -> tuple[Split, bool]:
    """The run folder's ``split.json`` when it has one (checked against the dataset), else a new split;
    and whether it is new (to be written). Every rank computes the same split."""
    path = run_dir / "split.json"
    if path.is_file():
        split = read_split(path)
        unknown = sorted(set(split.train + split.val) - set(case_ids))
        if unknown:
            raise InputError(f"{path} names cases the dataset no longer has: {', '.join(unknown[:3])}")
        return split, False
    data = config.data
    return make_split(case_ids, data.val_fraction, data.split_seed, data.split_group), True


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet: what ``mkdir -p`` makes."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _warn_config_changes(path: Path, config: FinetuneConfig) -> None:
    try:
        old = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        log.warning("%s is not readable (%s): the resumed run writes its own config", path, exc)
        return
    if not isinstance(old, dict):
        log.warning("%s is not a config: the resumed run writes its own", path)
        return
    changes = config_changes(old, config.to_dict())
    if changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        log.warning("resuming %s with a changed config: %s (the run continues with the new one)", path.parent, shown)


def open_run_dir(config: FinetuneConfig, d: Dist, resume: bool, split: Split, new_split: bool) -> Path:
    """Make the run folder (rank 0) and write ``config.yaml`` and a new ``split.json``: after every check of
    the start passed. A folder this call made is removed again if writing them fails."""
    run_dir = config.run_dir
    if d.main:
        made = _first_missing(run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            old = run_dir / "config.yaml"
            if resume and old.is_file():
                _warn_config_changes(old, config)
            atomic_text(old, yaml.safe_dump(config.to_dict(), sort_keys=False))
            if new_split:
                write_split(split, run_dir / "split.json")
        except BaseException:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
            raise
    barrier(d)
    return run_dir


def newest_checkpoint(run_dir: Path) -> int | None:
    found = checkpoints_of(run_dir)
    return found[-1][0] if found else None


def _flat(raw: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {prefix: raw}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_changes(old: dict, new: dict, ignore: tuple[str, ...] = ("output", "name")) -> list[str]:
    """What differs between two configs as plain mappings (``config.yaml`` of a run folder and
    :meth:`FinetuneConfig.to_dict`): ``"schedule.max_steps 4 -> 6"`` per changed key, in the new config's
    order (keys only one of them has show ``(absent)`` on the other side). ``ignore``: top-level keys left out
    (by default where the run folder is: a resumed folder may have been moved or named by ``-o``)."""

    def show(value: Any) -> str:  # as YAML writes it: null, true, 5.0e-05, [a, b]
        if value is _ABSENT:
            return "(absent)"
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

    a = {k: v for k, v in _flat(plain_data(old)).items() if k.split(".")[0] not in ignore}
    b = {k: v for k, v in _flat(plain_data(new)).items() if k.split(".")[0] not in ignore}
    keys = list(b) + [k for k in a if k not in b]
    return [
        f"{k} {show(a.get(k, _ABSENT))} -> {show(b.get(k, _ABSENT))}"
        for k in keys
        if a.get(k, _ABSENT) != b.get(k, _ABSENT)
    ]


# -- validation -------------------------------------------------------------------------------------------
