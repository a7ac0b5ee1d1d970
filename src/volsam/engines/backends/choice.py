"""``auto`` by measurement on this host: which of two backends runs a model faster, timed once and remembered.

Whether OpenVINO beats torch for a small encoder depends on the CPU (LiteMedSAM's TinyViT: 1.2x faster on one
of the project's hosts, 0.9-1.0x on another, ``benchmarks/bench_profile.py --encoder-frames``). So ``auto``
times both on the engine's own input the first time an engine is built on a host and keeps the answer in
:func:`choices_path` (JSON), keyed by the model's name and weights key and by the host: CPU model, the CPUs
this process may use, torch's thread count and the torch / OpenVINO versions. A later engine with the same key
reads the answer (no timing). Delete the file to measure again.

Timing: each backend runs once to warm up, then ``rounds`` alternating rounds (the order swapped every round,
so that a load change hits both alike); the median of each backend's rounds is its time. The reference
(the first backend given, torch) is kept unless another is faster by more than ``margin`` (a tie is noise).

The file is written atomically (a temporary file renamed over it); two processes measuring at once only cost
a second measurement. A file that cannot be read or written only costs the measurement each time.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from statistics import median

from volsam.engines.backends import cache_dir

log = logging.getLogger(__name__)

#: the record's file name inside :func:`~volsam.engines.backends.cache_dir`
FILE_NAME = "backend-choices.json"


def choices_path() -> Path:
    """Where measured choices are kept: ``cache_dir() / backend-choices.json``."""
    return cache_dir() / FILE_NAME


def host_signature(threads: int, versions: Mapping[str, str]) -> str:
    """What makes a timing valid only on this host: the CPU model, the CPUs this process may run on, the
    compute threads (``threads``) and the libraries' ``versions`` (e.g. ``{"torch": ..., "openvino": ...}``)."""
    cpu = _cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    libs = ",".join(f"{k}={v}" for k, v in sorted(versions.items()))
    return f"{cpu}|cpus={usable}|threads={threads}|{libs}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(runs: Mapping[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Median seconds of each of ``runs`` (name -> a call running the model once) over ``rounds`` alternating
    rounds, after one warm-up call each."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(runs)
    for name in names:
        runs[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - t0)
    return {name: median(s) for name, s in seconds.items()}


def pick(seconds: Mapping[str, float], margin: float = 0.05) -> str:
    """The backend to use from measured ``seconds``: the first (the reference) unless another is faster by
    more than ``margin`` (a fraction of the reference's time); then the fastest."""
    reference = next(iter(seconds))
    fastest = min(seconds, key=seconds.__getitem__)
    if seconds[fastest] < seconds[reference] * (1.0 - margin):
        return fastest
    return reference


def choose(
    model: str,
    host: str,
    runs: Mapping[str, Callable[[], object]],
    *,
    rounds: int = 3,
    margin: float = 0.05,
    path: Path | None = None,
) -> str:
    """The backend for ``model`` (its name and weights key) on ``host`` (:func:`host_signature`): the
    remembered choice, else measured now with ``runs`` (the reference first; see :func:`measure` and
    :func:`pick`) and remembered in ``path`` (default :func:`choices_path`)."""
    path = choices_path() if path is None else Path(path)
    key = f"{model}|{host}"
    record = _read(path)
    known = record.get(key)
    if isinstance(known, dict) and known.get("choice") in runs:
        log.debug("backend auto for %s: %s (measured %s)", model, known["choice"], known.get("measured_at"))
        return str(known["choice"])
    seconds = measure(runs, rounds)
    choice = pick(seconds, margin)
    log.info(
        "backend auto for %s, measured on this host: %s -> %s (kept in %s)",
        model, ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items()), choice, path,
    )  # fmt: skip
    record = _read(path)  # another process may have written meanwhile
    record[key] = {
        "choice": choice,
        "reference": next(iter(runs)),  # the backend kept unless another is faster by more than the margin
        "seconds": {k: round(v, 5) for k, v in seconds.items()},
        "rounds": rounds,
        "margin": margin,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write(path, record)
    return choice


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read the backend choices in %s (%s): measuring again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, record: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".choices-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1)  # key order kept: the reference backend first
        Path(tmp).replace(path)
    except OSError as exc:
        log.warning("cannot keep the backend choice in %s (%s): it is measured on each run", path, exc)
