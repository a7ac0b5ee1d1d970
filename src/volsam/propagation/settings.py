"""Every number the walk and the corrections decide with, each a named field with the reason it has its value.

* :class:`PropagationSettings` -- the slice-to-slice walk of slice engines (LiteMedSAM), and the windows and
  click-only prompts it uses.
* :class:`CorrectionSettings` -- local corrections in a :class:`volsam.Session`.
* :class:`Strategy`, :class:`StopReason` -- the walk's strategies and why a direction of a walk ended.

Distances are in frame pixels, areas in pixels. Bad values raise :class:`~volsam.core.errors.SettingsError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from volsam.core.errors import SettingsError


class _Named(str, Enum):
    """A string enum that prints as its value (``str(Strategy.VOLSAM) == "volsam"``)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls, value: object, what: str) -> _Named:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise SettingsError(f"{what} {value!r} is not one of {names}") from None


class Strategy(_Named):
    """How a slice engine walks from slice to slice (see :mod:`volsam.propagation.walk`)."""

    VOLSAM = "volsam"  # the rules that keep the walk on the object at its ends
    BASELINE = "baseline"  # the CVPR 2024 challenge baseline: tight box of the previous mask, stop when empty


class StopReason(_Named):
    """Why one direction of a walk ended (recorded per direction in the segmentation report)."""

    EMPTY = "empty"  # the mask fell below ``min_area`` pixels (or the prompted slice gave nothing)
    LOW_SCORE = "low score"  # the model's own IoU estimate fell below ``min_score``
    AREA_FELL = "area fell"  # below ``min_area_ratio`` x the previous slice's area
    AREA_JUMPED = "area jumped"  # beyond ``max_area_ratio`` x the previous slice's area
    NOT_OBJECT = "not object-like"  # under ``min_object_fraction`` of the mask looks like the object
    REGREW = "area grew again"  # a cross-section that shrank towards the object's end grew again
    ABSENT = "absent"  # a tracker saw no object for ``absent_patience`` frames
    RANGE_END = "range end"  # the walk reached its range: the volume, the 3D box or the next prompted slice


