"""The prompts JSON: objects and the ordered prompts that segment them, to run again or to share.

Schema (version 1; voxel indices of the image as read, see :mod:`volsam.core.prompts`)::

    {
      "version": 1,
      "axis": "k",                                   # optional: the slice axis (i, j, k, axial, ...)
      "objects": [
        {"label": 1, "name": "liver",                # label 1..65535; name optional
         "prompts": [                                # applied in this order
           {"box": [i0, j0, i1, j1], "slice": 60},   # a box on a slice (the two in-plane axes)
           {"box3d": [i0, j0, k0, i1, j1, k1]},
           {"point": [i, j, k], "positive": false},  # positive defaults to true
           {"mask": "key_slices.nii.gz", "label": 1} # a mask file on the image grid (path relative to
         ]}                                          # this JSON file); label: which value (default any)
      ]
    }

Every prompt may carry ``"run": false`` to wait for the next one of its object (several prompts, one
prediction). Unknown keys and wrong types are refused with the path of the offending entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from volsam.core.errors import InputError, PromptError
from volsam.core.prompts import AXIS_NAMES, Box2D, Box3D, MaskPrompt, Point, Prompt
from volsam.core.volume import Volume
from volsam.io.atomic import atomic_target
from volsam.io.destinations import Destination, check_destinations, make_parent, new_outputs_only

VERSION = 1
_PROMPT_KEYS = {
    "box": {"box", "slice", "run"},
    "box3d": {"box3d", "run"},
    "point": {"point", "positive", "run"},
    "mask": {"mask", "label", "run"},
}


@dataclass
class ObjectSpec:
    """One object of a prompts file: label, name and its prompts with their ``run`` flags, in order."""

    label: int
    name: str | None = None
    prompts: list[tuple[Prompt, bool]] = field(default_factory=list)


def _ints(where: str, value: Any, n: int) -> list[int]:
    if not isinstance(value, list) or len(value) != n:
        raise PromptError(f"{where}: expected a list of {n} integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            raise PromptError(f"{where}: expected integers, got {value!r}")
        out.append(int(v))
    return out


def _prompt(where: str, entry: Any, image: Volume, base: Path) -> tuple[Prompt, bool]:
    if not isinstance(entry, dict):
        raise PromptError(f'{where}: a prompt is an object such as {{"box": [...], "slice": 3}}, got {entry!r}')
    kinds = [k for k in _PROMPT_KEYS if k in entry]
    if len(kinds) != 1:
        raise PromptError(f"{where}: give exactly one of box, box3d, point, mask (got keys {sorted(entry)})")
    kind = kinds[0]
    unknown = set(entry) - _PROMPT_KEYS[kind]
    if unknown:
        raise PromptError(f"{where}: unknown keys {sorted(unknown)} for a {kind} prompt")
    run = entry.get("run", True)
    if not isinstance(run, bool):
        raise PromptError(f"{where}: run must be true or false, got {run!r}")
    if kind == "box":
        if "slice" not in entry:
            raise PromptError(f"{where}: a box needs its slice")
        return Box2D(
            *_ints(f"{where}.box", entry["box"], 4), slice=_ints(f"{where}.slice", [entry["slice"]], 1)[0]
        ), run
    if kind == "box3d":
        return Box3D(*_ints(f"{where}.box3d", entry["box3d"], 6)), run
    if kind == "point":
        positive = entry.get("positive", True)
        if not isinstance(positive, bool):
            raise PromptError(f"{where}: positive must be true or false, got {positive!r}")
        return Point(*_ints(f"{where}.point", entry["point"], 3), positive=positive), run
    return _mask(where, entry, image, base), run


def _mask(where: str, entry: dict, image: Volume, base: Path) -> MaskPrompt:
    from volsam.io import read_volume

    name = entry["mask"]
    if not isinstance(name, str) or not name:
        raise PromptError(f"{where}: mask must be a file name, got {name!r}")
    path = Path(name) if Path(name).is_absolute() else base / name
    mask = read_volume(path)
    if not mask.same_grid(image):
        raise InputError(f"{where}: mask {path} is not on the image grid (size {mask.size} vs {image.size})")
    label = entry.get("label")
    if label is not None:
        label = _ints(f"{where}.label", [label], 1)[0]
    return MaskPrompt(np.asarray(mask.array), label=label)


def parse_prompts(doc: Any, image: Volume, base: Path = Path(".")) -> tuple[str, list[ObjectSpec]]:
    """Check a prompts document (already parsed JSON) against the schema and ``image``; returns the axis and
    the objects. Mask files are read relative to ``base``."""
    if not isinstance(doc, dict):
        raise PromptError('a prompts file holds a JSON object with "objects"')
    unknown = set(doc) - {"version", "axis", "objects"}
    if unknown:
        raise PromptError(f"unknown top-level keys {sorted(unknown)} (version, axis, objects)")
    if doc.get("version", VERSION) != VERSION:
        raise PromptError(f"prompts file version {doc.get('version')!r} is not supported (only {VERSION})")
    axis = doc.get("axis", "k")
    if not isinstance(axis, str):
        raise PromptError(f'axis must be a name such as "k" or "axial", got {axis!r}')
    objects = doc.get("objects")
    if not isinstance(objects, list) or not objects:
        raise PromptError('"objects" must be a non-empty list')
    specs: list[ObjectSpec] = []
    for n, obj in enumerate(objects):
        where = f"objects[{n}]"
        if not isinstance(obj, dict) or "label" not in obj:
            raise PromptError(f'{where}: an object needs a label, e.g. {{"label": 1, "prompts": [...]}}')
        unknown = set(obj) - {"label", "name", "prompts"}
        if unknown:
            raise PromptError(f"{where}: unknown keys {sorted(unknown)} (label, name, prompts)")
        name = obj.get("name")
        if name is not None and not isinstance(name, str):
            raise PromptError(f"{where}.name must be text, got {name!r}")
        prompts = obj.get("prompts", [])
        if not isinstance(prompts, list) or not prompts:
            raise PromptError(f"{where}.prompts must be a non-empty list")
        label = _ints(f"{where}.label", [obj["label"]], 1)[0]
        spec = ObjectSpec(label, name)
        spec.prompts = [_prompt(f"{where}.prompts[{m}]", p, image, base) for m, p in enumerate(prompts)]
        specs.append(spec)
    return axis, specs


def load_prompts(path: str | Path, image: Volume) -> tuple[str, list[ObjectSpec]]:
    """Read and check a prompts JSON file (see the module docstring)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"prompts file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read prompts file {path}: {exc}") from exc
    return parse_prompts(doc, image, path.parent)


