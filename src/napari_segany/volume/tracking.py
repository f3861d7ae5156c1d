"""Objects of each frame of a time series → tracks that keep their ID, with divisions.

Frames are 2D label images (``tyx``) or 3D ones (``tzyx``: each frame's objects already linked
through z); the same matching serves both, with overlaps counted in voxels and centroids in
(z, row, col) for 3D frames (z in slices, not scaled by the z step).

Frames are linked in order. Between frame ``t - 1`` and frame ``t`` each object is matched to at
most one, by :func:`scipy.optimize.linear_sum_assignment` on a cost that prefers overlap
(1 - IoU) and falls back on the distance between centroids for objects that moved off their
previous footprint (up to ``max_distance`` pixels). A matched object keeps its track ID.

A **division**: an object of frame ``t - 1`` continued by one object of frame ``t`` while a
new, unmatched object appears next to it, both smaller than it and both within
``division_distance`` of its radius from where it was (after the median motion of the frame).
Its track ends there; both daughters start new tracks whose parent it is. Every other
unmatched object starts a new track without a parent.

The track table has one row per object and frame: ``id``, ``frame``, ``parent`` (0: none),
``row``, ``col`` (centroid; ``z`` before ``row`` for 3D frames, :data:`TRACK_COLUMNS_3D`), the
layout of a napari Tracks layer (``data = [id, frame, row,
col]``, ``graph = {id: [parent]}``). For more (gap closing, lineage editing), the labels can be
handed to trackastra, btrack or napari-ultrack.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from napari_segany.progress import Progress, run_with_progress
from napari_segany.volume.linking import overlap_table

__all__ = [
    "TRACK_COLUMNS",
    "TRACK_COLUMNS_3D",
    "FrameTracker",
    "TrackResult",
    "iter_track",
    "track",
    "track_columns",
    "write_track_table",
]

TRACK_COLUMNS = ("id", "frame", "parent", "row", "col")
#: Columns of the track table of a time series of z-stacks (3D frames).
TRACK_COLUMNS_3D = ("id", "frame", "parent", "z", "row", "col")
_NO_MATCH = 1e6


@dataclass
class TrackResult:
    """Tracked labels and their table.

    Attributes
    ----------
    labels : array, shape (T, H, W) or (T, Z, H, W), uint32
        Track IDs (an object keeps its ID over frames).
    table : ndarray, shape (K, 5) or (K, 6), float64
        Rows (id, frame, parent, row, col), see :data:`TRACK_COLUMNS`; (id, frame, parent, z,
        row, col) for 3D frames, see :data:`TRACK_COLUMNS_3D`.
    parents : dict
        Track ID → parent track ID, for tracks that start by a division.
    """

    labels: object
    table: np.ndarray
    parents: dict[int, int] = field(default_factory=dict)

    def graph(self) -> dict[int, list[int]]:
        """napari Tracks ``graph``: track ID → [parent ID]."""
        return {d: [m] for d, m in self.parents.items()}


def _centroids(labels: np.ndarray) -> dict[int, np.ndarray]:
    ids = np.unique(labels[labels > 0])
    if not len(ids):
        return {}
    points = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return {int(i): np.asarray(p) for i, p in zip(ids, points, strict=True)}


def track_columns(ndim: int) -> tuple[str, ...]:
    """The track table's columns for frames of ``ndim`` dimensions (2: ``tyx``, 3: ``tzyx``)."""
    if ndim not in (2, 3):
        raise ValueError(f"frames must be 2D (H, W) or 3D (Z, H, W) labels, got {ndim}D")
    return TRACK_COLUMNS if ndim == 2 else TRACK_COLUMNS_3D


def _radius(size: float, ndim: int) -> float:
    """Radius of a disc (2D) or ball (3D) of ``size`` pixels or voxels."""
    if ndim == 3:
        return float(np.cbrt(3 * size / (4 * np.pi)))
    return float(np.sqrt(size / np.pi))


