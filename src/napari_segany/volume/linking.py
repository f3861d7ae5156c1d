"""Link the 2D objects of each slice of a stack into 3D objects.

Each slice is segmented on its own, with its own IDs. Slices are then linked in order: an object
of slice ``z`` takes the 3D ID of the object of slice ``z - 1`` it overlaps, matched one to one
by :func:`scipy.optimize.linear_sum_assignment` on the overlap relative to the smaller of the
two. That score does not depend on how much an object's cross-section changes from one slice to
the next, which is large in anisotropic stacks (z step several pixels) and near an object's
poles; objects that do not overlap enough start new 3D objects.

Splits and merges between slices do not join neighbours: because matching is one to one, when
one object of slice ``z - 1`` overlaps two of slice ``z``, only one of them continues it. When
one object of slice ``z`` covers two objects of slice ``z - 1`` that were already there on
slice ``z - 2`` (two touching nuclei segmented as one in that slice), it is cut between them (a
watershed from the two, inside it) and each part continues its own 3D object; an object cut in
two on one slice only leaves a one-slice fragment and does not cut the slices after it.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from scipy.optimize import linear_sum_assignment

from napari_segany.progress import Progress, run_with_progress

__all__ = ["SliceLinker", "iter_link_slices", "link_slices", "overlap_table"]


def overlap_table(a: np.ndarray, b: np.ndarray):
    """Pixel overlaps between the objects of two label images of the same shape.

    Returns
    -------
    ids_a, ids_b : ndarray (M,)
        Pairs of object IDs (both > 0) that overlap.
    counts : ndarray (M,)
        Pixels they share.
    areas_a, areas_b : dict
        Object ID → pixels, for every object of ``a`` and of ``b``.
    """
    a = np.asarray(a).ravel().astype(np.uint64)
    b = np.asarray(b).ravel().astype(np.uint64)
    both = (a > 0) & (b > 0)
    pairs, counts = np.unique((a[both] << np.uint64(32)) | b[both], return_counts=True)
    ids_a = (pairs >> np.uint64(32)).astype(np.int64)
    ids_b = (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64)
    ua, ca = np.unique(a[a > 0], return_counts=True)
    ub, cb = np.unique(b[b > 0], return_counts=True)
    return (
        ids_a,
        ids_b,
        counts,
        dict(zip(ua.tolist(), ca.tolist(), strict=True)),
        dict(zip(ub.tolist(), cb.tolist(), strict=True)),
    )


def match(previous: np.ndarray, current: np.ndarray, min_overlap: float) -> dict[int, int]:
    """One-to-one matches current ID → previous ID between two label images, maximising the
    overlap relative to the smaller object; pairs below ``min_overlap`` are not matched."""
    ids_p, ids_c, counts, area_p, area_c = overlap_table(previous, current)
    if not len(counts):
        return {}
    smaller = np.minimum([area_p[i] for i in ids_p], [area_c[i] for i in ids_c])
    score = counts / smaller
    keep = score >= min_overlap
    ids_p, ids_c, score = ids_p[keep], ids_c[keep], score[keep]
    if not len(score):
        return {}
    rows, r_index = np.unique(ids_c, return_inverse=True)
    cols, c_index = np.unique(ids_p, return_inverse=True)
    cost = np.zeros((len(rows), len(cols)))
    cost[r_index, c_index] = -score
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < 0
    return dict(zip(rows[r[ok]].tolist(), cols[c[ok]].tolist(), strict=True))


def split_merged(
    previous: np.ndarray, current: np.ndarray, min_overlap: float, established=None
) -> np.ndarray:
    """Cut each object of ``current`` that covers two or more objects of ``previous`` (each by
    at least ``min_overlap`` of that object's area) between them; the parts get new IDs.

    ``established``, if given, is the set of objects of ``previous`` that may cause a cut
    (objects already seen on an earlier slice): a piece that appeared only on ``previous`` (an
    object cut in two on that one slice) does not cut the object that continues it.

    Returns a new (H, W) label image (``current`` when nothing is cut).
    """
    from skimage.segmentation import watershed

    ids_p, ids_c, counts, area_p, _ = overlap_table(previous, current)
    if not len(counts):
        return current
    covered = counts / np.array([area_p[i] for i in ids_p]) >= min_overlap
    if established is not None:
        covered &= np.isin(ids_p, list(established))
    merged = {}
    for p, c in zip(ids_p[covered].tolist(), ids_c[covered].tolist(), strict=True):
        merged.setdefault(c, []).append(p)
    merged = {c: ps for c, ps in merged.items() if len(ps) > 1}
    if not merged:
        return current
    out = np.array(current, dtype=np.uint32, copy=True)
    next_id = int(out.max()) + 1
    for c, ps in merged.items():
        inside = out == c
        markers = np.where(inside & np.isin(previous, ps), previous, 0)
        parts = watershed(np.zeros(inside.shape, np.float32), markers.astype(np.int32), mask=inside)
        for p in ps:
            out[parts == p] = next_id
            next_id += 1
    return out


class SliceLinker:
    """Links slices one at a time, in order (so a stack is never held whole).

    >>> linker = SliceLinker()  # doctest: +SKIP
    >>> for z in range(n):  # doctest: +SKIP
    ...     out[z] = linker.add(labels_of_slice(z))
    """

    def __init__(self, min_overlap: float = 0.5) -> None:
        self.min_overlap = min_overlap
        self.next_id = 1
        self.previous: np.ndarray | None = None
        self.born: dict[int, int] = {}  # 3D ID → first slice
        self.slice = 0
        #: 3D ID of each 2D object of the last slice added (its ID there → 3D ID)
        self.last_ids: dict[int, int] = {}

    def add(self, current: np.ndarray) -> np.ndarray:
        """The next slice's (H, W) 2D labels → its 3D IDs (uint32)."""
        current = np.asarray(current)
        z = self.slice
        matches = {}
        if self.previous is not None:
            established = {i for i, b in self.born.items() if b < z - 1}
            cut = split_merged(self.previous, current, self.min_overlap, established)
            if cut is not current:  # parts of a cut object: remember where they came from
                origin = _origin(current, cut)
                current = cut
            else:
                origin = None
            matches = match(self.previous, current, self.min_overlap)
        else:
            origin = None
        lut = np.zeros(int(current.max()) + 1 if current.size else 1, np.uint32)
        for i in np.unique(current[current > 0]).tolist():
            if i in matches:
                lut[i] = matches[i]
            else:
                lut[i] = self.next_id
                self.born[self.next_id] = z
                self.next_id += 1
        self.last_ids = {
            (origin.get(i, i) if origin else i): int(lut[i]) for i in range(1, len(lut)) if lut[i]
        }
        linked = lut[current]
        self.previous = linked
        self.slice += 1
        return linked


def _origin(before: np.ndarray, after: np.ndarray) -> dict[int, int]:
    """New ID in ``after`` → the ID it had in ``before`` (for objects that were cut)."""
    changed = after != before
    pairs = np.unique(np.stack([after[changed], before[changed]]), axis=1)
    return {int(a): int(b) for a, b in pairs.T}


def iter_link_slices(
    labels, out=None, *, min_overlap: float = 0.5
) -> Generator[Progress, None, object]:
    """Job generator of :func:`link_slices` (yields after each slice)."""
    n = labels.shape[0]
    if out is None:
        out = np.zeros(labels.shape, np.uint32)
    elif tuple(out.shape) != tuple(labels.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, labels {tuple(labels.shape)}")
    linker = SliceLinker(min_overlap)
    for z in range(n):
        out[z] = linker.add(labels[z])
        yield Progress(z + 1, n, f"linking slice {z + 1}/{n}")
    return out


def link_slices(labels, out=None, *, min_overlap: float = 0.5, progress: bool = False):
    """3D objects from a stack of per-slice 2D labels.

    Parameters
    ----------
    labels : array-like, shape (Z, H, W), integer
        Each slice labelled on its own (IDs need not agree between slices); read slice by slice.
    out : array-like, shape (Z, H, W), optional
        Destination (e.g. a zarr array), written slice by slice; default a new uint32 array.
    min_overlap : float
        Objects of neighbouring slices are one 3D object when they share at least this share of
        the smaller one's pixels (and are each other's best one-to-one match).
    progress : bool

    Returns
    -------
    array, shape (Z, H, W), uint32
        3D IDs 1..N (``out`` when given).
    """
    job = iter_link_slices(labels, out, min_overlap=min_overlap)
    return run_with_progress(job, show=progress, description="linking slices")
