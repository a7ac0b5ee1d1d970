"""``describe``: the facts ``volsam info`` prints about a volume (geometry, modality, intensities)."""

from __future__ import annotations

from typing import Any

import numpy as np

from volsam.core.volume import Volume

CT_GUESS_BELOW = -500.0  # a minimum below this (air in HU) suggests CT


def describe(volume: Volume) -> dict[str, Any]:
    """Geometry and intensity facts of ``volume`` as plain Python values (JSON-ready).

    Keys: ``size`` (i, j, k voxels), ``spacing`` (i, j, k mm), ``origin`` (LPS mm), ``direction`` (3x3
    rows, columns = i, j, k axes), ``axes`` (e.g. "LPS": where i, j, k point), ``slice_plane`` (plane of
    the k-slices), ``modality`` + ``modality_source`` ("file" when ``meta`` has it, e.g. the DICOM
    Modality tag; "guess" for "CT" guessed from a minimum below -500, None when unknown), ``dtype``,
    ``pixel_type`` (stored), ``min``/``max``/``mean`` (NaN and Inf ignored; None when no finite voxel),
    ``nan_count``, ``format``, ``source``, ``series_uid``, ``series_description``.
    """
    array = volume.array
    nan_count = 0
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        nan_count = int(np.isnan(array).sum())
        values = array[finite] if not finite.all() else array
    else:
        values = array
    if values.size:
        low, high = float(values.min()), float(values.max())
        mean = float(values.mean(dtype=np.float64))
    else:
        low = high = mean = None
    meta = volume.meta
    modality = meta.get("modality") or None
    source = "file" if modality else None
    if modality is None and low is not None and low < CT_GUESS_BELOW:
        modality, source = "CT", "guess"
    return {
        "size": list(volume.size),
        "spacing": [float(s) for s in volume.spacing],
        "origin": [float(o) for o in volume.origin],
        "direction": volume.direction.tolist(),
        "axes": "".join(volume.axis_names()),
        "slice_plane": volume.slice_plane(),
        "modality": modality or "unknown",
        "modality_source": source,
        "dtype": array.dtype.name,
        "pixel_type": meta.get("pixel_type") or array.dtype.name,
        "min": low,
        "max": high,
        "mean": mean,
        "nan_count": nan_count,
        "format": meta.get("format"),
        "source": meta.get("source"),
        "series_uid": meta.get("series_uid"),
        "series_description": meta.get("series_description"),
        "colour": volume.colour is not None,
    }


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def format_description(d: dict[str, Any]) -> str:
    """Readable multi-line text of a :func:`describe` dict (what ``volsam info`` prints)."""
    size, spacing, origin = d["size"], d["spacing"], d["origin"]
    axes = d["axes"]
    lines = []
    if d.get("source"):
        lines.append(f"source     {d['source']} ({d.get('format') or 'unknown format'})")
    extent = [n * s for n, s in zip(size, spacing, strict=True)]
    lines += [
        f"size       {size[0]} x {size[1]} x {size[2]} voxels (i, j, k)",
        f"spacing    {' x '.join(_num(s) for s in spacing)} mm; extent {' x '.join(f'{e:.1f}' for e in extent)} mm",
        f"origin     ({', '.join(f'{o:.3f}' for o in origin)}) mm, LPS",
        f"axes       i -> {axes[0]}, j -> {axes[1]}, k -> {axes[2]}; k-slices are {d['slice_plane']}",
        "direction  " + "\n           ".join("[" + ", ".join(f"{v:+.4f}" for v in row) + "]" for row in d["direction"]),
    ]
    origin_note = {"file": " (from the file)", "guess": " (guessed: minimum below -500)"}
    lines.append(f"modality   {d['modality']}{origin_note.get(d.get('modality_source') or '', '')}")
    stored = f" (stored as {d['pixel_type']})" if d.get("pixel_type") not in (None, d["dtype"]) else ""
    lines.append(f"dtype      {d['dtype']}{stored}")
    if d.get("colour"):
        lines.append("colour     RGB (engines are given the RGB picture; intensities below are its BT.601 luma)")
    intensity = f"intensity  min {_num(d['min'])}, max {_num(d['max'])}, mean {_num(d['mean'])}"
    if d.get("nan_count"):
        intensity += f"; NaN voxels: {d['nan_count']}"
    lines.append(intensity)
    if d.get("series_uid"):
        description = d.get("series_description") or "no description"
        lines.append(f"series     {d['series_uid']} ({description})")
    return "\n".join(lines)
