"""The benchmark runner: every (case, target) of a dataset through one protocol, one JSON line each.

Output folder::

    run.json                      what ran: dataset, protocol, engine, model, options, versions
    results.jsonl                 one line per case and target (results-shard<i>of<n>.jsonl when sharded)

A line holds the case, the target (name and label values), the modality, the protocol's steps (prompt,
DSC, NSD, seconds), the final DSC/NSD, their AUC, seconds, and the shard; a case or target that fails is a
line with ``error`` instead, and the run goes on. ``cvpr25`` prompts every target of an image together
(:func:`~volsam.bench.protocols.run_cvpr25`): it writes one line per target (the class's own numbers) and
then one line for the image (``"target": "(image)"``, ``"scope": "image"``: the numbers the challenge's
script computes for it, with ``classes``, ``time_limit_s`` and ``over_time``); its failures are image lines.

Resuming: running again into the same folder skips every (case, target) that already has a result (failed
ones are tried again; ``cvpr25``: every image that has its image line); the folder's ``run.json`` must
describe the same run. Sharding: ``shard=(i, n)`` (1-based ``i``) takes every n-th case starting with the
i-th (in case-id order); under ``torchrun`` the shard defaults to the process's rank and world size.
``volsam report`` merges the shards' files.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volsam.bench.datasets import Case, Dataset, Target, open_dataset
from volsam.bench.protocols import BOX2D_OBJECTS, PROTOCOLS, run_cvpr25, run_protocol, session_factory
from volsam.core.errors import InputError, VolsamError

log = logging.getLogger(__name__)

RESULTS_GLOB = "results*.jsonl"
IMAGE_TARGET = "(image)"  # the target of cvpr25's per-image lines
# what the numbers of a run mean; bumped when they change: 1 = boundary-voxel NSD and volsam's own clicks and
# AUC, 2 = NSD / HD95 as surface-distance, cvpr25 scored as CVPR25_iter_eval.py
SCORING = 2
# what must agree between a run.json and a resumed run
_SAME_RUN = (
    "dataset",
    "layout",
    "protocol",
    "engine",
    "model",
    "precision",
    "clicks",
    "tolerance_mm",
    "channel",
    "scoring",
    "modality",
    "objects",
)
_OLD_DEFAULTS = {"objects": "labels"}  # what a run.json written before a key existed meant


@dataclass
class BenchConfig:
    """One benchmark run (see ``volsam bench --help``)."""

    dataset: str
    protocol: str
    out: str
    engine: str = "medsam-lite"
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    layout: str | None = None
    channel: int | None = None
    sequence: str = "flair"
    targets: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    limit: int | None = None
    shard: tuple[int, int] | None = None
    clicks: int = 5
    tolerance_mm: float = 2.0
    time_limit_s: float = 90.0
    cache_mb: float = 2048.0
    note: str = ""
    modality: str | None = None  # instead of the dataset's (file-name prefix, dataset.json)
    objects: str = "labels"  # box2d: one box per label, or per connected component ("components")
    random_weights: bool = False  # the --model weights are randomly initialised: the numbers say the path runs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n``."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must be i/n (e.g. 2/8), got {text!r}") from None
    if not 1 <= i <= n:
        raise InputError(f"--shard {text}: i must be between 1 and n")
    return i, n


def shard_from_env() -> tuple[int, int] | None:
    """``(rank + 1, world size)`` when started by ``torchrun`` (``RANK``/``WORLD_SIZE``), else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if world > 1:
            return rank + 1, world
    return None


def results_file(out: Path, shard: tuple[int, int] | None) -> Path:
    return out / ("results.jsonl" if shard is None else f"results-shard{shard[0]}of{shard[1]}.jsonl")


def read_results(out: Path) -> list[dict]:
    """Every record of a result folder (all shards), in file order; torn last lines are skipped."""
    records = []
    for path in sorted(out.glob(RESULTS_GLOB)):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                log.warning("%s line %d is not JSON (an interrupted write?); skipped", path, n)
    return records


