"""StepProgress: the most slices a step may still segment, shrinking as the walk's runs end."""

from __future__ import annotations

from volsam.session.progress import StepProgress


def _run(lo: int, hi: int, frames: list[int]) -> tuple[list[int], StepProgress]:
    totals: list[int] = []
    p = StepProgress(totals.append)
    p.begin(lo, hi)
    for f in frames:
        p.frame(f)
    return totals, p


def test_a_walk_from_one_slice_both_ways():
    # slice 20 of 0..39, backward to 8 (7 stops it), then forward to 32
    frames = [20, *range(19, 6, -1), *range(21, 33)]
    totals, p = _run(0, 39, frames)
    assert totals[0] == 40  # the range, before anything is known
    # the backward run ended at 7 when the forward one began: slices 0..6 will not come
    assert p.total == len(frames) + 7  # 33..39 are not known to be skipped (the walk just ends)
    assert totals == sorted(totals, reverse=True)  # it only shrinks within one pass
    assert min(totals) >= len(frames)


def test_the_range_of_a_3d_box_and_a_second_pass():
    totals, p = _run(10, 30, [20, 19, 21])
    assert totals == [21, 12]  # 10..18 dropped when the forward run started: 3 reported + 22..30
    p.frame(20)  # the same slice again: a wider window walks the range again
    assert p.total == 4 + 20  # four reports, then all of 10..30 but 20 may still come


def test_reports_before_any_range_count_as_they_come():
    totals: list[int] = []
    p = StepProgress(totals.append)
    p.frame(3)
    p.frame(4)
    assert totals == [1, 2] and p.reported == 2
