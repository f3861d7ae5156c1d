"""The two-way transformer of SAM's mask decoder: prompt tokens and image tokens attend to each
other in turns.

Interactive use decodes many prompts on one image. Everything the first layer computes from the
image alone (the image tokens' key/value projections for token→image attention and their query
projection for image→token attention) is prompt-independent; :meth:`TwoWayTransformer.prepare`
computes it once per image and :meth:`TwoWayTransformer.forward` reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from napari_segany.models.common import MLPBlock


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections to ``dim // downsample_rate``.

    Inputs q (B, Nq, C), k and v (B, Nk, C); output (B, Nq, C).

    Besides the plain :meth:`forward`, two exact reformulations serve the decoder's cross
    attentions between a few prompt tokens and thousands of image tokens: they move the
    projections to the prompt side, where they cost almost nothing, instead of projecting every
    image token (:meth:`tokens_to_image`, :meth:`image_to_tokens`).
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        internal_dim = embedding_dim // downsample_rate
        if internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = nn.Linear(embedding_dim, internal_dim)
        self.k_proj = nn.Linear(embedding_dim, internal_dim)
        self.v_proj = nn.Linear(embedding_dim, internal_dim)
        self.out_proj = nn.Linear(internal_dim, embedding_dim)

    @property
    def head_dim(self) -> int:
        return self.q_proj.out_features // self.num_heads

    def heads(self, projection: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """Project (B, N, C) and split heads → (B, heads, N, d), contiguous."""
        y = projection(x)
        b, n, _ = y.shape
        return y.view(b, n, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention on head-split projections; (B, heads, Nq, d) → (B, Nq, C).

        Batch-1 image projections broadcast against B prompts.
        """
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.head_dim**-0.5
        return self._merge(torch.matmul(torch.softmax(scores, dim=-1), v))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.attend(
            self.heads(self.q_proj, q), self.heads(self.k_proj, k), self.heads(self.v_proj, v)
        )

    def tokens_to_image(
        self, tokens: torch.Tensor, image_k: torch.Tensor, image_v: torch.Tensor
    ) -> torch.Tensor:
        """Same as ``forward(tokens, image_k, image_v)`` without projecting the image tokens.

        With W_k, W_v split per head, qₕ·(W_k,ₕ x + b) = (qₕ W_k,ₕ)·x + const, and the softmax
        ignores the constant; Σ pₘ (W_v,ₕ xₘ + b) = W_v,ₕ (Σ pₘ xₘ) + b because Σ pₘ = 1.

        Parameters
        ----------
        tokens : Tensor, shape (B, N, C)
        image_k, image_v : Tensor, shape (B or 1, M, C)
            Unprojected image tokens for keys (with positional encoding) and values.
        """
        b, n, c = tokens.shape
        h, d = self.num_heads, self.head_dim
        q = self.heads(self.q_proj, tokens) * d**-0.5  # (B, h, N, d)
        q_in = torch.matmul(q, self.k_proj.weight.view(h, d, c))  # (B, h, N, C)
        scores = torch.matmul(q_in.reshape(b, h * n, c), image_k.transpose(1, 2))
        probs = torch.softmax(scores, dim=-1)  # (B, h·N, M)
        pooled = torch.matmul(probs, image_v).view(b, h, n, c)
        w_v = self.v_proj.weight.view(h, d, c)
        out = torch.matmul(pooled, w_v.transpose(1, 2)) + self.v_proj.bias.view(h, 1, d)
        return self._merge(out)

    def image_to_tokens(
        self,
        image_q: torch.Tensor | None,
        tokens_k: torch.Tensor,
        tokens_v: torch.Tensor,
        residual: torch.Tensor | None = None,
        image_in: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention from M image tokens to a few prompt tokens, → (B, M, C).

        The output projection is applied to the few values before pooling:
        out = Σₕ Pₕ (Vₕ W_o,ₕᵀ + b_o / heads), exact because each Pₕ's rows sum to 1. Without a
        precomputed query projection, the scores are (x W_q,ₕᵀ + b_q,ₕ)·kₙ = x·(W_q,ₕᵀ kₙ) +
        b_q,ₕ·kₙ, which projects the few keys instead of the many image tokens.

        Parameters
        ----------
        image_q : Tensor, shape (B or 1, heads, M, d), or None
            Head-split query projection of the image tokens (precomputed), or None to use
            ``image_in``.
        tokens_k, tokens_v : Tensor, shape (B, N, C)
            Unprojected prompt tokens for keys and values.
        residual : Tensor, shape (B or 1, M, C), optional
            Added to the output (fused into the last product).
        image_in : Tensor, shape (B or 1, M, C), optional
            Unprojected image tokens (queries), when ``image_q`` is None.
        """
        h, d = self.num_heads, self.head_dim
        k = self.heads(self.k_proj, tokens_k) * d**-0.5  # (B, h, N, d)
        v = self.heads(self.v_proj, tokens_v)
        b, _, n, _ = k.shape
        # scores laid out keys-first so the softmax runs over the long image axis
        if image_q is not None:
            scores_t = torch.matmul(k, image_q.transpose(-1, -2))  # (B, h, N, M)
        else:
            c = image_in.shape[-1]
            k_in = torch.matmul(k, self.q_proj.weight.view(h, d, c))  # (B, h, N, C)
            bias = torch.matmul(k, self.q_proj.bias.view(h, d, 1))  # (B, h, N, 1)
            scores_t = torch.matmul(k_in.reshape(b, h * n, c), image_in.transpose(1, 2))
            scores_t = scores_t.view(b, h, n, -1) + bias
        probs_t = torch.softmax(scores_t, dim=-2)
        w_o = self.out_proj.weight.view(-1, h, d).permute(1, 2, 0)  # (h, d, C)
        v_out = torch.matmul(v, w_o) + self.out_proj.bias / h  # (B, h, N, C)
        m = probs_t.shape[-1]
        probs = probs_t.reshape(b, h * n, m).transpose(1, 2)  # (B, M, h·N), a view
        v_out = v_out.reshape(b, h * n, -1)
        if residual is None:
            return torch.matmul(probs, v_out)
        return torch.baddbmm(residual.expand(b, -1, -1), probs, v_out)


@dataclass
class ImageContext:
    """Prompt-independent image-side tensors of one image (batch 1).

    Attributes
    ----------
    keys : Tensor, shape (1, h·w, C)
        Image tokens (embedding plus the dense prompt embedding).
    key_pe : Tensor, shape (1, h·w, C)
        Positional encoding of the image tokens.
    token_to_image_k, token_to_image_v : Tensor, shape (1, heads, h·w, d)
        First layer's projections of the image tokens for token→image attention.
    image_to_token_q : Tensor, shape (1, heads, h·w, d)
        First layer's query projection of the image tokens for image→token attention.
    grid : (int, int)
        (h, w) of the image embedding.
    """

    grid: tuple[int, int]
    keys: torch.Tensor
    key_pe: torch.Tensor
    token_to_image_k: torch.Tensor
    token_to_image_v: torch.Tensor
    image_to_token_q: torch.Tensor


class TwoWayAttentionBlock(nn.Module):
    """One layer: token self-attention, token→image attention, token MLP, image→token attention.

    Each step is followed by a LayerNorm. With ``skip_first_layer_pe`` the self-attention gets no
    positional encoding and replaces the tokens instead of adding a residual (first layer only).
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def image_projections(
        self, keys: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The projections of the image tokens this layer needs: (t2i k, t2i v, i2t q)."""
        keys_with_pe = keys + key_pe
        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        return (
            t2i.heads(t2i.k_proj, keys_with_pe),
            t2i.heads(t2i.v_proj, keys),
            i2t.heads(i2t.q_proj, keys_with_pe),
        )

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        image_projections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer.

        Parameters
        ----------
        queries : Tensor, shape (B, N, C)
            Prompt tokens.
        keys : Tensor, shape (B or 1, M, C)
            Image tokens.
        query_pe, key_pe : Tensor
            Positional encodings of queries and keys.
        image_projections : tuple of Tensor, optional
            This layer's :meth:`image_projections` of ``keys``, precomputed once per image.
        """
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        q = queries + query_pe
        keys_with_pe = i2t_q = None
        if image_projections is not None:
            t2i_k, t2i_v, i2t_q = image_projections
            attn_out = t2i.attend(t2i.heads(t2i.q_proj, q), t2i_k, t2i_v)
        else:
            keys_with_pe = keys + key_pe
            attn_out = t2i.tokens_to_image(q, keys_with_pe, keys)
        queries = self.norm2(queries + attn_out)
        queries = self.norm3(queries + self.mlp(queries))

        attn_out = i2t.image_to_tokens(
            i2t_q, queries + query_pe, queries, residual=keys, image_in=keys_with_pe
        )
        keys = self.norm4(attn_out)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of :class:`TwoWayAttentionBlock` and a final token→image attention.

    Parameters
    ----------
    depth : int
        Number of two-way layers.
    embedding_dim, num_heads, mlp_dim : int
        Width, heads and MLP hidden size.
    """

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim,
                num_heads,
                mlp_dim,
                activation,
                attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def prepare(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
        """Compute the prompt-independent part for one image.

        Parameters
        ----------
        image_embedding : Tensor, shape (1, C, h, w)
            Image embedding plus dense prompt embedding.
        image_pe : Tensor, shape (1, C, h, w)
        """
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        grid = (int(image_embedding.shape[-2]), int(image_embedding.shape[-1]))
        return ImageContext(grid, keys, key_pe, *self.layers[0].image_projections(keys, key_pe))

    def forward(
        self,
        image_embedding: torch.Tensor | None,
        image_pe: torch.Tensor | None,
        point_embedding: torch.Tensor,
        context: ImageContext | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the transformer.

        Parameters
        ----------
        image_embedding : Tensor, shape (B or 1, C, h, w), or None with ``context``
        image_pe : Tensor, shape (1, C, h, w), or None with ``context``
        point_embedding : Tensor, shape (B, N, C)
        context : ImageContext, optional
            From :meth:`prepare`; replaces ``image_embedding`` and ``image_pe``.

        Returns
        -------
        queries : Tensor, shape (B, N, C)
            Processed prompt tokens.
        keys : Tensor, shape (B, h·w, C)
            Processed image tokens.
        """
        if context is None:
            keys = image_embedding.flatten(2).transpose(1, 2)
            key_pe = image_pe.flatten(2).transpose(1, 2)
            first = None
        else:
            keys, key_pe = context.keys, context.key_pe
            first = (context.token_to_image_k, context.token_to_image_v, context.image_to_token_q)
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, point_embedding, key_pe, first if i == 0 else None)
        q = queries + point_embedding
        attn_out = self.final_attn_token_to_image.tokens_to_image(q, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn_out), keys
