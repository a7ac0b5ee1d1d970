"""``SamEngine`` (SAM ViT-B/L/H) and ``MedSAMEngine`` (MedSAM ViT-B): transformers' ``SamModel`` behind the
:class:`~volsam.engines.base.SliceEngine` interface.

Both encode a frame to a 256 x 64 x 64 embedding (at the usual 1024 input) and decode one mask per prompt
with the prompt encoder and mask decoder; they differ in preprocessing, prompt scaling and mask
post-processing, each as its reference computes it (equations in :mod:`volsam.engines.sam.preprocess`).
A single click without a box is ambiguous: SAM then asks the decoder for its three masks and keeps the one
with the highest predicted IoU (Meta's advice for single points); MedSAM, trained on boxes, always decodes
its single-mask output as its inference script does.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from volsam.core.errors import EngineError, InputError, PromptError
from volsam.engines.backends import check_backend, resolve_backend
from volsam.engines.base import Capabilities, SliceEmbedding, SliceEngine, SlicePrediction
from volsam.engines.precision import autocast, check_precision, native_bf16
from volsam.engines.prompt_checks import check_box, check_frames, check_mask_logits, check_points
from volsam.engines.sam import (
    CAPABILITIES,
    MEDSAM_DEFAULT_MODEL,
    MEDSAM_NAME,
    SAM_DEFAULT_MODEL,
    SAM_NAME,
    encoder,
)
from volsam.engines.sam.model import load_model
from volsam.engines.sam.preprocess import (
    SAM_MEAN,
    SAM_STD,
    medsam_normalise,
    medsam_resize,
    sam_resize,
    sam_resized_shape,
)

log = logging.getLogger(__name__)


def default_precision(device: torch.device) -> str:
    """What ``precision="auto"`` resolves to: ``fp32`` on every device (bf16 is opt-in until measured)."""
    del device
    return "fp32"


def default_batch_size(device: torch.device) -> int:
    """Frames per encoder forward: 1 on the CPU, 4 on GPUs (a ViT at 1024 takes ~1 GB of activations each)."""
    return 1 if device.type == "cpu" else 4


class SamEngine(SliceEngine):
    """SAM 1 slice engine (box, points and mask prompts; no memory), with SAM's own preprocessing.

    Args:
        model: a Meta ``.pth`` (converted in memory), a transformers folder, a catalogue name (``sam-vit-b``,
            ``sam-vit-l``, ``sam-vit-h``) or a hub id already in the local cache; None = ``sam-vit-b``.
        device: a concrete torch device (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        precision: ``fp32``, ``bf16`` (autocast for the image encoder) or ``auto`` (= fp32).
        batch_size: frames per encoder forward (default :func:`default_batch_size`).
        single_point_multimask: decode a lone click (no box) as three candidate masks and keep the one with
            the best predicted IoU (default: True for SAM, False for MedSAM).
        net: an already built transformers ``SamModel`` instead of ``model``.
        backend: what runs the ViT image encoder: ``torch``, ``openvino`` (CPU, fp32: converted once and
            cached on disk, :mod:`volsam.engines.sam.encoder`) or ``auto``
            (:func:`~volsam.engines.backends.resolve_backend`; torch for a ``net`` handed in). Torch is the
            reference and the fallback (one log line); prompt encoder and mask decoder run in torch.
    """

    name = SAM_NAME
    default_model = SAM_DEFAULT_MODEL
    multimask_default = True

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        precision: str = "auto",
        batch_size: int | None = None,
        single_point_multimask: bool | None = None,
        net: Any = None,
        backend: str = "auto",
    ) -> None:
        check_precision(precision)
        check_backend(backend)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise EngineError(f"batch_size must be a positive integer, got {batch_size!r}")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise EngineError(f"unknown device {device!r}") from exc
        if self.device.type not in CAPABILITIES.devices:
            raise EngineError(f"{self.name} does not run on {device!r}; choose one of {CAPABILITIES.devices}")
        self.precision = default_precision(self.device) if precision == "auto" else precision
        if self.precision == "bf16" and not native_bf16(self.device):
            log.warning("bf16 requested on %s, which has no native bf16: expect it to be slow", self.device)
        self.batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        self.multimask = self.multimask_default if single_point_multimask is None else bool(single_point_multimask)
        if net is not None:
            self.net = net.to(self.device).eval()
        else:
            self.net = load_model(model, self.name, self.default_model, str(self.device))
        vision = self.net.config.vision_config
        self.side = int(vision.image_size)
        self.grid = self.side // int(vision.patch_size)
        self.channels = int(vision.output_channels)
        self.low_res = 4 * self.grid  # side of the decoder's mask logits (256 at 1024)
        with torch.inference_mode():
            self._dense_pe = self.net.get_image_wide_positional_embeddings()
        self.capabilities = Capabilities(
            box=True, points=True, mask=True, memory=False, input_size=self.side, devices=CAPABILITIES.devices
        )
        backend = resolve_backend(backend, str(self.device), self.precision, net_given=net is not None)
        self._encoder = encoder.load(self.net, backend, self.side, self.name)
        self.backend = "torch" if self._encoder is None else backend
        log.info(
            "%s engine on %s, input %d, precision %s, image encoder on %s",
            self.name, self.device, self.side, self.precision, self.backend,
        )  # fmt: skip

    # ---------------------------------------------------------------- geometry (overridden by MedSAM)
    def resized_shape(self, frame_shape: tuple[int, int]) -> tuple[int, int]:
        """``(h, w)`` of a frame inside the model's square input (SAM: longest side = input side)."""
        return sam_resized_shape(frame_shape[0], frame_shape[1], self.side)

    def to_model(self, coords: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """``(n, 2)`` float64 ``(x, y)`` frame pixels -> input pixels: ``x * w / W``, ``y * h / H`` (Meta's
        ``apply_coords``; the prompt encoder adds the half pixel)."""
        height, width = frame_shape
        h, w = self.resized_shape(frame_shape)
        out = np.array(coords, dtype=np.float64, copy=True)
        out[..., 0] = out[..., 0] * (w / width)
        out[..., 1] = out[..., 1] * (h / height)
        return out

    def preprocess_frame(self, frame: np.ndarray) -> torch.Tensor:
        """One uint8 frame -> float32 ``(3, side, side)``: PIL bilinear resize of the longest side, ImageNet
        mean/std on the 0..255 scale, zero padding bottom/right."""
        resized = torch.from_numpy(sam_resize(frame, self.side)).float()
        x = resized.permute(2, 0, 1) if resized.ndim == 3 else resized[None].expand(3, -1, -1)
        mean = torch.tensor(SAM_MEAN).view(3, 1, 1)
        std = torch.tensor(SAM_STD).view(3, 1, 1)
        x = (x - mean) / std
        return F.pad(x, (0, self.side - x.shape[2], 0, self.side - x.shape[1]))

    def postprocess(self, logits: torch.Tensor, frame_shape: tuple[int, int]) -> np.ndarray:
        """Low-resolution logits ``(1, 1, s, s)`` -> bool mask ``(H, W)``: bilinear to the input square, crop
        the resized frame, bilinear to the frame, ``> 0`` (``Sam.postprocess_masks``)."""
        h, w = self.resized_shape(frame_shape)
        full = F.interpolate(logits.float(), (self.side, self.side), mode="bilinear", align_corners=False)
        full = F.interpolate(full[..., :h, :w], frame_shape, mode="bilinear", align_corners=False)
        return (full[0, 0] > 0).cpu().numpy()

    # ---------------------------------------------------------------- encoding
    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return autocast(self.device, self.precision)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(n, H, W)`` / ``(n, H, W, 3)`` uint8 -> ``(n, 3, side, side)`` float32 on the engine's device."""
        return torch.stack([self.preprocess_frame(f) for f in frames]).to(self.device)

    def encode_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Image encoder on a preprocessed ``(n, 3, side, side)`` batch -> float32 ``(n, 256, grid, grid)``."""
        if self._encoder is not None:
            return self._encoder(x)
        with torch.inference_mode(), self._autocast():
            return self.net.vision_encoder(x).last_hidden_state.float()

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        """Encode ``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8 frames (a single ``(H, W)`` frame too)."""
        frames = check_frames(frames)
        frame_shape = (int(frames.shape[1]), int(frames.shape[2]))
        out: list[SliceEmbedding] = []
        for start in range(0, len(frames), self.batch_size):
            features = self.encode_tensor(self.preprocess(frames[start : start + self.batch_size]))
            per_frame = features.unbind(0) if len(features) == 1 else [f.clone() for f in features]
            out.extend(SliceEmbedding(features=f, frame_shape=frame_shape) for f in per_frame)
        return out

    # ---------------------------------------------------------------- prediction
    def _prompts(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None,
        points: np.ndarray | None,
        point_labels: np.ndarray | None,
        mask_logits: np.ndarray | None,
    ) -> dict[str, torch.Tensor | None]:
        shape = embedding.frame_shape
        prompts: dict[str, torch.Tensor | None] = {"input_points": None, "input_labels": None, "input_boxes": None}
        if box is not None:
            corners = self.to_model(check_box(box, shape).reshape(2, 2), shape).reshape(1, 1, 4)
            prompts["input_boxes"] = torch.as_tensor(corners, dtype=torch.float32, device=self.device)
        if points is not None:
            pts, lab = check_points(points, point_labels, shape)
            coords = self.to_model(pts, shape)[None, None]  # (1, 1, n, 2)
            prompts["input_points"] = torch.as_tensor(coords, dtype=torch.float32, device=self.device)
            prompts["input_labels"] = torch.as_tensor(lab[None, None], device=self.device)
        masks = None
        if mask_logits is not None:
            masks = torch.from_numpy(check_mask_logits(mask_logits, self.low_res)).to(self.device)[None, None]
        prompts["input_masks"] = masks
        return prompts

    def decode(
        self, features: torch.Tensor, prompts: dict[str, torch.Tensor | None], multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder on one embedding ``(256, g, g)``: logits ``(1, 1, k, s, s)`` and
        predicted IoU ``(1, 1, k)`` with ``k`` = 3 when ``multimask`` else 1."""
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(**prompts)
            return self.net.mask_decoder(
                image_embeddings=features.to(self.device)[None],
                image_positional_embeddings=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )

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
        if not isinstance(feats, torch.Tensor) or tuple(feats.shape) != (self.channels, self.grid, self.grid):
            raise InputError(f"embedding was not produced by this {self.name} engine")
        if box is None and points is None:
            raise PromptError(f"{self.name} needs a box or at least one point on the frame")
        prompts = self._prompts(embedding, box, points, point_labels, mask_logits)
        lone_click = box is None and prompts["input_points"] is not None and prompts["input_points"].shape[2] == 1
        multimask = self.multimask and lone_click
        logits, iou = self.decode(feats, prompts, multimask)
        best = int(iou[0, 0].argmax()) if multimask else 0
        chosen = logits[:, :, best]  # (1, 1, s, s)
        mask = self.postprocess(chosen, embedding.frame_shape)
        return SlicePrediction(mask=mask, score=float(iou[0, 0, best]), logits=chosen[0, 0].float().cpu().numpy())


class MedSAMEngine(SamEngine):
    """MedSAM slice engine: SAM ViT-B fine-tuned on medical images, with MedSAM's own preprocessing.

    Args: as :class:`SamEngine` (``model`` None = ``medsam-vit-b``), plus ``exact_resize``: resize frames with
    skimage's three-channel computation (bit-identical to MedSAM's script, ~20x slower; see
    :func:`~volsam.engines.sam.preprocess.medsam_resize`).
    """

    name = MEDSAM_NAME
    default_model = MEDSAM_DEFAULT_MODEL
    multimask_default = False

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        precision: str = "auto",
        batch_size: int | None = None,
        single_point_multimask: bool | None = None,
        net: Any = None,
        exact_resize: bool = False,
        backend: str = "auto",
    ) -> None:
        self.exact_resize = bool(exact_resize)
        super().__init__(model, device, precision, batch_size, single_point_multimask, net, backend)

    def resized_shape(self, frame_shape: tuple[int, int]) -> tuple[int, int]:
        """MedSAM stretches every frame to the whole square (aspect not kept)."""
        return self.side, self.side

    def to_model(self, coords: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """``x / W * side``, ``y / H * side`` (``box_np / [W, H, W, H] * 1024``)."""
        height, width = frame_shape
        return np.asarray(coords, dtype=np.float64) / np.array([width, height]) * self.side

    def preprocess_frame(self, frame: np.ndarray) -> torch.Tensor:
        """One uint8 frame -> float32 ``(3, side, side)``: order-3 spline resize to the square, uint8, min-max
        to [0, 1] over the whole image."""
        x = torch.from_numpy(medsam_normalise(medsam_resize(frame, self.side, exact=self.exact_resize)))
        return x.permute(2, 0, 1) if x.ndim == 3 else x[None].expand(3, -1, -1)

    def postprocess(self, logits: torch.Tensor, frame_shape: tuple[int, int]) -> np.ndarray:
        """``sigmoid`` of the low-resolution logits, bilinear to the frame, ``> 0.5`` (``medsam_inference``)."""
        prob = F.interpolate(torch.sigmoid(logits.float()), frame_shape, mode="bilinear", align_corners=False)
        return (prob[0, 0] > 0.5).cpu().numpy()
