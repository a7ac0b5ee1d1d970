"""Try propagation settings on the cropped lesion set quickly: frame embeddings are computed once and reused.

    .venv/bin/python benchmarks/tune_propagation.py [VARIANT ...] [--kinds dark,ring] [--full] [--cache DIR]

prints Dice per case and settings variant (and the labelled / segmented slice ranges), then the means.
Embeddings are kept on disk (``--cache``, default ``/tmp/volsam-embcache``; ~4 MB per frame) so that a
second run with new variants does not encode again.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from volsam.data.lesions import lesion_cases
from volsam.engines import get as get_engine
from volsam.engines.base import SliceEmbedding, SliceEngine
from volsam.metrics import dice
from volsam.propagation import PropagationSettings
from volsam.segmentation import segment


class MemoEngine(SliceEngine):
    """Wraps an engine and remembers the embedding of every frame it has seen (keyed by its bytes)."""

    def __init__(self, inner: SliceEngine, cache_dir: Path | None = None):
        self.inner, self.name, self.capabilities = inner, inner.name, inner.capabilities
        self.memo: dict[str, SliceEmbedding] = {}
        self.cache_dir = cache_dir
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)

    def _load(self, key: str) -> SliceEmbedding | None:
        if key in self.memo:
            return self.memo[key]
        if self.cache_dir is not None and (self.cache_dir / f"{key}.pt").exists():
            features, shape = torch.load(self.cache_dir / f"{key}.pt")
            self.memo[key] = SliceEmbedding(features, tuple(shape))
            return self.memo[key]
        return None

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        keys = [hashlib.blake2b(f.tobytes() + bytes(str(f.shape), "ascii")).hexdigest() for f in frames]
        todo = [n for n, k in enumerate(keys) if self._load(k) is None]
        if todo:
            for n, emb in zip(todo, self.inner.encode(frames[todo])):
                self.memo[keys[n]] = emb
                if self.cache_dir is not None:
                    torch.save((emb.features, emb.frame_shape), self.cache_dir / f"{keys[n]}.pt")
        return [self.memo[k] for k in keys]

    def predict(self, embedding, **kwargs):
        return self.inner.predict(embedding, **kwargs)


VARIANTS = {
    "baseline": PropagationSettings.baseline(),
    "volsam": PropagationSettings(),
    "no-appearance": PropagationSettings(appearance_stop=False),
    "one-box": PropagationSettings(proposal_ratios=(0.0,)),
    "no-regrowth": PropagationSettings(regrowth_after=0.0),
    "margin0": PropagationSettings(box_margin=0.0),
    "margin2": PropagationSettings(box_margin=2.0),
    "grow2": PropagationSettings(growth_limit=2),
    "score0.6": PropagationSettings(min_score=0.6),
    "fraction0.4": PropagationSettings(min_object_fraction=0.4),
    "ring5": PropagationSettings(ring_width=5),
    "roi0": PropagationSettings(roi_context=0.0),
    "roi2": PropagationSettings(roi_context=2.0),
    "roi4": PropagationSettings(roi_context=4.0),
    "roi6": PropagationSettings(roi_context=6.0),
    "min64": PropagationSettings(roi_min=64),
    "min96": PropagationSettings(roi_min=96),
    "min16": PropagationSettings(roi_min=16),
    "min32": PropagationSettings(roi_min=32),
}


def _k_range(mask: np.ndarray) -> str:
    ks = np.flatnonzero(mask.any(axis=(1, 2)))
    return f"{ks[0]}-{ks[-1]}" if ks.size else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--kinds", default="", help="comma-separated lesion kinds (default: all)")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--full", action="store_true", help="full MNI152 volumes instead of cropped cases")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/volsam-embcache"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kinds = [k for k in args.kinds.split(",") if k]
    names = [n for n in args.cases.split(",") if n]
    cases = [
        c for c in lesion_cases(crop=not args.full) if (not kinds or c.kind in kinds) and (not names or c.name in names)
    ]
    engine = MemoEngine(get_engine("medsam-lite", device="cpu"), args.cache)
    table: dict[str, list[float]] = {n: [] for n in args.variants}
    for case in cases:
        truth = case.label.array > 0
        row = [f"truth {_k_range(truth)}"]
        for name in args.variants:
            seg = segment(case.image, case.middle_box, engine=engine, settings=VARIANTS[name], modality="MR")
            d = dice(seg.array > 0, truth)
            table[name].append(d)
            row.append(f"{name} {d:.3f} ({_k_range(seg.array > 0)})")
        print(f"{case.name:18s} " + "  ".join(row), flush=True)
    for name in args.variants:
        print(f"{name:12s} mean Dice {statistics.fmean(table[name]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