def _versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    from volsam import __version__

    return {
        "volsam": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _run_meta(config: BenchConfig, dataset: Dataset) -> dict[str, Any]:
    return {
        "dataset": dataset.root,
        "dataset_name": dataset.name,
        "layout": dataset.layout,
        "protocol": config.protocol,
        "engine": config.engine,
        "model": config.model,
        "random_weights": config.random_weights,
        "modality": config.modality,
        "objects": config.objects,
        "device": config.device,
        "precision": config.precision,
        "clicks": config.clicks,
        "tolerance_mm": config.tolerance_mm,
        "time_limit_s": config.time_limit_s,
        "scoring": SCORING,
        "channel": config.channel,
        "sequence": config.sequence if dataset.layout == "brats" else None,
        "problems": dataset.problems,
        "note": config.note,
        "versions": _versions(),
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _write_meta(out: Path, meta: dict[str, Any]) -> None:
    path = out / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path} is not valid JSON; move the folder away or fix it") from exc
        differ = [k for k in _SAME_RUN if old.get(k, _OLD_DEFAULTS.get(k)) != meta.get(k)]
        if differ:
            details = ", ".join(f"{k}: {old.get(k)!r} there, {meta.get(k)!r} now" for k in differ)
            raise InputError(f"{out} holds another run ({details}); choose another -o folder")
        return
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")  # shards started together each write their own
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(path)


def _append(path: Path, record: dict) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(record, allow_nan=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _targets(wanted: list[str], targets: tuple[Target, ...]) -> list[Target]:
    return [t for t in targets if not wanted or t.name in wanted]


def iter_shard(cases: list[Case], shard: tuple[int, int] | None) -> list[Case]:
    if shard is None:
        return cases
    i, n = shard
    return [c for m, c in enumerate(cases) if m % n == i - 1]


def _device(device: str) -> str:
    """Under torchrun with CUDA, ``auto`` means this process's own GPU (``cuda:LOCAL_RANK``)."""
    if device == "auto" and shard_from_env() is not None:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return device


def _engine(config: BenchConfig) -> Any:
    from volsam.engines import get as get_engine
    from volsam.engines.base import TrackerEngine
    from volsam.engines.cache import CachedEngine

    engine = get_engine(config.engine, config.model, _device(config.device), precision=config.precision)

    def per_case() -> Any:  # slice embeddings shared by the targets of one case, dropped after it
        return engine if isinstance(engine, TrackerEngine) else CachedEngine(engine, config.cache_mb)

    return per_case


def run_bench(config: BenchConfig, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Run ``config``; returns the results file. ``progress(case_id, done, total)`` is called per case."""
    if config.protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {config.protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if config.objects not in BOX2D_OBJECTS:
        raise InputError(f"unknown --objects {config.objects!r}; choose from {', '.join(BOX2D_OBJECTS)}")
    if config.objects != "labels" and config.protocol != "box2d":
        raise InputError(f"--objects {config.objects} applies to the box2d protocol only")
    dataset = open_dataset(config.dataset, layout=config.layout, channel=config.channel, sequence=config.sequence)
    if config.modality is not None:
        dataset = dataset.with_modality(config.modality)
    for problem in dataset.problems:
        log.warning("%s: %s", dataset.name, problem)
    shard = config.shard or shard_from_env()
    cases = iter_shard(dataset.select(config.cases or None, None), shard)
    if config.limit is not None:
        cases = cases[: config.limit]
    if not cases:
        raise InputError(f"{dataset.root}: no case to run ({len(dataset.problems)} problems reported)")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_meta(out, _run_meta(config, dataset))
    results = results_file(out, shard)
    done = {(r["case"], r.get("target")) for r in read_results(out) if "error" not in r}
    new_engine = _engine(config)
    for n, case in enumerate(cases):
        if progress is not None:
            progress(case.case_id, n, len(cases))
        for record in _run_case(case, config, new_engine, done):
            record["shard"] = list(shard) if shard else None
            _append(results, record)
    if progress is not None:
        progress("", len(cases), len(cases))
    return results


def _engine_fields(config: BenchConfig) -> dict[str, Any]:
    return {"engine": config.engine, "model": config.model, "random_weights": config.random_weights}


def _run_case(case: Case, config: BenchConfig, new_engine: Callable[[], Any], done: set) -> Iterator[dict]:
    if config.protocol == "cvpr25":
        yield from _run_image(case, config, new_engine, done)
        return
    base = {"case": case.case_id, "modality": case.modality}
    known = [t.name for t in case.targets]
    if case.targets and all((case.case_id, t) in done for t in _targets(config.targets, case.targets)):
        return  # everything known to be done without reading the images
    t0 = time.perf_counter()
    try:
        loaded = case.load()
    except (VolsamError, OSError, ValueError) as exc:
        yield base | {"target": None, "error": f"{type(exc).__name__}: {exc}"}
        return
    load_seconds = time.perf_counter() - t0
    targets = _targets(config.targets, loaded.targets)
    if config.targets and not targets and known:
        log.info("%s: none of %s here (it has %s)", case.case_id, config.targets, known)
    factory = None
    for target in targets:
        if (case.case_id, target.name) in done:
            continue
        record = base | {"target": target.name, "values": list(target.values), "load_seconds": load_seconds}
        try:
            if factory is None:
                factory = session_factory(loaded.image, new_engine(), loaded.modality)
            result = run_protocol(
                config.protocol,
                factory,
                loaded.truth(target),
                loaded.image.spacing,
                target=target,
                clicks=config.clicks,
                tolerance_mm=config.tolerance_mm,
                time_limit_s=config.time_limit_s,
                objects=config.objects,
            )
        except Exception as exc:  # noqa: BLE001 -- one failing case must not end the run; it is recorded
            log.debug("%s/%s failed:\n%s", case.case_id, target.name, traceback.format_exc())
            yield record | {"error": f"{type(exc).__name__}: {exc}"}
            continue
        yield record | result.to_dict() | _engine_fields(config)


def _run_image(case: Case, config: BenchConfig, new_engine: Callable[[], Any], done: set) -> Iterator[dict]:
    """``cvpr25``: every selected target of the image in one session; per-target lines, then the image's."""
    base = {"case": case.case_id, "modality": case.modality}
    image_line = base | {"target": IMAGE_TARGET, "scope": "image"}
    if (case.case_id, IMAGE_TARGET) in done:
        return
    t0 = time.perf_counter()
    try:
        loaded = case.load()
    except (VolsamError, OSError, ValueError) as exc:
        yield image_line | {"error": f"{type(exc).__name__}: {exc}"}
        return
    load_seconds = time.perf_counter() - t0
    targets = _targets(config.targets, loaded.targets)
    if not targets:
        log.info("%s: none of %s here (it has %s)", case.case_id, config.targets, [t.name for t in loaded.targets])
        return
    try:
        factory = session_factory(loaded.image, new_engine(), loaded.modality)
        result = run_cvpr25(
            factory,
            [(t.name, loaded.truth(t)) for t in targets],
            loaded.image.spacing,
            clicks=config.clicks,
            tolerance_mm=config.tolerance_mm,
            time_limit_s=config.time_limit_s,
        )
    except Exception as exc:  # noqa: BLE001 -- one failing image must not end the run; it is recorded
        log.debug("%s failed:\n%s", case.case_id, traceback.format_exc())
        yield image_line | {"classes": [t.name for t in targets], "error": f"{type(exc).__name__}: {exc}"}
        return
    engine = _engine_fields(config)
    for target, per_class in zip(targets, result.per_class, strict=True):
        yield (
            base
            | {"target": target.name, "values": list(target.values), "load_seconds": load_seconds}
            | (per_class.to_dict() | engine)
        )
    yield image_line | {"load_seconds": load_seconds} | result.to_dict() | engine
