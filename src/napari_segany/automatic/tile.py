"""Automatic segmentation of one encoded image (a whole small image or one tile)."""

from __future__ import annotations

import numpy as np

from napari_segany.automatic.instances import labels_from_maps
from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.point_grid import (
    crop_layer_candidates,
    paint_candidates,
    point_grid_candidates,
    suppress_duplicates,
)


def instance_probabilities(predictor) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and centre probabilities of the predictor's current image.

    The head's stride-4 logits are upsampled bilinearly over the padded model input (as in
    training), cropped to the resized image and, for models that rescale images, resized to the
    original size.

    Returns
    -------
    foreground, centre : ndarray, shape (H, W), float32
        At the image's original size, values 0–1.
    """
    import torch
    import torch.nn.functional as F

    emb = predictor.get_embedding()
    with torch.inference_mode():
        logits = predictor.model.instance_maps(emb.features.to(predictor.device)).float()
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        h, w = emb.input_size
        logits = logits[..., :h, :w]
        if tuple(emb.original_size) != (h, w):
            logits = F.interpolate(
                logits, size=tuple(emb.original_size), mode="bilinear", align_corners=False
            )
        probs = torch.sigmoid(logits[0]).cpu().numpy()
    return probs[0], probs[1]


def segment_encoded(
    predictor, params: AutomaticParams, rgb: np.ndarray | None = None
) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Label every object of the predictor's current image.

    Parameters
    ----------
    predictor : napari_segany.predictor.Predictor
        With an image or embedding set.
    params : AutomaticParams
    rgb : ndarray, shape (H, W, 3), uint8, optional
        The encoded image itself; needed only for point-grid crop layers.

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
    foreground, centre = instance_probabilities(predictor)
    labels = labels_from_maps(
        foreground,
        centre,
        foreground_threshold=params.foreground_threshold,
        seed_threshold=params.seed_threshold,
        min_size=params.min_size,
        fill_holes=params.fill_holes,
        centre_sigma=params.centre_sigma,
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