def mask_files(path: str | Path) -> list[Path]:
    """The mask files a prompts JSON names (relative to its folder); [] when it cannot be read (its reader
    says why later)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    objects = doc.get("objects", []) if isinstance(doc, dict) else []
    names = [
        p["mask"]
        for o in objects
        if isinstance(o, dict) and isinstance(o.get("prompts"), list)
        for p in o["prompts"]
        if isinstance(p, dict) and isinstance(p.get("mask"), str) and p["mask"]
    ]
    return [Path(n) if Path(n).is_absolute() else path.parent / n for n in names]


def prompts_document(objects: list[tuple[int, str, list[Prompt]]], axis: int, mask_name: Any = None) -> dict[str, Any]:
    """The JSON document of ``objects`` = [(label, name, prompts)]. ``mask_name(label, n, prompt)`` returns
    the file name under which a mask prompt is saved (required when there are mask prompts)."""
    out = []
    for label, name, prompts in objects:
        entries: list[dict[str, Any]] = []
        for n, p in enumerate(prompts):
            if isinstance(p, Box2D):
                entries.append({"box": [p.u0, p.v0, p.u1, p.v1], "slice": p.slice})
            elif isinstance(p, Box3D):
                entries.append({"box3d": list(p.as_tuple())})
            elif isinstance(p, Point):
                entries.append({"point": list(p.ijk()), "positive": p.positive})
            elif isinstance(p, MaskPrompt):
                if mask_name is None:
                    raise PromptError("mask prompts need files: give mask_name")
                entry: dict[str, Any] = {"mask": mask_name(label, n, p)}
                if p.label is not None:
                    entry["label"] = p.label
                entries.append(entry)
        out.append({"label": label, "name": name, "prompts": entries})
    return {"version": VERSION, "axis": AXIS_NAMES[axis], "objects": out}


def save_prompts(path: str | Path, objects: list[tuple[int, str, list[Prompt]]], axis: int, image: Volume) -> Path:
    """Write the prompts JSON (atomically) and each mask prompt as a NIfTI file beside it
    (``<stem>.label<L>.prompt<N>.nii.gz``, on ``image``'s grid); returns the JSON path.

    Every file is checked first (:mod:`volsam.io.destinations`: never the image's own source, missing
    folders are created); when writing fails, the files this call created are removed."""
    from volsam.io import write_volume

    path = Path(path)
    stem = path.name.removesuffix(".json")
    masks: dict[str, MaskPrompt] = {}

    def mask_name(label: int, n: int, prompt: MaskPrompt) -> str:
        name = f"{stem}.label{label}.prompt{n}.nii.gz"
        masks[name] = prompt
        return name

    doc = prompts_document(objects, axis, mask_name)
    outputs = [Destination(path, "prompts file")]
    outputs += [Destination(path.parent / name, "mask of the prompts file") for name in masks]
    check_destinations(outputs, [image.meta.get("source")])
    with new_outputs_only(outputs):
        make_parent(path)
        for name, prompt in masks.items():
            write_volume(image.with_array(prompt.binary().astype(np.uint8)), path.parent / name)
        with atomic_target(path, ".json") as tmp:
            tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path
