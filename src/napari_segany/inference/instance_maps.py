"""An instance head's foreground, centre and boundary maps of one encoded image, optionally
averaged over flipped views, and the instance labels they give.

The automatic segmentation of a tile and the instance map that guides a click both come from
here (:func:`instance_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.inference.embedding import ImageEmbedding, embed_rgbs
from napari_segany.inference.instance_labels import InstanceSeeding
from napari_segany.models.sam import SamModel


@dataclass(frozen=True)
class InstanceMaps:
    """An instance head's maps of one image, averaged over flipped views.

    Attributes
    ----------
    foreground, centre, boundary : ndarray, shape (H, W), float32
        Mean foreground, centre and boundary probabilities over the views, at the image's
        original size (see :class:`~napari_segany.models.instance_head.InstanceHead`).
    foreground_spread : ndarray, shape (H, W), float32
        Standard deviation of the foreground probability across the views (zeros for one view):
        where the flipped views disagree.
    """

    foreground: np.ndarray
    centre: np.ndarray
    boundary: np.ndarray
    foreground_spread: np.ndarray


def instance_probabilities(
    model: SamModel,
    embedding: ImageEmbedding,
    rgb: np.ndarray | None = None,
    flips: int = 1,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground, centre and boundary probabilities of an encoded image.

    The head's stride-4 logits are upsampled bilinearly over the padded model input (as in
    training), cropped to the resized image and, for models that rescale images, resized to the
    original size. With ``flips`` > 1 the image is also encoded flipped (and transposed for 8
    flips); each view's probabilities are turned back and all are averaged.

    Parameters
    ----------
    model : SamModel
        With an instance head.
    embedding : ImageEmbedding
        The image's own embedding (the first view).
    rgb : ndarray, shape (H, W, 3), uint8, optional
        The encoded image; needed for ``flips`` > 1.
    flips : {1, 4, 8}
    precision : {"fp32", "bf16"}
        Encoder precision of the flipped views.

    Returns
    -------
    foreground, centre, boundary : ndarray, shape (H, W), float32
        At the image's original size, values 0–1.
    """
    maps = instance_maps(model, embedding, rgb, flips, precision)
    return maps.foreground, maps.centre, maps.boundary


def instance_maps(
    model: SamModel,
    embedding: ImageEmbedding,
    rgb: np.ndarray | None = None,
    flips: int = 1,
    precision: str = "fp32",
) -> InstanceMaps:
    """:func:`instance_probabilities`, with the foreground's spread across the flipped views."""
    if flips > 1 and rgb is None:
        raise ValueError("averaging instance maps over several flips needs the image")
    with torch.inference_mode():
        features = embedding.features.to(model.device)
        total = _head_probabilities(model, features, embedding.original_size, embedding.input_size)
        squares = total[0] ** 2
        for forward, back in _FLIP_TRANSFORMS[1:flips]:
            view = embed_rgbs(model, [np.ascontiguousarray(forward(rgb))], precision)[0]
            probs = back(
                _head_probabilities(model, view.features, view.original_size, view.input_size)
            )
            total += probs
            squares += probs[0] ** 2
        mean = total / flips
        spread = (squares / flips - mean[0] ** 2).clamp_(min=0).sqrt_()
    probs = mean.cpu().numpy()
    return InstanceMaps(probs[0], probs[1], probs[2], spread.cpu().numpy())


def instance_labels(
    model: SamModel,
    embedding: ImageEmbedding,
    read_rgb: Callable[[], np.ndarray] | None,
    seeding: InstanceSeeding,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels of an encoded image, and its foreground probability.

    Parameters
    ----------
    model, embedding, precision
        As for :func:`instance_probabilities`.
    read_rgb : callable, optional
        Returns the encoded image, (H, W, 3) uint8; called only when ``seeding.flips`` > 1.
    seeding : InstanceSeeding

    Returns
    -------
    labels : ndarray, shape (H, W), uint32
    foreground : ndarray, shape (H, W), float32
    """
    labels, maps = instance_labels_and_maps(model, embedding, read_rgb, seeding, precision)
    return labels, maps.foreground


def instance_labels_and_maps(
    model: SamModel,
    embedding: ImageEmbedding,
    read_rgb: Callable[[], np.ndarray] | None,
    seeding: InstanceSeeding,
    precision: str = "fp32",
) -> tuple[np.ndarray, InstanceMaps]:
    """:func:`instance_labels`, with all the maps the labels came from (:class:`InstanceMaps`)."""
    rgb = None
    if seeding.flips > 1:
        if read_rgb is None:
            raise ValueError(
                "an instance map with flips > 1 needs the image's pixels: use set_image(), or "
                "set_embedding(embedding, read_rgb)"
            )
        rgb = read_rgb()
    maps = instance_maps(model, embedding, rgb, seeding.flips, precision)
    return seeding.labels(maps.foreground, maps.centre, maps.boundary), maps


def _head_probabilities(model, features, size, input_size) -> torch.Tensor:
    """(3, H, W) sigmoid of the head's logits at the original ``size`` (a torch tensor)."""
    logits = model.instance_maps(features).float()
    logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
    logits = logits[..., : input_size[0], : input_size[1]]
    if tuple(size) != tuple(input_size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return torch.sigmoid(logits[0])


def _swap(a):
    """(H, W, ...) image ↔ its transpose; (C, H, W) tensors swap their last two axes."""
    return a.swapaxes(0, 1) if isinstance(a, np.ndarray) else a.transpose(-2, -1)


def _tensor_axes(axes):
    # image axes (0: rows, 1: cols) → the same axes of a (C, H, W) tensor
    return lambda t: t.flip([a + 1 for a in axes])


#: (flip of an (H, W, 3) image, map of that view (C, h, w) → map of the image), first the
#: identity, then the flips, then the transposes of the flips.
_FLIP_TRANSFORMS = [
    (lambda a: a, lambda t: t),
    *[(lambda a, ax=ax: np.flip(a, axis=ax), _tensor_axes(ax)) for ax in ((0,), (1,), (0, 1))],
    *[
        (
            lambda a, ax=ax: _swap(np.flip(a, axis=ax) if ax else a),
            lambda t, ax=ax: _tensor_axes(ax)(_swap(t)) if ax else _swap(t),
        )
        for ax in ((), (0,), (1,), (0, 1))
    ],
]
