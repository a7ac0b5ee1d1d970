"""What a user asks of a segmentation run, validated once: :class:`SegmentRequest`.

The command line maps its flags onto one, the server builds the same object for a session, and the jobs
(:mod:`volsam.jobs.volume`, :mod:`volsam.jobs.video`) and :class:`volsam.Session` take their options from
it. A bad value is refused here, with the same one line whichever path it came by.
"""

from __future__ import annotations

from dataclasses import dataclass

from volsam.core.errors import EngineError, OutputError, SettingsError
from volsam.core.volume import Volume
from volsam.engines import get as get_engine
from volsam.engines.backends import check_backend
from volsam.engines.base import SliceEngine, TrackerEngine, check_precision
from volsam.engines.registry import available
from volsam.io.labels import LABEL_FORMATS
from volsam.io.overlay import CONVENTIONS
from volsam.preprocess import MODALITIES, parse_window
from volsam.propagation import PropagationSettings
from volsam.propagation.settings import Strategy
from volsam.segmentation import check_label
from volsam.session import Session

AXES = ("i", "j", "k", "axial", "coronal", "sagittal")
VOLUME_ABSENT_FRAMES = 3  # a tracker stops a direction of a volume after 3 slices without the object


@dataclass(frozen=True)
class SegmentRequest:
    """The options of a segmentation run (the names of ``volsam segment``'s flags).

    Attributes:
        engine: an engine name (``volsam models list``): ``medsam-lite`` or ``sam2``.
        model: weights: a path, a catalogue name or a hub id (None: the engine's default).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked when the engine loads).
        precision: ``auto``, ``fp32`` or ``bf16``.
        backend: what runs the image encoder (``medsam-lite``, ``sam``, ``medsam``, ``sam2``, ``sam2-image``):
            ``auto``, ``torch`` or ``openvino`` (:mod:`volsam.engines.backends`).
        strategy: the slice walk: ``volsam`` or ``baseline`` (the CVPR 2024 baseline).
        absent_frames: tracker engines stop a direction after this many frames without the object; None =
            the input's default (3 slices for a volume, never for a video).
        full_range: tracker engines track through the whole range (``absent_frames`` is then not used).
        axis: the propagation axis of a volume (``i``, ``j``, ``k``, ``axial``, ``coronal``, ``sagittal``);
            None = k, or a prompts file's own axis.
        modality: ``auto``, ``CT``, ``MR``, ``PET`` or ``other`` (intensity normalisation).
        window: a CT window preset or ``LEVEL,WIDTH`` in HU (None: the default for CT).
        label: the value written for the object (1..65535).
        output_format: ``auto`` (from the output's extension) or ``dicom-seg``.
        overlay_convention: overlay PNGs of a volume: ``radiological`` (the patient's right on the screen's
            left) or ``neurological``.
    """

    engine: str = "medsam-lite"
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    strategy: str = "volsam"
    absent_frames: int | None = None
    full_range: bool = False
    axis: str | None = None
    modality: str = "auto"
    window: str | None = None
    label: int = 1
    output_format: str = "auto"
    overlay_convention: str = "radiological"

    def __post_init__(self) -> None:
        engines = [e["name"] for e in available()]
        if self.engine not in engines:
            raise EngineError(f"unknown engine {self.engine!r}; known engines: {', '.join(sorted(engines))}")
        check_precision(self.precision)
        check_backend(self.backend)
        Strategy.parse(self.strategy, "strategy")
        if self.absent_frames is not None and (isinstance(self.absent_frames, bool) or self.absent_frames < 1):
            raise SettingsError(f"absent frames (--absent-frames) must be >= 1, got {self.absent_frames}")
        if self.axis is not None and str(self.axis).strip().lower() not in AXES:
            raise SettingsError(f"axis {self.axis!r} is not one of {', '.join(AXES)}")
        if self.modality not in MODALITIES and self.modality.upper() not in MODALITIES:
            raise SettingsError(f"modality {self.modality!r} is not one of {', '.join(MODALITIES)}")
        if self.window is not None:
            parse_window(self.window)
        object.__setattr__(self, "label", check_label(self.label))
        if self.overlay_convention not in CONVENTIONS:
            names = ", ".join(CONVENTIONS)
            raise SettingsError(f"overlay convention {self.overlay_convention!r} is not one of {names}")
        if self.output_format not in LABEL_FORMATS:
            raise OutputError(f"unknown output format {self.output_format!r}; use one of {', '.join(LABEL_FORMATS)}")

    def settings(self, video: bool = False) -> PropagationSettings:
        """The slice walk's settings: the strategy's defaults for a volume, or a video with ``video``."""
        return PropagationSettings.for_strategy(self.strategy, video)

    def absent_patience(self, video: bool = False) -> int | None:
        """Frames without the object after which a tracker stops a direction (None: never)."""
        if self.full_range:
            return None
        if self.absent_frames is not None:
            return self.absent_frames
        return None if video else VOLUME_ABSENT_FRAMES

    def load_engine(self) -> SliceEngine | TrackerEngine:
        """The engine with its weights on its device (built once per process, see :func:`volsam.engines.get`)."""
        options: dict[str, str] = {} if self.precision == "auto" else {"precision": self.precision}
        if self.backend != "auto":
            options["backend"] = self.backend
        return get_engine(self.engine, model=self.model, device=self.device, **options)

    def session(
        self,
        volume: Volume,
        engine: SliceEngine | TrackerEngine | None = None,
        axis: str | None = None,
        settings: PropagationSettings | None = None,
    ) -> Session:
        """A :class:`volsam.Session` on ``volume`` with these options (``engine``: an already loaded one;
        ``axis``: overrides the request's, e.g. a prompts file's own; ``settings``: the slice walk's, instead
        of the strategy's defaults)."""
        return Session(
            volume,
            engine=engine if engine is not None else self.load_engine(),
            axis=axis or self.axis or "k",
            modality=self.modality,
            window=self.window,
            settings=settings or self.settings(),
            absent_patience=self.absent_patience(),
        )
