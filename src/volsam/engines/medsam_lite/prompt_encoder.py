"""SAM prompt encoder: boxes, points and a low-resolution mask -> sparse and dense prompt embeddings.

Coordinates are pixels of the model's square input (256x256 for LiteMedSAM), ``x`` = column, ``y`` = row,
pixel centres at integer values (the encoder adds 0.5 before normalising by the input size).
Parameter names follow the SAM checkpoint (``pe_layer``, ``point_embeddings.N``, ``mask_downscaling.N``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from volsam.engines.medsam_lite.tinyvit import LayerNorm2d

#: Label values of point prompts.
NOT_A_POINT, BACKGROUND, FOREGROUND = -1, 0, 1


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier positional encoding: coordinates in [0, 1]^2 -> ``2 * num_feats`` sin/cos features."""

    def __init__(self, num_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` normalised ``(x, y)`` -> ``(..., 2 * num_feats)``."""
        proj = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Encoding of every cell centre of an ``height x width`` grid: ``(2 * num_feats, height, width)``."""
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
        return self.encode(coords).permute(2, 0, 1)

    def encode_pixels(self, coords: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, N, 2)`` pixel ``(x, y)`` in an input of ``size = (H, W)`` -> ``(B, N, 2 * num_feats)``."""
        scale = torch.tensor([1.0 / size[1], 1.0 / size[0]], device=coords.device, dtype=torch.float32)
        return self.encode(coords.float() * scale)


class PromptEncoder(nn.Module):
    """Embeds boxes and points (sparse tokens) and a mask (dense ``(B, C, h, w)`` map).

    Args:
        embed_dim: token width (256).
        image_embedding_size: ``(h, w)`` of the image embedding (64, 64).
        input_image_size: ``(H, W)`` of the model input (256, 256).
        mask_in_chans: hidden channels of the mask downscaler (16); the mask input is ``4 * (h, w)``.
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: background point, 1: foreground point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, ``(1, embed_dim, h, w)``."""
        return self.pe_layer.grid(*self.image_embedding_size).unsqueeze(0)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """``(B, N, 2)`` pixels and ``(B, N)`` labels -> ``(B, N[+1], C)``; ``pad`` appends a not-a-point."""
        coords = coords.float() + 0.5
        labels = labels.to(coords.device)
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), NOT_A_POINT)], dim=1)
        emb = self.pe_layer.encode_pixels(coords, self.input_image_size)
        lab = labels.unsqueeze(-1)
        emb = torch.where(lab == NOT_A_POINT, self.not_a_point_embed.weight, emb)
        emb = emb + torch.where(lab == BACKGROUND, self.point_embeddings[0].weight, 0.0)
        emb = emb + torch.where(lab == FOREGROUND, self.point_embeddings[1].weight, 0.0)
        return emb

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """``(B, 4)`` or ``(B, 1, 4)`` pixel boxes ``(x0, y0, x1, y1)`` -> ``(B, 2, C)`` corner tokens."""
        corners = (boxes.float() + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.encode_pixels(corners, self.input_image_size)
        corner_ids = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0)
        return emb + corner_ids

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns sparse ``(B, N, C)`` and dense ``(B, C, h, w)`` embeddings.

        ``masks`` are ``(B, 1, 4h, 4w)`` logits; without them the learned no-mask embedding is broadcast.
        """
        if points is not None:
            batch = points[0].shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1
        weight = self.no_mask_embed.weight
        parts = []
        if points is not None:
            parts.append(self.embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            parts.append(self.embed_boxes(boxes))
        sparse = torch.cat(parts, dim=1) if parts else weight.new_zeros(batch, 0, self.embed_dim)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, *self.image_embedding_size)
        return sparse, dense
