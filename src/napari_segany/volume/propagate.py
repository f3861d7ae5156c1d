"""Prompt one slice, get the whole object: propagation of masks through a stack.

Prompts on slice ``z`` give the object's mask there; the mask of each slice then prompts the
next one, in both directions (:attr:`PropagationParams.prompt`): ``"box"`` uses its bounding box
(a few pixels larger) as the box prompt and its low-resolution logits as the mask prompt;
``"point"`` clicks the point deepest inside it (for models with an instance head, such as the
embedded model, the click then follows that head's object, which tracks shrinking cross-sections
more closely). Propagation in a direction stops when the object ends: the new mask is smaller
than ``min_area``; it does not overlap the previous slice's mask (less than ``min_overlap`` of
the smaller of the two: a neighbour, not this object); or it has faded (its mean intensity
differs from the stack's background, its most common intensity, by less than ``min_contrast``
times that difference on the prompted slice: past an object's end, a prompt still finds
"something" in the blur); or at ``limit`` slices from the prompted one.

:class:`VolumePropagator` holds a label volume being annotated: several objects are
propagated together, objects never take each other's pixels, and a correction on any slice
(new prompts, or a painted mask) re-propagates that object from there, up to the slices the
user set for it earlier, which are kept, as are all other objects.

>>> mask = propagate(stack, 7, points=[[64, 40]], axes="zyx")  # (Z, H, W) bool  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace

import numpy as np

from napari_segany.progress import Progress, run_with_progress
from napari_segany.volume.slices import StackSessions

PROMPTS = ("point", "box")

__all__ = ["PropagationParams", "VolumePropagator", "propagate", "propagate_objects"]


@dataclass(frozen=True)
class PropagationParams:
    """When propagation stops.

    Attributes
    ----------
    limit : int, optional
        Slices at most on each side of the prompted one (None: until the object ends).
    min_overlap : float
        The new mask must cover at least this share of the smaller of it and the previous
        slice's mask, else the object has ended (what was found is a neighbour).
    min_area : int
        Masks smaller than this many pixels end the object.
    min_contrast : float
        The object's contrast to the background (mean inside minus the stack's most common
        intensity) must stay at least this share of that on the prompted slice; 0: no check.
    prompt : {"point", "box"}
        How a slice's mask prompts the next (see the module's description).
    box_margin : int
        Pixels added around the previous mask's bounding box for the box prompt.
    """

    limit: int | None = None
    min_overlap: float = 0.5
    min_area: int = 10
    min_contrast: float = 0.25
    prompt: str = "point"
    box_margin: int = 3

    def __post_init__(self):
        if self.limit is not None and int(self.limit) < 0:
            raise ValueError(f"limit must be None or ≥ 0 slices, got {self.limit}")
        if not 0 <= self.min_overlap <= 1:
            raise ValueError(f"min_overlap must be in [0, 1], got {self.min_overlap}")
        if self.prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {PROMPTS}, got {self.prompt!r}")


def _box(mask: np.ndarray, margin: int) -> np.ndarray:
    """(row0, col0, row1, col1) around ``mask``, grown by ``margin`` and clipped."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return np.array(
        [
            max(0, rows[0] - margin),
            max(0, cols[0] - margin),
            min(h - 1, rows[-1] + margin),
            min(w - 1, cols[-1] + margin),
        ],
        dtype=np.float64,
    )


def _deepest(mask: np.ndarray) -> np.ndarray:
    """(1, 2) (row, col) of the pixel of ``mask`` farthest from its edge."""
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.array([np.unravel_index(int(np.argmax(distance)), mask.shape)], np.float64)


def _full(result, shape) -> np.ndarray:
    """A RegionPrediction's best mask placed in an all-False (H, W) array."""
    out = np.zeros(shape, bool)
    mask = result.masks[result.best]
    r0, c0 = result.offset
    out[r0 : r0 + mask.shape[0], c0 : c0 + mask.shape[1]] = mask
    return out


