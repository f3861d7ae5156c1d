"""micro-sam's instance-segmentation decoder: a UNETR-style convolutional decoder on the SAM
image embedding.

micro-sam publishes, beside its finetuned SAM weights, a decoder (``vit_b_lm_decoder`` and the
others) that turns the stride-16 image embedding into three maps at the model-input
resolution:

* channel 0, the foreground probability;
* channel 1, the distance to the object's centre (0 at the centre, rising outwards);
* channel 2, the distance to the object's boundary, inverted (0 deep inside, 1 at the border).

Instances follow from a seeded watershed on them (:mod:`napari_segany.inference.decoder_maps`).

Layout (state-dict keys as in micro-sam's decoder files; widths for ``features`` =
(512, 256, 128, 64)):

* ``deconv1`` … ``deconv4``: a chain of ×2 up-samplings of the embedding, each an up-sampler,
  a 3×3 convolution, batch norm and ReLU: 64² → 128² (512 channels) → 256² (256) → 512² (128)
  → 1024² (64);
* ``base``: a convolution block on the embedding itself (512 channels at 64²);
* ``decoder``: three steps that up-sample (``decoder.samplers``) and join the middle channels of
  the matching ``deconv`` output before a convolution block (``decoder.blocks``);
* ``deconv_out``, ``decoder_head`` and ``out_conv``: a last ×2 up-sampling, joined with the
  ``deconv4`` output, a convolution block and a 1×1 output convolution, then a sigmoid.

The batch norms normalise with the statistics of the image being decoded, not with the running
statistics stored in the file: micro-sam runs its decoders in training mode (it never switches
them to evaluation), so the published decoders were evaluated, and behave, that way. Each tile of
a large image is therefore normalised by its own statistics, as in micro-sam's tiled mode.

A convolution block is instance norm, 3×3 convolution, ReLU, instance norm, 3×3 convolution,
ReLU. An up-sampler is either bilinear interpolation and a 1×1 convolution (keys ``*.conv.*``)
or a 2×2 transposed convolution with stride 2 (keys ``*.block.*``); which one a file holds is
told by its keys (:func:`uses_transposed_convolutions`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.decoder_settings import DecoderSettings

#: Channels of the SAM image embedding the decoder reads.
EMBED_DIM = 256
#: Channel widths of micro-sam's published decoders, coarse to fine.
FEATURES = (512, 256, 128, 64)
FOREGROUND, CENTER_DISTANCES, BOUNDARY_DISTANCES = 0, 1, 2
#: Number of output maps.
N_OUTPUTS = 3


def uses_transposed_convolutions(keys: Iterable[str]) -> bool:
    """Whether a decoder state dict up-samples with transposed convolutions.

    Parameters
    ----------
    keys : iterable of str
        State-dict keys of a micro-sam decoder file.

    Returns
    -------
    bool
        True when the decoder's samplers hold ``.block.`` weights (transposed convolutions),
        False when they hold ``.conv.`` weights (bilinear interpolation and a 1×1 convolution).
    """
    return any(".block." in k for k in keys if k.startswith("decoder.samplers"))


class _Upsample(nn.Module):
    """×2 up-sampling from ``in_channels`` to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, transposed: bool) -> None:
        super().__init__()
        self.transposed = transposed
        if transposed:
            self.block = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return self.block(x)
        conv = self.conv
        # A 1×1 convolution and bilinear interpolation commute (both are linear, and the
        # interpolation weights sum to one, so the bias passes through): convolving at the low
        # resolution first gives the same maps for a quarter of the work when the convolution
        # does not widen the tensor.
        if conv.out_channels <= conv.in_channels:
            return _double(conv(x))
        return conv(_double(x))


def _double(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class _Conv3x3(nn.Module):
    """A 3×3 convolution held as ``block`` (the key layout of the decoder files)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _ImageStatsBatchNorm(nn.BatchNorm2d):
    """Batch norm over the decoded image's own statistics (per channel, over rows and columns).

    Keeps the running-statistics buffers only so that the file's keys load strictly; they are
    never read or updated.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class _UpBlock(nn.Module):
    """Up-sampler, 3×3 convolution, batch norm, ReLU (keys ``block.0`` … ``block.2``)."""

    def __init__(self, in_channels: int, out_channels: int, transposed: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _Upsample(in_channels, out_channels, transposed),
            _Conv3x3(out_channels, out_channels),
            _ImageStatsBatchNorm(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _ConvBlock(nn.Module):
    """Instance norm, 3×3 convolution, ReLU, twice (keys ``block.1`` and ``block.4``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.InstanceNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.InstanceNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Decoder(nn.Module):
    """The U-Net steps: up-sample, join the skip tensor's middle channels, convolve."""

    def __init__(self, features: tuple[int, ...], transposed: bool) -> None:
        super().__init__()
        pairs = list(itertools.pairwise(features))
        self.samplers = nn.ModuleList([_Upsample(i, o, transposed) for i, o in pairs])
        self.blocks = nn.ModuleList([_ConvBlock(i, o) for i, o in pairs])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for sampler, block, skip in zip(self.samplers, self.blocks, skips, strict=True):
            x = sampler(x)
            x = block(torch.cat([x, _middle_channels(skip, x.shape[1])], dim=1))
        return x


def _middle_channels(x: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` central channels of (B, C, H, W) ``x``: the published decoders were
    trained joining a skip tensor cropped to the width of the up-sampled one, centred."""
    start = (x.shape[1] - count) // 2
    return x[:, start : start + count]


class InstanceDecoder(nn.Module):
    """micro-sam's instance-segmentation decoder (see the module docstring).

    Parameters
    ----------
    transposed : bool
        Up-sample with 2×2 transposed convolutions (True) or bilinear interpolation and a 1×1
        convolution (False, micro-sam's default).
    embed_dim : int
        Channels of the image embedding (256 for every SAM).
    features : tuple of int
        Decoder widths, coarse to fine.
    settings : DecoderSettings, optional
        How its maps are best turned into objects (default micro-sam's); kept as
        ``self.settings``.

    Forward input (B, embed_dim, h, w) image embedding; output (B, 3, 16h, 16w) probabilities,
    channels :data:`FOREGROUND`, :data:`CENTER_DISTANCES` and :data:`BOUNDARY_DISTANCES`, over
    the padded model input (rows, cols).
    """

    def __init__(
        self,
        transposed: bool = False,
        embed_dim: int = EMBED_DIM,
        features: tuple[int, ...] = FEATURES,
        settings: DecoderSettings | None = None,
    ) -> None:
        super().__init__()
        self.architecture = "micro-sam instance decoder"
        self.transposed = transposed
        self.settings = settings if settings is not None else DecoderSettings()
        widths = (embed_dim, *features)
        for i, (cin, cout) in enumerate(itertools.pairwise(widths), start=1):
            setattr(self, f"deconv{i}", _UpBlock(cin, cout, transposed))
        self.base = _ConvBlock(embed_dim, features[0])
        self.decoder = _Decoder(features, transposed)
        self.deconv_out = _Upsample(features[-1], features[-1], transposed)
        self.decoder_head = _ConvBlock(2 * features[-1], features[-1])
        self.out_conv = nn.Conv2d(features[-1], N_OUTPUTS, kernel_size=1)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        z9 = self.deconv1(embedding)
        z6 = self.deconv2(z9)
        z3 = self.deconv3(z6)
        z0 = self.deconv4(z3)
        x = self.decoder(self.base(embedding), [z9, z6, z3])
        x = self.decoder_head(torch.cat([self.deconv_out(x), z0], dim=1))
        return torch.sigmoid(self.out_conv(x))