def _link(previous, current, max_distance: float, division_distance: float):
    """(matches current → previous, divisions {daughter: mother}) between two frames (2D or
    3D label images of the same shape)."""
    ids_p, ids_c, counts, area_p, area_c = overlap_table(previous, current)
    cent_p, cent_c = _centroids(previous), _centroids(current)
    rows, cols = sorted(area_c), sorted(area_p)
    if not rows or not cols:
        return {}, {}
    r_of = {i: k for k, i in enumerate(rows)}
    c_of = {i: k for k, i in enumerate(cols)}
    pc = np.array([cent_p[i] for i in cols])
    cc = np.array([cent_c[i] for i in rows])
    dist = np.linalg.norm(cc[:, None, :] - pc[None, :, :], axis=-1)
    cost = np.where(dist <= max_distance, 1 + dist / max(max_distance, 1e-9), _NO_MATCH)
    for p, c, n in zip(ids_p.tolist(), ids_c.tolist(), counts.tolist(), strict=True):
        iou = n / (area_p[p] + area_c[c] - n)
        cost[r_of[c], c_of[p]] = min(cost[r_of[c], c_of[p]], 1 - iou)
    r, c = linear_sum_assignment(cost)
    matches = {rows[a]: cols[b] for a, b in zip(r, c, strict=True) if cost[a, b] < _NO_MATCH}
    if not matches:
        return matches, {}
    # divisions: a new object next to a matched one, both smaller than the object they
    # continue and both near where it was (after the frame's median motion)
    shift = np.median([cent_c[a] - cent_p[b] for a, b in matches.items()], axis=0)
    continues = {b: a for a, b in matches.items()}
    divisions = {}
    for new in (i for i in rows if i not in matches):
        near = np.linalg.norm(pc + shift - cent_c[new], axis=1)
        mother = cols[int(np.argmin(near))]
        sister = continues.get(mother)
        if sister is None or sister in divisions:
            continue
        reach = division_distance * _radius(area_p[mother], previous.ndim)
        close = near.min() <= reach
        close = close and np.linalg.norm(cent_p[mother] + shift - cent_c[sister]) <= reach
        smaller = max(area_c[new], area_c[sister]) < 0.9 * area_p[mother]
        if close and smaller:
            divisions[new] = divisions[sister] = mother
            del matches[sister]
    return matches, divisions


class FrameTracker:
    """Tracks frames one at a time, in order (so a series is never held whole).

    Attributes
    ----------
    parents : dict
        Track ID → parent track ID.
    rows : list of tuple
        Track table rows so far, (id, frame, parent, row, col) or, for 3D frames, (id, frame,
        parent, z, row, col).
    last_ids : dict
        Track ID of each object of the last frame added (its ID there → track ID).
    """

    def __init__(self, max_distance: float = 20.0, division_distance: float = 1.5) -> None:
        self.max_distance = max_distance
        self.division_distance = division_distance
        self.next_id = 1
        self.frame = 0
        self.previous: np.ndarray | None = None
        self.previous_ids: np.ndarray | None = None
        self.parents: dict[int, int] = {}
        self.rows: list[tuple] = []
        self.last_ids: dict[int, int] = {}
        self.ndim: int | None = None

    def add(self, current: np.ndarray) -> np.ndarray:
        """The next frame's (H, W) or (Z, H, W) labels → its track IDs (uint32).

        Every frame must have the shape of the first.
        """
        current = np.asarray(current)
        track_columns(current.ndim)
        if self.previous is not None and current.shape != self.previous.shape:
            raise ValueError(
                f"frame {self.frame} has shape {current.shape}, the frames before "
                f"{self.previous.shape}"
            )
        self.ndim = current.ndim
        matches, divisions = {}, {}
        if self.previous is not None:
            matches, divisions = _link(
                self.previous, current, self.max_distance, self.division_distance
            )
        lut = np.zeros(int(current.max()) + 1 if current.size else 1, np.uint32)
        for i in np.unique(current[current > 0]).tolist():
            if i in matches:
                lut[i] = self.previous_ids[matches[i]]
            else:
                lut[i] = self.next_id
                if i in divisions:
                    self.parents[self.next_id] = int(self.previous_ids[divisions[i]])
                self.next_id += 1
        self.last_ids = {i: int(lut[i]) for i in range(1, len(lut)) if lut[i]}
        linked = lut[current]
        for i, c in _centroids(linked).items():
            self.rows.append((i, self.frame, self.parents.get(i, 0), *c.tolist()))
        self.previous, self.previous_ids = current, lut
        self.frame += 1
        return linked

    @property
    def columns(self) -> tuple[str, ...]:
        """The track table's columns (:data:`TRACK_COLUMNS` until a 3D frame is added)."""
        return track_columns(self.ndim or 2)

    def table(self) -> np.ndarray:
        """(K, 5) float64 rows (id, frame, parent, row, col); (K, 6) with z for 3D frames."""
        return np.array(self.rows, dtype=np.float64).reshape(-1, len(self.columns))


