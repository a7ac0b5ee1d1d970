"""Progress of one step of a session: how many slices it may still segment, known better as the walk goes.

A step (a prompt, a correction) segments slices within ranges of slices along the session's axis: the
object's range (a 3D box's, else the whole axis) for a fresh walk, the span between the neighbouring
prompted slices for a correction. Each walk reports its slices in runs of neighbours (the prompted slice,
then one direction slice after slice, then the other); when a run ends short of its range, the slices beyond
it will not be segmented, so the step's total shrinks. :class:`StepProgress` keeps that total: the slices
reported so far plus those that may still come; the web page sizes its progress bar with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class StepProgress:
    """The slices a step reported and the most it may still report.

    ``on_total(n)`` is called whenever the total changes (``n``: slices reported so far plus the slices of
    the current ranges that may still come; indices are slices along the session's axis).
    """

    def __init__(self, on_total: Callable[[int], None] | None = None):
        self.on_total = on_total
        self.reported = 0  # frame reports so far (a slice walked twice counts twice, as progress does)
        self._pending: set[int] = set()  # slices of the current range(s) not reported yet in this pass
        self._range: tuple[int, int] | None = None
        self._seen: set[int] = set()
        self._run: list[int] = []  # the current run of neighbouring slices
        self._later: list[tuple[int, int]] = []  # ranges announced to follow the current one
        self._total: int | None = None

    @property
    def total(self) -> int | None:
        """The current total (None before a range is known)."""
        return self._total

    def begin(self, lo: int, hi: int, later: Sequence[tuple[int, int]] = ()) -> None:
        """A walk within slices ``lo..hi`` (inclusive) starts: its slices may all come. ``later``: the ranges
        of the walks that will follow it in this step (counted in the total from now on); a later
        ``begin`` of the next announced range takes it off that list."""
        if later:
            self._later = [(int(a), int(b)) for a, b in later]
        elif self._later and self._later[0] == (lo, hi):
            self._later.pop(0)
        else:
            self._later = []
        self._start(lo, hi)

    def _start(self, lo: int, hi: int) -> None:
        self._range = (lo, hi)
        self._seen = set()
        self._run = []
        self._pending = set(range(lo, hi + 1))
        self._publish()

    def frame(self, index: int) -> None:
        """Slice ``index`` was segmented."""
        index = int(index)
        self.reported += 1
        if self._range is None:
            self._publish()
            return
        if index in self._seen:  # the same range walked again (a wider window): a new pass
            self._start(*self._range)
        if self._run and abs(index - self._run[-1]) != 1:  # a jump: the run before it has ended
            self._run_ended()
            self._run = []
        self._run.append(index)
        self._seen.add(index)
        self._pending.discard(index)
        self._publish()

    def _run_ended(self) -> None:
        """The current run stopped: in its direction, the slices up to the next reported one or the range's
        end will not come in this pass."""
        run, (lo, hi) = self._run, self._range or (0, -1)
        if len(run) < 2:
            return
        step = 1 if run[-1] > run[-2] else -1
        u = run[-1] + step
        while lo <= u <= hi and u not in self._seen:
            self._pending.discard(u)
            u += step

    def _publish(self) -> None:
        total = self.reported + len(self._pending) + sum(b - a + 1 for a, b in self._later)
        if total != self._total:
            self._total = total
            if self.on_total is not None:
                self.on_total(total)