@dataclass(frozen=True)
class PropagationSettings:
    """Knobs of the walk. Distances are in frame pixels, areas in pixels.

    Attributes:
        strategy: ``volsam`` or ``baseline`` (:class:`Strategy`).
        box_margin: pixels added on each side of the previous mask's box, and of the user's box on the
            prompted frame (volsam; LiteMedSAM was trained on boxes a little larger than the object and
            under-segments from a tight one).
        proposal_ratios: each frame is predicted once per ratio, from the previous box grown by ``box_margin``
            plus ratio x its longer side on each side; the mask that best fits the appearance model wins
            (the highest model score while the appearance model cannot separate object and surroundings).
        growth_limit: the new mask is cut to the previous mask dilated by this many pixels (volsam; 0 = off):
            a cross-section changes little from one slice to the next, a leak into a neighbour a lot.
        min_score: stop when the model's IoU estimate falls below this (volsam): it no longer sees an object.
        min_area_ratio: stop when the area falls below this fraction of the previous frame's (volsam; 0 = off).
        max_area_ratio: stop when the area grows beyond this multiple of the previous frame's (volsam): the mask
            has spilled into a neighbouring structure.
        min_area: masks smaller than this are empty (both strategies).
        appearance_stop: stop when less than ``min_object_fraction`` of the new mask's pixels look like the
            prompted frame's object rather than its surroundings (grey-level histograms, see
            :mod:`volsam.propagation.appearance`): the object has ended and the model is outlining other tissue.
        ring_width: width (px) of the surroundings ring of the appearance model.
        min_object_fraction: see ``appearance_stop``.
        min_separability: the appearance rules apply only when the prompted frame's object and surroundings
            histograms separate their own pixels at least this well (Youden's J, 0..1); below it they would
            decide by noise.
        regrowth_after: once the area has fallen below this fraction of its largest value in the walk's
            direction, a rise of more than ``max_regrowth`` over the smallest area since stops the walk (a
            cross-section that shrinks towards the object's end and then grows is another structure;
            volsam; 0 = off).
        max_regrowth: see ``regrowth_after``.
        cleanup_3d: keep the 3D component connected to the prompted frame and fill 2D holes (volsam).
        roi_context: the frames are cut to a square window this many times the prompts' extent (at least
            ``roi_min`` px, centred on them) before encoding, so that a small object fills enough of the
            model's input; the window is widened and the walk rerun when the object reaches its edge
            (0 = whole frames; :func:`volsam.segment` applies it).
        roi_min: smallest window side (px): 48 px measured best on the lesion set (64 px lost small lesions).
        roi_max_fraction: a window whose side would reach this fraction of the frame's longer side is not
            worth cutting: whole frames are used instead.
        batch_size: frames encoded together ahead of the walk.
        cache_size: encoded frames kept in memory.
        motion: also propose each box moved by the mask centroid's shift between the two previous frames
            (its growth limit moved with it): objects in a video move, cross-sections of a volume mostly grow
            and shrink in place (volsam; off by default).
        click_pad_min, click_pad_fraction: a frame prompted by clicks alone starts from the box around its
            object clicks grown by ``max(click_pad_min, click_pad_fraction x the frame's shorter side)`` on each
            side (LiteMedSAM was trained on boxes; a click alone gives it too little to go on).
        click_refine_min, click_refine_fraction: the result is prompted again with its own box grown by
            ``max(click_refine_min, click_refine_fraction x its longer side)``, so that the box fits the object.
        click_rounds: at most this many such prompts.
        click_settle_px: the rounds stop once the box moves by no more than this (px) on every side.
        appearance_boxes: videos (:func:`volsam.propagation.follow.follow`): also propose the box of the
            object-like pixels connected to the previous mask (moved by the last shift) within ``growth_limit``
            px: once a mask holds part of a moving, turning object, boxes grown from it stay too small (off for
            volumes: the volume walk does not read it).
        appearance_smooth: videos: the appearance model and its per-pixel log-ratios work on frames smoothed by
            this Gaussian sigma (px): a speckled pixel alone says little about its tissue.
        search_lost: videos: a frame whose answer breaks a stop rule is left empty and the next frames are
            searched for the object (it left the view, or the model lost it), instead of ending the direction.
        search_min_area: videos: a searched region, and the answer it gives, must cover at least this fraction
            of the prompted frame's area (smaller dark patches of speckle are not the object).
        search_candidates: videos: at most this many object-like regions are prompted per searched frame.
        regrow_px: videos: each mask is grown by up to this many px into the object-like pixels touching it
            (holes filled) before it is written; the walk goes on from the model's mask (0 = off). LiteMedSAM
            under-segments a dark object in speckle: on the base clip of benchmarks/bench_video_tracking.py,
            4 px took the mean Dice from 0.859 to 0.930 and the worst frame from 0.72 to 0.88 (2 px: 0.909,
            6 px: 0.937).
        search_edge_min_area: videos: while an object that left the view through the frame's border is
            searched for, the largest object-like region touching that stretch of the border (within the
            object's size of where it left) is also prompted when it covers at least this fraction of the
            prompted frame's area (smaller than ``search_min_area``: it comes back in part); 0 = off.
        follow_regrown: videos: the walk goes on from the regrown mask (``regrow_px``) instead of the model's
            own, so its boxes and growth limit follow the whole object. Off: on the benchmark's clips it lifts
            leaves-view (seed 0) from 0.730 to 0.763 and all-hard (seed 1) from 0.498 to 0.553 mean Dice, but
            drops contrast-low (seed 0) from 0.759 to 0.575 (the regrown mask leaks into the surroundings).
        box_surroundings: videos: when the ring around the prompted frame's mask does not separate from it
            (``min_separability``), the appearance model's surroundings are the ring just outside the user's box
            instead: where LiteMedSAM under-segments (strong speckle) the ring around its mask lies inside the
            object and every appearance rule was off (speckle-full seed 1: the walk shrank to a sliver, mean
            Dice 0.20 -> 0.88). Only as a fallback: used always, it loosened contrast-low's model (0.76 -> 0.43).
        search_area_check: videos: an answer found by the search must also pass the area-jump rule against
            the prompted frame's area (at most ``max_area_ratio`` x it), as every followed frame does against
            the previous one; without it a low-contrast clip (contrast-low, seed 2) was "found again" as a
            5659 px mask over object-like tissue (the object: 1334 px) and never recovered.
        regrow_more_px: videos: after ``regrow_px``, each written mask grows by up to this many px more into
            the object-like pixels touching it while it is smaller than the prompted frame's written mask (an
            object keeps about its size from frame to frame; that area bounds a leak into object-like
            tissue); 0 = off. LiteMedSAM's own masks hold 30-60 % of a low-contrast object (the benchmark's
            contrast-low clips); 20 px took contrast-low seed 0 from 0.759 to 0.847 and seed 1 from 0.741 to
            0.770 mean Dice, rotating seed 1 from 0.893 to 0.908 (the same 24 px reach without the area bound:
            seed 1 fell to 0.725).
        search_edge_region: videos: while an object that left through the border is searched for, when the
            model's answer to the object-like region where it left is refused by the stop rules, that region
            itself (holes filled) is taken if it passes them with the model's score: half back in view the
            model's answer took grey tissue beside the object (leaves-view seed 1, frames 34-36: 43-48 %
            object-like) and the object was found again 3 frames late.
        area_memory: videos: where the prompted frame's appearance model separates object and surroundings
            less than ``area_memory_below`` (Youden's J), every mask is cut to this times the prompted
            frame's written area, keeping the pixels nearest the previous mask; 0 = off. Object-like tissue
            surrounds a low-contrast object and the model's masks crept from frame to frame: 1.25 took
            contrast-low seed 4 from 0.629 to 0.768 mean Dice and seed 1 from 0.770 to 0.777 (1.5: 0.747,
            2.0: 0.687 on seed 4), all-hard seed 0 from 0.697 to 0.713 but seed 3 from 0.636 to 0.553, every
            other clip of seeds 0, 1, 3 and 4 within 0.004; held out: seed 5 unchanged (all-hard -0.001),
            seed 6 contrast-low 0.830 -> 0.810. Only below that separability, so that a well-seen object may
            grow (a heart chamber from systole to diastole).
        area_memory_below: see ``area_memory``. On the benchmark's clips the prompted frame's separability
            is 0.50-0.64 (contrast-low), 0.54-0.69 (all-hard), 0.67-0.77 (speckle-full), 0.79-0.96 (others).
        exit_memory: videos: when an object found again is lost within this many frames, where it left the
            view before stays searched (the find may have been tissue inside the view, whose loss forgot
            the border); 0 = off. 3 took leaves-view seed 4 from 0.791 to 0.810 (the others unchanged).
        search_edge_touch: videos: an object-like region is taken for the object coming back where it left
            only when it reaches within this many px of the border; 0 = any region in the exit zone. With
            ``exit_memory`` 3, 1 px took leaves-view seed 4 from 0.810 to 0.835 (seeds 0, 1, 3 unchanged): 22-25
            px dark patches a few px inside the border were "found again" while it was out of view.
        relative_object_fraction: videos: a mask needs at most this times the prompted frame's own mask's
            object-like share (``min_object_fraction`` stays the most it needs); 0 = off, the default. Where the
            appearance model is weak the prompted mask itself is 66-80 % object-like, and correct masks of
            later frames fell to 43-49 % and were taken for a lost object (speckle-full seed 5, which
            suggested the rule). 0.6 measured mixed, so it is off: seed 5 speckle-full 0.655 -> 0.722,
            contrast-low 0.582 -> 0.672; seeds 0, 1, 3, 4 all-hard +0.069 (seed 3), -0.032 (seed 1), the rest
            unchanged; but on held-out seed 6 all-hard fell from 0.507 to 0.329 (a wrong mask accepted).
        temporal_reach: videos: each written mask but the prompted frame's is the signed-distance mean of its own
            and those up to this many frames before and after it in the same walk, each moved onto its centroid,
            weights falling linearly with the distance in frames (:mod:`volsam.propagation.temporal`); 0 = off. The
            walk goes on from the model's own masks, and reads this many frames past a range's end so that the
            range's masks are the whole video's. LiteMedSAM's masks jitter from frame to frame where it is unsure; 2
            frames took the benchmark's clips of seeds 0, 1, 4 (six kinds) from 0.818 to 0.829 mean Dice
            (speckle-full seed 1 0.885 -> 0.918, worst frame 0.790 -> 0.857; contrast-low seed 0 0.847 -> 0.881;
            all-hard seed 0 0.713 -> 0.761), no clip lower by more than 0.004 (deforming); held out, seeds 3 and 5
            (all ten kinds): 0.833 -> 0.838, all-hard +0.032 / +0.042. 1 frame and 3 frames gained less; a plain
            vote of the masks instead of signed distances, and smoothing with past frames only, gained less or lost.
            Volumes keep 0: the same smoothing along the slices of the cropped lesion set's walks (24 cases, from
            the middle slice outward) measured 0.852 -> 0.851 (1 slice) and 0.849 (2 slices) mean Dice.
        despeckle: videos: the frames the model encodes are first median-filtered over this many px (odd; 0 =
            off), the speckle reduction of :mod:`volsam.propagation.despeckle`; skipped for frames the engine
            shrinks by more than half of it. The appearance checks, the written masks and the frames shown are
            unchanged. 5 px, chosen from LiteMedSAM's true-box masks on seed 0 (base 0.859 -> 0.941, contrast-low
            0.769 -> 0.824; a Gaussian blur gained 0.01-0.02), took the benchmark's clips (mean of the clip means,
            before -> after) of seeds 0, 1 from 0.884 to 0.901 with the median inside the benchmark (edges reflected),
            but to 0.884 with this implementation (speckle-full seed 0 0.909 -> 0.745, lost inside the view; the
            clips that did well gain as before); held out, seeds 3, 5, 6: 0.851 -> 0.844, with the
            clips meeting the aim (mean >= 0.90, no frame < 0.80) 15 -> 19 of 30 and 23 of 30 higher, but three
            clips that already failed collapsed further (all-hard seeds 3 and 6 0.586 / 0.522 -> 0.283 / 0.227: the
            mask drifts onto dark tissue and passes the rules; contrast-low seed 5 0.582 -> 0.404); fresh seed 7:
            0.814 -> 0.830. 9 px gained more on easy clips but collapsed all-hard seed 0 (0.761 -> 0.214).
        search_last_place: videos: while an object lost inside the view is searched for, the proposals of its
            last mask, in place, are prompted first and their answer taken when it passes the stop rules against
            that mask's area: most losses inside the view are one doubted answer (a score under ``min_score``,
            a mask spilling onto tissue) while the object stays where it was, and the search's first choice
            by size was dark tissue elsewhere (all-hard seed 3: "found again" 68 px away).
        search_reach: videos: while an object lost inside the view is searched for, a region the search takes
            must lie within this many px a frame (counted from its last mask's frame) of that mask; 0 = off.
            An object moves a few px a frame; a region far from where it was lost is other tissue. The two
            rules (8 px) change only clips where the object is lost inside the view: of the 20 such clips of
            seeds 0-9 run, contrast-low seeds 5 and 8 went from 0.404 / 0.476 to 0.706 / 0.700 mean Dice,
            all-hard seeds 3 and 8 from 0.283 / 0.476 to 0.478 / 0.511, speckle-full seed 5 0.825 -> 0.832,
            all-hard seed 1 0.463 -> 0.414 (lost for good from frame 19 either way), speckle-full seed 0
            0.745 -> 0.727, the other 13 unchanged (mean 0.656 -> 0.691);
            designed on all-hard seed 3, seeds 8 and 9 never seen before. Every clip still below the aim.
    """

    strategy: Strategy | str = Strategy.VOLSAM
    box_margin: float = 1.0
    proposal_ratios: tuple[float, ...] = (0.0, 0.05, 0.1)
    growth_limit: int = 4
    min_score: float = 0.5
    min_area_ratio: float = 0.0
    max_area_ratio: float = 2.5
    min_area: int = 1
    appearance_stop: bool = True
    ring_width: int = 3
    min_object_fraction: float = 0.5
    min_separability: float = 0.3
    regrowth_after: float = 0.7
    max_regrowth: float = 0.2
    cleanup_3d: bool = True
    roi_context: float = 3.0
    roi_min: int = 48
    roi_max_fraction: float = 0.8
    batch_size: int = 1
    cache_size: int = 16
    motion: bool = False
    click_pad_min: float = 8.0
    click_pad_fraction: float = 0.1
    click_refine_min: float = 2.0
    click_refine_fraction: float = 0.1
    click_rounds: int = 3
    click_settle_px: float = 1.0
    appearance_boxes: bool = False
    appearance_smooth: float = 0.0
    search_lost: bool = False
    search_min_area: float = 0.1
    search_candidates: int = 2
    regrow_px: int = 0
    search_edge_min_area: float = 0.0
    follow_regrown: bool = False
    box_surroundings: bool = False
    search_area_check: bool = False
    regrow_more_px: int = 0
    search_edge_region: bool = False
    area_memory: float = 0.0
    area_memory_below: float = 0.7
    exit_memory: int = 0
    search_edge_touch: int = 0
    relative_object_fraction: float = 0.0
    temporal_reach: int = 0
    despeckle: int = 0
    search_last_place: bool = False
    search_reach: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy.parse(self.strategy, "propagation strategy"))
        if not self.proposal_ratios or min(self.proposal_ratios) < 0:
            raise SettingsError(f"proposal_ratios must be one or more ratios >= 0, got {self.proposal_ratios!r}")
        if self.box_margin < 0 or self.growth_limit < 0 or self.ring_width < 1:
            raise SettingsError("box_margin and growth_limit must be >= 0 and ring_width >= 1")
        if self.roi_context < 0 or self.roi_min < 16:
            raise SettingsError("roi_context must be >= 0 (0 = whole frames) and roi_min >= 16")
        if not 0 < self.roi_max_fraction <= 1:
            raise SettingsError(f"roi_max_fraction must be in (0, 1], got {self.roi_max_fraction!r}")
        if self.min_area < 0 or self.min_area_ratio < 0 or self.max_area_ratio <= 0:
            raise SettingsError("min_area and min_area_ratio must be >= 0 and max_area_ratio > 0")
        if self.batch_size < 1 or self.cache_size < 1 or self.click_rounds < 1:
            raise SettingsError("batch_size, cache_size and click_rounds must be >= 1")
        if self.regrow_more_px < 0:
            raise SettingsError(f"regrow_more_px must be >= 0, got {self.regrow_more_px!r}")
        if self.area_memory != 0 and self.area_memory < 1:
            raise SettingsError(f"area_memory must be 0 (off) or >= 1, got {self.area_memory!r}")
        if self.exit_memory < 0 or self.search_edge_touch < 0:
            raise SettingsError(
                f"exit_memory and search_edge_touch must be >= 0, got {self.exit_memory!r}, {self.search_edge_touch!r}"
            )
        if not 0 <= self.relative_object_fraction <= 1:
            raise SettingsError(f"relative_object_fraction must be in [0, 1], got {self.relative_object_fraction!r}")
        if self.search_reach < 0:
            raise SettingsError(f"search_reach must be >= 0 px a frame (0 = off), got {self.search_reach!r}")
        if self.temporal_reach < 0:
            raise SettingsError(f"temporal_reach must be >= 0 frames, got {self.temporal_reach!r}")
        if self.despeckle != 0 and (self.despeckle < 3 or self.despeckle % 2 == 0):
            raise SettingsError(f"despeckle must be 0 (off) or an odd median size >= 3 px, got {self.despeckle!r}")
        if self.search_edge_min_area < 0:
            raise SettingsError(f"search_edge_min_area must be >= 0, got {self.search_edge_min_area!r}")
        if self.regrow_px < 0 or self.appearance_smooth < 0 or self.search_min_area < 0 or self.search_candidates < 1:
            raise SettingsError("appearance_smooth and search_min_area must be >= 0 and search_candidates >= 1")

    @property
    def volsam(self) -> bool:
        """True for the volsam strategy (its rules apply), False for the baseline."""
        return self.strategy is Strategy.VOLSAM

    @classmethod
    def baseline(cls) -> PropagationSettings:
        """The CVPR 2024 baseline: whole frames, tight box of the previous mask, stop when empty, no clean-up."""
        return cls(
            strategy=Strategy.BASELINE, cleanup_3d=False, appearance_stop=False, regrowth_after=0.0, roi_context=0.0
        )

    @classmethod
    def video(cls) -> PropagationSettings:
        """The volsam walk for videos: boxes also proposed where the object's last motion takes them (objects
        move in a video), no regrowth stop (a beating heart's area rises and falls), 8 px growth per frame,
        whole frames; with :func:`volsam.propagation.follow.follow`: appearance boxes on frames smoothed by
        1.5 px, a lost object searched for on the next frames (where it left the view: from 2 % of its area),
        masks regrown by 4 px into object-like pixels, and by up to 20 px more while smaller than the prompted
        frame's mask; where the appearance model is weak, masks at most 1.25 x the prompted frame's; where the
        object left the view remembered for 3 frames after a find, and only regions at the border taken for its
        return; each written mask smoothed with those of the 2 frames before and after it; the frames the model
        encodes median-filtered over 5 px; an object lost inside the view looked for where it was lost first,
        and found again only within 8 px a frame of there."""
        return cls(
            regrowth_after=0.0,
            growth_limit=8,
            roi_context=0.0,
            motion=True,
            appearance_boxes=True,
            appearance_smooth=1.5,
            search_lost=True,
            regrow_px=4,
            regrow_more_px=20,
            search_edge_region=True,
            search_edge_min_area=0.02,
            box_surroundings=True,
            search_area_check=True,
            area_memory=1.25,
            exit_memory=3,
            search_edge_touch=1,
            temporal_reach=2,
            despeckle=5,
            search_last_place=True,
            search_reach=8,
        )

    @classmethod
    def for_strategy(cls, strategy: Strategy | str, video: bool = False) -> PropagationSettings:
        """The default settings of ``strategy`` (``volsam`` or ``baseline``) for a volume, or a video with
        ``video``; SettingsError for another name."""
        if Strategy.parse(strategy, "strategy") is Strategy.BASELINE:
            return cls.baseline()
        return cls.video() if video else cls()


