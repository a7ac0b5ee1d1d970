"""Fine-tuning configuration: a YAML file -> typed, frozen dataclasses, validated at the edge.

A config names a recipe (``recipe: seed-2024 | medsam2-2025 | medsam-lite``); the shipped recipe of that
name (``volsam/finetune/configs/<recipe>.yaml``) supplies every default and the user's file overrides it
key by key (nested sections are merged). Unknown keys and ill-typed values are refused with an
:class:`~volsam.core.errors.InputError` that names the key path and the bad value.

Units: image sizes in pixels of the square model input; learning rates per optimizer step; steps are
optimizer steps (one step = ``batch_size`` x ``grad_accum`` samples per process).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from volsam.core.errors import InputError
from volsam.engines.base import PRECISIONS

RECIPES = ("seed-2024", "medsam2-2025", "medsam-lite")
SAM2_RECIPES = ("seed-2024", "medsam2-2025")
SCHEDULES = ("cosine", "constant")
MASK_LOSSES = ("bce", "focal")
BACKENDS = ("auto", "gloo", "nccl")
VALIDATION_MODES = ("clips", "volumes")
AXES = ("i", "j", "k")
MODALITIES = ("auto", "CT", "MR", "PET", "other")


@dataclass(frozen=True)
class PromptConfig:
    """Simulated prompts on the first frame of each clip: kind probabilities (relative weights), jitter."""

    box: float = 1.0
    points: float = 0.0
    mask: float = 0.0
    box_jitter: float = 0.1  # each box edge moves by up to this fraction of the box's side (uniform)
    max_points: int = 3  # 1..max_points clicks, the first positive, the others positive or negative


@dataclass(frozen=True)
class AugmentConfig:
    """Light augmentation, drawn per sample from a generator seeded by (seed, epoch, sample index)."""

    enabled: bool = True
    flip: float = 0.5  # probability of each in-plane flip (rows, columns)
    reverse: float = 0.0  # probability of playing a clip backwards (propagation in the other direction)
    rotate_deg: float = 10.0  # rotation uniform in +-rotate_deg
    scale: float = 0.1  # zoom uniform in 1 +- scale
    intensity: float = 0.1  # gain uniform in 1 +- intensity, offset uniform in +-intensity*255


@dataclass(frozen=True)
class DataConfig:
    """Where the training cases come from and how samples are cut from them."""

    dataset: str = "builtin:lesions-crop"
    layout: str | None = None
    channel: int | None = None
    sequence: str = "flair"
    targets: tuple[str, ...] = ()  # target names to train on (empty: every target)
    cases: tuple[str, ...] = ()  # case ids to use (empty: every case)
    limit: int | None = None  # at most this many cases
    modality: str = "auto"
    window: str | None = None  # CT window preset or "L,W"
    axis: str = "k"  # propagation axis: clips are consecutive slices along it
    clip_length: int = 1  # frames per sample (1 = the 2D recipes)
    clip_stride: int = 1  # step between clip start slices
    end_slices: int = 0  # 2D recipes: also train on this many object-free slices past each end (see data.py)
    neighbour_boxes: int = 0  # 2D recipes: also prompt each slice with the boxes of its neighbours up to this far
    val_fraction: float = 0.2  # of the cases, held out (at least one case when > 0)
    split_seed: int = 0
    split_group: str | None = None  # regex: cases whose ids match it alike (e.g. one patient) stay on one side
    max_val_samples: int = 64  # validation clips evaluated per epoch (evenly spread)
    cache_cases: int = 8  # decoded cases kept in memory per process
    num_workers: int = 0  # DataLoader worker processes per training process
    prompts: PromptConfig = field(default_factory=PromptConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class ModelConfig:
    """The model to start from. ``source``: a weights file or transformers directory; ``null`` = the bundled
    LiteMedSAM (medsam-lite); ``random`` = random initialisation (tests, pipeline checks)."""

    source: str | None = None
    variant: str = "medsam2"  # SAM 2 random init: a variant name (medsam2, sam2.1-hiera-tiny, ...)
    image_size: int | None = None  # random init only: input side in px (default: the variant's; LiteMedSAM 256)
    freeze: tuple[str, ...] = ()  # parameter-name prefixes kept frozen (on top of the recipe's)
    embedding_cache: int = 0  # frozen image encoder: embeddings kept per process, keyed by input content


@dataclass(frozen=True)
class OptimConfig:
    """AdamW; ``vision_lr`` (if set) is the image encoder's learning rate, ``lr`` everyone else's."""

    lr: float = 5e-5
    vision_lr: float | None = None
    weight_decay: float = 0.01
    betas: tuple[float, ...] = (0.9, 0.999)
    batch_size: int = 2  # samples per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    clip_grad: float = 1.0  # max global gradient norm (0 = no clipping)
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 elsewhere


@dataclass(frozen=True)
class ScheduleConfig:
    """Length and learning-rate schedule (linear warm-up, then cosine to ``min_lr_ratio`` x lr, or constant)."""

    epochs: int = 1
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    warmup_steps: int = 0
    kind: str = "cosine"
    min_lr_ratio: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss parts: mask (BCE or focal), soft Dice, IoU prediction (L1), object score (BCE)."""

    mask: float = 1.0
    dice: float = 1.0
    iou: float = 0.0
    object_score: float = 0.0
    mask_kind: str = "bce"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 100  # a resumable checkpoint every N optimizer steps (and at the end)
    keep: int = 2  # most recent checkpoints kept


