"""TinyViT image encoder of MobileSAM ("vit_t"), written to load ``mobile_sam.pt`` unchanged.

The module tree mirrors the published checkpoint layout, so the encoder's ``state_dict`` (found
under the prefix ``image_encoder.`` in the full model) loads with ``strict=True``:

* ``patch_embed.seq.{0,2}``: two 3x3 stride-2 convolution + BatchNorm pairs (GELU at ``seq.1``);
* ``layers.0``: MBConv blocks, then a ``downsample`` (PatchMerging);
* ``layers.1..3``: TinyViT blocks (windowed attention, depthwise ``local_conv``, MLP), with a
  ``downsample`` after every stage but the last;
* ``norm_head`` and ``head``: the ImageNet classifier. They are stored in the checkpoint and so
  exist here, but ``forward`` never uses them;
* ``neck``: 1x1 conv -> LayerNorm2d -> 3x3 conv -> LayerNorm2d, giving the SAM image embedding.

Every "conv + BN" pair is a :class:`ConvBN` whose state keys are ``c.weight`` and ``bn.*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.common import ConvBN, LayerNorm2d

__all__ = ["TinyViT"]

# Output widths of a PatchMerging whose depthwise conv keeps the resolution (stride 1). MobileSAM
# drops the last downsampling of TinyViT this way, so that the encoder's total stride is 16.
_STRIDE_ONE_MERGE_DIMS = (320, 448, 576)


class PatchEmbed(nn.Module):
    """Stem: two 3x3 stride-2 ConvBN with a GELU between, (B, 3, H, W) -> (B, dim, H/4, W/4)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvBN(in_chans, dim // 2, 3, stride=2), nn.GELU(), ConvBN(dim // 2, dim, 3, stride=2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise 3x3, 1x1 project, add input, GELU.

    Input and output are (B, dim, H, W).
    """

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden, 1)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim, 1)
        nn.init.zeros_(self.conv3.bn.weight)  # the residual branch starts as zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Downsampling between stages: 1x1 ConvBN, GELU, depthwise 3x3 ConvBN, GELU, 1x1 ConvBN.

    The depthwise conv has stride 2, except stride 1 when ``out_dim`` is 320, 448 or 576
    (MobileSAM's rule). Input (B, dim, H, W), output (B, out_dim, H', W').
    """

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.stride = 1 if out_dim in _STRIDE_ONE_MERGE_DIMS else 2
        self.conv1 = ConvBN(dim, out_dim, 1)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride=self.stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))


