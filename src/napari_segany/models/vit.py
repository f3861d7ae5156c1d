"""SAM's ViT image encoder (vit_b, vit_l, vit_h), written for fast CPU inference.

The module tree mirrors the published checkpoints (``patch_embed.proj``, ``pos_embed``,
``blocks.{i}.{norm1,attn.{qkv,proj,rel_pos_h,rel_pos_w},norm2,mlp.{lin1,lin2}}``, ``neck.{0..3}``),
so the official weights load with a strict ``load_state_dict``. The arithmetic is the same as the
reference; what differs is how it is scheduled:

* ``qkv`` and ``proj`` run on the 64×64 token grid *before* windows are padded: padded tokens of
  the reference are zeros, so their q, k and v are just the qkv bias, which is what we pad with.
* Attention with the decomposed relative-position bias is computed a few query rows at a time, so
  the (queries × keys) score block stays in cache and the bias is added in place. The reference
  builds the full 4096×4096 score matrix per head and spends most of its time adding the bias to
  it. Under autograd a plain (differentiable) ``scaled_dot_product_attention`` path is used instead.

Tokens are kept as (B, H, W, C) throughout, as in the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.common import LayerNorm2d, MLPBlock

# Elements of one block of attention scores (heads × query rows × keys) computed at once on the
# inference path: small enough to stay in a CPU's L2/L3 cache, large enough for efficient GEMMs.
_SCORE_BLOCK_ELEMENTS = 3 * 2**20


class PatchEmbed(nn.Module):
    """Split an image into non-overlapping patches and embed each one linearly.

    Input (B, C_in, H, W); output (B, H / patch, W / patch, embed_dim).
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


def relative_position_table(size: int, table: torch.Tensor) -> torch.Tensor:
    """Expand a relative-position table into a (query, key) lookup for one grid axis.

    Parameters
    ----------
    size : int
        Number of positions along the axis (query and key grids have the same size).
    table : Tensor, shape (L, head_dim)
        Learned embeddings of relative offsets ``q - k`` from ``-(size-1)`` to ``size-1``. When L is
        not ``2*size - 1`` the table is resampled linearly to that length.

    Returns
    -------
    Tensor, shape (size, size, head_dim)
        ``out[i, j] = table[i - j + size - 1]``.
    """
    length = 2 * size - 1
    if table.shape[0] != length:
        table = F.interpolate(table.T[None], size=length, mode="linear", align_corners=False)[0].T
    offsets = torch.arange(size, device=table.device)
    index = offsets[:, None] - offsets[None, :] + (size - 1)
    return table[index]


