"""Write a randomly initialised MedSAM2-layout SAM 2 model (transformers directory) for pipeline checks.

    .venv/bin/python benchmarks/random_sam2_model.py results/models/medsam2-random

No SAM 2 weights ship offline, so ``make bench`` runs the SAM 2 engine through the harness with this model
only to show that the pipeline runs end to end; its Dice means nothing. The object-score head's bias is
raised so the random model reports the object as present and propagation does not stop at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.variants import named_variant


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results/models/medsam2-random")
    if (out / "config.json").is_file():
        print(f"{out} exists")
        return 0
    torch.manual_seed(0)
    model = build_model(named_variant("medsam2"))
    with torch.no_grad():
        head = model.mask_decoder.pred_obj_score_head
        head.proj_out.bias += 10.0
    model.save_pretrained(out, safe_serialization=True)
    print(f"random-init MedSAM2 layout -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
