"""A small convolutional image encoder for the embedded cell model.

It produces the same kind of embedding as SAM's ViT, (B, 256, S/16, S/16), so the prompt encoder,
mask decoder, predictor, tiling and caches treat it like any SAM checkpoint, while costing about
10 GFLOP per 1024² input instead of ~1 TFLOP (vit_b).

Cells and nuclei in microscopy are often only 10–30 pixels wide, about one stride-16 token. SAM's
mask decoder turns each token into a 4×4 patch of stride-4 mask pixels, so the tokens must carry
detail at that scale. The encoder therefore packs its stride-4 and stride-8 feature maps into the
tokens (space-to-depth) next to the stride-16 context features.

Layout (strides relative to the input):

* stem: 3×3 conv, stride 2;
* stages at strides 4, 8 and 16, each entered by a separable stride-2 downsampling and made of
  inverted-residual blocks (depthwise conv → pointwise expand → pointwise project, residual);
  the stride-16 stage uses 7×7 depthwise kernels for context;
* fusion: stride-4 and stride-8 maps are pixel-unshuffled to the stride-16 grid, each stage is
  projected with a 1×1 conv, and the concatenation is mixed by a 1×1 conv and normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.common import ConvBN, LayerNorm2d


class InvertedResidual(nn.Module):
    """``x + project(GELU(expand(depthwise(x))))`` on a (B, C, H, W) map."""

    def __init__(self, channels: int, kernel: int = 3, expansion: int = 2) -> None:
        super().__init__()
        self.depthwise = ConvBN(channels, channels, kernel, groups=channels)
        self.expand = ConvBN(channels, channels * expansion, 1)
        self.project = ConvBN(channels * expansion, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.gelu(self.expand(self.depthwise(x))))


class Downsample(nn.Module):
    """Separable stride-2 downsampling: depthwise 3×3 stride 2, pointwise, GELU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = ConvBN(c_in, c_in, 3, stride=2, groups=c_in)
        self.pointwise = ConvBN(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.pointwise(self.depthwise(x)))


class CellEncoder(nn.Module):
    """Convolutional image encoder with a SAM-compatible output.

    Parameters
    ----------
    img_size : int
        Side of the square model input (a multiple of 16).
    in_chans : int
        Input channels (3: SAM's normalised RGB).
    widths : tuple of 4 int
        Channels of the stem and of the stride-4, -8 and -16 stages.
    depths : tuple of 3 int
        Blocks in the stride-4, -8 and -16 stages.
    fusion : tuple of 3 int
        Channels each stage contributes to the embedding (stride 4, 8, 16).
    out_chans : int
        Channels of the embedding (256, the prompt embedding size).

    Forward input (B, in_chans, H, W) with H, W multiples of 16; output (B, out_chans, H/16, W/16).
    """

    def __init__(
        self,
        img_size: int = 1024,
        in_chans: int = 3,
        widths: tuple[int, int, int, int] = (24, 48, 96, 192),
        depths: tuple[int, int, int] = (1, 2, 3),
        fusion: tuple[int, int, int] = (96, 64, 96),
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.stem = ConvBN(in_chans, widths[0], 3, stride=2)
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            kernel = 7 if i == len(depths) - 1 else 3
            blocks = [Downsample(widths[i], widths[i + 1])]
            blocks += [InvertedResidual(widths[i + 1], kernel) for _ in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
        # stage i (stride 4·2^i) is unshuffled by 4 / 2^i to reach the stride-16 grid
        self.unshuffle = (4, 2, 1)
        self.fuse = nn.ModuleList(
            nn.Conv2d(widths[i + 1] * self.unshuffle[i] ** 2, fusion[i], 1) for i in range(3)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(sum(fusion), out_chans, 1),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 16 or x.shape[-1] % 16:
            raise ValueError(f"input height and width must be multiples of 16, got {x.shape}")
        # channels-last runs the small convolutions much faster on CPUs
        x = F.gelu(self.stem(x.contiguous(memory_format=torch.channels_last)))
        parts = []
        for stage, factor, fuse in zip(self.stages, self.unshuffle, self.fuse, strict=True):
            x = stage(x)
            packed = F.pixel_unshuffle(x, factor) if factor > 1 else x
            parts.append(fuse(packed))
        return self.neck(torch.cat(parts, dim=1)).contiguous()