def _decomposed_rel_pos(
    q: torch.Tensor, table_h: torch.Tensor, table_w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column terms of the relative-position bias.

    Parameters
    ----------
    q : Tensor, shape (B, h, w, D)
        Queries on their grid (unscaled).
    table_h : Tensor, shape (h, h, D)
        :func:`relative_position_table` for rows.
    table_w : Tensor, shape (w, w, D)
        :func:`relative_position_table` for columns.

    Returns
    -------
    rel_h : Tensor, shape (B, h, w, h)
        ``rel_h[b, i, j, m] = q[b, i, j] · table_h[i, m]``.
    rel_w : Tensor, shape (B, h, w, w)
        ``rel_w[b, i, j, n] = q[b, i, j] · table_w[j, n]``.
    """
    b, h, w, d = q.shape
    table_h, table_w = table_h.to(q.dtype), table_w.to(q.dtype)
    # one (b·w, D) @ (D, h) product per query row i, one (b·h, D) @ (D, w) per query column j
    rel_h = torch.matmul(q.permute(1, 0, 2, 3).reshape(h, b * w, d), table_h.transpose(1, 2))
    rel_w = torch.matmul(q.permute(2, 0, 1, 3).reshape(w, b * h, d), table_w.transpose(1, 2))
    rel_h = rel_h.view(h, b, w, h).permute(1, 0, 2, 3)
    rel_w = rel_w.view(w, b, h, w).permute(1, 2, 0, 3)
    return rel_h, rel_w


def _attention_with_rel_pos(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_h: torch.Tensor,
    rel_w: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """softmax(scale·q·kᵀ + bias)·v where bias[(i, j), (m, n)] = rel_h[i, j, m] + rel_w[i, j, n].

    Parameters
    ----------
    q, k, v : Tensor, shape (B, N, D) with N = h·w tokens of an h×w grid in row-major order
    rel_h : Tensor, shape (B, h, w, h)
        Row term of the bias for every query (i, j) and key row m.
    rel_w : Tensor, shape (B, h, w, w)
        Column term of the bias for every query (i, j) and key column n.

    Returns
    -------
    Tensor, shape (B, N, D)
    """
    batch, n_tokens, _ = q.shape
    h, w = rel_h.shape[1], rel_w.shape[2]
    if torch.is_grad_enabled() and (q.requires_grad or rel_h.requires_grad):
        bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(batch, n_tokens, n_tokens)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=scale)

    # Score blocks cover whole query rows; reusing the block buffers avoids allocating (and
    # page-faulting) hundreds of MB per block.
    rows = _rows_per_block(h, batch * w * n_tokens)
    keys_t = k.transpose(1, 2).contiguous()  # one copy here, not one per block in matmul
    q = q * scale
    scores = q.new_empty(batch, rows * w, n_tokens)
    probs = torch.empty_like(scores)
    out = v.new_empty(h // rows, batch, rows * w, v.shape[-1])
    for block, row in enumerate(range(0, h, rows)):
        torch.matmul(q[:, row * w : (row + rows) * w], keys_t, out=scores)
        grid = scores.view(batch, rows, w, h, w)
        grid += rel_h[:, row : row + rows, :, :, None]
        grid += rel_w[:, row : row + rows, :, None, :]
        torch.softmax(scores, dim=-1, out=probs)
        torch.matmul(probs, v, out=out[block])
    return out.transpose(0, 1).reshape(batch, n_tokens, v.shape[-1])


def _rows_per_block(h: int, elements_per_row: int) -> int:
    """Largest divisor of ``h`` whose score block stays within the cache-sized budget."""
    fitting = [
        r for r in range(1, h + 1) if h % r == 0 and r * elements_per_row <= _SCORE_BLOCK_ELEMENTS
    ]
    return max(fitting, default=1)


class Attention(nn.Module):
    """Multi-head self-attention over a token grid, global or in non-overlapping windows.

    Parameters
    ----------
    dim : int
        Token feature size C.
    num_heads : int
        Number of heads; ``dim`` must be divisible by it.
    qkv_bias : bool
        Learn a bias for the q, k, v projection.
    use_rel_pos : bool
        Add the decomposed relative-position bias (``rel_pos_h``, ``rel_pos_w``).
    rel_pos_size : int
        Grid size the relative-position tables are made for: the window size for windowed
        attention, the token grid size for global attention. The tables have ``2*size - 1`` rows.
    window_size : int
        Window side in tokens; 0 means global attention over the whole grid.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        rel_pos_size: int = 14,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.window_size = window_size
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        b, h, w, c = x.shape
        qkv = self.qkv(x)  # (B, H, W, 3C), [all q | all k | all v], each split into heads
        win_h, win_w = (self.window_size, self.window_size) if self.window_size > 0 else (h, w)
        hp, wp = -(-h // win_h) * win_h, -(-w // win_w) * win_w
        if (hp, wp) != (h, w):
            # the reference pads the *input* with zeros, whose projection is the bias
            fill = self.qkv.bias if self.qkv.bias is not None else qkv.new_zeros(3 * c)
            padded = fill.to(qkv.dtype).expand(b, hp, wp, 3 * c).clone()
            padded[:, :h, :w] = qkv
            qkv = padded
        heads, d = self.num_heads, self.head_dim
        n_h, n_w = hp // win_h, wp // win_w
        tokens = win_h * win_w
        # (B·windows, tokens, 3C): whole rows of 3C move at once, the cheapest layout change
        qkv = qkv.view(b, n_h, win_h, n_w, win_w, 3 * c).transpose(2, 3)
        qkv = qkv.reshape(-1, tokens, 3, heads, d).permute(2, 0, 3, 1, 4)
        # contiguous (B·windows·heads, tokens, head_dim): strided operands would be copied again
        # by every matrix product in the attention loop
        q, k, v = (t.reshape(-1, tokens, d).contiguous() for t in qkv.unbind(0))

        if self.use_rel_pos:
            rel_h, rel_w = _decomposed_rel_pos(
                q.view(-1, win_h, win_w, d),
                relative_position_table(win_h, self.rel_pos_h),
                relative_position_table(win_w, self.rel_pos_w),
            )
            out = _attention_with_rel_pos(q, k, v, rel_h, rel_w, self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)

        # back to (B, Hp, Wp, C), then drop the padding
        out = out.view(-1, heads, tokens, d).transpose(1, 2).reshape(b, n_h, n_w, win_h, win_w, c)
        out = out.transpose(2, 3).reshape(b, hp, wp, c)
        if (hp, wp) != (h, w):
            out = out[:, :h, :w]
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 0,
        grid_size: int = 64,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            rel_pos_size=window_size if window_size > 0 else grid_size,
            window_size=window_size,
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    """SAM's ViT image encoder.

    Parameters
    ----------
    img_size : int
        Side of the square, normalised and zero-padded input image.
    patch_size : int
        Patch side; the token grid is ``img_size // patch_size`` on each side.
    embed_dim, depth, num_heads : int
        Transformer width, number of blocks and heads per block.
    global_attn_indexes : tuple of int
        Blocks that attend over the whole grid; all others use ``window_size`` windows.
    out_chans : int
        Channels of the output embedding.

    Forward input is (B, in_chans, img_size, img_size); output is
    (B, out_chans, img_size // patch_size, img_size // patch_size), e.g. (1, 256, 64, 64).
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = (
            nn.Parameter(torch.zeros(1, grid, grid, embed_dim)) if use_abs_pos else None
        )
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                use_rel_pos=use_rel_pos,
                window_size=0 if i in global_attn_indexes else window_size,
                grid_size=grid,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
