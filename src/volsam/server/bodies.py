"""The API's request bodies (pydantic) and how they become Session calls: prompts, mask data, region boxes.

Coordinates are voxel indices of the image as uploaded (``i, j, k``); mask data are ``[k, j, i]``. Mask data
are inflated in a streaming way that stops one byte past the size their box needs: a small payload that would
inflate to gigabytes is refused after a few megabytes of work.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from volsam.core.changes import Change
from volsam.core.errors import InputError, PromptError


class ErrorOut(BaseModel):
    """Every refusal: the one-line message and the volsam error type (``internal`` for a 500)."""

    detail: str
    error: str


ERRORS = {
    status: {"model": ErrorOut, "description": what}
    for status, what in {
        400: "bad input, prompt or setting",
        401: "missing or wrong bearer token",
        403: "wrong lease, or a Host / Origin this server does not answer",
        404: "no such session",
        409: "a DICOM-SEG of an image not uploaded as DICOM",
        413: "upload or decoded image too large",
        422: "malformed request (error: InputError)",
        500: "internal error (error: internal; no traceback)",
        503: "the server holds its maximum number of sessions",
    }.items()
}  # documented on every operation (OpenAPI), so that clients and schema checks know each answer's shape


class ObjectIn(BaseModel):
    label: int | None = Field(None, ge=1, le=65535, description="label value (default: the next free one)")
    name: str | None = Field(None, max_length=200)


class CandidateIn(BaseModel):
    slice: int = Field(..., ge=0, description="a slice (along the session's axis) with the object's box or clicks")


class PromptIn(BaseModel):
    """One prompt for one object. Coordinates are voxel indices of the image as uploaded."""

    object: int = Field(..., ge=1, description="the object's label")
    type: Literal["box", "box3d", "point", "mask"]
    slice: int | None = Field(None, description="box: the slice index along the session's axis")
    box: list[int] | None = Field(None, description="box: [u0, v0, u1, v1]; box3d / mask: [i0, j0, k0, i1, j1, k1]")
    point: list[int] | None = Field(None, description="point: [i, j, k]")
    positive: bool = True
    data: str | None = Field(
        None, description="mask: base64 of the gzip of a uint8 array (0/1), shape of `box` as [k, j, i], C order"
    )
    run: bool = Field(True, description="false: queue the prompt until POST .../run")


def mask_prompt(p: PromptIn, size: tuple[int, int, int]) -> np.ndarray:
    """The full-size bool ``[k, j, i]`` mask of a mask prompt (its ``data`` fill its ``box``); PromptError."""
    if p.box is None or len(p.box) != 6 or p.data is None:
        raise PromptError("a mask prompt needs `box` [i0, j0, k0, i1, j1, k1] and `data`")
    i0, j0, k0, i1, j1, k1 = p.box
    if not (0 <= i0 <= i1 < size[0] and 0 <= j0 <= j1 < size[1] and 0 <= k0 <= k1 < size[2]):
        raise PromptError(f"mask box {p.box} is not inside the image of {list(size)} voxels")
    shape = (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    need = shape[0] * shape[1] * shape[2]
    try:
        packed = base64.b64decode(p.data, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise PromptError(f"mask data is not base64 of gzip ({exc})") from exc
    raw = inflate_at_most(packed, need)
    if len(raw) != need:
        raise PromptError(f"mask data holds {len(raw)} bytes; the box {shape} (k, j, i) needs {need}")
    full = np.zeros((size[2], size[1], size[0]), dtype=bool)
    full[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = np.frombuffer(raw, np.uint8).reshape(shape) != 0
    return full


def inflate_at_most(packed: bytes, need: int) -> bytes:
    """The gzip data ``packed`` inflated (all its members), refused (PromptError) as soon as it passes ``need``
    bytes -- so it never holds more than ``need + 1`` inflated bytes."""
    out = bytearray()
    data = packed
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while data and not inflater.eof:
                out += inflater.decompress(data, need + 1 - len(out))
                if len(out) > need:
                    raise PromptError(f"mask data inflates to more than the {need} bytes its box needs")
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise PromptError(f"mask data is not base64 of gzip ({exc})") from exc
        if not inflater.eof:
            raise PromptError("mask data is not base64 of gzip (the gzip stream is truncated)")
        data = inflater.unused_data
    return bytes(out)


def apply_prompt(session: Any, p: PromptIn) -> Change:
    """Give ``p`` to ``session`` (a :class:`volsam.Session`) through the add_* method of its type."""
    if p.type == "box":
        if p.slice is None or p.box is None or len(p.box) != 4:
            raise PromptError("a box prompt needs `slice` and `box` [u0, v0, u1, v1]")
        return session.add_box(p.object, p.slice, p.box, run=p.run)
    if p.type == "box3d":
        if p.box is None or len(p.box) != 6:
            raise PromptError("a box3d prompt needs `box` [i0, j0, k0, i1, j1, k1]")
        return session.add_box3d(p.object, p.box, run=p.run)
    if p.type == "point":
        if p.point is None or len(p.point) != 3:
            raise PromptError("a point prompt needs `point` [i, j, k]")
        return session.add_point(p.object, p.point, positive=p.positive, run=p.run)
    return session.add_mask(p.object, mask_prompt(p, session.volume.size), run=p.run)


def parse_box(text: str, size: tuple[int, int, int]) -> tuple[int, ...]:
    """``"i0,j0,k0,i1,j1,k1"`` as six ints inside an image of ``size`` (i, j, k) voxels; InputError otherwise."""
    try:
        box = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"box must be i0,j0,k0,i1,j1,k1 (integers), got {text!r}") from None
    if len(box) != 6 or not all(0 <= box[a] <= box[a + 3] < size[a] for a in range(3)):
        raise InputError(f"box {text!r} is not inside the image of {list(size)} voxels")
    return box
