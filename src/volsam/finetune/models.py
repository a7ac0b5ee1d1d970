"""One training interface per recipe: a batch of clips with prompts on frame 0 -> per-frame mask logits.

:func:`build_model` returns a :class:`TrainModel` (an ``nn.Module``; DDP wraps it whole):

* ``medsam-lite`` -> :class:`LiteMedSAMTrainer`: our LiteMedSAM module (256 px, aspect kept + padding, box or
  click prompts), from the bundled weights, a ``.pth`` or random init. BatchNorm statistics stay frozen
  (eval mode) so that results do not depend on the per-process batch. A frozen image encoder runs without
  gradients and may reuse embeddings (``model.embedding_cache``, keyed by the input's content).
* ``seed-2024`` / ``medsam2-2025`` -> :class:`Sam2Trainer`: a transformers ``Sam2VideoModel`` (a directory or
  Meta ``.pt`` through the SAM 2 engine's loader, or a random-init variant whose object-score bias is raised
  by 10 so that it starts by calling objects present), run through
  :mod:`volsam.finetune.sam2_forward` (single frames for seed-2024, clips through memory for medsam2-2025).

Batch (see :class:`volsam.finetune.data.ClipDataset`): ``pixels`` (B, T, S, S) 0..255, ``kind`` (B,),
``box`` (B, 4), ``points`` (B, P, 2), ``point_labels`` (B, P), ``masks`` (B, T, S, S). Output
a dict: ``logits`` (B, T, S, S) at the input resolution, ``iou`` (B, T); SAM 2 adds ``object_logit`` (B, T)
and, when a frame made several candidate masks (clicks, tracked frames), ``multi_logits`` (B, T, M, S, S) and
``multi_iou`` (B, T, M) (frames with one mask repeat it M times).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from volsam.core.errors import InputError
from volsam.finetune.config import FinetuneConfig

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_KINDS = ("box", "points", "mask")

# (model identity, input digest) -> embedding (CPU); shared by the runs of a process (e.g. a test session)
_EMBEDDINGS: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()


Outputs = dict[str, torch.Tensor]  # see the module notes for the keys and shapes


class TrainModel(nn.Module):
    """Common part: prompt grouping, frozen parameters, parameter groups."""

    recipe: str
    size: int  # S, the square input side in pixels
    resize: str  # "pad" (aspect kept) or "stretch"
    prompt_kinds: tuple[str, ...]
    net: nn.Module

    def vision_prefix(self) -> str:
        raise NotImplementedError

    def inference_engine(self, device: torch.device) -> Any:
        """A volsam engine (the one ``volsam segment`` would load for the exported model) running a copy of
        the current weights, for validation in 3D; later training steps do not change it."""
        raise NotImplementedError

    def freeze(self, prefixes: tuple[str, ...]) -> None:
        """``requires_grad=False`` for every parameter of ``net`` whose name starts with one of ``prefixes``."""
        names = [n for n, _ in self.net.named_parameters()]
        for prefix in prefixes:
            if not any(n.startswith(prefix) for n in names):
                raise InputError(f"model.freeze: no parameter of the {self.recipe} model starts with {prefix!r}")
        for name, param in self.net.named_parameters():
            if any(name.startswith(p) for p in prefixes):
                param.requires_grad_(False)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters: ``vision`` (the image encoder) and ``other``."""
        vision, other = [], []
        for name, param in self.net.named_parameters():
            if param.requires_grad:
                (vision if name.startswith(self.vision_prefix()) else other).append(param)
        return {"vision": vision, "other": other}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run each prompt kind's part of the batch, put the rows back in batch order. Returns a dict (DDP finds
        the output tensors in it) with ``logits`` (B, T, S, S), ``iou`` (B, T) and, for SAM 2,
        ``object_logit`` (B, T)."""
        kinds = batch["kind"]
        rows: list[torch.Tensor] = []
        results: list[Outputs] = []
        for k in range(len(_KINDS)):
            idx = torch.nonzero(kinds == k).flatten()
            if idx.numel():
                sub = {key: value[idx] for key, value in batch.items()}
                results.append(self._forward_kind(sub, _KINDS[k]))
                rows.append(idx)
        order = torch.argsort(torch.cat(rows))
        keys = [k for k in results[0] if all(k in r for r in results)]  # candidates only if every group has them
        return {key: torch.cat([r[key] for r in results])[order] for key in keys}

    def _forward_kind(self, batch: dict[str, torch.Tensor], kind: str) -> Outputs:
        raise NotImplementedError


def _digest(x: torch.Tensor) -> str:
    return hashlib.blake2b(x.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()


def _train_keeping_batchnorm_frozen(module: nn.Module, mode: bool) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    del mode


# -- LiteMedSAM ---------------------------------------------------------------------------------------------
class LiteMedSAMTrainer(TrainModel):
    """LiteMedSAM for training: ``net`` has the checkpoint's parameter names (exported as a ``.pth``)."""

    recipe = "medsam-lite"
    resize = "pad"
    prompt_kinds = ("box", "points")

    def __init__(self, net: nn.Module, identity: str, cache_size: int) -> None:
        super().__init__()
        self.net = net
        self.size = int(net.image_encoder.img_size)
        self.identity = identity
        self.cache_size = cache_size

    def vision_prefix(self) -> str:
        return "image_encoder."

    def inference_engine(self, device: torch.device) -> Any:
        from volsam.engines.medsam_lite.engine import MedSAMLiteEngine

        return MedSAMLiteEngine(device=str(device), precision="fp32", net=copy.deepcopy(self.net))

    def train(self, mode: bool = True) -> LiteMedSAMTrainer:
        super().train(mode)
        _train_keeping_batchnorm_frozen(self.net, mode)
        return self

    def encoder_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.net.image_encoder.parameters())

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.encoder_frozen():
            return self.net.image_encoder(x)
        if self.cache_size <= 0:
            with torch.no_grad():
                return self.net.image_encoder(x)
        out: list[torch.Tensor | None] = []
        keys = [(self.identity, _digest(row)) for row in x]
        missing = [n for n, key in enumerate(keys) if key not in _EMBEDDINGS]
        if missing:
            with torch.no_grad():
                fresh = self.net.image_encoder(x[missing])
            for n, emb in zip(missing, fresh, strict=True):
                _EMBEDDINGS[keys[n]] = emb.detach().float().cpu()
        for key in keys:
            _EMBEDDINGS.move_to_end(key)
            out.append(_EMBEDDINGS[key])
        while len(_EMBEDDINGS) > self.cache_size:
            _EMBEDDINGS.popitem(last=False)
        return torch.stack(out).to(x.device)  # type: ignore[arg-type]

    def _forward_kind(self, batch: dict[str, torch.Tensor], kind: str) -> Outputs:
        pixels = batch["pixels"]
        b, t, s, _ = pixels.shape
        x = (pixels.reshape(b * t, 1, s, s) / 255.0).expand(b * t, 3, s, s)
        emb = self._encode(x)
        pe = self.net.prompt_encoder
        if kind == "box":
            sparse, dense = pe(points=None, boxes=batch["box"][:, None], masks=None)
        else:
            sparse, dense = pe(points=(batch["points"], batch["point_labels"]), boxes=None, masks=None)
        logits, iou = self.net.mask_decoder(emb, pe.dense_pe(), sparse, dense, multimask_output=False)
        return {"logits": logits.reshape(b, t, s, s), "iou": iou.reshape(b, t)}