@dataclass(frozen=True)
class CorrectionSettings:
    """How a :class:`volsam.Session` corrects an object that already has voxels.

    Attributes:
        area_growth: a positive click may grow its slice's object to at most this times the larger of its own
            and its two neighbours' areas, keeping the added pixels nearest the click (LiteMedSAM's answer to a
            click on a small object is often two or three times too large; 1.25 measured best: 1.1 equal,
            1.5 worse on the lesion set).
        neighbour_growth: the neighbours an ``add`` correction re-propagates to grow by at most this times
            their old area (a small object's answer can balloon past its end).
        unchanged_dice: a re-propagated slice this close (Dice) to its old mask ends the walk in that
            direction: from there on the old result stands.
        retrack_settled: tracker corrections stop a direction after this many slices in a row that did not
            change (by ``unchanged_dice``).
        box_pad_min, box_pad_fraction: a slice corrected without a box of the user's is prompted with the box
            of its mask and object clicks grown by ``max(box_pad_min, box_pad_fraction x its longer side)``,
            room for the object to grow towards a click.
        add_reach: an ``add`` correction keeps the model's new pixels no further from the old mask than
            ``add_reach`` x the click's own distance to it plus ``add_reach_px`` (a click next to the object
            adds the piece it marks, not everything the model outlines).
        add_reach_px: see ``add_reach``.
        click_prompts: also give the clicks to the model's prompt encoder with the box when a slice is
            corrected. Off by default: with LiteMedSAM, box-only edits (the clicks acting through the add /
            remove rules) measured better, mean Dice after 5 simulated clicks 0.863 vs 0.850, worst case
            -0.10 vs -0.32 (benchmarks/bench_interactive.py [--click-prompts], cropped lesion set).
    """

    area_growth: float = 1.25
    neighbour_growth: float = 1.25
    unchanged_dice: float = 0.9
    retrack_settled: int = 2
    box_pad_min: float = 2.0
    box_pad_fraction: float = 0.1
    add_reach: float = 2.0
    add_reach_px: float = 1.0
    click_prompts: bool = False

    def __post_init__(self) -> None:
        if self.area_growth < 1 or self.neighbour_growth < 1:
            raise SettingsError("area_growth and neighbour_growth must be >= 1 (1 = no growth)")
        if not 0 < self.unchanged_dice <= 1:
            raise SettingsError(f"unchanged_dice must be in (0, 1], got {self.unchanged_dice!r}")
        if self.retrack_settled < 1:
            raise SettingsError(f"retrack_settled must be >= 1, got {self.retrack_settled!r}")
        if self.box_pad_min < 0 or self.box_pad_fraction < 0 or self.add_reach < 0 or self.add_reach_px < 0:
            raise SettingsError("box_pad_min, box_pad_fraction, add_reach and add_reach_px must be >= 0")
