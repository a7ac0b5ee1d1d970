"""SAM 2 in image mode: ``Sam2ImageEngine``, the SAM 2 family's model one frame at a time, as a slice engine.

What Meta's ``SAM2ImagePredictor`` does (sam2 1.1.0), on transformers' ``Sam2VideoModel`` and without any
memory: ``set_image`` = the image encoder (Hiera + FPN neck, the decoder's two high-resolution projections
``conv_s0`` / ``conv_s1``) with the "no memory" embedding added to the lowest-resolution map, as the video
model does on a frame that has no memory; ``predict`` = the prompt encoder and the mask decoder with those
high-resolution features. Frames become model input as for the tracker (:mod:`volsam.engines.sam2.engine`:
grey repeated to RGB, /255, bilinear with antialiasing to the model's square, ImageNet mean/std; this is
torchvision's ``ToTensor -> Resize -> Normalize`` of the image predictor). Prompts: ``x / W * side``,
``y / H * side`` (``SAM2Transforms.transform_coords``); a box is its two corners labelled 2 and 3, placed
before the clicks. The decoder gives one mask (SAM 2's dynamic choice among its outputs when the first is
unstable), or for a lone click its three candidates of which the best-scored is kept. Masks: the
low-resolution logits resized bilinearly to the frame, ``> 0``; the logits handed back are clamped to
[-32, 32] as the predictor returns them. The object-score head is not used (the image predictor ignores it).

So 2D rows of a comparison run the same SAM 2 weights as the tracker, frame by frame, and 3D comes from the
slice walk (:mod:`volsam.propagation`) like any slice engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from volsam.core.errors import EngineError, InputError, PromptError
from volsam.engines.backends import check_backend, resolve_backend
from volsam.engines.base import Capabilities, SliceEmbedding, SliceEngine, SlicePrediction
from volsam.engines.precision import autocast, check_precision
from volsam.engines.prompt_checks import check_box, check_frames, check_mask_logits, check_points
from volsam.engines.sam2 import encoder, hiera, sine_cache
from volsam.engines.sam2.engine import IMAGENET_MEAN, IMAGENET_STD, default_precision, load_model

NAME = "sam2-image"
LOGIT_CLAMP = 32.0  # SAM2ImagePredictor clamps the low-resolution logits it returns to +-32


@dataclass(frozen=True)
class Sam2ImageFeatures:
    """One encoded frame: the image embedding ``(256, S/16, S/16)`` (no-memory embedding added) and the two
    high-resolution maps ``(32, S/4, S/4)``, ``(64, S/8, S/8)`` the mask decoder upsamples with."""

    image: torch.Tensor
    high_res: tuple[torch.Tensor, torch.Tensor]

    @property
    def nbytes(self) -> int:
        """Memory held (bytes): what embedding caches count."""
        return sum(t.nelement() * t.element_size() for t in (self.image, *self.high_res))


def frame_pixels(frame: np.ndarray, side: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 grey ``(H, W)`` or RGB ``(H, W, 3)`` -> float ``(3, side, side)`` SAM 2 model input (the same
    tensor as :meth:`~volsam.engines.sam2.engine.Sam2Engine.pixels`)."""
    x = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32) / 255.0)
    x = x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]
    if x.shape[-2:] != (side, side):
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    x = x.expand(1, 3, side, side)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std)[0].to(device)