def litemedsam_net(size: int = 256) -> nn.Module:
    """The LiteMedSAM network; ``size`` other than 256 gives the same architecture for ``size`` px inputs
    (embedding ``size/4``), for random-init experiments and fast tests only (the weights are 256 px)."""
    from volsam.engines.medsam_lite.model import LiteMedSAM

    return LiteMedSAM(input_size=size)


def build_litemedsam(config: FinetuneConfig) -> LiteMedSAMTrainer:
    from volsam.engines import checkpoints
    from volsam.engines.medsam_lite.model import INPUT_SIZE

    source, size = config.model.source, config.model.image_size or INPUT_SIZE
    if size % 64:
        raise InputError(f"model.image_size {size} must be a multiple of 64 for LiteMedSAM")
    if source == "random":
        torch.manual_seed(config.seed)
        net = litemedsam_net(size)
        identity = f"random-litemedsam-{size}-seed{config.seed}"
    else:
        if size != INPUT_SIZE:
            raise InputError(f"model.image_size {size}: the LiteMedSAM weights are {INPUT_SIZE} px (or source: random)")
        path = checkpoints.resolve_litemedsam(source)
        net = litemedsam_net()
        checkpoints.load_strict(net, checkpoints.load_state_dict(path), source=str(path))
        identity = f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
    model = LiteMedSAMTrainer(net, identity, config.model.embedding_cache)
    model.freeze(config.model.freeze)
    return model