class VolumePropagator:
    """Objects in a label volume, each prompted on one slice and propagated through the others.

    Parameters
    ----------
    sessions : StackSessions
    labels : array-like, shape (Z, H, W), optional
        Label volume to edit in place (numpy or zarr; e.g. a napari Labels layer's data). Default:
        a new zero-filled uint32 volume.
    params : PropagationParams, optional

    Attributes
    ----------
    labels : array, shape (Z, H, W)
    user_slices : dict
        Object ID → slices the user prompted or painted for it (kept by later propagation).
    """

    def __init__(
        self, sessions: StackSessions, labels=None, params: PropagationParams | None = None
    ):
        self.sessions = sessions
        shape = sessions.shape
        if labels is None:
            labels = np.zeros(shape, np.uint32)
        elif tuple(labels.shape) != tuple(shape):
            raise ValueError(f"labels have shape {tuple(labels.shape)}, the stack is {shape}")
        self.labels = labels
        self.params = params or PropagationParams()
        self.user_slices: dict[int, set[int]] = {}
        self._seeds: dict[tuple[int, int], object] = {}
        self._scaled: dict[int, np.ndarray] = {}

    # -- one slice ---------------------------------------------------------------------------
    def _write(self, obj: int, z: int, mask: np.ndarray | None) -> None:
        """Replace object ``obj`` on slice ``z`` by ``mask``, never over another object."""
        plane = np.asarray(self.labels[z])
        plane[plane == obj] = 0
        if mask is not None:
            plane[mask & (plane == 0)] = obj
        self.labels[z] = plane

    def prompt(self, obj: int, z: int, points=None, point_labels=None, box=None) -> np.ndarray:
        """Segment object ``obj`` on slice ``z`` from prompts (and mark that slice as the user's).

        Parameters
        ----------
        obj : int
            Label ID (> 0).
        z : int
        points : array-like (N, 2), optional
            (row, col) on slice ``z``.
        point_labels : array-like (N,), optional
            1 foreground, 0 background.
        box : array-like (4,), optional
            (row0, col0, row1, col1).

        Returns
        -------
        ndarray, shape (H, W), bool
            The object's mask on slice ``z`` as written (without pixels of other objects).
        """
        if int(obj) <= 0:
            raise ValueError(f"object IDs must be > 0, got {obj}")
        session = self.sessions.session(z)
        result = session.predict(points=points, point_labels=point_labels, box=box)
        mask = _full(result, session.shape)
        self._seeds[(obj, z)] = result
        self._write(obj, z, mask)
        self.user_slices.setdefault(obj, set()).add(int(z))
        return np.asarray(self.labels[z]) == obj

    def set_mask(self, obj: int, z: int, mask: np.ndarray) -> None:
        """Set object ``obj`` on slice ``z`` to a drawn (H, W) mask (a correction by hand)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(self.labels.shape[1:]):
            raise ValueError(f"mask has shape {mask.shape}, slices are {self.labels.shape[1:]}")
        self._seeds.pop((obj, z), None)
        self._write(obj, z, mask)
        self.user_slices.setdefault(obj, set()).add(int(z))

    def _contrast(self, z: int, mask: np.ndarray) -> float:
        """|mean intensity inside ``mask`` − the stack's background| (scaled units)."""
        if not mask.any():
            return 0.0
        if z not in self._scaled:
            self._scaled = {z: self.sessions.scaled(z)}  # the last slice only
        return abs(float(self._scaled[z][mask].mean()) - self.sessions.background)

    # -- propagation -------------------------------------------------------------------------
    def iter_propagate(
        self, objects, z: int, limit: int | None = None
    ) -> Generator[Progress, None, dict[int, tuple[int, int]]]:
        """Propagate ``objects`` (IDs) from slice ``z`` in both directions; a job generator.

        Each object starts from its mask on slice ``z`` (as prompted, painted or propagated
        there) and is replaced on every slice it reaches, up to (not including) the next slice
        the user set for it; past where it ends, its old propagated masks up to that slice are
        removed. Other objects are never changed.

        Parameters
        ----------
        objects : int or iterable of int
        z : int
        limit : int, optional
            Overrides :attr:`PropagationParams.limit`.

        Yields
        ------
        Progress
            After each slice decoded.

        Returns
        -------
        dict
            Object ID → (first slice, last slice) it now spans around ``z``.
        """
        objects = [int(objects)] if np.isscalar(objects) else [int(o) for o in objects]
        limit = self.params.limit if limit is None else int(limit)
        n = len(self.sessions)
        reach = n if limit is None else limit
        total = len(objects) * (min(reach, z) + min(reach, n - 1 - z))
        done = 0
        extent = {}
        for obj in objects:
            seed = np.asarray(self.labels[z]) == obj
            if not seed.any():
                raise ValueError(f"object {obj} is not on slice {z}: prompt it there first")
            ends = [z, z]
            contrast = self._contrast(z, seed)
            for side, step in enumerate((-1, 1)):
                previous, result = seed, self._seeds.get((obj, z))
                k = z + step
                stop = self._stop_slice(obj, z, step, limit)
                ended = False
                while k != stop:
                    if ended:
                        self._write(obj, k, None)
                    else:
                        mask, result = self._next(k, previous, result, contrast)
                        ended = mask is None
                        self._write(obj, k, mask)
                        if not ended:
                            previous = np.asarray(self.labels[k]) == obj
                            ends[side] = k
                            ended = not previous.any()
                        done += 1
                        yield Progress(min(done, total), total, f"object {obj}: slice {k}")
                    k += step
            extent[obj] = (ends[0], ends[1])
        return extent

    def propagate(self, objects, z: int, limit: int | None = None, progress: bool = False):
        """:meth:`iter_propagate` run to the end (with a progress bar if ``progress``)."""
        job = self.iter_propagate(objects, z, limit)
        return run_with_progress(job, show=progress, description="propagating")

    def _stop_slice(self, obj: int, z: int, step: int, limit: int | None) -> int:
        """The first slice (exclusive end) propagation from ``z`` in direction ``step`` does not
        touch: the stack's end, ``limit`` slices away, or the next slice the user set."""
        end = len(self.sessions) if step > 0 else -1
        if limit is not None:
            end = min(end, z + limit + 1) if step > 0 else max(end, z - limit - 1)
        for u in self.user_slices.get(obj, ()):
            if step > 0 and z < u < end:
                end = u
            if step < 0 and end < u < z:
                end = u
        return end

    def _next(self, k: int, previous: np.ndarray, result, contrast: float):
        """The object's mask on slice ``k`` from its mask on the neighbouring slice (and that
        slice's prediction), with the prediction; (None, None) when it has ended there."""
        p = self.params
        session = self.sessions.session(k)
        if p.prompt == "box":
            new = session.predict(
                box=_box(previous, p.box_margin), previous=result, multimask=False
            )
        else:
            new = session.predict(points=_deepest(previous), prompt_views=1)
        mask = _full(new, session.shape)
        area = int(mask.sum())
        if area < p.min_area:
            return None, None
        overlap = int((mask & previous).sum()) / max(1, min(area, int(previous.sum())))
        if overlap < p.min_overlap:
            return None, None
        if p.min_contrast > 0 and self._contrast(k, mask) < p.min_contrast * contrast:
            return None, None
        return mask, new


