"""A lazily encoded :class:`~napari_segany.tiled.session.SegmentationSession` per slice.

A :class:`StackSessions` holds a z-stack or time series (numpy, dask or zarr; slices are read
only when needed) and a model. Slice ``i`` gets its session the first time it is asked for; the
session encodes the tiles a prompt needs on demand, through the package's one encode path, and
keeps them in memory or in a zarr embeddings store per slice (``cache/z00012.zarr``, validated
and resumed like any tile cache, see :mod:`napari_segany.tiled.embedding_cache`). So a prompt on
a 100-slice stack costs the encoding of the slices it touches, not of the whole stack.

Every slice is scaled to 8 bits with the same intensity range, estimated once on a sample of
slices, so that an object looks the same to the model in every slice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator, Iterable
from pathlib import Path

import numpy as np

from napari_segany.image.prep import intensity_range
from napari_segany.image.readers import ImageFileError, read_image_file
from napari_segany.image.source import ImageSource, ImageSourceError
from napari_segany.progress import Progress
from napari_segany.volume.axes import AxesError, resolve_axes

__all__ = ["StackSessions", "open_stack"]

#: Slices sampled to estimate the stack's intensity range.
RANGE_SLICES = 8
#: Pixels at most in that sample.
RANGE_PIXELS = 2**22


def open_stack(image, axes: str | None = None):
    """An array, its :class:`StackAxes` and its calibration (None for arrays) from an array or a
    file path (the file's axes are used when ``axes`` is not given)."""
    calibration = None
    file_axes = None
    if isinstance(image, str | Path):
        try:
            opened = read_image_file(Path(image))
        except ImageFileError as exc:
            raise ImageSourceError(str(exc)) from exc
        array, file_axes = opened.array, opened.metadata.axes
        calibration = opened.metadata.calibration
    else:
        array = image if hasattr(image, "shape") and hasattr(image, "dtype") else np.asarray(image)
    return array, resolve_axes(tuple(array.shape), axes, file_axes), calibration


class StackSessions:
    """Per-slice segmentation sessions of a stack, created and encoded lazily.

    Parameters
    ----------
    image : array-like or path
        A stack with axes ``axes``: e.g. (Z, H, W) for ``"zyx"``, (T, C, Z, H, W) for ``"tczyx"``.
    model : SamModel
    axes : str, optional
        See :mod:`napari_segany.volume.axes`; default from the file, else an error for stacks.
    along : {"z", "t"}, optional
        The axis the slices are taken along; default ``z`` when the stack has one, else ``t``.
    fixed : dict, optional
        Index of the other stack axis, e.g. ``{"t": 3}`` to propagate through the z-stack of
        frame 3 of a ``"tzyx"`` series (default 0).
    cache : str or Path, optional
        A folder holding one embeddings store per slice. None keeps embeddings in memory.
    keep : int, optional
        Sessions kept at most (least recently used are dropped; with a ``cache`` their
        embeddings are read back when needed again). Default: all.
    precision, prompt_views, tile_size, halo, intensity_range
        As for :class:`~napari_segany.tiled.session.SegmentationSession`; the intensity range
        defaults to one estimated on a sample of the stack's slices.
    """

    def __init__(
        self,
        image,
        model,
        axes: str | None = None,
        *,
        along: str | None = None,
        fixed: dict[str, int] | None = None,
        cache: str | Path | None = None,
        keep: int | None = None,
        precision: str = "fp32",
        prompt_views: int | None = None,
        tile_size: int | None = None,
        halo: int | None = None,
        intensity_range=None,
    ) -> None:
        self.array, self.axes, self.calibration = open_stack(image, axes)
        #: how workers open the stack again: its file path, else the array itself
        self.source_ref = str(image) if isinstance(image, str | Path) else self.array
        stack = self.axes.stack_letters
        if not stack:
            raise AxesError(
                f"axes {self.axes.axes!r} have no z or t axis: this is one 2D image; use "
                "napari_segany.SegmentationSession or automatic.segment for it"
            )
        along = along or ("z" if "z" in stack else "t")
        if along not in stack:
            raise AxesError(f"along={along!r}: the axes {self.axes.axes!r} have no {along} axis")
        self.along = along
        fixed = dict(fixed or {})
        for letter in stack:
            if letter != along:
                fixed.setdefault(letter, 0)
        self.fixed = fixed
        self.model = model
        self.cache = None if cache is None else Path(cache)
        self.keep = keep
        self._options = {
            "precision": precision,
            "prompt_views": prompt_views,
            "tile_size": tile_size,
            "halo": halo,
        }
        self._sessions: OrderedDict[int, object] = OrderedDict()
        self.ranges = (
            None if intensity_range is None else np.asarray(intensity_range, dtype=np.float64)
        )
        #: the most common scaled intensity of the stack (its background), see :meth:`scaled`
        self.background = 0.0
        if self.ranges is None:
            self.ranges = self._estimate_ranges()

    # -- geometry ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.array.shape[self.axes.index(self.along)])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, cols)."""
        return (len(self), *self.source(0).shape)

    def plane(self, index: int) -> tuple[int, ...]:
        """The ``plane`` of :class:`~napari_segany.image.source.ImageSource` of slice ``index``."""
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"slice {index} is out of range for a stack of {n} slices")
        return self.axes.plane(**{**self.fixed, self.along: int(index) % n})

    def source(self, index: int) -> ImageSource:
        """Slice ``index`` as an image source (read lazily)."""
        return ImageSource(
            self.array,
            channel_axis=self.axes.channel_axis,
            plane=self.plane(index),
            name=f"{self.along}={index}",
        )

    def read(self, index: int) -> np.ndarray:
        """Slice ``index`` in memory, (H, W) or (H, W, C)."""
        return self.source(index).read_all()

    def scaled(self, index: int) -> np.ndarray:
        """Slice ``index`` as (H, W) float32 in about 0–1 with the stack's intensity range (the
        mean over channels), to compare objects' brightness between slices."""
        return self._scale(self.read(index), self.ranges)

    @staticmethod
    def _scale(raw: np.ndarray, ranges: np.ndarray) -> np.ndarray:
        raw = raw.astype(np.float32)
        low, high = ranges[:, 0].astype(np.float32), ranges[:, 1].astype(np.float32)
        span = np.where(high > low, high - low, np.float32(1))
        if raw.ndim == 2:
            return (raw - low[0]) / span[0]
        return ((raw - low) / span).mean(axis=-1)

    def _estimate_ranges(self) -> np.ndarray:
        n = len(self)
        picks = np.unique(np.linspace(0, n - 1, min(n, RANGE_SLICES)).round().astype(int))
        first = self.source(0)
        h, w = first.shape
        step = max(1, int(np.ceil(np.sqrt(h * w * len(picks) / RANGE_PIXELS))))
        parts = [self.source(int(i)).read(slice(0, h, step), slice(0, w, step)) for i in picks]
        sample = np.concatenate(parts, axis=0)
        ranges = intensity_range(sample, None if first.channels is None else 2)
        self.background = _mode(self._scale(sample, ranges))
        return ranges

    def count(self, letter: str) -> int:
        """Entries along stack axis ``letter`` (e.g. ``count("t")``: the frames)."""
        index = self.axes.index(letter)
        if index is None:
            raise AxesError(f"the axes {self.axes.axes!r} have no {letter} axis")
        return int(self.array.shape[index])

    def at(self, along: str | None = None, **fixed: int) -> StackSessions:
        """The same stack with other fixed indices, e.g. ``at(t=3)``: the z-stack of frame 3
        (and, with ``along``, slices taken along another axis: ``at("z", t=3)``).

        It shares this stack's array, model, options and intensity range (so every frame is
        scaled alike); with a ``cache``, its embeddings go to a subfolder (``cache/t00003``).
        """
        cache = self.cache
        if cache is not None:
            cache = cache.joinpath(*(f"{k}{int(v):05d}" for k, v in sorted(fixed.items())))
        other = StackSessions(
            self.array,
            self.model,
            self.axes.axes,
            along=along or self.along,
            fixed={**self.fixed, **fixed},
            cache=cache,
            keep=self.keep,
            intensity_range=self.ranges,
            **self._options,
        )
        other.calibration, other.source_ref = self.calibration, self.source_ref
        other.background = self.background
        return other

    # -- sessions ----------------------------------------------------------------------------
    def session(self, index: int):
        """The :class:`~napari_segany.tiled.session.SegmentationSession` of slice ``index``."""
        from napari_segany.tiled.session import SegmentationSession

        index = int(index) % len(self) if -len(self) <= int(index) < len(self) else int(index)
        if index in self._sessions:
            self._sessions.move_to_end(index)
            return self._sessions[index]
        cache = None
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            cache = self.cache / f"{self.along}{index:05d}.zarr"
        session = SegmentationSession(
            self.source(index),
            self.model,
            cache=cache,
            intensity_range=self.ranges,
            **self._options,
        )
        self._sessions[index] = session
        if self.keep is not None:
            while len(self._sessions) > max(1, self.keep):
                self._sessions.popitem(last=False)
        return session

    def is_encoded(self, index: int) -> bool:
        """Whether slice ``index`` is encoded (in memory or in its cache)."""
        return index in self._sessions and self._sessions[index].is_encoded()

    def encode(self, order: Iterable[int] | None = None) -> Generator[Progress, None, None]:
        """Encode slices (default: all, from the middle outwards), yielding after each.

        A job generator (see :mod:`napari_segany.progress`): closing it cancels between slices.
        """
        n = len(self)
        if order is None:
            mid = n // 2
            order = sorted(range(n), key=lambda i: (abs(i - mid), i))
        order = list(order)
        for done, index in enumerate(order, start=1):
            for _ in self.session(index).encode():
                pass
            yield Progress(done, len(order), f"encoding {self.along}={index} ({done}/{len(order)})")


def _mode(values: np.ndarray) -> float:
    """The most common value of scaled intensities (a 64-bin histogram over 0–1)."""
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=64, range=(0, 1))
    k = int(np.argmax(counts))
    return float((edges[k] + edges[k + 1]) / 2)
