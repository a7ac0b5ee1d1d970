"""SAM mask decoder: a two-way transformer between prompt tokens and the image embedding, then upscaling.

Image embedding ``(B, 256, 64, 64)`` + prompt tokens ``(B, N, 256)`` -> mask logits ``(B, M, 256, 256)``
(4x the embedding) and predicted IoU ``(B, M)``; ``M = 1`` (the single-mask token LiteMedSAM was trained
with) or 3 (the multimask tokens). Parameter names follow the SAM checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from volsam.engines.medsam_lite.tinyvit import LayerNorm2d


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections down to ``dim // downsample_rate`` channels."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``q (B, Nq, C)``, ``k, v (B, Nk, C)`` -> ``(B, Nq, C)``."""
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        )
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


class MLPBlock(nn.Module):
    """Linear, ReLU, Linear (the transformer's feed-forward)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.relu(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image cross-attention, token MLP, image->token cross-attention."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + query_pe, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final token->image attention.

    Image ``(B, C, h, w)`` with its positional encoding, tokens ``(B, N, C)`` -> tokens ``(B, N, C)`` and
    image tokens ``(B, h*w, C)``.
    """

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, skip_first_layer_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # contiguous token layouts: the many adds and projections below are several times slower on the
        # transposed views that flatten(2).transpose(1, 2) gives for a (B, C, h, w) tensor
        keys = image.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        out = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + out), keys


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between (the hypernetworks and the IoU head)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MaskDecoder(nn.Module):
    """Predicts mask logits and their IoU from image and prompt embeddings.

    Args:
        transformer_dim: channel width (256).
        transformer: the :class:`TwoWayTransformer`.
        num_multimask_outputs: 3 ambiguity-aware masks besides the single-mask token 0.
        iou_head_depth / iou_head_hidden_dim: the IoU-prediction MLP (3 layers, 256).
    """

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns logits ``(B, M, 4h, 4w)`` and IoU ``(B, M)``; ``image_embeddings`` may have batch 1."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1).to(sparse_prompt_embeddings.dtype)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings], dim=1)
        src = image_embeddings
        if src.shape[0] != batch:
            src = src.expand(batch, -1, -1, -1)
        src = src + dense_prompt_embeddings
        pos = image_pe.expand(batch, -1, -1, -1)
        b, c, h, w = src.shape

        hs, keys = self.transformer(src, pos, tokens)
        selected = range(1, self.num_mask_tokens) if multimask_output else range(0, 1)
        # image tokens (B, h*w, C) viewed as a channels-last (B, C, h, w) image: no copy
        upscaled = self.output_upscaling(keys.view(b, h, w, c).permute(0, 3, 1, 2))
        hyper = torch.stack([self.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in selected], dim=1)
        bu, cu, hu, wu = upscaled.shape
        pixels = upscaled.permute(0, 2, 3, 1).reshape(bu, hu * wu, cu)  # (B, 4h*4w, C'), a view if channels-last
        masks = (pixels @ hyper.transpose(1, 2)).transpose(1, 2).reshape(bu, -1, hu, wu)
        iou = self.iou_prediction_head(hs[:, 0])[:, selected.start : selected.stop]
        return masks, iou