def relative_offset_index(window_size: int) -> torch.Tensor:
    """Index of the learned bias for every pair of positions in a square window.

    Positions are numbered row-major; the pair (i, j) gets ``|drow| * window_size + |dcol|``.

    Returns
    -------
    torch.Tensor
        int64 tensor of shape (window_size**2, window_size**2).
    """
    pos = torch.arange(window_size)
    rows = pos.repeat_interleave(window_size)
    cols = pos.repeat(window_size)
    drow = (rows[:, None] - rows[None, :]).abs()
    dcol = (cols[:, None] - cols[None, :]).abs()
    return drow * window_size + dcol


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of one window, with learned position biases.

    Pre-norm (LayerNorm eps 1e-5) is part of this module. ``qkv`` produces, for every head in
    turn, that head's query, key and value (``head_dim`` channels each), unlike SAM's ViT which
    stores all queries, then all keys, then all values. The bias added to the attention logits of
    head ``h`` for positions (i, j) is ``attention_biases[h, |drow|*w + |dcol|]``.

    Parameters
    ----------
    dim : int
        Token width C.
    num_heads : int
        Number of heads; ``head_dim = dim // num_heads``.
    window_size : int
        Side w of the square window; inputs hold exactly w*w tokens.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.window_size = window_size
        # Derived from window_size alone, hence not saved in the state dict.
        self.register_buffer(
            "attention_bias_idxs", relative_offset_index(window_size), persistent=False
        )

    def rebuild_non_persistent_buffers(self) -> None:
        """Recreate ``attention_bias_idxs`` (after building on the 'meta' device)."""
        device = self.attention_biases.device
        self.attention_bias_idxs = relative_offset_index(self.window_size).to(device)

    def attention_bias(self) -> torch.Tensor:
        """Gathered position bias of shape (num_heads, w*w, w*w).

        Gathered afresh on every call (it is cheap), so it always reflects the current
        ``attention_biases``, whether they were loaded, edited in place or trained.
        """
        return self.attention_biases[:, self.attention_bias_idxs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within each window.

        Parameters
        ----------
        x : torch.Tensor
            (num_windows, w*w, C) tokens, not yet normalised.

        Returns
        -------
        torch.Tensor
            (num_windows, w*w, C).
        """
        n_win, n_tok, dim = x.shape
        qkv = self.qkv(self.norm(x))
        # channel layout: head, then q/k/v, then head_dim
        qkv = qkv.view(n_win, n_tok, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        q, k, v = qkv.unbind(0)  # each (n_win, heads, n_tok, head_dim)
        bias = self.attention_bias().to(q.dtype)
        # default scale of scaled_dot_product_attention is head_dim ** -0.5, as in TinyViT
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None])
        return self.proj(out.transpose(1, 2).reshape(n_win, n_tok, dim))


class Mlp(nn.Module):
    """Pre-norm feed-forward: LayerNorm, fc1, GELU, fc2. Shape (..., C) -> (..., C)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (+ residual), depthwise ``local_conv`` (no residual), MLP (+ residual).

    The token map is zero-padded at the bottom and right to a multiple of the window before it is
    split into windows. Padding tokens are not masked: as in the reference, they go through the
    attention's LayerNorm (becoming its bias vector) and take part as keys and values.
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int, mlp_ratio: float, local_conv_size: int
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        w = self.window_size
        pad_b, pad_r = -height % w, -width % w
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        n_h, n_w = (height + pad_b) // w, (width + pad_r) // w
        x = x.reshape(batch, n_h, w, n_w, w, dim).transpose(2, 3).reshape(-1, w * w, dim)
        x = self.attn(x)
        x = x.view(batch, n_h, n_w, w, w, dim).transpose(2, 3)
        x = x.reshape(batch, n_h * w, n_w * w, dim)
        return x[:, :height, :width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (B, H, W, C) token grid to (B, H, W, C)."""
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class ConvLayer(nn.Module):
    """Stage 0: MBConv blocks then a PatchMerging. (B, dim, H, W) -> (B, out_dim, H', W')."""

    def __init__(self, dim: int, out_dim: int, depth: int, expand_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class BasicLayer(nn.Module):
    """An attention stage: TinyViT blocks, then an optional PatchMerging.

    Input (B, dim, H, W); output (B, out_dim, H', W') with a downsample, else (B, dim, H, W).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
        out_dim: int | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window_size, mlp_ratio, local_conv_size)
            for _ in range(depth)
        )
        self.downsample = None if out_dim is None else PatchMerging(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # blocks work on (B, H, W, C)
        for block in self.blocks:
            x = block(x)
        x = x.permute(0, 3, 1, 2)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """MobileSAM's TinyViT-5M image encoder with the SAM neck.

    Parameters
    ----------
    img_size : int
        Side of the square input image. Token grids follow from it (no grid size is fixed); with
        the default widths the total stride is 16, so the embedding grid is ``img_size // 16``
        for multiples of 16 (64 x 64 for 1024).
    in_chans : int
        Input channels.
    embed_dims, depths, num_heads, window_sizes : sequence of int
        Per-stage width, block count, attention heads (stage 0 has none) and window side.
    mlp_ratio : float
        MLP hidden width relative to the token width.
    mbconv_expand_ratio : float
        Hidden width of the stage-0 MBConv blocks relative to their width.
    local_conv_size : int
        Kernel size of the depthwise conv inside each TinyViT block.
    out_chans : int
        Channels of the image embedding.
    num_classes : int
        Width of the unused classifier ``head`` (kept so the checkpoint loads strictly).
    """

    def __init__(
        self,
        *,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_chans: int = 256,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        if not len(embed_dims) == len(depths) == len(num_heads) == len(window_sizes) >= 2:
            raise ValueError(
                "embed_dims, depths, num_heads and window_sizes need equal lengths >= 2"
            )
        self.img_size = img_size
        self.in_chans = in_chans
        n_stages = len(embed_dims)
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        layers: list[nn.Module] = [
            ConvLayer(embed_dims[0], embed_dims[1], depths[0], mbconv_expand_ratio)
        ]
        for i in range(1, n_stages):
            out_dim = embed_dims[i + 1] if i + 1 < n_stages else None
            layers.append(
                BasicLayer(
                    embed_dims[i],
                    depths[i],
                    num_heads[i],
                    window_sizes[i],
                    mlp_ratio,
                    local_conv_size,
                    out_dim,
                )
            )
        self.layers = nn.ModuleList(layers)
        # ImageNet classifier of TinyViT: present in mobile_sam.pt, never used by forward().
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the image embedding.

        Parameters
        ----------
        x : torch.Tensor
            (B, in_chans, img_size, img_size) float images, already normalised and padded.

        Returns
        -------
        torch.Tensor
            (B, out_chans, img_size // 16, img_size // 16); (B, 256, 64, 64) for 1024 inputs.
        """
        expected = (self.in_chans, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected input of shape (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        # Channels-last maps make the convolutions markedly faster on CPU, and turn the switches
        # between (B, C, H, W) maps and (B, H, W, C) token grids into free views.
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        for layer in self.layers:
            x = layer(x)
        return self.neck(x).contiguous()
