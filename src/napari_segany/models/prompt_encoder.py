"""SAM's prompt encoder: points, boxes and low-resolution masks to decoder embeddings.

Coordinates here are SAM's: (x, y) pixels in the resized model input frame (longest side =
``input_image_size``). Conversion from napari's (row, col) happens in
:mod:`napari_segany.inference.prompts`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from napari_segany.models.common import LayerNorm2d, embedding, random_normal


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) positions.

    The Gaussian projection matrix (2, num_pos_feats) is a persistent buffer: it is part of the
    checkpoints and must be loaded, not re-drawn.
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        matrix = random_normal(2, num_pos_feats)
        if scale is not None and scale > 0 and scale != 1.0:
            matrix = scale * matrix  # (not by 1: see napari_segany.models.common)
        self.register_buffer("positional_encoding_gaussian_matrix", matrix)

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) positions in [0, 1] -> (..., 2·num_pos_feats) features."""
        projected = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        projected = 2 * math.pi * projected
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of the centres of an (h, w) grid, shape (C, h, w)."""
        h, w = size
        matrix = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=matrix.device, dtype=matrix.dtype) + 0.5) / h
        xs = (torch.arange(w, device=matrix.device, dtype=matrix.dtype) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Encode (B, N, 2) pixel coordinates (x, y) of an image of size (h, w)."""
        h, w = image_size
        norm = torch.tensor([w, h], dtype=coords.dtype, device=coords.device)
        return self._encode((coords / norm).to(self.positional_encoding_gaussian_matrix.dtype))


def downscaling_stack(c_in: int, c_mid: int, c_hidden: int, c_out: int) -> nn.Sequential:
    """Embed a map at 4× the embedding grid: (B, c_in, 4h, 4w) → (B, c_out, h, w).

    Two 2×2 stride-2 convolutions, each followed by LayerNorm2d and GELU, then a 1×1
    convolution (module indices 0, 1, 3, 4 and 6 hold the weights, as in SAM's checkpoints).
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, kernel_size=2, stride=2),
        LayerNorm2d(c_mid),
        nn.GELU(),
        nn.Conv2d(c_mid, c_hidden, kernel_size=2, stride=2),
        LayerNorm2d(c_hidden),
        nn.GELU(),
        nn.Conv2d(c_hidden, c_out, kernel_size=1),
    )


class PromptEncoder(nn.Module):
    """Embed point, box and mask prompts for the mask decoder.

    Parameters
    ----------
    embed_dim : int
        Prompt embedding size (256 for every SAM variant).
    image_embedding_size : tuple of int
        (h, w) of the image embedding, (64, 64) for a 1024² input.
    input_image_size : tuple of int
        (H, W) of the padded model input, (1024, 1024).
    mask_in_chans : int
        Hidden channels of the mask downscaling network.
    """

    #: Whether the dense embedding depends on point/box prompts (not only on the mask prompt).
    dense_depends_on_prompts = False

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0 = negative point, 1 = positive point, 2 = box top-left, 3 = box bottom-right
        self.point_embeddings = nn.ModuleList(embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = downscaling_stack(1, mask_in_chans // 4, mask_in_chans, embed_dim)
        self.no_mask_embed = embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, shape (1, embed_dim, h, w)."""
        return self.pe_layer(self.image_embedding_size)[None]

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centres
        if pad:
            # a "not a point" token keeps the token count SAM was trained with when no box is given
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        label = labels[..., None]
        embedding = torch.where(label == -1, self.not_a_point_embed.weight, embedding)
        embedding = embedding + torch.where(label == 0, self.point_embeddings[0].weight, 0.0)
        return embedding + torch.where(label == 1, self.point_embeddings[1].weight, 0.0)

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        embedding = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_embed = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])
        return embedding + corner_embed

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        grid: tuple[int, int] | None = None,
        origin: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed prompts.

        Parameters
        ----------
        points : (coords, labels) or None
            coords (B, N, 2) as (x, y) in the input frame; labels (B, N): 1 foreground,
            0 background, -1 padding.
        boxes : Tensor (B, 4) or None
            Boxes as (x0, y0, x1, y1) in the input frame.
        masks : Tensor (B, 1, 256, 256) or None
            Low-resolution mask logits from a previous prediction.
        grid : (int, int), optional
            (h, w) of the image embedding the prompts go with; defaults to
            ``image_embedding_size`` (differs only when training on crops smaller than the input).
        origin : Tensor (B, 2), optional
            (x, y) of the embedding grid's origin in the input frame (training crops); unused
            here, used by encoders that draw the prompts.

        Returns
        -------
        sparse : Tensor, shape (B, N_tokens, embed_dim)
        dense : Tensor, shape (B, embed_dim, h, w)
        """
        batch = next(
            (p.shape[0] for p in (points[0] if points else None, boxes, masks) if p is not None), 1
        )
        weight = self.no_mask_embed.weight
        tokens = [weight.new_empty(batch, 0, self.embed_dim)]
        if points is not None:
            tokens.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            tokens.append(self._embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = grid or self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
        return sparse, dense
