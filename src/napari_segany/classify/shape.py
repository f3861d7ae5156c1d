"""Shape and neighbourhood features of labelled objects (scikit-image, scipy).

Shape is measured on each object's whole mask: :func:`shape_features` takes a block of labels
that holds the objects entirely (a tile's outer region, or an object's bounding box read on its
own for objects larger than a tile's margin). Neighbourhoods come from the objects' shared
borders (:func:`touching_pairs`, accumulated tile by tile) and their centroids
(:func:`neighbour_counts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Shape columns, in table order (see :mod:`napari_segany.classify.features` for each one).
SHAPE_COLUMNS = (
    "area",
    "perimeter",
    "equivalent_diameter",
    "major_axis_length",
    "minor_axis_length",
    "eccentricity",
    "orientation",
    "solidity",
    "extent",
    "circularity",
)

#: The regionprops measurements behind :data:`SHAPE_COLUMNS` (area and circularity are derived).
_PROPS = (
    "perimeter",
    "equivalent_diameter_area",
    "axis_major_length",
    "axis_minor_length",
    "eccentricity",
    "orientation",
    "solidity",
    "extent",
)


def shape_features(labels: np.ndarray, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Shape of the objects ``ids`` of a block of labels that holds them whole.

    Parameters
    ----------
    labels : ndarray, shape (h, w), integer
        A block of the label image; each object of ``ids`` must lie entirely inside it.
    ids : sequence of int
        The objects to measure (IDs absent from the block are skipped).

    Returns
    -------
    dict
        ID → (len(SHAPE_COLUMNS),) float64 values, in :data:`SHAPE_COLUMNS` order.
    """
    from skimage.measure import regionprops

    wanted = np.asarray(sorted({int(i) for i in ids}), dtype=np.int64)
    if wanted.size == 0:
        return {}
    # compact labels 1..n for the wanted objects only, so regionprops' lookups stay small
    # whatever the IDs (up to 2**32 - 1)
    position = np.searchsorted(wanted, labels)
    position = np.minimum(position, wanted.size - 1)
    hit = wanted[position] == labels
    compact = np.where(hit, position + 1, 0).astype(np.int32)
    out = {}
    for region in regionprops(compact, cache=True):
        object_id = int(wanted[region.label - 1])
        area = float(region.area)
        values = [area] + [float(getattr(region, name)) for name in _PROPS]
        perimeter = values[1]
        values.append(4 * math.pi * area / perimeter**2 if perimeter > 0 else 1.0)
        out[object_id] = np.asarray(values, dtype=np.float64)
    return out


def border_ids(labels: np.ndarray, sides: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """IDs on the chosen edges of a block: objects that may continue beyond it.

    Parameters
    ----------
    labels : ndarray, shape (h, w), integer
    sides : (bool, bool, bool, bool)
        Whether to look at the (top, bottom, left, right) edge (an edge that is the image's
        own border cannot cut an object).

    Returns
    -------
    ndarray, int64
        Unique IDs, 0 left out.
    """
    edges = [
        labels[0, :] if sides[0] else None,
        labels[-1, :] if sides[1] else None,
        labels[:, 0] if sides[2] else None,
        labels[:, -1] if sides[3] else None,
    ]
    found = [e for e in edges if e is not None]
    if not found:
        return np.zeros(0, dtype=np.int64)
    values = np.unique(np.concatenate(found)).astype(np.int64)
    return values[values != 0]


def touching_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs of different objects that share a border (4-connected) in a block of labels.

    Returns
    -------
    ndarray, shape (P, 2), int64
        (smaller ID, larger ID), unique.
    """
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        meet = (a != b) & (a != 0) & (b != 0)
        if meet.any():
            x, y = a[meet].astype(np.int64), b[meet].astype(np.int64)
            pairs.append(np.stack([np.minimum(x, y), np.maximum(x, y)], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs), axis=0)


def touching_counts(ids: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """How many other objects each of ``ids`` touches, shape (len(ids),), int64."""
    if pairs.size == 0:
        return np.zeros(ids.size, dtype=np.int64)
    pairs = np.unique(pairs, axis=0)
    ends = np.concatenate([pairs[:, 0], pairs[:, 1]])
    found, counts = np.unique(ends, return_counts=True)
    position = np.clip(np.searchsorted(found, ids), 0, found.size - 1)
    return np.where(found[position] == ids, counts[position], 0).astype(np.int64)


def neighbour_counts(
    centroids: np.ndarray, radii: Sequence[float]
) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """Other objects whose centroid lies within each radius, and the nearest one's distance.

    Parameters
    ----------
    centroids : ndarray, shape (N, 2)
        (row, col) of each object, pixels.
    radii : sequence of float
        Radii in pixels.

    Returns
    -------
    counts : dict
        Radius → (N,) int64 counts (the object itself not counted).
    nearest : ndarray, shape (N,), float64
        Distance to the nearest other centroid; NaN for a lone object.
    """
    from scipy.spatial import cKDTree

    n = len(centroids)
    if n == 0:
        return {r: np.zeros(0, dtype=np.int64) for r in radii}, np.zeros(0)
    tree = cKDTree(centroids)
    counts = {
        r: np.asarray(tree.query_ball_point(centroids, r, return_length=True), np.int64) - 1
        for r in radii
    }
    if n == 1:
        return counts, np.full(1, np.nan)
    distance, _ = tree.query(centroids, k=2)
    return counts, distance[:, 1].astype(np.float64)
