"""SAM 2's image encoder (Hiera + FPN neck + the mask decoder's two high-resolution projections) as one
traceable module, and its installation on a loaded model on another backend (OpenVINO fp32 on the CPU).

transformers' ``Sam2VideoModel.get_image_features`` runs the Hiera backbone, the FPN neck and
``mask_decoder.conv_s0`` / ``conv_s1``, then flattens the maps. :class:`ImageEncoder` computes the same three
maps with the same modules, with two changes that only make it traceable and convertible:

* Hiera's window position embedding (``F.interpolate(pos_embed, mode="bicubic")`` plus the tiled window
  embedding) depends only on the weights and the input side, so it is computed once in torch and kept as a
  buffer. OpenVINO's bicubic interpolation is not PyTorch's (converted as is, the last feature map moved by
  up to 0.65 on a random-init model).
* Hiera's attention is traced with transformers' own forward (:func:`volsam.engines.sam2.hiera.uninstalled`:
  the converter misreads volsam's leaner one).
* the neck's sine position encodings are not outputs: they depend only on the shapes and stay in torch
  (cached per shape by :mod:`volsam.engines.sam2.sine_cache`).

:func:`install` gives one model instance a ``get_image_features`` that runs the converted encoder and returns
what transformers' method returns (same fields, shapes and flattening); the tracker (``Sam2VideoModel``'s
frame loop) and the image engine (``get_image_embeddings``) both go through it.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch
import torch.nn.functional as F

from volsam.core.errors import EngineError
from volsam.engines.sam2 import hiera

log = logging.getLogger(__name__)

#: part of the cached file name: a new value when what is traced changes (old files are then not reused)
FORMAT = "v1"


class ImageEncoder(torch.nn.Module):
    """``(1, 3, side, side)`` normalised pixels -> the three feature maps of ``get_image_features`` before
    flattening: ``(1, C0, side/4, side/4)`` (after ``conv_s0``), ``(1, C1, side/8, side/8)`` (after
    ``conv_s1``) and ``(1, 256, side/16, side/16)`` (the top level), float32.

    Shares (does not copy) the modules of ``net`` (a transformers ``Sam2VideoModel``).
    """

    def __init__(self, net: Any, side: int) -> None:
        super().__init__()
        vision = net.vision_encoder
        self.backbone = vision.backbone
        self.convs = vision.neck.convs
        self.top_down = tuple(vision.neck.fpn_top_down_levels)
        self.levels = int(vision.num_feature_levels)
        self.conv_s0 = net.mask_decoder.conv_s0
        self.conv_s1 = net.mask_decoder.conv_s1
        self.stage_ends = tuple(int(i) for i in self.backbone.stage_ends)
        with torch.no_grad():
            grid = self.backbone.patch_embed(torch.zeros(1, 3, side, side, device=self._device())).shape[1:3]
            self.register_buffer("pos_embed", self.backbone._get_pos_embed(tuple(grid)).detach().clone())

    def _device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.backbone.patch_embed(pixels) + self.pos_embed
        stages = []
        for i, block in enumerate(self.backbone.blocks):
            hidden = block(hidden)
            if i in self.stage_ends:
                stages.append(hidden)
        # the neck, top-down as transformers' Sam2VisionNeck (without its position encodings)
        n = len(self.convs) - 1
        maps = []
        previous = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](stages[i].permute(0, 3, 1, 2))
            if i not in self.top_down or i == n or previous is None:
                previous = lateral
            else:
                previous = lateral + F.interpolate(previous, scale_factor=2.0, mode="nearest")
            maps.append(previous)
        maps = maps[-self.levels :][::-1]  # high to low resolution
        return self.conv_s0(maps[0]), self.conv_s1(maps[1]), maps[2]


def _features(self: Any, pixel_values: torch.Tensor, **_: Any) -> Any:
    """``get_image_features`` on the installed backend: the fields transformers' method returns (FPN maps
    and their position encodings flattened to ``(H*W, N, C)``, highest resolution first)."""
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoVisionEncoderOutput

    maps = [m.to(pixel_values.device) for m in self._volsam_encoder.outputs(pixel_values)]
    encoding = self.vision_encoder.neck.position_encoding
    positions = [encoding(m.shape, m.device, m.dtype).to(m.dtype) for m in maps]
    return Sam2VideoVisionEncoderOutput(
        last_hidden_state=None,
        fpn_hidden_states=[m.flatten(2).permute(2, 0, 1) for m in maps],
        fpn_position_encoding=[p.flatten(2).permute(2, 0, 1) for p in positions],
    )


def check_layout(net: Any) -> None:
    """:class:`EngineError` unless ``net`` has the modules :class:`ImageEncoder` reads (another transformers
    version may not)."""
    vision = getattr(net, "vision_encoder", None)
    needed = (
        vision is not None
        and all(hasattr(vision.backbone, a) for a in ("patch_embed", "blocks", "stage_ends", "_get_pos_embed"))
        and all(hasattr(vision.neck, a) for a in ("convs", "fpn_top_down_levels", "position_encoding"))
        and hasattr(net.mask_decoder, "conv_s0")
        and int(getattr(vision, "num_feature_levels", 0)) == 3
    )
    if not needed:
        raise EngineError("this transformers' SAM 2 image encoder is not the one volsam can convert")


def install(net: Any, backend: str, side: int) -> str:
    """Run ``net``'s image encoder on ``backend`` (``torch``: nothing changes; ``openvino``: converted once,
    cached on disk). Returns the backend that runs it: ``torch`` with one warning when the conversion fails."""
    if backend == "torch":
        return "torch"
    if getattr(net, "_volsam_encoder", None) is not None:
        return backend  # already installed on this model (another engine built on the same net)
    from volsam.engines.backends.openvino import load_or_none

    try:
        check_layout(net)
    except EngineError as exc:
        log.warning("backend %s unavailable for the SAM 2 image encoder (%s): using torch", backend, exc)
        return "torch"
    runner = load_or_none(
        ImageEncoder(net, side).eval(),
        (1, 3, side, side),
        name=f"sam2-encoder-{FORMAT}-{side}",
        what="the SAM 2 image encoder",
        trace_context=lambda: hiera.uninstalled(net),
        dynamic_batch=False,
    )
    if runner is None:
        return "torch"
    net._volsam_encoder = runner
    net.get_image_features = types.MethodType(_features, net)
    return backend