def _sessions(volume, model, axes, **options) -> StackSessions:
    if isinstance(volume, StackSessions):
        given = sorted(options) + (["axes"] if axes is not None else [])
        given += ["model"] if model is not None and model is not volume.model else []
        if given:
            raise ValueError(
                f"{', '.join(given)} cannot change a StackSessions: create it with them instead"
            )
        return volume
    if model is None or isinstance(model, str) or hasattr(model, "__fspath__"):
        from napari_segany.models.loading import load_model

        model = load_model(
            *(() if model is None else (model,)), device=options.pop("device", "auto")
        )
    options.pop("device", None)
    if axes is None and getattr(volume, "ndim", None) == 3 and not isinstance(volume, str):
        axes = "zyx"  # propagation is through z: a plain 3D array is a z-stack
    return StackSessions(volume, model, axes, **options)


def propagate_objects(
    volume,
    z: int,
    prompts,
    model=None,
    *,
    axes: str | None = None,
    limit: int | None = None,
    params: PropagationParams | None = None,
    progress: bool = False,
    **options,
) -> np.ndarray:
    """Several objects prompted on slice ``z``, propagated through the stack together.

    Parameters
    ----------
    volume : array-like, path or StackSessions
        The stack (see :func:`propagate`).
    z : int
    prompts : list of dict
        One per object: ``{"points": (N, 2), "point_labels": (N,), "box": (4,)}`` (any of them),
        (row, col) on slice ``z``.
    model, axes, limit, params, progress, **options
        See :func:`propagate`.

    Returns
    -------
    ndarray, shape (Z, H, W), uint32
        Object i + 1 for ``prompts[i]``; 0 background.
    """
    sessions = _sessions(volume, model, axes, **options)
    params = params or PropagationParams()
    if limit is not None:
        params = replace(params, limit=limit)
    propagator = VolumePropagator(sessions, params=params)
    for i, prompt in enumerate(prompts, start=1):
        unknown = set(prompt) - {"points", "point_labels", "box"}
        if unknown:
            raise ValueError(f"prompt {i}: unknown keys {sorted(unknown)}")
        propagator.prompt(i, z, **prompt)
    present = [i for i in range(1, len(prompts) + 1) if (propagator.labels[z] == i).any()]
    propagator.propagate(present, z, progress=progress)
    return propagator.labels


def propagate(
    volume,
    z: int,
    points=None,
    point_labels=None,
    box=None,
    model=None,
    *,
    axes: str | None = None,
    limit: int | None = None,
    params: PropagationParams | None = None,
    progress: bool = False,
    **options,
) -> np.ndarray:
    """Segment one object from prompts on slice ``z`` and propagate it through the stack.

    Parameters
    ----------
    volume : array-like, path or StackSessions
        A z-stack, (Z, H, W) or with channels/time as ``axes`` says; numpy, dask, zarr or a file.
        Pass a :class:`StackSessions` to reuse its embeddings across calls.
    z : int
        Slice the prompts are on.
    points : array-like (N, 2), optional
        (row, col) on slice ``z``.
    point_labels : array-like (N,), optional
        1 foreground, 0 background (default all 1).
    box : array-like (4,), optional
        (row0, col0, row1, col1).
    model : SamModel or str, optional
        Default: the embedded model.
    axes : str, optional
        E.g. ``"zyx"`` (the default for a 3D array), ``"zcyx"``, ``"tzyx"`` (then pass
        ``fixed={"t": frame}``).
    limit : int, optional
        Slices at most on each side of ``z``.
    params : PropagationParams, optional
        When propagation stops and how slices prompt each other.
    progress : bool
        Show a progress bar.
    **options
        For :class:`StackSessions` (``cache``, ``precision``, ``fixed``, ...) and ``device``.

    Returns
    -------
    ndarray, shape (Z, H, W), bool
    """
    prompt = {"points": points, "point_labels": point_labels, "box": box}
    labels = propagate_objects(
        volume,
        z,
        [prompt],
        model,
        axes=axes,
        limit=limit,
        params=params,
        progress=progress,
        **options,
    )
    return labels == 1
