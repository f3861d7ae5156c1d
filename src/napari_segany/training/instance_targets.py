"""Training targets of the instance head: normalised distance to the border, and the borders
between touching objects (the foreground target is simply ``labels > 0``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def centre_map(labels: np.ndarray) -> np.ndarray:
    """Distance to the object's border divided by the object's largest distance.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Instance labels, 0 background.

    Returns
    -------
    ndarray, shape (H, W), float32
        0 on the background and on every pixel touching another label or the background,
        rising to 1 at each object's innermost pixels. Touching objects are separated by a
        zero line, so regions of high value never join two objects.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, np.float32)
    if not labels.any():
        return out
    # a pixel is "border" when any 4-neighbour carries a different label
    padded = np.pad(labels, 1, mode="edge")
    border = np.zeros(labels.shape, bool)
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        border |= padded[dr : dr + labels.shape[0], dc : dc + labels.shape[1]] != labels
    inner = (labels > 0) & ~border
    dist = ndimage.distance_transform_edt(inner).astype(np.float32)
    ids = np.unique(labels[labels > 0])
    peak = np.asarray(ndimage.maximum(dist, labels, ids), np.float32)
    lookup = np.zeros(int(ids.max()) + 1, np.float32)
    lookup[ids] = np.where(peak > 0, 1.0 / np.maximum(peak, 1e-6), 0.0)
    out = dist * lookup[labels]
    # objects too thin to have an inner pixel still get a seed at their own pixels
    tiny = (labels > 0) & (lookup[labels] == 0)
    out[tiny] = 1.0
    return np.clip(out, 0.0, 1.0)


def touching_border_map(labels: np.ndarray, width: int = 2) -> np.ndarray:
    """Pixels of an object within ``width`` pixels of a different object.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Instance labels, 0 background.
    width : int
        Chessboard distance (pixels) to the other object; the band is about ``2 * width`` wide
        across a shared border, so the head's stride-4 logits can resolve it.

    Returns
    -------
    ndarray, shape (H, W), float32
        1 on both sides of every border shared by two objects, 0 elsewhere (also along borders
        with the background, which the foreground map already gives).
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    size = 2 * width + 1
    highest = ndimage.maximum_filter(labels, size=size, mode="nearest")
    # the smallest *object* label nearby: background counts as larger than every label
    no_background = np.where(labels > 0, labels, labels.max() + 1)
    lowest = ndimage.minimum_filter(no_background, size=size, mode="nearest")
    inside = labels > 0
    other = (highest > labels) | (lowest < labels)
    return (inside & other).astype(np.float32)
