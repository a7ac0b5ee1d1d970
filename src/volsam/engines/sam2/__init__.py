"""SAM 2 family (SAM 2 / 2.1, MedSAM2) through transformers' ``Sam2VideoModel``: variants, conversion of
Meta-format checkpoints. transformers is imported only inside the functions that need it."""