class Sam2ImageEngine(SliceEngine):
    """A SAM 2 / 2.1 / MedSAM2 model segmenting single frames (box, points, mask prompts; no memory).

    Args:
        model: as for the ``sam2`` engine: a transformers folder, a Meta / MedSAM2 ``.pt``, an installed
            catalogue name or a cached hub id.
        device: a concrete torch device.
        precision: ``fp32``, ``bf16`` (autocast for the image encoder) or ``auto`` (the tracker's default).
        single_point_multimask: decode a lone click as three masks and keep the best-scored (default True).
        net: an already built ``Sam2VideoModel`` instead of ``model``.
        backend: what runs the image encoder, as for the ``sam2`` engine (``auto``, ``torch``, ``openvino``).
    """

    name = NAME

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        precision: str = "auto",
        single_point_multimask: bool = True,
        net: Any = None,
        backend: str = "auto",
    ) -> None:
        check_precision(precision)
        check_backend(backend)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise EngineError(f"unknown device {device!r}") from exc
        self.precision = default_precision(self.device) if precision == "auto" else precision
        self.multimask = bool(single_point_multimask)
        self.net = net.to(self.device).eval() if net is not None else load_model(model, str(self.device))
        sine_cache.install(self.net)
        hiera.install(self.net)
        self.side = int(self.net.config.image_size)
        self.backend = encoder.install(
            self.net, resolve_backend(backend, str(self.device), self.precision, net_given=net is not None), self.side
        )
        self.low_res = tuple(self.net.prompt_encoder.mask_input_size)  # (S/4, S/4)
        with torch.inference_mode():
            self._dense_pe = self.net.get_image_wide_positional_embeddings()
        self.capabilities = Capabilities(
            box=True, points=True, mask=True, memory=False, input_size=self.side, devices=("cpu", "cuda", "mps")
        )

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        """Encode ``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8 frames, one at a time."""
        frames = check_frames(frames)
        frame_shape = (int(frames.shape[1]), int(frames.shape[2]))
        out = []
        for frame in frames:
            with torch.inference_mode(), autocast(self.device, self.precision):
                s0, s1, image = self.net.get_image_embeddings(frame_pixels(frame, self.side, self.device)[None])
            features = Sam2ImageFeatures(image[0].float(), (s0[0].float(), s1[0].float()))
            out.append(SliceEmbedding(features=features, frame_shape=frame_shape))
        return out

    # -- prediction -------------------------------------------------------------------------------------------
    def _scaled(self, coords: np.ndarray, frame_shape: tuple[int, int]) -> torch.Tensor:
        """``(n, 2)`` frame pixels -> float32 model pixels, computed as ``SAM2Transforms.transform_coords``."""
        height, width = frame_shape
        t = torch.as_tensor(coords, dtype=torch.float32).clone()
        t[..., 0] = t[..., 0] / width
        t[..., 1] = t[..., 1] / height
        return t * self.side

    def predict(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> SlicePrediction:
        """Segment one encoded frame from a box and/or points (plus optional earlier low-resolution logits)."""
        feats = embedding.features
        if not isinstance(feats, Sam2ImageFeatures) or feats.image.shape[-1] * 4 != self.low_res[0]:
            raise InputError("embedding was not produced by this sam2-image engine")
        if box is None and points is None:
            raise PromptError("sam2-image needs a box or at least one point on the frame")
        shape = embedding.frame_shape
        coords, labels = [], []
        if box is not None:
            coords.append(self._scaled(check_box(box, shape).reshape(2, 2), shape))
            labels += [2, 3]  # SAM 2 encodes a box as its two corners with these labels, before the clicks
        if points is not None:
            pts, lab = check_points(points, point_labels, shape)
            coords.append(self._scaled(pts, shape))
            labels += [int(v) for v in lab]
        point_coords = torch.cat(coords).to(self.device)[None, None]  # (1, 1, n, 2)
        point_labels_t = torch.tensor(labels, dtype=torch.int32, device=self.device)[None, None]
        masks = None
        if mask_logits is not None:
            masks = torch.from_numpy(check_mask_logits(mask_logits, self.low_res[0])).to(self.device)[None, None]
        multimask = self.multimask and box is None and len(labels) == 1
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(
                input_points=point_coords, input_labels=point_labels_t, input_boxes=None, input_masks=masks
            )
            logits, iou, _, _ = self.net.mask_decoder(
                image_embeddings=feats.image.to(self.device)[None],
                image_positional_embeddings=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                high_resolution_features=[f.to(self.device)[None] for f in feats.high_res],
            )
        best = int(iou[0, 0].argmax()) if multimask else 0
        chosen = logits[:, :, best].float()  # (1, 1, S/4, S/4)
        full = F.interpolate(chosen, shape, mode="bilinear", align_corners=False)
        low = chosen[0, 0].clamp(-LOGIT_CLAMP, LOGIT_CLAMP)
        return SlicePrediction(
            mask=(full[0, 0] > 0).cpu().numpy(), score=float(iou[0, 0, best]), logits=low.cpu().numpy()
        )
