"""Automatic segmentation of one encoded image (a whole small image or one tile)."""

from __future__ import annotations

import numpy as np

from napari_segany.automatic.confidence import head_confidence
from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.point_grid import (
    crop_layer_candidates,
    paint_candidates,
    point_grid_candidates,
    suppress_duplicates,
)


def segment_encoded(
    predictor, params: AutomaticParams, rgb: np.ndarray | None = None
) -> tuple[np.ndarray, dict[int, tuple[float, float]], dict[int, float]]:
    """Label every object of the predictor's current image.

    Parameters
    ----------
    predictor : napari_segany.inference.predictor.Predictor
        With an image or embedding set.
    params : AutomaticParams
    rgb : ndarray, shape (H, W, 3), uint8, optional
        The encoded image itself; needed for point-grid crop layers and for instance-head
        ``flips`` > 1.

    Returns
    -------
    labels : ndarray, shape (H, W), uint32
        Objects 1..N, 0 background.
    scores : dict
        Object ID → (score, stability). Point grid: the mask's predicted IoU and stability
        score. Instance head and decoder: the object's mean foreground probability and the
        stability of its area when the foreground threshold moves by ±0.1.
    confidence : dict
        Object ID → how likely the object is right, 0–1. Point grid: its predicted IoU
        (clipped to 0–1). Instance head: the packaged scorer on the object's features
        (:mod:`napari_segany.automatic.confidence`). Decoder: its mean foreground probability.
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
        labels, scores = paint_candidates(candidates, shape, params.min_size, params.fill_holes)
        # the decoder's own IoU estimate is the point grid's best single ranking cue
        confidence = {i: min(1.0, max(0.0, s[0])) for i, s in scores.items()}
        return drop_unconfident(labels, scores, confidence, params.min_confidence)
    if method == "decoder":
        return decoder_labels(predictor, params)
    labels, maps = head_labels_and_maps(predictor, params, rgb)
    scores = head_object_scores(labels, maps.foreground, params.foreground_threshold)
    stability = {i: s[1] for i, s in scores.items()}
    confidence = head_confidence(
        labels,
        maps.foreground,
        maps.centre,
        maps.foreground_spread,
        stability,
        boundary=maps.boundary,
    )
    return drop_unconfident(labels, scores, confidence, params.min_confidence)


def drop_unconfident(
    labels: np.ndarray, scores: dict, confidence: dict[int, float], min_confidence: float
) -> tuple[np.ndarray, dict, dict[int, float]]:
    """Leave out the objects whose confidence is below ``min_confidence``.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
    scores, confidence : dict
        Per object ID, as returned by :func:`segment_encoded`.
    min_confidence : float

    Returns
    -------
    labels, scores, confidence
        The same without those objects (their pixels 0); IDs are not renumbered.
    """
    dropped = [i for i, c in confidence.items() if c < min_confidence]
    if not dropped:
        return labels, scores, confidence
    lookup = np.arange(int(labels.max()) + 1, dtype=labels.dtype)
    lookup[dropped] = 0
    keep = set(confidence) - set(dropped)
    return (
        lookup[labels],
        {i: s for i, s in scores.items() if i in keep},
        {i: c for i, c in confidence.items() if i in keep},
    )


def decoder_labels(
    predictor, params: AutomaticParams
) -> tuple[np.ndarray, dict[int, tuple[float, float]], dict[int, float]]:
    """:func:`segment_encoded` with micro-sam's instance-segmentation decoder."""
    from napari_segany.inference.decoder_maps import decoder_maps, labels_from_distances

    settings = params.decoder_settings(predictor.model)
    maps = decoder_maps(predictor.model, predictor.get_embedding())
    labels = labels_from_distances(maps, settings)
    scores = head_object_scores(labels, maps.foreground, settings.foreground_threshold)
    confidence = {i: s[0] for i, s in scores.items()}
    return drop_unconfident(labels, scores, confidence, params.min_confidence)


def head_labels_and_maps(predictor, params: AutomaticParams, rgb: np.ndarray | None = None):
    """Instance-head labels of the predictor's current image and the maps they came from.

    Returns
    -------
    labels : ndarray, shape (H, W), uint32
    maps : napari_segany.inference.instance_maps.InstanceMaps
    """
    from napari_segany.inference.instance_maps import instance_labels_and_maps  # imports torch

    return instance_labels_and_maps(
        predictor.model, predictor.get_embedding(), lambda: rgb, params, predictor.precision
    )


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