def iter_track(
    labels,
    out=None,
    *,
    max_distance: float = 20.0,
    division_distance: float = 1.5,
) -> Generator[Progress, None, TrackResult]:
    """Job generator of :func:`track` (yields after each frame)."""
    n = labels.shape[0]
    if out is None:
        out = np.zeros(labels.shape, np.uint32)
    elif tuple(out.shape) != tuple(labels.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, labels {tuple(labels.shape)}")
    tracker = FrameTracker(max_distance, division_distance)
    for t in range(n):
        out[t] = tracker.add(labels[t])
        yield Progress(t + 1, n, f"tracking frame {t + 1}/{n}")
    return TrackResult(out, tracker.table(), dict(tracker.parents))


def track(
    labels,
    out=None,
    *,
    max_distance: float = 20.0,
    division_distance: float = 1.5,
    progress: bool = False,
) -> TrackResult:
    """Track the objects of a time series of per-frame labels.

    Parameters
    ----------
    labels : array-like, shape (T, H, W) or (T, Z, H, W), integer
        Each frame labelled on its own (for 3D frames, its objects already linked through z,
        e.g. by :func:`napari_segany.volume.link_slices`); read frame by frame.
    out : array-like, same shape as ``labels``, optional
        Destination for the tracked labels (e.g. zarr), written frame by frame.
    max_distance : float
        Pixels at most between the centroids of an object in two frames when they do not
        overlap (for 3D frames, the distance in (z, row, col) with z in slices).
    division_distance : float
        Daughters lie within this many mother's radii (of a disc of her area, a ball of her
        volume for 3D frames) of where she was,
        after the frame's median motion.
    progress : bool

    Returns
    -------
    TrackResult
    """
    job = iter_track(labels, out, max_distance=max_distance, division_distance=division_distance)
    return run_with_progress(job, show=progress, description="tracking")


def write_track_table(path, table: np.ndarray, *, overwrite: bool = False):
    """Write a track table as CSV, atomically: columns :data:`TRACK_COLUMNS` for a table of 5
    columns, :data:`TRACK_COLUMNS_3D` (with ``z``) for one of 6.

    Returns the path written.
    """
    from napari_segany.labels_io.table import write_object_table

    table = np.asarray(table, dtype=np.float64)
    width = table.shape[-1] if table.ndim == 2 else len(TRACK_COLUMNS)
    if width not in (len(TRACK_COLUMNS), len(TRACK_COLUMNS_3D)):
        raise ValueError(f"a track table has 5 or 6 columns, got shape {table.shape}")
    columns = TRACK_COLUMNS if width == len(TRACK_COLUMNS) else TRACK_COLUMNS_3D
    rows = [
        {
            name: int(v) if k < 3 else round(v, 3)
            for k, (name, v) in enumerate(zip(columns, values, strict=True))
        }
        for values in table.reshape(-1, width).tolist()
    ]
    return write_object_table(path, rows, overwrite=overwrite)
