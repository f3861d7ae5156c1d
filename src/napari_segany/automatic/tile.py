"""Automatic segmentation of one encoded image (a whole small image or one tile)."""

from __future__ import annotations

import numpy as np

from napari_segany.inference.instance_labels import labels_from_maps
from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.point_grid import (
    crop_layer_candidates,
    paint_candidates,
    point_grid_candidates,
    suppress_duplicates,
)


def instance_probabilities(
    predictor, rgb: np.ndarray | None = None, views: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and centre probabilities of the predictor's current image.

    The head's stride-4 logits are upsampled bilinearly over the padded model input (as in
    training), cropped to the resized image and, for models that rescale images, resized to the
    original size. With ``views`` > 1 the image is also encoded flipped (and transposed for 8
    views); each view's probabilities are turned back and all are averaged.

    Parameters
    ----------
    predictor : napari_segany.inference.predictor.Predictor
        With an image or embedding set (the first view).
    rgb : ndarray, shape (H, W, 3), uint8, optional
        The encoded image; needed for ``views`` > 1.
    views : {1, 4, 8}

    Returns
    -------
    foreground, centre : ndarray, shape (H, W), float32
        At the image's original size, values 0–1.
    """
    import torch

    emb = predictor.get_embedding()
    with torch.inference_mode():
        total = _head_probabilities(predictor, emb.features.to(predictor.device), emb)
        if views > 1:
            if rgb is None:
                raise ValueError("averaging instance maps over several views needs the image")
            for forward, back in _VIEW_TRANSFORMS[1:views]:
                total += back(_encoded_probabilities(predictor, forward(rgb)))
    probs = (total / views).cpu().numpy()
    return probs[0], probs[1]


def _encoded_probabilities(predictor, rgb: np.ndarray):
    from napari_segany.inference.predictor import resize_for_model

    model = predictor.model
    x = resize_for_model(np.ascontiguousarray(rgb), model.image_size, model.upscale_input)
    features = predictor.encode(x.to(predictor.device))
    size = (int(rgb.shape[0]), int(rgb.shape[1]))
    return _head_probabilities(predictor, features, size=size, input_size=tuple(x.shape[-2:]))


def _head_probabilities(predictor, features, emb=None, size=None, input_size=None):
    """(2, H, W) sigmoid of the head's logits at the original size (a torch tensor)."""
    import torch
    import torch.nn.functional as F

    if emb is not None:
        size, input_size = tuple(emb.original_size), tuple(emb.input_size)
    logits = predictor.model.instance_maps(features).float()
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


#: (view of an (H, W, 3) image, map of that view (C, h, w) → map of the image), first the
#: identity, then the flips, then the transposes of the flips.
_VIEW_TRANSFORMS = [
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


def segment_encoded(
    predictor, params: AutomaticParams, rgb: np.ndarray | None = None
) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Label every object of the predictor's current image.

    Parameters
    ----------
    predictor : napari_segany.inference.predictor.Predictor
        With an image or embedding set.
    params : AutomaticParams
    rgb : ndarray, shape (H, W, 3), uint8, optional
        The encoded image itself; needed for point-grid crop layers and for instance-head
        ``views`` > 1.

    Returns
    -------
    labels : ndarray, shape (H, W), uint32
        Objects 1..N, 0 background.
    scores : dict
        Object ID → (score, stability). Point grid: the mask's predicted IoU and stability
        score. Instance head: the object's mean foreground probability and the stability of its
        area when the foreground threshold moves by ±0.1.
    """
    method = params.resolve_method(predictor.model)
    if method == "point_grid":
        grid = params.point_grid
        candidates = point_grid_candidates(predictor, grid, nms=False)
        if grid.crop_layers > 0:
            if rgb is None:
                raise ValueError("point-grid crop layers need the image (rgb=...)")
            candidates += crop_layer_candidates(predictor.model, rgb, grid, predictor.precision)
        candidates = suppress_duplicates(candidates, grid.box_nms_threshold)
        shape = tuple(predictor.get_embedding().original_size)
        return paint_candidates(candidates, shape, params.min_size, params.fill_holes)
    foreground, centre = instance_probabilities(predictor, rgb, params.views)
    labels = labels_from_maps(
        foreground,
        centre,
        foreground_threshold=params.foreground_threshold,
        seed_threshold=params.seed_threshold,
        min_size=params.min_size,
        fill_holes=params.fill_holes,
        centre_sigma=params.centre_sigma,
        split_solidity=params.split_solidity,
    )
    return labels, head_object_scores(labels, foreground, params.foreground_threshold)


def head_object_scores(
    labels: np.ndarray, foreground: np.ndarray, threshold: float, delta: float = 0.1
) -> dict[int, tuple[float, float]]:
    """Per object: mean foreground probability, and area above ``threshold + delta`` divided by
    area above ``threshold - delta`` (within the object's pixels; 1 = sharp edges)."""
    n = int(labels.max())
    if n == 0:
        return {}
    flat = labels.ravel()
    fg = foreground.ravel().astype(np.float64)
    area = np.bincount(flat, minlength=n + 1)
    mean = np.bincount(flat, weights=fg, minlength=n + 1) / np.maximum(area, 1)
    high = np.bincount(flat, weights=fg > threshold + delta, minlength=n + 1)
    low = np.bincount(flat, weights=fg > threshold - delta, minlength=n + 1)
    stability = high / np.maximum(low, 1)
    return {i: (float(mean[i]), float(stability[i])) for i in range(1, n + 1) if area[i] > 0}