@dataclass(frozen=True)
class ExportConfig:
    meta_pt: bool = False  # SAM 2 recipes: also write a Meta-format model.pt next to the transformers files


@dataclass(frozen=True)
class LogConfig:
    every_steps: int = 1  # a log.jsonl line (and a console line) every N optimizer steps
    tensorboard: bool = True  # also TensorBoard event files, if the tensorboard package is importable
    validate_at_start: bool = False  # validation Dice of the starting model (step 0) too: the baseline


@dataclass(frozen=True)
class ValidationConfig:
    """What validation measures, which picks the model kept as ``best/``.

    ``clips``: mean Dice of the validation clips, each prompted as in training with its true box (the
    training task itself). ``volumes``: mean 3D Dice of volsam's own propagation from the true box on the
    middle slice of each held-out object (the ``box-middle`` protocol: what ``volsam segment`` does with the
    model), at most ``max_objects`` objects evenly spread. A model can improve on the first and lose on the
    second (see the medsam-lite recipe). Validation runs at the end of each epoch and of the run, at step 0
    with ``log.validate_at_start``, and every ``every_steps`` steps when set.
    """

    mode: str = "clips"
    max_objects: int = 16
    every_steps: int | None = None  # also validate every N optimizer steps (None: at each epoch's end only)


