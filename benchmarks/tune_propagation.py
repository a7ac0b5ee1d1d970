"""Try propagation settings on the cropped lesion set quickly: frame embeddings are computed once and reused.

    .venv/bin/python benchmarks/tune_propagation.py            # prints mean Dice per settings variant
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import sys

import numpy as np

from volsam.bench.lesions import lesion_cases
from volsam.engines import get as get_engine
from volsam.engines.base import SliceEmbedding, SliceEngine
from volsam.metrics import dice
from volsam.propagate import PropagationSettings
from volsam.segmentation import segment


class MemoEngine(SliceEngine):
    """Wraps an engine and remembers the embedding of every frame it has seen (keyed by its bytes)."""

    def __init__(self, inner: SliceEngine):
        self.inner, self.name, self.capabilities = inner, inner.name, inner.capabilities
        self.memo: dict[bytes, SliceEmbedding] = {}

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        keys = [hashlib.blake2b(f.tobytes() + bytes(str(f.shape), "ascii")).digest() for f in frames]
        todo = [n for n, k in enumerate(keys) if k not in self.memo]
        if todo:
            for n, emb in zip(todo, self.inner.encode(frames[todo])):
                self.memo[keys[n]] = emb
        return [self.memo[k] for k in keys]

    def predict(self, embedding, **kwargs):
        return self.inner.predict(embedding, **kwargs)


VARIANTS = {
    "baseline": PropagationSettings.baseline(),
    "volsam": PropagationSettings(),
    "no-contrast": PropagationSettings(contrast_stop=False),
    "margin0": PropagationSettings(box_margin=0.0),
    "margin3": PropagationSettings(box_margin=3.0),
    "grow2": PropagationSettings(growth_limit=2),
    "score0.6": PropagationSettings(min_score=0.6),
    "ring5": PropagationSettings(ring_width=5),
}


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    cases = lesion_cases(crop=True)
    engine = MemoEngine(get_engine("medsam-lite", device="cpu"))
    names = sys.argv[1:] or list(VARIANTS)
    table: dict[str, list[float]] = {n: [] for n in names}
    for case in cases:
        row = []
        for name in names:
            seg = segment(case.image, case.middle_box, engine=engine, settings=VARIANTS[name], modality="MR")
            d = dice(seg.array > 0, case.label.array > 0)
            table[name].append(d)
            row.append(f"{name} {d:.3f}")
        print(f"{case.name:18s} " + "  ".join(row), flush=True)
    for name in names:
        print(f"{name:12s} mean Dice {statistics.fmean(table[name]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
