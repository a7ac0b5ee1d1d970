"""Inference backends: which runtime executes an engine's image encoder.

* ``torch`` -- the engine's own PyTorch modules: the reference, always available, the fallback.
* ``openvino`` -- the encoder converted once to an OpenVINO model (:mod:`.openvino`), compiled for the CPU with
  ``INFERENCE_PRECISION_HINT=f32`` so that it computes what torch computes (fp32; on CPUs with AMX OpenVINO's
  own default would be bf16, which moves masks). Needs the optional ``openvino`` package.
* ``auto`` -- what :func:`resolve_backend` picks by measurement (see its docstring; LiteMedSAM measures on
  each host: :mod:`.choice`), ``torch`` whenever the chosen backend is missing or cannot run there, with one
  log line saying so.

This module stays torch- and openvino-free: the registry, the request and the CLI check names with it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from volsam.core.errors import SettingsError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "openvino")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else :class:`SettingsError`."""
    if backend not in BACKENDS:
        raise SettingsError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def openvino_available() -> bool:
    """True when the ``openvino`` package can be imported (not imported here)."""
    return importlib.util.find_spec("openvino") is not None


def resolve_backend(backend: str, device: str, precision: str, *, net_given: bool = False) -> str:
    """The backend an engine on ``device`` at ``precision`` runs: ``torch`` or ``openvino``.

    ``auto`` = ``openvino`` on the CPU in fp32 when the package is installed: on the project's 2-core AVX-512
    machines it runs SAM / MedSAM's ViT 1.6x and SAM 2's Hiera 1.1-1.4x faster than torch with the same masks
    (``benchmarks/bench_sam.py``, ``bench_sam2.py``); for LiteMedSAM's small encoder the gain depends on the
    host (1.2x on one, 0.9-1.0x on another: ``benchmarks/bench_profile.py --encoder-frames``), so its engine
    then times both once per host and keeps the faster (:mod:`.choice`); ``torch`` otherwise (GPUs, bf16
    autocast, no ``openvino``). An explicit ``openvino``
    that cannot run (package missing, not the CPU) falls back to ``torch`` with a warning, never an error:
    the package installs and runs with torch alone. ``net_given``: the engine was handed a module instead of
    weights; ``auto`` is then torch.
    """
    check_backend(backend)
    if backend == "torch" or (backend == "auto" and net_given):
        return "torch"  # a module handed in (``net_given``, e.g. by fine-tuning) may still change: no frozen copy
    if device.partition(":")[0] != "cpu" or precision != "fp32":
        if backend == "openvino":
            log.warning("backend openvino runs on the CPU in fp32 only (here %s, %s): using torch", device, precision)
        return "torch"
    if not openvino_available():
        level = logging.WARNING if backend == "openvino" else logging.INFO
        log.log(level, "backend %s: the openvino package is not installed, using torch", backend)
        return "torch"
    return "openvino"


def cache_dir() -> Path:
    """Where converted models are kept: ``$VOLSAM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/volsam``, else
    ``~/.cache/volsam`` (one subfolder per backend)."""
    explicit = os.environ.get("VOLSAM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "volsam"
