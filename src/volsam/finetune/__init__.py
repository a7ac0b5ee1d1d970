"""Fine-tuning (issue 8): train SAM 2-family models and LiteMedSAM on your own 3D data.

``volsam finetune CONFIG`` (or ``torchrun ... -m volsam finetune CONFIG``) runs :func:`volsam.finetune.trainer.train`.
Modules: :mod:`.config` (YAML -> typed config, shipped recipes in ``configs/``), :mod:`.data` (clips, prompts,
augmentation, split), :mod:`.losses`, :mod:`.models` (one training interface per recipe), :mod:`.trainer`
(the loop: DDP, checkpoints, resume, validation), :mod:`.export` (models that ``volsam segment --model`` loads).
This package module imports nothing heavy.
"""
