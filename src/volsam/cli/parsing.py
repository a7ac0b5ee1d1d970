"""Parse command-line prompt strings into prompt objects; every failure names the bad text."""

from __future__ import annotations

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, Point


def parse_ints(text: str, count: int, what: str, example: str) -> list[int]:
    """``count`` comma-separated integers from ``text`` or a :class:`PromptError` quoting it."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count:
        raise PromptError(f"{what} {text!r} needs {count} comma-separated integers, e.g. {example}")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise PromptError(f"{what} {text!r} is not {count} integers, e.g. {example}") from None


def parse_frame_range(text: str) -> tuple[int, int]:
    """``--frames FIRST,LAST`` -> (first, last); the video job checks them against the video."""
    try:
        first, last = parse_ints(text, 2, "--frames", "0,59")
    except PromptError:
        raise PromptError(f"--frames takes FIRST,LAST frame numbers, got {text!r}") from None
    return first, last


def parse_box(text: str, slice_index: int | None, *, planar: bool = False) -> Box2D:
    """``I0,J0,I1,J1`` (in-plane corners, inclusive) on slice ``slice_index``; with ``planar`` and no slice,
    ``X0,Y0,X1,Y1`` of a 2D image (slice 0; the job refuses it on a volume)."""
    if slice_index is None and not planar:
        raise PromptError("--box needs --slice K (the slice the box is drawn on)")
    u0, v0, u1, v1 = parse_ints(text, 4, "box", "113,72,134,96")
    return Box2D(u0, v0, u1, v1, slice=0 if slice_index is None else slice_index)


def parse_box3d(text: str) -> Box3D:
    """``I0,J0,K0,I1,J1,K1`` (corners inclusive)."""
    return Box3D(*parse_ints(text, 6, "3D box", "50,63,64,76,86,72"))


def parse_image_point(text: str) -> tuple[Point, bool]:
    """``X,Y`` / ``X,Y,neg`` (a 2D image: slice 0, planar) or ``I,J,K`` / ``I,J,K,neg``; returns the point and
    whether it was given without a slice."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 2 or (len(parts) == 3 and parts[2].lower() in ("neg", "pos", "-", "+")):
        return parse_point(",".join([*parts[:2], "0", *parts[2:]])), True
    if len(parts) not in (3, 4):
        raise PromptError(f"point {text!r} needs X,Y (a 2D image) or I,J,K, each optionally followed by ,neg")
    return parse_point(text), False


def parse_point(text: str) -> Point:
    """``I,J,K`` (object) or ``I,J,K,neg`` (background); ``pos`` is accepted as the fourth field."""
    parts = [p.strip() for p in text.split(",")]
    sign = True
    if len(parts) == 4:
        flag = parts.pop().lower()
        if flag not in ("neg", "pos", "-", "+"):
            raise PromptError(f"point {text!r}: the fourth field must be 'neg' or 'pos'")
        sign = flag in ("pos", "+")
    i, j, k = parse_ints(",".join(parts), 3, "point", "80,90,40 or 80,90,40,neg")
    return Point(i, j, k, positive=sign)
