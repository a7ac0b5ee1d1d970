"""Validation in 3D (``validation.mode: volumes``): the model being trained segments each held-out object the
way ``volsam segment`` would, from the true box on the object's middle slice (the ``box-middle`` protocol of
:mod:`volsam.bench.protocols`), and the mean 3D Dice is the validation score.

Clip validation measures the training task (a slice and its true box); this measures what users do with
the model: slice engines walk from the prompted slice with the previous slice's box and stop on the model's
own IoU estimate, so a model can get better slice by slice and worse in 3D. Choosing ``best/`` by this score
keeps the exported model no worse than the start on the held-out cases when the start is validated too
(``log.validate_at_start``).

Objects are the held-out cases' targets (``data.targets`` filters them, as for training), at most
``validation.max_objects`` of them evenly spread, split across the ranks; each rank runs its share on a copy
of the current weights and the sums are all-reduced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from volsam.bench.datasets import Case, LoadedCase, Target
from volsam.bench.protocols import run_protocol, session_factory
from volsam.finetune.config import FinetuneConfig
from volsam.finetune.distributed import Dist, mean_over_ranks
from volsam.finetune.models import TrainModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Object:
    case: int  # position in the validation cases
    target: Target


class VolumeValidator:
    """The held-out objects of a run and their 3D Dice under the current weights (see the module notes)."""

    def __init__(self, cases: list[Case], config: FinetuneConfig) -> None:
        self.cases, self.config = cases, config
        self._last: tuple[int, LoadedCase] | None = None  # one case in memory at a time
        objects = []
        for n, case in enumerate(cases):
            targets = case.targets or self._load(n).targets  # read only when the dataset does not list them
            wanted = config.data.targets
            objects += [_Object(n, t) for t in targets if not wanted or t.name in wanted]
        count = min(len(objects), config.validation.max_objects)
        picks = np.unique(np.linspace(0, len(objects) - 1, count).round().astype(int)) if objects else []
        self.objects = [objects[int(i)] for i in picks]
        self._last = None

    def _load(self, n: int) -> LoadedCase:
        if self._last is None or self._last[0] != n:
            self._last = (n, self.cases[n].load())
        return self._last[1]

    def __len__(self) -> int:
        return len(self.objects)

    def dice(self, model: TrainModel, d: Dist) -> float:
        """Mean 3D Dice over the objects (NaN when there are none); every rank must call it."""
        total, seen = 0.0, 0
        mine = self.objects[d.rank :: d.world]
        if mine:
            engine = model.inference_engine(d.device)
            data = self.config.data
            for obj in mine:
                case = self._load(obj.case)
                modality = data.modality if data.modality != "auto" else case.modality
                factory = session_factory(case.image, engine, modality, window=data.window, axis=data.axis)
                truth = case.truth(obj.target)
                if not truth.any():  # listed by the dataset but empty in this case
                    continue
                result = run_protocol("box-middle", factory, truth, case.image.spacing)
                total += float(result.steps[-1].dice)
                seen += 1
            del engine
            self._last = None
        return mean_over_ranks(d, total, seen)


__all__ = ["VolumeValidator"]
