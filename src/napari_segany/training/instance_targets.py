"""Training targets of the instance head: foreground and normalised distance to the border."""

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
