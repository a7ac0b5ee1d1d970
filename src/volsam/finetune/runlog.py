"""Rank 0's records of a fine-tuning run: the metrics log ``log.jsonl`` (one JSON record per line; TensorBoard
scalars too when TensorBoard is installed) and ``status.json``, the run's state (running, done, stopped,
interrupted, failed) with its newest complete checkpoint."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path
from typing import Any

from volsam.io.atomic import atomic_target

log = logging.getLogger(__name__)


class JsonLog:
    """Rank 0's ``log.jsonl`` (appended, flushed per line) and TensorBoard scalars when importable."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / "log.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                log.debug("tensorboard is not installed: metrics go to log.jsonl only")

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.tb.add_scalar(key, value, record.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl`` (torn last lines skipped)."""
    path = Path(run_dir) / "log.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


# -- the run's state --------------------------------------------------------------------------------------
STATUS_FILE = "status.json"
STATES = ("running", "done", "stopped", "interrupted", "failed")


def write_status(run_dir: Path, state: str, **facts: Any) -> None:
    """Rank 0: ``status.json`` of the run folder, written atomically: ``state`` (``running``, ``done``,
    ``stopped`` by ``--stop-after``, ``interrupted`` by Ctrl-C / SIGTERM, ``failed``) and ``facts`` (``step``,
    ``total_steps``, ``checkpoint``: the newest complete checkpoint's step, ``error``, ``resume``)."""
    if state not in STATES:  # pragma: no cover - a bug in the trainer
        raise ValueError(f"run state {state!r} is not one of {', '.join(STATES)}")
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with atomic_target(Path(run_dir) / STATUS_FILE) as tmp:
        tmp.write_text(json.dumps({"state": state, **facts, "date": date}, indent=1) + "\n")


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``status.json`` (``None`` when there is none or it does not parse)."""
    path = Path(run_dir) / STATUS_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None
