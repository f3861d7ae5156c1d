"""SAM's mask decoder: image embedding + prompt tokens -> low-resolution masks and predicted IoU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.common import MLP, LayerNorm2d, embedding
from napari_segany.models.two_way_transformer import ImageContext


class MaskDecoder(nn.Module):
    """Predict masks from an image embedding and prompt embeddings.

    Parameters
    ----------
    transformer_dim : int
        Channel size of embeddings (256).
    transformer : nn.Module
        The two-way transformer.
    num_multimask_outputs : int
        Candidate masks returned for ambiguous prompts (3); one more token predicts the single,
        unambiguous mask.
    iou_head_depth, iou_head_hidden_dim : int
        Shape of the MLP predicting each mask's IoU.
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = embedding(1, transformer_dim)
        self.mask_tokens = embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def prepare(
        self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, dense: torch.Tensor
    ) -> ImageContext:
        """Prompt-independent decoder input for one image and a fixed dense prompt embedding.

        Parameters
        ----------
        image_embeddings : Tensor, shape (1, C, h, w)
        image_pe : Tensor, shape (1, C, h, w)
        dense : Tensor, shape (1, C, h, w)
            Dense prompt embedding (the "no mask" embedding when no mask prompt is used).
        """
        return self.transformer.prepare(image_embeddings + dense, image_pe)

    def forward(
        self,
        image_embeddings: torch.Tensor | None,
        image_pe: torch.Tensor | None,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor | None,
        multimask_output: bool,
        context: ImageContext | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks.

        Parameters
        ----------
        image_embeddings : Tensor, shape (1, C, h, w), or None with ``context``
            Embedding of one image, shared by all B prompts.
        image_pe : Tensor, shape (1, C, h, w), or None with ``context``
            Positional encoding of the embedding grid.
        sparse_prompt_embeddings : Tensor, shape (B, N, C)
        dense_prompt_embeddings : Tensor, shape (B, C, h, w), or None with ``context``
        multimask_output : bool
            Return the 3 candidate masks (True) or the single-mask output (False).
        context : ImageContext, optional
            From :meth:`prepare`: the image side, computed once per image.

        Returns
        -------
        masks : Tensor, shape (B, K, 4h, 4w)
            Mask logits, K = 3 or 1.
        iou_pred : Tensor, shape (B, K)
        """
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [output_tokens.expand(batch, -1, -1), sparse_prompt_embeddings.to(output_tokens.dtype)],
            dim=1,
        )
        if context is None:
            src = image_embeddings + dense_prompt_embeddings
            grid = image_embeddings.shape[-2:]
            hs, src_tokens = self.transformer(src, image_pe, tokens)
        else:
            grid = context.grid
            hs, src_tokens = self.transformer(None, None, tokens, context=context)

        wanted = slice(1, self.num_mask_tokens) if multimask_output else slice(0, 1)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]
        hyper_in = torch.stack(
            [
                self.output_hypernetworks_mlps[i](mask_tokens_out[:, i])
                for i in range(self.num_mask_tokens)[wanted]
            ],
            dim=1,
        )  # (B, K, C/8)
        upscaled = self._upscale(src_tokens)  # (B, h·w·16, C/8) in sub-pixel order
        masks = torch.matmul(upscaled, hyper_in.transpose(1, 2))  # (B, h·w·16, K)
        h, w = grid
        # token (i, j), first (a, b) and second (c, d) sub-pixel → pixel (4i + 2a + c, 4j + 2b + d)
        masks = masks.view(batch, h, w, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        masks = masks.reshape(batch, -1, 4 * h, 4 * w)
        iou_pred = self.iou_prediction_head(hs[:, 0])[:, wanted]
        return masks, iou_pred

    def _upscale(self, tokens: torch.Tensor) -> torch.Tensor:
        """``output_upscaling`` on tokens, (B, h·w, C) → (B, h·w·16, C/8).

        Each stride-2, 2×2 transposed convolution maps every input pixel to its own 2×2 output
        pixels: a per-token matrix product. The outputs are kept in sub-pixel order (token, first
        2×2 offset, second 2×2 offset) and only the final masks are rearranged into an image.
        """
        up1, norm, act1, up2, act2 = self.output_upscaling
        x = _transposed_conv2x2(tokens, up1.weight, up1.bias)  # (B, h·w, 4, C/4)
        x = act1(F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps))
        x = _transposed_conv2x2(x.flatten(1, 2), up2.weight, up2.bias)  # (B, h·w·4, 4, C/8)
        return act2(x).flatten(1, 2)


def _transposed_conv2x2(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """ConvTranspose2d(kernel 2, stride 2) applied to each input pixel separately.

    Parameters
    ----------
    x : Tensor, shape (B, P, C_in)
        P input pixels, channels last.
    weight : Tensor, shape (C_in, C_out, 2, 2)
    bias : Tensor, shape (C_out,), optional

    Returns
    -------
    Tensor, shape (B, P, 4, C_out)
        Output pixel (2r + a, 2c + b) of input pixel (r, c) is at [:, p, 2a + b].
    """
    c_in, c_out = weight.shape[:2]
    w = weight.permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)
    flat = x.reshape(-1, c_in)
    # the bias, when there is one, is fused into the matrix product
    y = flat @ w if bias is None else torch.addmm(bias.repeat(4), flat, w)
    return y.view(*x.shape[:-1], 4, c_out)
