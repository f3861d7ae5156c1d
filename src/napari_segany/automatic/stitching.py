"""Join per-tile label images into one image without cut or duplicated objects.

Each tile is segmented on its whole outer region (inner region plus halo), so an object near a
seam is seen whole by the tile that owns it. Ownership: a tile keeps exactly the objects whose
centroid lies in its inner region; the inner regions partition the image, so each object is
kept by one tile only. A kept object is written whole, halo part included, with a new ID.

Where two kept objects from neighbouring tiles claim the same pixels (both tiles saw slightly
different outlines of touching cells), the first one written keeps them. An object most of whose
pixels are already taken is a second view of an object already written (its centroid moved
across the seam between the two tiles' views) and is dropped rather than duplicated.
"""

from __future__ import annotations

import numpy as np

from napari_segany.image.tiling import Tile


def object_centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IDs, pixel counts and (row, col) centroids of the objects of a label image.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer

    Returns
    -------
    ids : ndarray (N,)
        Object IDs present (0 excluded), ascending.
    areas : ndarray (N,)
    centroids : ndarray (N, 2), float64
        Mean (row, col) of each object's pixels, in the label image's coordinates.
    """
    flat = labels.ravel()
    n = int(flat.max()) + 1 if flat.size else 1
    area = np.bincount(flat, minlength=n)
    rows, cols = np.indices(labels.shape)
    sum_r = np.bincount(flat, weights=rows.ravel(), minlength=n)
    sum_c = np.bincount(flat, weights=cols.ravel(), minlength=n)
    ids = np.flatnonzero(area)
    ids = ids[ids > 0]
    centroids = np.stack([sum_r[ids] / area[ids], sum_c[ids] / area[ids]], axis=1)
    return ids, area[ids], centroids.reshape(-1, 2)


class TileStitcher:
    """Writes per-tile objects into one instance label image, owner tile only.

    Parameters
    ----------
    out : array-like, shape (H, W), unsigned integer
        Zero-filled destination (numpy, or a zarr array for images larger than memory: only
        each tile's outer region is read and written).
    duplicate_fraction : float
        An object whose share of pixels already taken by other objects exceeds this is dropped
        as a duplicate.

    Attributes
    ----------
    scores : dict
        Image object ID → the per-object scores given with its tile.
    confidence : dict
        Image object ID → the confidence given with its tile.
    next_id : int
        The ID the next kept object gets (IDs are unique across the image, 1..N in order).
    """

    def __init__(self, out, duplicate_fraction: float = 0.5) -> None:
        self.out = out
        self.duplicate_fraction = duplicate_fraction
        self.scores: dict[int, tuple[float, float]] = {}
        self.confidence: dict[int, float] = {}
        self.next_id = 1

    def add(
        self,
        tile: Tile,
        labels: np.ndarray,
        scores: dict | None = None,
        confidence: dict | None = None,
    ) -> int:
        """Write the objects ``tile`` owns; returns how many were written.

        Parameters
        ----------
        tile : Tile
        labels : ndarray, shape ``tile.shape``
            Labels of the tile's outer region (0 background).
        scores : dict, optional
            Tile object ID → scores, carried over to the new IDs.
        confidence : dict, optional
            Tile object ID → confidence, carried over likewise.
        """
        if tuple(labels.shape) != tile.shape:
            raise ValueError(f"tile labels have shape {labels.shape}, the tile is {tile.shape}")
        ids, areas, centroids = object_centroids(labels)
        if len(ids) == 0:
            return 0
        inner = tile.inner_in_outer
        owned = (
            (centroids[:, 0] >= inner[0].start)
            & (centroids[:, 0] < inner[0].stop)
            & (centroids[:, 1] >= inner[1].start)
            & (centroids[:, 1] < inner[1].stop)
        )
        if not owned.any():
            return 0
        window = np.asarray(self.out[tile.outer])
        lookup = np.zeros(int(ids.max()) + 1, np.int64)
        lookup[ids[owned]] = ids[owned]
        keep = lookup[labels]  # owned objects' tile IDs, 0 elsewhere
        free = window == 0
        taken = np.bincount(keep.ravel(), weights=~free.ravel(), minlength=len(lookup))
        written = 0
        new_values = np.zeros(len(lookup), window.dtype)
        for obj, area in zip(ids[owned], areas[owned], strict=True):
            if taken[obj] > self.duplicate_fraction * area:
                continue
            new_values[obj] = self.next_id
            if scores is not None and int(obj) in scores:
                self.scores[self.next_id] = scores[int(obj)]
            if confidence is not None and int(obj) in confidence:
                self.confidence[self.next_id] = confidence[int(obj)]
            self.next_id += 1
            written += 1
        if written:
            paint = new_values[keep]
            target = free & (paint > 0)
            window[target] = paint[target]
            self.out[tile.outer] = window
        return written
