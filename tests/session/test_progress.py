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


def test_ranges_announced_for_later_walks_count_from_the_start():
    """A SAM 2 correction on slice 20 between prompted slices 10 and 30 tracks 20..29, then 11..20 (20 twice):
    the total covers both walks from the first report and ends at what was reported."""
    totals: list[int] = []
    p = StepProgress(totals.append)
    p.begin(20, 29, later=[(11, 20)])
    assert totals == [10 + 10]
    for f in range(20, 30):
        p.frame(f)
    p.begin(11, 20)  # the announced walk: no longer "later", now the current range
    for f in range(20, 10, -1):
        p.frame(f)
    assert set(totals) == {20} and p.total == p.reported == 20


def test_an_unannounced_range_drops_the_announced_ones():
    p = StepProgress()
    p.begin(0, 9, later=[(20, 29)])
    assert p.total == 20
    p.begin(40, 44)  # a different walk: the plan is void
    assert p.total == 5
