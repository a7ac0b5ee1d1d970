"""Write a randomly initialised small SAM 1 model (transformers ``SamModel`` folder) for pipeline checks.

    .venv/bin/python benchmarks/random_sam_model.py results/models/sam-random-small

No SAM / MedSAM weights ship offline, so ``make bench-harness`` runs the ``sam`` and ``medsam`` engines on the
built-in 2D set with this model only to show that their paths run end to end (the report labels the rows
"random weights"); their Dice means nothing. The image encoder is small (ViT 64 wide, 2 blocks, 256 px input)
so that the run takes seconds per image; the prompt encoder and mask decoder have SAM's own shapes. Built
with volsam's own converter (no test-only package needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from volsam.engines.sam.convert import Architecture, build_model

SMALL = Architecture(hidden=64, depth=2, heads=2, global_attention=(1,), window=14, image_size=256)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results/models/sam-random-small")
    if (out / "config.json").is_file():
        print(f"{out} exists")
        return 0
    torch.manual_seed(0)
    model = build_model(SMALL)
    model.save_pretrained(out, safe_serialization=True)
    print(f"random-init SAM ({SMALL.name}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
