"""Reference SAM models (Meta's ``segment_anything`` classes) with random weights, for the parity
tests."""

from __future__ import annotations

from functools import partial

import torch


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Give parameters that start as zeros/ones (position tables, norms) random values too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                param.copy_(noise * 0.05)
            elif param.ndim == 1 and "norm" in name:
                param.add_(noise * 0.1)


def small_reference_sam(segment_anything, size: int, dim: int, depth: int, heads: int, glob):
    """A reference ``Sam`` with a shrunken ViT encoder (``size``² input), randomised weights."""
    m = segment_anything.modeling
    torch.manual_seed(0)
    model = m.Sam(
        image_encoder=m.ImageEncoderViT(
            depth=depth,
            embed_dim=dim,
            img_size=size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=heads,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=glob,
            window_size=14,
            out_chans=256,
        ),
        prompt_encoder=m.PromptEncoder(
            embed_dim=256,
            image_embedding_size=(size // 16, size // 16),
            input_image_size=(size, size),
            mask_in_chans=16,
        ),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=3,
            transformer=m.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    ).eval()
    randomise(model, seed=1)
    return model


def ours_from_reference(reference, size: int, dim: int, depth: int, heads: int, glob, **_):
    """Our model loaded from the state dict of a :func:`small_reference_sam` of those sizes."""
    from napari_segany.models.architectures import Architecture
    from napari_segany.models.loading import model_from_state_dict

    spec = Architecture(
        "vit_small_test",
        "vit",
        dict(embed_dim=dim, depth=depth, num_heads=heads, global_attn_indexes=glob),
        img_size=size,
    )
    return model_from_state_dict(reference.state_dict(), spec)
