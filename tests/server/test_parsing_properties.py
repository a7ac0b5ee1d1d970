"""Hypothesis properties of prompt parsing, on both front ends: ``volsam.cli.parsing`` (command-line strings)
and ``volsam.server.bodies`` (the API's bodies, mask data, region boxes). Any text gives a prompt or a typed
PromptError / InputError -- never another exception -- and what parses round-trips."""

from __future__ import annotations

import base64
import gzip
import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from volsam.cli.parsing import parse_box, parse_box3d, parse_point
from volsam.core.errors import InputError, PromptError
from volsam.server.bodies import PromptIn, inflate_at_most, mask_prompt
from volsam.server.bodies import parse_box as parse_region

PROPS = settings(
    max_examples=int(os.environ.get("VOLSAM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("VOLSAM_FUZZ_EXAMPLES") is None,  # fixed cases in make test: never flaky
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.from_regex(
    r"-?\d{1,4}(, ?-?\d{1,4}){0,6}(,(neg|pos|\+|-|x))?", fullmatch=True
)
INT = st.integers(-(10**12), 10**12)


@PROPS
@given(text=TEXT, slice_index=st.none() | INT)
def test_cli_strings_parse_or_raise_prompt_error(text, slice_index):
    for parse in (lambda: parse_box(text, slice_index), lambda: parse_box3d(text), lambda: parse_point(text)):
        try:
            parse()
        except PromptError as exc:
            assert "\n" not in str(exc)


@PROPS
@given(
    corners=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)), min_size=3, max_size=3),
    negative=st.booleans(),
)
def test_cli_numbers_round_trip(corners, negative):
    values = [min(a, b) for a, b in corners] + [max(a, b) for a, b in corners]
    box = parse_box3d(" , ".join(map(str, values)))
    assert [box.i0, box.j0, box.k0, box.i1, box.j1, box.k1] == values
    point = parse_point(",".join(map(str, values[:3])) + (",neg" if negative else ""))
    assert (point.i, point.j, point.k, point.positive) == (*values[:3], not negative)


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


SIZE = (7, 6, 5)  # i, j, k of the image the prompts are for


@PROPS
@given(text=TEXT)
def test_region_boxes_parse_inside_the_image_or_raise_input_error(text):
    try:
        box = parse_region(text, SIZE)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert all(0 <= box[a] <= box[a + 3] < SIZE[a] for a in range(3))


@PROPS
@given(
    body=st.fixed_dictionaries(
        {"object": st.one_of(INT, st.floats(allow_nan=True), st.text(max_size=3)), "type": st.text(max_size=6)},
        optional={
            "box": st.lists(st.one_of(INT, st.floats()), max_size=7),
            "slice": st.one_of(st.none(), INT),
            "point": st.lists(INT, max_size=4),
            "data": st.one_of(st.none(), st.text(max_size=30), st.binary(max_size=30).map(_b64)),
            "positive": st.one_of(st.booleans(), st.text(max_size=3)),
        },
    )
)
def test_api_prompt_bodies_validate_or_refuse_with_a_typed_error(body):
    try:
        prompt = PromptIn.model_validate(body)
    except ValidationError:
        return  # FastAPI answers 422
    if prompt.type == "mask":
        try:
            mask = mask_prompt(prompt, SIZE)
        except PromptError:
            return
        assert mask.shape == SIZE[::-1] and mask.dtype == bool


@PROPS
@given(
    box=st.tuples(*(st.integers(0, n - 1) for n in SIZE), *(st.integers(0, n - 1) for n in SIZE)),
    seed=st.integers(0, 2**32 - 1),
    extra=st.integers(-3, 3),
)
def test_mask_data_round_trip_and_must_fill_their_box_exactly(box, seed, extra):
    i0, j0, k0, i1, j1, k1 = box
    i0, i1, j0, j1, k0, k1 = min(i0, i1), max(i0, i1), min(j0, j1), max(j0, j1), min(k0, k1), max(k0, k1)
    shape = (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    block = np.random.default_rng(seed).integers(0, 2, size=shape).astype(np.uint8)
    raw = block.tobytes() + b"\1" * max(extra, 0)
    raw = raw[: len(raw) + min(extra, 0)] if extra < 0 else raw
    body = {"object": 1, "type": "mask", "box": [i0, j0, k0, i1, j1, k1], "data": _b64(gzip.compress(raw))}
    try:
        mask = mask_prompt(PromptIn.model_validate(body), SIZE)
    except PromptError:
        assert extra != 0  # only a wrong byte count is refused
        return
    assert extra == 0
    assert np.array_equal(mask[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1], block != 0) and mask.sum() == block.sum()


@PROPS
@given(blob=st.binary(max_size=200), need=st.integers(1, 64))
def test_inflating_any_bytes_gives_at_most_what_the_box_needs_or_a_prompt_error(blob, need):
    for data in (blob, gzip.compress(blob)):
        try:
            out = inflate_at_most(data, need)
        except PromptError:
            continue
        assert len(out) <= need and (data is blob or out == blob)
