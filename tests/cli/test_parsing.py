import pytest

from volsam.cli.parsing import parse_box, parse_box3d, parse_point
from volsam.core import Box2D, Box3D, Point, PromptError


def test_parse_prompts():
    assert parse_box("113,72,134,96", 102) == Box2D(113, 72, 134, 96, slice=102)
    assert parse_box3d("50,63,64,76,86,72") == Box3D(50, 63, 64, 76, 86, 72)
    assert parse_point("80,90,40") == Point(80, 90, 40, True)
    assert parse_point("60, 70, 40, neg") == Point(60, 70, 40, False)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: parse_box("1,2,3", 4), "needs 4"),
        (lambda: parse_box("1,2,x,4", 4), "not 4 integers"),
        (lambda: parse_box("1,2,3,4", None), "--slice"),
        (lambda: parse_box3d("1,2,3,4,5"), "needs 6"),
        (lambda: parse_point("1,2,3,maybe"), "neg"),
        (lambda: parse_point("1.5,2,3"), "not 3 integers"),
    ],
)
def test_malformed_numbers_are_one_clear_error(call, message):
    with pytest.raises(PromptError, match=message):
        call()
