"""The one place where architecture hyperparameters live, and :func:`build_model`.

>>> from napari_segany import build_model
>>> model = build_model("vit_b")          # randomly initialised, for tests  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from napari_segany.models.inference_settings import InferenceSettings
from napari_segany.models.mask_decoder import MaskDecoder
from napari_segany.models.prompt_encoder import PromptEncoder
from napari_segany.models.raster_prompts import RasterPromptEncoder
from napari_segany.models.sam import SamModel
from napari_segany.models.two_way_transformer import TwoWayTransformer
from napari_segany.models.vit import ImageEncoderViT

PROMPT_EMBED_DIM = 256


@dataclass(frozen=True)
class Architecture:
    """How to build one model family member.

    Attributes
    ----------
    name : str
        Architecture name (``"vit_b"`` ...).
    encoder : str
        ``"vit"`` (SAM ViT) or ``"tiny_vit"`` (MobileSAM).
    encoder_kwargs : dict
        Arguments of the image encoder class.
    img_size : int
        Side of the square model input.
    raster_prompts : bool
        Use :class:`~napari_segany.models.raster_prompts.RasterPromptEncoder` (prompts also drawn
        into the dense embedding; for models trained from scratch).
    upscale_input : bool
        Whether images smaller than the input are scaled up to it (SAM) or only padded.
    instance_head : bool
        Add an :class:`~napari_segany.models.instance_head.InstanceHead` (foreground, centre
        and boundary maps for fast automatic segmentation; only models trained with one have it).
    decoder_window : int or None
        Side, in embedding tokens, of the window around the prompts that the mask decoder
        attends to (None: the whole embedding, as SAM). Models trained on crops decode best on
        windows of their training crop's size.
    inference : InferenceSettings
        How predictors, sessions and automatic segmentation use the model (prompt views,
        click guidance, encoding batch size).
    """

    name: str
    encoder: str
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    img_size: int = 1024
    upscale_input: bool = True
    raster_prompts: bool = False
    instance_head: bool = False
    decoder_window: int | None = None
    inference: InferenceSettings = field(default_factory=InferenceSettings)


def _vit(
    name: str, dim: int, depth: int, heads: int, global_blocks: tuple[int, ...]
) -> Architecture:
    kwargs = dict(embed_dim=dim, depth=depth, num_heads=heads, global_attn_indexes=global_blocks)
    return Architecture(name, "vit", kwargs)


ARCHITECTURES: dict[str, Architecture] = {
    "vit_h": _vit("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": _vit("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": _vit("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    # the embedded default model: a small CNN encoder with SAM's prompt encoder and mask decoder
    # trained at the pixel size of the data: small images are padded, not scaled up
    "segany_cells": Architecture(
        "segany_cells",
        "cell_cnn",
        {},
        upscale_input=False,
        raster_prompts=True,
        instance_head=True,
        decoder_window=16,  # trained on 256² crops: the decoder saw 16×16 tokens
        inference=InferenceSettings(
            prompt_views=6, guide_min_area=800, guide_flips=4, encode_batch_size=4
        ),
    ),
    "vit_t": Architecture(
        "vit_t",
        "tiny_vit",
        dict(
            embed_dims=(64, 128, 160, 320),
            depths=(2, 2, 6, 2),
            num_heads=(2, 4, 5, 10),
            window_sizes=(7, 7, 14, 7),
        ),
    ),
}


def _build_encoder(arch: Architecture, img_size: int) -> nn.Module:
    if arch.encoder == "vit":
        return ImageEncoderViT(img_size=img_size, out_chans=PROMPT_EMBED_DIM, **arch.encoder_kwargs)
    if arch.encoder == "tiny_vit":
        from napari_segany.models.tiny_vit import TinyViT

        return TinyViT(img_size=img_size, out_chans=PROMPT_EMBED_DIM, **arch.encoder_kwargs)
    if arch.encoder == "cell_cnn":
        from napari_segany.models.cell_encoder import CellEncoder

        return CellEncoder(img_size=img_size, out_chans=PROMPT_EMBED_DIM, **arch.encoder_kwargs)
    raise ValueError(f"unknown encoder kind {arch.encoder!r}")


def _build_instance_head() -> nn.Module:
    from napari_segany.models.instance_head import InstanceHead

    return InstanceHead(embed_dim=PROMPT_EMBED_DIM)


def _init_random(model: nn.Module, generator: torch.Generator) -> None:
    """Give parameters that SAM initialises to zero (position tables) small random values, so a
    randomly initialised model exercises every code path."""
    for name, param in model.named_parameters():
        if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
            with torch.no_grad():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)


def build_model(
    arch: str | Architecture,
    *,
    img_size: int | None = None,
    seed: int | None = 0,
    device: str | None = None,
) -> SamModel:
    """Build a randomly initialised model of a known architecture.

    Parameters
    ----------
    arch : str or Architecture
        One of :data:`ARCHITECTURES` (``"vit_h"``, ``"vit_l"``, ``"vit_b"``, ``"vit_t"``,
        ``"segany_cells"``), or an
        :class:`Architecture` (e.g. a shrunken ViT for tests).
    img_size : int, optional
        Side of the model input; defaults to the architecture's (1024). Smaller sizes make fast
        test models. Must be a multiple of 16 (and of the windows' sizes for TinyViT).
    seed : int or None
        Seed for the random weights (None: torch's global generator state).
    device : str, optional
        Device to build on, e.g. ``"meta"`` to get shapes without allocating memory.

    Returns
    -------
    SamModel
        In eval mode.
    """
    if isinstance(arch, Architecture):
        spec = arch
    elif arch in ARCHITECTURES:
        spec = ARCHITECTURES[arch]
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    size = img_size or spec.img_size
    if size % 16:
        raise ValueError(f"img_size must be a multiple of 16, got {size}")
    grid = size // 16
    devctx = torch.device(device) if device is not None else torch.device("cpu")
    fork = torch.random.fork_rng(enabled=seed is not None, devices=[])
    with fork, devctx:
        if seed is not None:
            torch.manual_seed(seed)
        model = SamModel(
            image_encoder=_build_encoder(spec, size),
            prompt_encoder=(RasterPromptEncoder if spec.raster_prompts else PromptEncoder)(
                embed_dim=PROMPT_EMBED_DIM,
                image_embedding_size=(grid, grid),
                input_image_size=(size, size),
                mask_in_chans=16,
            ),
            mask_decoder=MaskDecoder(
                transformer_dim=PROMPT_EMBED_DIM,
                transformer=TwoWayTransformer(
                    depth=2, embedding_dim=PROMPT_EMBED_DIM, num_heads=8, mlp_dim=2048
                ),
                num_multimask_outputs=3,
                iou_head_depth=3,
                iou_head_hidden_dim=256,
            ),
            architecture=spec.name,
            upscale_input=spec.upscale_input,
            instance_head=_build_instance_head() if spec.instance_head else None,
            decoder_window=spec.decoder_window,
            inference=spec.inference,
        )
        if devctx.type != "meta":
            gen = torch.Generator().manual_seed(seed if seed is not None else 0)
            _init_random(model, gen)
    return model.eval()
