"""The rules that end one direction of the walk, each named by a :class:`StopReason`.

A new frame's mask ends the walk when it is empty (both strategies) or, with the volsam strategy, when the
model's score is low, its area fell or jumped, it does not look like the object, or a cross-section that was
shrinking towards the object's end grows again (:class:`AreaTrend`). The thresholds are fields of
:class:`~volsam.propagation.settings.PropagationSettings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from volsam.propagation.settings import PropagationSettings, StopReason


@dataclass(frozen=True)
class Stop:
    """Why a frame ended the walk: the rule and a line with the numbers that decided it (for the log)."""

    reason: StopReason
    detail: str


def frame_stop(
    score: float,
    area: int,
    prev_area: int,
    settings: PropagationSettings,
    object_fraction: Callable[[], float] | None = None,
) -> Stop | None:
    """The first rule the new frame's mask breaks, in this order: empty (``min_area``), then with the volsam
    strategy low score (``min_score``), area fell (``min_area_ratio``), area jumped (``max_area_ratio``), not
    object-like (``min_object_fraction``, when ``object_fraction`` -- the share of the mask's pixels that look
    like the object -- is given and ``appearance_stop`` is on). None when the walk goes on.

    ``area`` and ``prev_area`` are pixel counts of the new and the previous frame's mask.
    """
    if area < settings.min_area:
        return Stop(StopReason.EMPTY, f"{area}px < {settings.min_area}px")
    if not settings.volsam:
        return None
    if score < settings.min_score:
        return Stop(StopReason.LOW_SCORE, f"score {score:.2f}")
    if area < settings.min_area_ratio * prev_area:
        return Stop(StopReason.AREA_FELL, f"area fell to {area}px from {prev_area}px")
    if area > settings.max_area_ratio * prev_area:
        return Stop(StopReason.AREA_JUMPED, f"area jumped to {area}px from {prev_area}px")
    if object_fraction is not None and settings.appearance_stop:
        fraction = object_fraction()
        if fraction < settings.min_object_fraction:
            return Stop(StopReason.NOT_OBJECT, f"only {fraction:.0%} of the mask looks like the object")
    return None


@dataclass
class AreaTrend:
    """Cross-section areas along one walking direction (``PropagationSettings.regrowth_after`` and
    ``max_regrowth``): ``peak`` the largest area so far, ``low`` the smallest since the area started to fall."""

    after: float
    rise: float
    peak: int
    low: int

    @classmethod
    def start(cls, area: int, settings: PropagationSettings) -> AreaTrend:
        """The trend of a walk whose prompted frame has ``area`` pixels."""
        return cls(settings.regrowth_after, settings.max_regrowth, area, area)

    def regrew(self, area: int) -> bool:
        """Record ``area``; True when it rose again after the cross-section had started to shrink away."""
        if self.after <= 0:
            return False
        falling = self.low < self.after * self.peak
        if falling and area > (1 + self.rise) * self.low:
            return True
        self.low = min(self.low, area) if falling else area
        self.peak = max(self.peak, area)
        return False
