"""SAM 2 family tracker engine: frames streamed one at a time through transformers' ``Sam2VideoModel``.

Frames are uint8 ``(H, W)`` (see :mod:`volsam.engines.base`) or RGB ``(H, W, 3)``. Each is turned into the
model's input here (no transformers image processor: those need torchvision): grey repeated to 3 channels
(RGB as is), /255, resized to the model's square (bilinear with antialiasing; aspect not kept), ImageNet
mean/std. Prompts are scaled from frame pixels to that square. Masks come back as the model's low-resolution
logits resized to the frame.

Memory stays bounded on long stacks: after each frame the session drops the pixels of frames already
processed and the per-frame outputs that the memory bank can no longer reach (older than
``MEMORY_REACH`` frames from both the current frame and every prompted frame).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from volsam.core.errors import ModelNotFound, PromptError
from volsam.engines.backends import check_backend, resolve_backend
from volsam.engines.base import Capabilities, FramePrompt, FrameSource, TrackedFrame, TrackerEngine
from volsam.engines.precision import autocast, check_precision, native_bf16
from volsam.engines.sam2 import encoder, hiera, rope, sine_cache

log = logging.getLogger(__name__)

NAME = "sam2"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEMORY_REACH = 16  # frames: object pointers look back 15 frames, mask memories 6
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, not a path


def load_model(model: str | os.PathLike[str] | None, device: str) -> Any:
    """A ``Sam2VideoModel`` from a transformers directory, a Meta / MedSAM2 ``.pt``, a catalogue name whose
    directory is installed, or a hub id already in the local Hugging Face cache (never downloads)."""
    from transformers import Sam2VideoModel

    from volsam.engines.catalog import CATALOG, models_dir

    if model is None:
        raise ModelNotFound("the sam2 engine needs --model: a directory, a .pt, or a name from `volsam models list`")
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} is not a transformers model directory (no config.json)")
        net = Sam2VideoModel.from_pretrained(path)
    elif path.is_file():
        from volsam.engines.sam2.convert import load_meta_checkpoint

        net, _ = load_meta_checkpoint(path)
    elif text.lower() in CATALOG:
        local = models_dir() / text.lower()
        if not (local / "config.json").is_file():
            raise ModelNotFound(
                f"model {text!r} is not installed in {models_dir()}: run `volsam models download {text}` "
                f"(or `volsam models convert FILE.pt {local}`)"
            )
        net = Sam2VideoModel.from_pretrained(local)
    elif _HUB_ID.match(text):
        try:
            net = Sam2VideoModel.from_pretrained(text, local_files_only=True)
        except OSError as exc:
            raise ModelNotFound(f"{text!r} is not in the local Hugging Face cache; download it first") from exc
    else:
        raise ModelNotFound(f"SAM 2 model not found: {text!r}")
    return net.to(device).eval()


def default_precision(device: torch.device) -> str:
    """What ``precision="auto"`` resolves to: bf16 autocast on CUDA GPUs with native bf16, fp32 elsewhere.

    Measured on the project's 2-core AVX-512-BF16 CPU (benchmarks/bench_sam2_precision.py, random-init
    2.1-tiny at 512, 16 frames): bf16 is 2.1x faster (0.34 vs 0.72 s/frame) but the masks move (IoU against
    fp32 0.974 at worst), so the CPU default stays fp32 and bf16 is opt-in there.
    """
    return "bf16" if device.type == "cuda" and native_bf16(device) else "fp32"


class Sam2Engine(TrackerEngine):
    """SAM 2 / 2.1 / MedSAM2 behind the :class:`TrackerEngine` interface.

    Args:
        model: a transformers directory, a Meta / MedSAM2 ``.pt``, an installed catalogue name or a cached hub id.
        device: a concrete torch device (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        net: an already built ``Sam2VideoModel`` instead of ``model``.
        keep_logits: each :class:`TrackedFrame` also carries the mask logits at the frame's resolution (for
            comparisons with other implementations; costs a float array per frame).
        precision: ``fp32``, ``bf16`` (autocast) or ``auto`` = :func:`default_precision`.
        backend: what runs the image encoder (Hiera + FPN neck): ``torch``, ``openvino`` (CPU, fp32: converted
            once and cached on disk, :mod:`volsam.engines.sam2.encoder`) or ``auto``
            (:func:`~volsam.engines.backends.resolve_backend`; torch for a ``net`` handed in). Torch is the
            reference and the fallback (one log line). Memory attention, memory encoder, prompt encoder and
            mask decoder run in torch.
    """

    name = NAME

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        net: Any = None,
        keep_logits: bool = False,
        precision: str = "auto",
        backend: str = "auto",
    ):
        check_precision(precision)
        check_backend(backend)
        self.device = torch.device(device)
        self.keep_logits = keep_logits
        self.precision = default_precision(self.device) if precision == "auto" else precision
        self.net = net.to(self.device).eval() if net is not None else load_model(model, device)
        rope.install(self.net)  # same numbers, faster memory attention (see volsam.engines.sam2.rope)
        sine_cache.install(self.net)  # position embeddings computed once per shape, not once per frame
        hiera.install(self.net)  # the image encoder without transformers' discarded attention matrix
        self.side = int(self.net.config.image_size)
        self.backend = encoder.install(
            self.net, resolve_backend(backend, str(self.device), self.precision, net_given=net is not None), self.side
        )
        log.info("SAM 2 engine on %s, precision %s, image encoder on %s", self.device, self.precision, self.backend)
        self.capabilities = Capabilities(
            box=True, points=True, mask=True, memory=True, input_size=self.side, devices=("cpu", "cuda", "mps")
        )

    # -- input ----------------------------------------------------------------------------------------------
    def pixels(self, frame: np.ndarray) -> torch.Tensor:
        """uint8 grey ``(H, W)`` (repeated to 3 channels) or RGB ``(H, W, 3)`` (SAM 2's native input, e.g.
        endoscopy video) -> float ``(3, side, side)`` normalised model input."""
        x = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32) / 255.0)
        x = x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False, antialias=True)
        x = x.expand(1, 3, self.side, self.side)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std)[0].to(self.device)

    def _add_prompt(self, session: Any, frame_idx: int, obj_id: int, prompt: FramePrompt, shape: tuple[int, int]):
        h, w = shape
        obj_idx = session.obj_id_to_idx(obj_id)
        if prompt.mask is not None:
            mask = torch.as_tensor(np.asarray(prompt.mask, dtype=np.float32))[None, None]
            mask = F.interpolate(
                mask, size=(self.side, self.side), mode="bilinear", align_corners=False, antialias=True
            )
            session.add_mask_inputs(obj_idx, frame_idx, (mask >= 0.5).float())
            session.remove_point_inputs(obj_idx, frame_idx)
            return
        scaled = prompt.scaled(self.side / w, self.side / h)  # frame pixels -> the model's square
        coords: list[list[float]] = []
        labels: list[int] = []
        if scaled.box is not None:
            x0, y0, x1, y1 = scaled.box
            coords += [[x0, y0], [x1, y1]]
            labels += [2, 3]  # SAM 2 encodes a box as its two corners with these labels
        if scaled.points is not None:
            lab = np.ones(len(scaled.points), int) if prompt.point_labels is None else np.asarray(prompt.point_labels)
            coords += scaled.points.tolist()
            labels += [int(v) for v in lab]
        if not coords:
            raise PromptError(f"frame {frame_idx}: object {obj_id} has no box, point or mask")
        point_coords = torch.tensor(coords, dtype=torch.float32)
        session.add_point_inputs(
            obj_idx,
            frame_idx,
            {
                "point_coords": point_coords.view(1, 1, -1, 2).to(self.device),
                "point_labels": torch.tensor(labels, dtype=torch.int32).view(1, 1, -1).to(self.device),
            },
        )
        session.remove_mask_inputs(obj_idx, frame_idx)

    # -- tracking -------------------------------------------------------------------------------------------
    def track(
        self,
        frames: FrameSource,
        prompts: dict[int, dict[int, FramePrompt]],
        *,
        limit: tuple[int, int] | None = None,
        absent_patience: int | None = 3,
        start: int | None = None,
    ) -> Iterator[TrackedFrame]:
        from transformers import Sam2VideoInferenceSession

        n = len(frames)
        lo, hi = limit if limit is not None else (0, n - 1)
        if not prompts:
            raise PromptError("no prompted frame")
        order = sorted(prompts)
        if start is None:
            if not (0 <= lo <= order[0] and order[-1] <= hi < n):
                raise PromptError(f"prompted frames {order} must lie in the range {lo}..{hi} of {n} frames")
        elif start not in prompts or not (0 <= lo <= start <= hi < n) or not (0 <= order[0] and order[-1] < n):
            raise PromptError(f"start frame {start} must be a prompted frame in the range {lo}..{hi} of {n} frames")
        h, w = frames.frame_shape
        session = Sam2VideoInferenceSession(
            video=None,
            video_height=h,
            video_width=w,
            inference_device=self.device,
            inference_state_device=self.device,
            video_storage_device=self.device,
            dtype=torch.float32,
        )
        obj_ids = sorted({o for per_frame in prompts.values() for o in per_frame})
        for o in obj_ids:
            session.obj_id_to_idx(o)  # register every object before the first prediction

        with torch.inference_mode():
            for s in order:
                for o, prompt in prompts[s].items():
                    self._add_prompt(session, s, o, prompt, (h, w))
                session.obj_with_new_inputs = list(prompts[s])
                result = self._run(session, frames, s, reverse=False, prompted=order)
                if lo <= s <= hi:
                    yield result
            origin = order[0] if start is None else start
            for step, end in ((1, hi), (-1, lo)):  # forward from the first prompted frame (or start), then back
                absent = 0
                s = origin + step
                while (s <= end) if step > 0 else (s >= end):
                    result = self._run(session, frames, s, reverse=step < 0, prompted=order)
                    if s not in prompts:
                        yield result
                    present = bool((result.presence > 0).any() and result.masks.any())
                    beyond = s > order[-1] if step > 0 else s < order[0]  # never stop between prompted frames
                    absent = absent + 1 if beyond and not present else 0
                    if absent_patience is not None and absent >= absent_patience:
                        log.debug("direction %+d: no object for %d frames, stopping at %d", step, absent, s)
                        break
                    s += step

    def _run(self, session: Any, frames: Any, s: int, reverse: bool, prompted: list[int]) -> TrackedFrame:
        h, w = frames.frame_shape
        with autocast(self.device, self.precision):
            out = self.net(
                inference_session=session, frame_idx=s, frame=self.pixels(frames.frames([s])[0]), reverse=reverse
            )
        logits = out.pred_masks  # (n_obj, 1, side/4, side/4)
        full = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        presence = torch.as_tensor(out.object_score_logits).float().reshape(-1)
        self._forget(session, s, prompted)
        kept = full.cpu().numpy() if self.keep_logits else None
        return TrackedFrame(s, (full > 0).cpu().numpy(), presence.cpu().numpy(), kept)

    @staticmethod
    def _forget(session: Any, current: int, prompted: list[int]) -> None:
        """Drop pixels and per-frame outputs that no later frame's memory can use."""
        if session.processed_frames:
            for t in [t for t in session.processed_frames if t != current]:
                del session.processed_frames[t]

        def reachable(t: int) -> bool:
            return abs(t - current) <= MEMORY_REACH or any(abs(t - p) <= MEMORY_REACH for p in prompted)

        for per_obj in session.output_dict_per_obj.values():
            stale = [t for t in per_obj["non_cond_frame_outputs"] if not reachable(t)]
            for t in stale:
                del per_obj["non_cond_frame_outputs"][t]