# -- SAM 2 --------------------------------------------------------------------------------------------------
class Sam2Trainer(TrainModel):
    """A transformers ``Sam2VideoModel`` trained through :mod:`volsam.finetune.sam2_forward`."""

    resize = "stretch"
    prompt_kinds = ("box", "points", "mask")

    def __init__(self, net: nn.Module, recipe: str) -> None:
        super().__init__()
        self.net = net
        self.recipe = recipe
        self.size = int(net.config.image_size)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def vision_prefix(self) -> str:
        return "vision_encoder."

    def inference_engine(self, device: torch.device) -> Any:
        from volsam.engines.sam2.engine import Sam2Engine

        return Sam2Engine(device=str(device), precision="fp32", net=copy.deepcopy(self.net))

    def _prompt(self, batch: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
        if kind == "box":
            return {"boxes": batch["box"]}
        if kind == "points":
            return {"points": batch["points"], "point_labels": batch["point_labels"]}
        side = self.size // 4
        small = F.interpolate(batch["masks"][:, :1], size=(side, side), mode="area")
        return {"mask_inputs": (small > 0.5).float() * 20.0 - 10.0}

    def _forward_kind(self, batch: dict[str, torch.Tensor], kind: str) -> Outputs:
        from volsam.finetune import sam2_forward

        pixels = batch["pixels"]
        b, t, s, _ = pixels.shape
        x = ((pixels.reshape(b * t, 1, s, s) / 255.0).expand(b * t, 3, s, s) - self.mean) / self.std
        prompt = self._prompt(batch, kind)
        if t == 1:
            frames = [sam2_forward.frame_forward(self.net, x, **prompt)]
        else:
            frames = sam2_forward.clip_forward(self.net, x.reshape(b, t, 3, s, s), {0: prompt})
        logits = torch.stack([F.interpolate(f.logits.float(), size=(s, s), mode="bilinear") for f in frames], 1)
        out = {
            "logits": logits[:, :, 0],
            "iou": torch.stack([f.iou[:, 0] for f in frames], 1),
            "object_logit": torch.stack([f.object_score[:, 0] for f in frames], 1),
        }
        candidates = [f.multi_logits if f.multi_logits is not None else f.logits for f in frames]
        m = max(c.shape[1] for c in candidates)
        if m > 1:  # every candidate mask, for the loss of SAM 2 training (the best candidate is trained)
            ious = [f.multi_iou if f.multi_iou is not None else f.iou for f in frames]
            up = [F.interpolate(c.float(), size=(s, s), mode="bilinear").expand(-1, m, -1, -1) for c in candidates]
            out["multi_logits"] = torch.stack(up, 1)  # (B, T, M, S, S); single-mask frames repeated
            out["multi_iou"] = torch.stack([i.float().expand(-1, m) for i in ious], 1)  # (B, T, M)
        return out


def build_sam2(config: FinetuneConfig) -> Sam2Trainer:
    from volsam.finetune import sam2_forward

    source = config.model.source
    if source is None:
        raise InputError(f"recipe {config.recipe} needs model.source: a SAM 2 directory, a Meta .pt or 'random'")
    if source == "random":
        import dataclasses

        from volsam.engines.sam2.convert import build_model
        from volsam.engines.sam2.variants import named_variant

        variant = named_variant(config.model.variant)
        if config.model.image_size is not None:
            variant = dataclasses.replace(variant, image_size=config.model.image_size)
        torch.manual_seed(config.seed)
        net = build_model(variant)
        with torch.no_grad():  # a random object-score head says "absent" and gates every mask (no gradient)
            net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
            # one Gaussian matrix, as in Meta's model and every converted checkpoint (random init draws two)
            shared = net.prompt_encoder.shared_embedding.positional_embedding
            net.shared_image_embedding.positional_embedding.copy_(shared)
    else:
        from volsam.engines.sam2.engine import load_model

        net = load_model(source, "cpu")
    net.train()
    model = Sam2Trainer(net, config.recipe)
    groups = sam2_forward.trainable_groups(net, config.recipe)
    trainable = {id(p) for params in groups.values() for p in params}
    for param in net.parameters():
        param.requires_grad_(id(param) in trainable)
    model.freeze(config.model.freeze)
    return model


BUILDERS: dict[str, Callable[[FinetuneConfig], TrainModel]] = {
    "medsam-lite": build_litemedsam,
    "seed-2024": build_sam2,
    "medsam2-2025": build_sam2,
}


def build_model(config: FinetuneConfig) -> TrainModel:
    """The recipe's model, on the CPU, in training mode, with the recipe's parts frozen."""
    model = BUILDERS[config.recipe](config)
    model.train()
    n_train = sum(p.numel() for p in model.net.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.net.parameters())
    log.info("%s model: %d of %d parameters trainable, input %d px", config.recipe, n_train, n_all, model.size)
    return model
