"""Automatic segmentation of z-stacks and time series: each slice, then 3D objects or tracks.

Each slice (z plane or frame) is segmented like a 2D image, on its own lazily encoded session
(:class:`napari_segany.volume.StackSessions`, one intensity range for the whole stack), then
linked to the slices before it as it comes: into 3D objects through z
(:class:`napari_segany.volume.linking.SliceLinker`) or into tracks through time
(:class:`napari_segany.volume.tracking.FrameTracker`, with divisions and a track table). A time
series of z-stacks (``"tzyx"``) is both: each frame's z-stack is linked into 3D objects, then
the 3D objects are tracked over frames. Slices are read and written one at a time (frames one
at a time for ``tzyx``), so with a zarr ``out`` the labels may be larger than memory.

>>> result = segment_stack(stack, axes="zyx")  # doctest: +SKIP
>>> result.labels.shape  # (Z, H, W) uint32, unique 3D IDs  # doctest: +SKIP
>>> result = segment_stack(movie, axes="tzyx")  # doctest: +SKIP
>>> result.labels.shape, result.tracks.shape  # (T, Z, H, W), (K, 6)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.segment import AutomaticResult, iter_segment
from napari_segany.image.calibration import UNCALIBRATED
from napari_segany.progress import Progress, run_with_progress
from napari_segany.volume.linking import SliceLinker
from napari_segany.volume.slices import StackSessions
from napari_segany.volume.tracking import FrameTracker, track_columns

__all__ = ["StackResult", "iter_segment_stack", "iter_segment_stack_dask", "segment_stack"]

#: Progress units per slice (the slice's tiles are reported as fractions of it).
_STEPS = 100


@dataclass
class StackResult(AutomaticResult):
    """Every object of a stack.

    Attributes
    ----------
    labels : array, shape (Z or T, H, W) or (T, Z, H, W), uint32
        3D object IDs (``z``) or track IDs (``t``, ``tz``), 1..N, 0 background.
    scores, confidence : dict
        Per object, the area-weighted mean over its slices (and frames) of the 2D objects'
        values.
    axes : str
        ``"zyx"``, ``"tyx"`` or ``"tzyx"`` (the stack's axes, channels left out).
    tracks : ndarray (K, 5) or (K, 6), optional
        Time series only: rows (id, frame, parent, row, col), see
        :data:`napari_segany.volume.tracking.TRACK_COLUMNS`; with ``z`` before ``row`` for a
        time series of z-stacks (:data:`~napari_segany.volume.tracking.TRACK_COLUMNS_3D`).
    parents : dict
        Time series only: track ID → parent track ID (divisions).
    """

    axes: str = "zyx"
    tracks: np.ndarray | None = None
    parents: dict[int, int] = field(default_factory=dict)

    @property
    def track_columns(self) -> tuple[str, ...]:
        """The columns of :attr:`tracks`."""
        return track_columns(2 if self.axes == "tyx" else 3)


class _Linked:
    """Links per-slice results as they come and gathers the 3D objects' scores."""

    def __init__(self, sessions: StackSessions, params, out, min_overlap, max_distance):
        n, h, w = sessions.shape
        if out is None:
            out = np.zeros((n, h, w), np.uint32)
        elif tuple(out.shape) != (n, h, w):
            raise ValueError(f"out has shape {tuple(out.shape)}, the stack is {(n, h, w)}")
        self.out, self.sessions, self.params = out, sessions, params
        self.time = sessions.along == "t"
        self.linker = FrameTracker(max_distance) if self.time else SliceLinker(min_overlap)
        self.sums: dict[int, np.ndarray] = {}  # ID → [area, area*score, area*stab, area*conf]
        self.method = params.resolve_method(sessions.model)

    def add(self, i: int, result: AutomaticResult) -> None:
        labels = np.asarray(result.labels)
        self.out[i] = self.linker.add(labels)
        areas = np.bincount(labels.ravel())
        for local, ident in self.linker.last_ids.items():
            if local >= len(areas) or local not in result.scores:
                continue
            score, stability = result.scores[local]
            conf = result.confidence.get(local, score)
            weights = float(areas[local]) * np.array([1, score, stability, conf])
            self.sums.setdefault(ident, np.zeros(4))[:] += weights

    def result(self) -> StackResult:
        return _result(
            self.out,
            self.sums,
            self.method,
            self.params,
            self.sessions,
            f"{self.sessions.along}yx",
            self.linker if self.time else None,
        )


class _Tracked:
    """Tracks the 3D objects of each frame of a time series of z-stacks as they come."""

    def __init__(self, sessions: StackSessions, params, out, max_distance):
        shape = (sessions.count("t"), *sessions.shape)
        if out is None:
            out = np.zeros(shape, np.uint32)
        elif tuple(out.shape) != shape:
            raise ValueError(f"out has shape {tuple(out.shape)}, the series is {shape}")
        self.out, self.sessions, self.params = out, sessions, params
        self.tracker = FrameTracker(max_distance)
        self.sums: dict[int, np.ndarray] = {}
        self.method = params.resolve_method(sessions.model)

    def add(self, t: int, frame: _Linked) -> None:
        """Frame ``t``'s linked z-stack (its 3D objects and their score sums)."""
        self.out[t] = self.tracker.add(np.asarray(frame.out))
        for local, ident in self.tracker.last_ids.items():
            if local in frame.sums:
                self.sums.setdefault(ident, np.zeros(4))[:] += frame.sums[local]

    def result(self) -> StackResult:
        return _result(
            self.out, self.sums, self.method, self.params, self.sessions, "tzyx", self.tracker
        )


def _result(out, sums, method, params, sessions, axes, tracker) -> StackResult:
    scores = {i: (float(s[1] / s[0]), float(s[2] / s[0])) for i, s in sums.items() if s[0]}
    confidence = {i: float(s[3] / s[0]) for i, s in sums.items() if s[0]}
    return StackResult(
        out,
        scores,
        method,
        params,
        confidence,
        sessions.calibration or UNCALIBRATED,
        axes=axes,
        tracks=None if tracker is None else tracker.table(),
        parents={} if tracker is None else dict(tracker.parents),
    )


def _is_series_of_stacks(sessions: StackSessions) -> bool:
    return set("tz") <= set(sessions.axes.axes)


def _frames(sessions: StackSessions) -> list[StackSessions]:
    """Each frame's z-stack of a ``tz`` series, sharing the series' intensity range."""
    return [sessions.at("z", t=t) for t in range(sessions.count("t"))]


def _iter_slices(sessions, params, linked, start, total, prefix=""):
    """Segment and link each slice of ``sessions`` into ``linked``; progress from ``start``."""
    for i in range(len(sessions)):
        job = iter_segment(sessions.session(i), params)
        try:
            while True:
                step = next(job)
                done = start + i * _STEPS + int(_STEPS * step.fraction)
                message = f"{prefix}{sessions.along}={i}: {step.message}"
                yield Progress(min(done, total), total, message)
        except StopIteration as stop:
            result = stop.value
        finally:
            job.close()
        linked.add(i, result)
        yield Progress(start + (i + 1) * _STEPS, total, f"{prefix}{sessions.along}={i} done")


def iter_segment_stack(
    sessions: StackSessions,
    params: AutomaticParams,
    *,
    out=None,
    min_overlap: float = 0.5,
    max_distance: float = 20.0,
) -> Generator[Progress, None, StackResult]:
    """Segment and link every slice of a stack; a job generator (closing it cancels between
    tiles; the slices written so far stay in ``out``).

    Parameters
    ----------
    sessions : StackSessions
        The stack, along ``z`` (3D objects) or ``t`` (tracks). When its axes have both ``t``
        and ``z`` (``"tzyx"``), every frame is segmented as a z-stack and its 3D objects are
        tracked over frames (whatever ``sessions.along`` and ``sessions.fixed`` are).
    params : AutomaticParams
    out : array-like, shape (slices, H, W) or (T, Z, H, W), optional
        Zero-filled uint32 destination (e.g. zarr), written one slice (``tz``: one frame) at a
        time.
    min_overlap : float
        z-stacks: see :func:`napari_segany.volume.link_slices`.
    max_distance : float
        Time series: see :func:`napari_segany.volume.track`.
    """
    if not _is_series_of_stacks(sessions):
        linked = _Linked(sessions, params, out, min_overlap, max_distance)
        total = len(sessions) * _STEPS
        yield from _iter_slices(sessions, params, linked, 0, total)
        return linked.result()
    frames = sessions.count("t")
    tracked = _Tracked(sessions.at("z", t=0), params, out, max_distance)
    per_frame = sessions.count("z") * _STEPS
    total = frames * per_frame
    for t in range(frames):  # one frame's sessions at a time
        frame = sessions.at("z", t=t)
        linked = _Linked(frame, params, None, min_overlap, max_distance)
        yield from _iter_slices(frame, params, linked, t * per_frame, total, f"t={t}, ")
        tracked.add(t, linked)
        yield Progress((t + 1) * per_frame, total, f"t={t} done")
    return tracked.result()


def iter_segment_stack_dask(
    sessions: StackSessions,
    model_ref: str,
    params: AutomaticParams,
    *,
    out=None,
    min_overlap: float = 0.5,
    max_distance: float = 20.0,
    **dask_options,
) -> Generator[Progress, None, StackResult]:
    """:func:`iter_segment_stack` with every tile of every slice a dask task (see
    :func:`napari_segany.automatic.distributed.iter_segment_dask`); the slices are then linked
    in order here. Same labels as in one process: each task scales its slice with the stack's
    intensity range. The slices' 2D labels are held in memory until they are linked.

    ``model_ref`` is the model's registry name or checkpoint path (loaded by each worker);
    ``dask_options``: ``client``, ``scheduler``, ``device``, ``tile_size``, ``halo``,
    ``decoder_ref``. ``sessions.array`` should be a file path's array or small enough to send
    with each task.
    """
    from napari_segany.automatic.distributed import ImageJob, iter_segment_dask

    image = sessions.source_ref
    ranges = tuple(map(tuple, np.asarray(sessions.ranges).tolist()))
    channel_axis = sessions.axes.channel_axis
    stacks = _frames(sessions) if _is_series_of_stacks(sessions) else [sessions]
    jobs = [
        ImageJob(image, channel_axis, stack.plane(i), intensity_range=ranges)
        for stack in stacks
        for i in range(len(stack))
    ]
    results = yield from iter_segment_dask(jobs, model_ref, params, **dask_options)
    if len(stacks) == 1 and not _is_series_of_stacks(sessions):
        linked = _Linked(sessions, params, out, min_overlap, max_distance)
        for i, result in enumerate(results):
            linked.add(i, result)
        return linked.result()
    tracked = _Tracked(stacks[0], params, out, max_distance)
    n = len(stacks[0])
    for t, frame in enumerate(stacks):
        linked = _Linked(frame, params, None, min_overlap, max_distance)
        for i, result in enumerate(results[t * n : (t + 1) * n]):
            linked.add(i, result)
        tracked.add(t, linked)
    return tracked.result()


def segment_stack(
    image,
    model=None,
    *,
    axes: str | None = None,
    tile_size: int | None = None,
    halo: int | None = None,
    cache=None,
    device: str = "auto",
    out=None,
    progress: bool = False,
    min_overlap: float = 0.5,
    max_distance: float = 20.0,
    **options,
) -> StackResult:
    """Segment every object of a z-stack (3D objects), a time series (tracked objects) or a
    time series of z-stacks (tracked 3D objects).

    Parameters
    ----------
    image : array-like or path
        With axes ``axes``: e.g. (Z, H, W) for ``"zyx"``, (T, H, W) for ``"tyx"``,
        (T, Z, H, W) for ``"tzyx"``, channels allowed (``"zcyx"``, ``"tczyx"``); numpy, dask,
        zarr or a file (its axes are read when not given).
    model : SamModel or str, optional
        Default: the embedded model.
    axes : str, optional
        Letters from ``tzcyx`` (see :mod:`napari_segany.volume.axes`) with ``z``, ``t`` or
        both. With both, each frame's z-stack is linked into 3D objects as for ``"zyx"``, then
        the 3D objects are tracked over frames: (T, Z, H, W) labels whose IDs stay the same
        over time, and ``tracks`` with a ``z`` column.
    tile_size, halo, cache, device, out, progress
        As for :func:`napari_segany.automatic.segment` (``cache``: a folder with one
        embeddings store per slice).
    min_overlap, max_distance : float
        Linking through z, tracking through time.
    **options
        :class:`AutomaticParams` fields.

    Returns
    -------
    StackResult

    Raises
    ------
    napari_segany.volume.AxesError
        Axes that do not fit the image, or that cannot be told (a 3D array without ``axes``).
    """
    from napari_segany.models.loading import load_model

    if model is None or isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
        model = load_model(*(() if model is None else (model,)), device=device)
    sessions = StackSessions(
        image, model, axes, tile_size=tile_size, halo=halo, cache=cache, keep=2
    )
    params = AutomaticParams.from_options(**options)
    job = iter_segment_stack(
        sessions, params, out=out, min_overlap=min_overlap, max_distance=max_distance
    )
    return run_with_progress(job, show=progress, description="segmenting stack")
