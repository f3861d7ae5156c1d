"""Fit automatically found objects into the pixels that existing objects leave free.

"Segment all" run on a plane that already holds objects must not write what remains of an
automatic object once the existing objects' pixels are taken away: usually a 1-pixel ring
around an object the user committed (the two masks of one nucleus differ at the boundary),
broken into many pieces. :func:`clip_to_free` keeps an object only where its free part still
looks like an object of its own.

>>> import numpy as np
>>> labels = np.zeros((9, 9), np.uint32)
>>> labels[1:8, 1:8] = 1  # an automatic object...
>>> occupied = np.zeros((9, 9), bool)
>>> occupied[2:7, 2:7] = True  # ...around an existing, slightly smaller one
>>> fitted = clip_to_free(labels, occupied, min_size=10)
>>> fitted.found, fitted.kept  # the ring left around it is not an object
(1, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FreeObjects", "clip_to_free"]


@dataclass(frozen=True)
class FreeObjects:
    """The objects of an instance segmentation that fit into the free pixels.

    Attributes
    ----------
    labels : ndarray, shape (H, W)
        The kept objects with their input IDs, clipped to the free pixels; 0 elsewhere.
    found : int
        Objects in the input.
    covered : int
        Objects dropped because existing objects took more than the allowed share of their
        pixels (all of them, or more than ``1 - min_kept_fraction``).
    too_small : int
        Objects dropped because what is left of them is smaller than ``min_size`` pixels or
        a sliver (no ``min_width`` × ``min_width`` square fits in it).
    """

    labels: np.ndarray
    found: int
    covered: int
    too_small: int

    @property
    def kept(self) -> int:
        """Objects in :attr:`labels`."""
        return self.found - self.covered - self.too_small


def clip_to_free(
    labels: np.ndarray,
    occupied: np.ndarray,
    *,
    min_size: int = 0,
    min_kept_fraction: float = 0.5,
    min_width: int = 3,
) -> FreeObjects:
    """Remove ``occupied`` pixels from every object, then drop what no longer is an object.

    An object that loses pixels to ``occupied`` keeps only its largest piece (8-connected),
    and is dropped when that piece

    - holds less than ``min_kept_fraction`` of the object's pixels: existing objects lay on
      most of it, so it is one of them seen again;
    - is smaller than ``min_size`` pixels;
    - is a sliver: no ``min_width`` × ``min_width`` square of its pixels fits in it (it
      vanishes under a morphological opening with that square), e.g. a 1–2 pixel wide ring.

    Objects that lose no pixel are kept as they are, unless smaller than ``min_size``.
    Vectorised over the plane (labelled counts, one connected-component pass and two small
    rank filters; no loop over objects), for planes of 4096 × 4096 and more.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Instance labels, 0 = background; IDs should be compact (1..N, as automatic
        segmentation gives), since counts are kept per ID up to the largest.
    occupied : ndarray, shape (H, W), bool
        Pixels taken by existing objects.
    min_size : int
        Smallest number of pixels an object may keep (the ``min_size`` of
        :class:`~napari_segany.automatic.AutomaticParams`).
    min_kept_fraction : float
        Smallest share, in [0, 1], of its own pixels an object must keep [0.5].
    min_width : int
        Side of the square that must fit in a clipped object [3]; 1 keeps slivers.

    Returns
    -------
    FreeObjects
        The kept objects (input IDs) and how many were dropped, and why.
    """
    labels, occupied = np.asarray(labels), np.asarray(occupied, dtype=bool)
    if labels.ndim != 2 or labels.shape != occupied.shape:
        raise ValueError(
            f"labels {labels.shape} and occupied {occupied.shape} must be one (H, W) plane"
        )
    if not 0 <= min_kept_fraction <= 1:
        raise ValueError(f"min_kept_fraction must be in [0, 1], got {min_kept_fraction}")
    if min_width < 1:
        raise ValueError(f"min_width must be ≥ 1, got {min_width}")
    count = int(labels.max()) + 1 if labels.size else 1
    area = np.bincount(labels.ravel(), minlength=count)
    present = area > 0
    present[0] = False
    touched = np.bincount(labels[occupied], minlength=count) > 0
    touched[0] = False

    # only objects that lost pixels are re-measured; the others keep their automatic shape
    clipped = _largest_pieces(np.where(occupied | ~touched[labels], 0, labels))
    kept_area = np.bincount(clipped.ravel(), minlength=count)
    has_core = np.bincount(clipped[_core(clipped, min_width)], minlength=count) > 0

    covered = touched & (kept_area < min_kept_fraction * area)
    left = np.where(touched, kept_area, area)
    too_small = present & ~covered & ((left < min_size) | (touched & ~has_core))
    keep = present & ~covered & ~too_small
    out = np.where(touched[labels], clipped, labels)
    out = np.where(keep[out], out, 0).astype(labels.dtype, copy=False)
    return FreeObjects(out, int(present.sum()), int(covered.sum()), int(too_small.sum()))


def _largest_pieces(labels: np.ndarray) -> np.ndarray:
    """``labels`` (H, W) with each object cut down to its largest 8-connected piece."""
    from skimage.measure import label  # imported here, as elsewhere, to keep imports light

    if not labels.any():
        return labels
    pieces = label(labels, background=0, connectivity=2)
    n_pieces = int(pieces.max()) + 1
    # every pixel of a piece carries the same object ID, so the scatter's order is irrelevant
    owner = np.zeros(n_pieces, labels.dtype)
    owner[pieces.ravel()] = labels.ravel()
    size = np.bincount(pieces.ravel(), minlength=n_pieces)
    ids = np.arange(1, n_pieces)
    by_owner_then_size = ids[np.lexsort((-size[1:], owner[1:]))]
    _, first = np.unique(owner[by_owner_then_size], return_index=True)
    largest = np.zeros(n_pieces, bool)
    largest[by_owner_then_size[first]] = True
    return np.where(largest[pieces], labels, 0)


def _core(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels (H, W) bool whose ``width`` × ``width`` neighbourhood lies in their own object.

    An object without such a pixel vanishes under an opening with that square. Outside the
    plane counts as background, so an object cut by the border needs the square inside it.
    """
    from scipy import ndimage as ndi

    if width <= 1:
        return labels > 0
    low = ndi.minimum_filter(labels, size=width, mode="constant", cval=0)
    high = ndi.maximum_filter(labels, size=width, mode="constant", cval=0)
    return (low == high) & (labels > 0)
