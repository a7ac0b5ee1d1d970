"""SAM 2 family (SAM 2 / 2.1, MedSAM2) through transformers' ``Sam2VideoModel``: variants, conversion of
Meta-format checkpoints, the tracker engine. transformers is imported only inside the modules that need it."""

from volsam.engines.base import Capabilities

NAME = "sam2"
# input_size: 1024 for SAM 2 / 2.1, 512 for MedSAM2 (the engine instance reports its model's)
CAPABILITIES = Capabilities(
    box=True, points=True, mask=True, memory=True, input_size=1024, devices=("cpu", "cuda", "mps")
)