@dataclass(frozen=True)
class DistributedConfig:
    backend: str = "auto"  # auto = nccl on CUDA, gloo on CPU
    timeout_s: int = 1800


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run. The run folder is ``output/name``."""

    recipe: str
    name: str = "finetune"
    output: str = "runs"
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output).expanduser() / self.name

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), what ``config.yaml`` of the run folder holds."""
        return plain_data(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> FinetuneConfig:
        """A copy with top-level fields changed (``dataclasses.replace``), validated again."""
        new = dataclasses.replace(self, **changes)
        validate(new)
        return new


# -- parsing ----------------------------------------------------------------------------------------------
def plain_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(v, item, f"{where}[{n}]") for n, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 as a string
            try:
                value = float(value)
            except ValueError:
                raise InputError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise InputError(f"{where}: unsupported type {hint!r}")  # pragma: no cover - a bug in this module


def _build(cls: Any, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{where or 'config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, raw)) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise InputError(f"unknown key {prefix}{unknown[0]} (known in {where or 'the top level'}: {', '.join(names)})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in raw.items()}
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(text: str, source: str) -> dict:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{source}: a fine-tuning config is a mapping of keys, got {type(raw).__name__}")
    return raw


def shipped_recipe(name: str) -> dict:
    """The raw mapping of a shipped recipe (``seed-2024``, ``medsam2-2025``, ``medsam-lite``)."""
    if name not in RECIPES:
        raise InputError(f"recipe {name!r} is not one of {', '.join(RECIPES)}")
    text = resources.files("volsam.finetune").joinpath("configs").joinpath(f"{name}.yaml").read_text()
    return _read_yaml(text, f"shipped recipe {name}")


def config_from_dict(raw: dict, source: str = "config") -> FinetuneConfig:
    """Build and validate a config from a mapping; its ``recipe`` names the shipped defaults it overrides."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping of keys, got {raw!r}")
    recipe = raw.get("recipe")
    if recipe is None:
        raise InputError(f"{source}: the key recipe is required ({', '.join(RECIPES)})")
    if recipe not in RECIPES:
        raise InputError(f"{source}: recipe {recipe!r} is not one of {', '.join(RECIPES)}")
    merged = _merge(shipped_recipe(str(recipe)), raw)
    config = _build(FinetuneConfig, merged, "")
    validate(config)
    return config


def load_config(path: str | Path) -> FinetuneConfig:
    """Read a YAML config file, or a shipped recipe by name (``medsam-lite``), and validate it."""
    text = str(path)
    if text in RECIPES and not Path(text).exists():
        return config_from_dict({"recipe": text}, source=f"recipe {text}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"fine-tuning config {text!r}: no such file (or a recipe name: {', '.join(RECIPES)})")
    return config_from_dict(_read_yaml(file.read_text(), str(file)), source=str(file))


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise InputError(f"{key}: {value!r} {rule}")


def validate(c: FinetuneConfig) -> None:
    """Range and consistency checks; raises :class:`InputError` naming the key and the value."""
    _check(c.recipe in RECIPES, "recipe", c.recipe, f"is not one of {', '.join(RECIPES)}")
    _check(bool(c.name) and "/" not in c.name and c.name not in (".", ".."), "name", c.name, "is not a folder name")
    d, p, a = c.data, c.data.prompts, c.data.augment
    _check(d.modality in MODALITIES, "data.modality", d.modality, f"is not one of {', '.join(MODALITIES)}")
    _check(d.axis in AXES, "data.axis", d.axis, "is not one of i, j, k")
    _check(d.clip_length >= 1, "data.clip_length", d.clip_length, "must be >= 1")
    if c.recipe != "medsam2-2025":
        _check(d.clip_length == 1, "data.clip_length", d.clip_length, f"must be 1 for the 2D recipe {c.recipe}")
    _check(d.end_slices >= 0, "data.end_slices", d.end_slices, "must be >= 0")
    _check(d.end_slices == 0 or d.clip_length == 1, "data.end_slices", d.end_slices, "needs data.clip_length 1")
    _check(d.neighbour_boxes >= 0, "data.neighbour_boxes", d.neighbour_boxes, "must be >= 0")
    _check(
        d.neighbour_boxes == 0 or d.clip_length == 1,
        "data.neighbour_boxes",
        d.neighbour_boxes,
        "needs data.clip_length 1",
    )
    _check(d.clip_stride >= 1, "data.clip_stride", d.clip_stride, "must be >= 1")
    _check(0.0 <= d.val_fraction < 1.0, "data.val_fraction", d.val_fraction, "must be in [0, 1)")
    if d.split_group is not None:
        try:
            re.compile(d.split_group)
        except re.error as exc:
            raise InputError(f"data.split_group: {d.split_group!r} is not a regular expression ({exc})") from None
    _check(d.max_val_samples >= 1, "data.max_val_samples", d.max_val_samples, "must be >= 1")
    _check(d.num_workers >= 0, "data.num_workers", d.num_workers, "must be >= 0")
    _check(d.cache_cases >= 1, "data.cache_cases", d.cache_cases, "must be >= 1")
    _check(d.limit is None or d.limit >= 1, "data.limit", d.limit, "must be >= 1")
    for key in ("box", "points", "mask"):
        _check(getattr(p, key) >= 0, f"data.prompts.{key}", getattr(p, key), "must be >= 0")
    _check(p.box + p.points + p.mask > 0, "data.prompts", (p.box, p.points, p.mask), "all zero: no prompt")
    _check(0 <= p.box_jitter <= 1, "data.prompts.box_jitter", p.box_jitter, "must be in [0, 1]")
    _check(p.max_points >= 1, "data.prompts.max_points", p.max_points, "must be >= 1")
    for key in ("flip", "reverse"):
        _check(0 <= getattr(a, key) <= 1, f"data.augment.{key}", getattr(a, key), "must be a probability")
    _check(0 <= a.rotate_deg <= 45, "data.augment.rotate_deg", a.rotate_deg, "must be in [0, 45]")
    _check(0 <= a.scale < 0.5, "data.augment.scale", a.scale, "must be in [0, 0.5)")
    _check(0 <= a.intensity < 0.5, "data.augment.intensity", a.intensity, "must be in [0, 0.5)")
    m = c.model
    _check(m.image_size is None or m.image_size >= 32, "model.image_size", m.image_size, "must be >= 32")
    _check(m.embedding_cache >= 0, "model.embedding_cache", m.embedding_cache, "must be >= 0")
    if c.recipe == "medsam-lite":
        _check(p.mask == 0, "data.prompts.mask", p.mask, "must be 0: medsam-lite trains on boxes and points")
    o = c.optim
    _check(o.lr > 0, "optim.lr", o.lr, "must be > 0")
    _check(o.vision_lr is None or o.vision_lr >= 0, "optim.vision_lr", o.vision_lr, "must be >= 0")
    _check(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0")
    _check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas), "must be 2 in [0,1)")
    _check(o.batch_size >= 1, "optim.batch_size", o.batch_size, "must be >= 1")
    _check(o.grad_accum >= 1, "optim.grad_accum", o.grad_accum, "must be >= 1")
    _check(o.clip_grad >= 0, "optim.clip_grad", o.clip_grad, "must be >= 0 (0 = off)")
    _check(o.precision in PRECISIONS, "optim.precision", o.precision, f"is not one of {', '.join(PRECISIONS)}")
    s = c.schedule
    _check(s.epochs >= 1, "schedule.epochs", s.epochs, "must be >= 1")
    _check(s.max_steps is None or s.max_steps >= 1, "schedule.max_steps", s.max_steps, "must be >= 1")
    _check(s.warmup_steps >= 0, "schedule.warmup_steps", s.warmup_steps, "must be >= 0")
    _check(s.kind in SCHEDULES, "schedule.kind", s.kind, f"is not one of {', '.join(SCHEDULES)}")
    _check(0 <= s.min_lr_ratio <= 1, "schedule.min_lr_ratio", s.min_lr_ratio, "must be in [0, 1]")
    lo = c.loss
    for key in ("mask", "dice", "iou", "object_score"):
        _check(getattr(lo, key) >= 0, f"loss.{key}", getattr(lo, key), "must be >= 0")
    _check(lo.mask + lo.dice > 0, "loss", (lo.mask, lo.dice), "mask and dice weights are both 0")
    _check(lo.mask_kind in MASK_LOSSES, "loss.mask_kind", lo.mask_kind, "is not bce or focal")
    if c.recipe == "medsam-lite":
        _check(lo.object_score == 0, "loss.object_score", lo.object_score, "must be 0: LiteMedSAM has no object score")
    _check(c.checkpoint.every_steps >= 1, "checkpoint.every_steps", c.checkpoint.every_steps, "must be >= 1")
    _check(c.checkpoint.keep >= 1, "checkpoint.keep", c.checkpoint.keep, "must be >= 1")
    _check(c.log.every_steps >= 1, "log.every_steps", c.log.every_steps, "must be >= 1")
    v = c.validation
    _check(v.mode in VALIDATION_MODES, "validation.mode", v.mode, f"is not one of {', '.join(VALIDATION_MODES)}")
    _check(v.max_objects >= 1, "validation.max_objects", v.max_objects, "must be >= 1")
    _check(v.every_steps is None or v.every_steps >= 1, "validation.every_steps", v.every_steps, "must be >= 1")
    if c.recipe == "medsam-lite" and v.mode == "volumes":
        side = c.model.image_size
        _check(side in (None, 256), "model.image_size", side, "must be 256 for validation.mode volumes (the engine's)")
    b = c.distributed.backend
    _check(b in BACKENDS, "distributed.backend", b, f"is not one of {', '.join(BACKENDS)}")
