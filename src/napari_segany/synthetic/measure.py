"""Measurements of label images that say how crowded a scene is and how visible its borders are.

Used to check and describe the dense-cluster preset (:data:`~.presets.DENSE_CLUSTERS`) against
the default scenes; arrays are (row, col) and labels are 0 for background.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _neighbour_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All 4-neighbour pixel pairs that lie in two different objects.

    Returns
    -------
    low, high : ndarray, shape (K,), int64
        The smaller and the larger label of each pixel pair.
    first, second : ndarray, shape (K,), int64
        Flat indices of the two pixels (in ``labels.ravel()``).
    """
    flat = np.arange(labels.size, dtype=np.int64).reshape(labels.shape)
    lows, highs, firsts, seconds = [], [], [], []
    for a, b, ia, ib in (
        (labels[1:], labels[:-1], flat[1:], flat[:-1]),
        (labels[:, 1:], labels[:, :-1], flat[:, 1:], flat[:, :-1]),
    ):
        across = (a != b) & (a > 0) & (b > 0)
        la, lb = a[across].astype(np.int64), b[across].astype(np.int64)
        lows.append(np.minimum(la, lb))
        highs.append(np.maximum(la, lb))
        firsts.append(ia[across])
        seconds.append(ib[across])
    return tuple(np.concatenate(parts) for parts in (lows, highs, firsts, seconds))


def touching_pairs(labels: np.ndarray, min_border: int = 1) -> np.ndarray:
    """Pairs of objects that share a border (are 4-neighbours somewhere).

    Parameters
    ----------
    labels : ndarray, shape (H, W), int
        Instance labels, 0 = background.
    min_border : int
        Count a pair only if at least this many 4-neighbour pixel pairs join the two objects
        (a border of about ``min_border`` pixels): a corner contact is not a shared border.

    Returns
    -------
    ndarray, shape (P, 2), int64
        Each pair once, smaller label first, sorted.
    """
    low, high, _, _ = _neighbour_pairs(np.asarray(labels))
    if low.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs, counts = np.unique(np.stack([low, high], axis=1), axis=0, return_counts=True)
    return pairs[counts >= min_border]


def interior(labels: np.ndarray, depth: float = 3.0) -> np.ndarray:
    """Object pixels at least ``depth`` pixels from their object's edge, shape (H, W) bool.

    The edge is every pixel with a 4-neighbour of another label or of the background.
    """
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    vertical, horizontal = labels[1:] != labels[:-1], labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return (labels > 0) & (ndi.distance_transform_edt(~edge) >= depth)


def border_contrast(
    signal: np.ndarray, labels: np.ndarray, min_border: int = 5, depth: float = 3.0
) -> np.ndarray:
    """How bright the border between touching objects is, relative to the objects' interiors.

    For each touching pair: the mean ``signal`` of the pixels on either side of their shared
    border, divided by the mean of the two objects' mean ``signal`` over their interiors
    (:func:`interior`, ``depth`` pixels in). 1 means the border is as bright as the objects
    (no valley to split them along), 0 a black gap.

    Parameters
    ----------
    signal : ndarray, shape (H, W), float
        Object signal above the background, e.g. ``scene.clean - scene.background``
        (fluorescence: objects positive).
    labels : ndarray, shape (H, W), int
    min_border : int
        Pairs joined by fewer 4-neighbour pixel pairs are left out (see :func:`touching_pairs`).
    depth : float
        Pixels from the edge where an object's interior starts.

    Returns
    -------
    ndarray, shape (P,), float64
        One ratio per pair of :func:`touching_pairs` ``(labels, min_border)``, in its order;
        pairs with an object without interior are left out.
    """
    labels = np.asarray(labels)
    values = np.asarray(signal, dtype=np.float64).ravel()
    low, high, first, second = _neighbour_pairs(labels)
    if low.size == 0:
        return np.zeros(0)
    pairs, index, counts = np.unique(
        np.stack([low, high], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    border = np.bincount(index, weights=values[first] + values[second]) / (2 * counts)
    n = int(labels.max())
    inner = np.where(interior(labels, depth).ravel(), labels.ravel(), 0)
    area = np.bincount(inner, minlength=n + 1)
    mean = np.bincount(inner, weights=values, minlength=n + 1) / np.maximum(area, 1)
    objects = 0.5 * (mean[pairs[:, 0]] + mean[pairs[:, 1]])
    keep = (counts >= min_border) & (area[pairs[:, 0]] > 0) & (area[pairs[:, 1]] > 0)
    return border[keep] / np.maximum(objects[keep], 1e-12)


def equivalent_diameters(labels: np.ndarray) -> np.ndarray:
    """Diameter of the disk with each object's area, ``2 sqrt(area / pi)``, shape (N,), pixels.

    Objects cut by the image border count with their visible area.
    """
    area = np.bincount(np.asarray(labels).ravel())[1:]
    return 2.0 * np.sqrt(area[area > 0] / np.pi)
