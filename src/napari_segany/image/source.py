"""Read one 2D plane of a (possibly huge) image, region by region, without loading it whole.

An :class:`ImageSource` wraps a numpy, dask or zarr array (zarr v2 or v3), or opens an image
file lazily (TIFF, OME-TIFF, zarr, OME-Zarr, PNG, JPEG, ``.npy``; CZI, ND2 and LIF with the
``formats`` extra: see :mod:`.readers`). It exposes one 2D plane, optionally with channels:
``read(rows, cols)`` returns just that region as numpy, channels last. Stacks and time series
are handled one plane at a time (``plane=``). It carries the pixel size the file gives
(:attr:`ImageSource.calibration`).

Axis conventions: the last two non-channel axes of the array are (row, col); any axes before
them are stack axes (z, t, ...) and are fixed by ``plane``. Channels are on ``channel_axis``;
when it is not given, on the axis the file names as channels (``C``, or ``S`` samples), else on
the last axis if it has length 3 or 4 (RGB/RGBA). When the file names the stack axes, a plane
is chosen by default (the middle z plane, the first time point) and :meth:`ImageSource.describe`
says which.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from napari_segany.image.calibration import UNCALIBRATED, Calibration, with_pixel_size
from napari_segany.image.readers import ImageFileError, read_image_file

#: At most this many pixels are read to estimate intensity ranges and fingerprint the image.
SAMPLE_PIXELS = 2**22
#: Side of the blocks read for that sample: a few chunk-sized reads instead of a strided scan.
SAMPLE_BLOCK = 256


class ImageSourceError(ValueError):
    """An image that cannot be read, or whose dimensions cannot be segmented as given."""


def _describe(array) -> str:
    return f"shape {tuple(array.shape)}, dtype {array.dtype}"


class ImageSource:
    """One 2D plane of an array-like image, read lazily region by region.

    Parameters
    ----------
    array : array-like
        numpy, dask or zarr array (anything with ``shape``, ``dtype`` and numpy slicing).
    channel_axis : int, optional
        Axis of the channels in ``array``.
    plane : int or sequence of int, optional
        Index along the stack axes (the axes before the two spatial ones, channel axis
        excluded). Needed when the array is a stack of more than one plane.
    name : str, optional
        Where the image came from, for messages.
    axes : str, optional
        One letter per axis of ``array`` as the file names them (``T``, ``C``, ``Z``, ``Y``,
        ``X``, ``S``; other letters: unknown). Gives the channel axis and a default plane.
    calibration : Calibration, optional
        The pixel size (default: unknown).
    channel_names : sequence of str, optional
        Names of the channels, for messages.

    Attributes
    ----------
    shape : (int, int)
        (rows, cols) of the plane.
    channels : int or None
        Number of channels, None for a grayscale plane.
    rgb_auto : bool
        The channels are an RGB(A) last axis detected without ``channel_axis``.
    calibration : Calibration
        Pixel size of the plane, z step and frame interval, with their units.
    axes : str or None
    channel_names : tuple of str or None
    choice : str
        What was chosen without being asked (a plane of a stack, the channel axis), for
        messages; empty when nothing was.
    """

    def __init__(
        self,
        array,
        channel_axis: int | None = None,
        plane=None,
        name: str = "image",
        *,
        axes: str | None = None,
        calibration: Calibration | None = None,
        channel_names=None,
    ):
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            array = np.asarray(array)
        self.array = array
        self.name = name
        shape = tuple(int(s) for s in array.shape)
        ndim = len(shape)
        if not np.issubdtype(np.dtype(array.dtype), np.number) and np.dtype(array.dtype) != bool:
            raise ImageSourceError(f"{name}: cannot segment an image of dtype {array.dtype}")
        self.axes = axes.upper() if axes is not None and len(axes) == ndim else None
        self.calibration = calibration or UNCALIBRATED
        self.channel_names = tuple(channel_names) if channel_names else None
        self.rgb_auto = False
        self._choices: list[str] = []
        if channel_axis is None and self.axes is not None:
            channel_axis = _named_channel_axis(self.axes, shape)
            if channel_axis is not None:
                self._choices.append(self._channel_note(channel_axis, shape[channel_axis]))
        if channel_axis is not None:
            if not -ndim <= int(channel_axis) < ndim:
                raise ImageSourceError(
                    f"{name}: channel_axis={channel_axis} is out of range for {_describe(array)}"
                )
            channel_axis = int(channel_axis) % ndim
        elif ndim >= 3 and shape[-1] in (3, 4) and (self.axes is None or self.axes[-1] == "S"):
            channel_axis = ndim - 1
            self.rgb_auto = True
        self._channel_axis = channel_axis
        spatial_and_stack = [a for a in range(ndim) if a != channel_axis]
        if len(spatial_and_stack) < 2:
            raise ImageSourceError(
                f"{name}: need at least two spatial axes, got {_describe(array)}"
                + (f" with channel_axis={channel_axis}" if channel_axis is not None else "")
            )
        self._row_axis, self._col_axis = spatial_and_stack[-2:]
        self._stack_axes = spatial_and_stack[:-2]
        stack_shape = tuple(shape[a] for a in self._stack_axes)
        self.plane = self._check_plane(plane, stack_shape)
        self.shape = (shape[self._row_axis], shape[self._col_axis])
        if min(self.shape) == 0:
            raise ImageSourceError(f"{name}: the image is empty ({_describe(array)})")
        self.channels = None if channel_axis is None else shape[channel_axis]
        self.dtype = np.dtype(array.dtype)

    @property
    def choice(self) -> str:
        """What was chosen without being asked (channel axis, plane), for messages."""
        return "; ".join(self._choices)

    def _channel_note(self, axis: int, count: int) -> str:
        names = (
            self.channel_names if self.channel_names and len(self.channel_names) == count else None
        )
        listed = f": {', '.join(names)}" if names else ""
        return f"channels from axis {axis} ({self.axes[axis]}{listed})"

    def _default_plane(self, stack_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The plane chosen from the axes' names (middle z, first t, first c), or None."""
        if self.axes is None:
            return None
        index, notes = [], []
        for axis, n in zip(self._stack_axes, stack_shape, strict=True):
            letter = self.axes[axis]
            if n == 1:
                index.append(0)
            elif letter == "Z":
                index.append(n // 2)
                notes.append(f"z={n // 2} of {n} (the middle plane)")
            elif letter in "TC":
                index.append(0)
                notes.append(f"{letter.lower()}=0 of {n} (the first)")
            else:
                return None
        if notes:
            names = ",".join(self.axes[a].lower() for a in self._stack_axes)
            self._choices.append(f"plane {', '.join(notes)}; --plane (axes {names}) picks another")
        return tuple(index)

    def _check_plane(self, plane, stack_shape: tuple[int, ...]) -> tuple[int, ...]:
        if plane is None:
            if all(s == 1 for s in stack_shape):
                return (0,) * len(stack_shape)
            default = self._default_plane(stack_shape)
            if default is not None:
                return default
            axes = f", axes {self.axes}" if self.axes else ""
            raise ImageSourceError(
                f"{self.name} is a stack of {int(np.prod(stack_shape))} planes "
                f"(stack axes of sizes {stack_shape}, {_describe(self.array)}{axes}); images are "
                "segmented one 2D plane at a time: choose one with plane=... (--plane). If an "
                "axis holds channels, pass channel_axis (--channel-axis)."
            )
        index = (plane,) if np.isscalar(plane) else tuple(plane)
        if len(index) != len(stack_shape):
            raise ImageSourceError(
                f"{self.name}: plane={plane!r} needs {len(stack_shape)} index(es) for stack axes "
                f"of sizes {stack_shape} ({_describe(self.array)})"
            )
        out = []
        for i, n in zip(index, stack_shape, strict=True):
            if not float(i).is_integer() or not -n <= int(i) < n:
                raise ImageSourceError(
                    f"{self.name}: plane={plane!r} is out of range for stack axes {stack_shape}"
                )
            out.append(int(i) % n)
        return tuple(out)

    @property
    def channel_axis(self) -> int | None:
        """Channel axis of the arrays returned by :meth:`read` (2, channels last) or None."""
        return None if self._channel_axis is None else 2

    @property
    def prep_channel_axis(self) -> int | None:
        """``channel_axis`` to pass to :func:`napari_segany.image.prep.to_rgb_uint8` for a read
        region: None for an auto-detected RGB(A) (so alpha is dropped as usual), else 2."""
        return None if self.rgb_auto else self.channel_axis

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Read the region ``[rows, cols]`` of the plane into memory.

        Returns
        -------
        ndarray, shape (h, w) or (h, w, C)
            Channels last.
        """
        index: list = [slice(None)] * len(self.array.shape)
        for axis, i in zip(self._stack_axes, self.plane, strict=True):
            index[axis] = i
        index[self._row_axis] = rows
        index[self._col_axis] = cols
        try:
            region = self.array[tuple(index)]
            if hasattr(region, "compute"):  # dask
                region = region.compute()
            region = np.asarray(region)
        except Exception as exc:  # a corrupt chunk, a vanished file, a codec error
            raise ImageSourceError(
                f"could not read rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop} "
                f"of {self.name}: {exc}"
            ) from exc
        if self._channel_axis is not None:
            # the remaining axes are row, col and channel in their original order
            kept = sorted([self._row_axis, self._col_axis, self._channel_axis])
            region = np.moveaxis(region, kept.index(self._channel_axis), -1)
        return region

    def read_all(self) -> np.ndarray:
        """The whole plane in memory (for small images and tests)."""
        return self.read(slice(0, self.shape[0]), slice(0, self.shape[1]))

    def sample(self) -> np.ndarray:
        """A mosaic of regularly spaced blocks, at most ``SAMPLE_PIXELS`` pixels.

        The whole plane when it is that small. Used to estimate intensity ranges and to
        fingerprint the image cheaply: it reads a few blocks, not every chunk.

        Returns
        -------
        ndarray, shape (h, w) or (h, w, C)
        """
        h, w = self.shape
        if h * w <= SAMPLE_PIXELS:
            return self.read_all()
        b = SAMPLE_BLOCK
        per_axis = max(1, int(np.sqrt(SAMPLE_PIXELS / (b * b))))
        rows_start = np.linspace(0, max(0, h - b), min(per_axis, max(1, h // b))).astype(int)
        cols_start = np.linspace(0, max(0, w - b), min(per_axis, max(1, w // b))).astype(int)
        bands = []
        for r in rows_start:
            blocks = [self.read(slice(r, r + b), slice(c, c + b)) for c in cols_start]
            bands.append(np.concatenate(blocks, axis=1))
        return np.concatenate(bands, axis=0)

    def describe(self) -> str:
        """One line for people: the plane's size and type, what was chosen, the pixel size."""
        h, w = self.shape
        kind = f"{self.channels} channels" if self.channels else "grayscale"
        parts = [f"{h}×{w} {self.dtype} {kind}"]
        if self.choice:
            parts.append(self.choice)
        parts.append(self.calibration.describe())
        return "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"ImageSource({self.name!r}, plane shape={self.shape}, channels={self.channels}, "
            f"dtype={self.dtype}, plane={self.plane})"
        )


def _named_channel_axis(axes: str, shape: tuple[int, ...]) -> int | None:
    """The axis the file names as channels: samples (``S``) unless they are a last RGB(A) axis
    (found without help), else ``C``; None when there is none or it has one channel."""
    if "S" in axes:
        s = axes.index("S")
        if shape[s] > 1:
            return None if s == len(axes) - 1 and shape[s] in (3, 4) else s
    if "C" in axes and shape[axes.index("C")] > 1:
        return axes.index("C")
    return None


def open_image(image, channel_axis: int | None = None, plane=None, pixel_size=None) -> ImageSource:
    """An :class:`ImageSource` for an array or a file path.

    Parameters
    ----------
    image : array-like, str, Path or ImageSource
        numpy/dask/zarr array, or the path of an image file: TIFF (``.tif``/``.tiff``, incl.
        OME-TIFF and ImageJ), zarr or OME-Zarr (``.zarr``, v2 or v3; for a group the first
        multiscale level or array ``"0"``), PNG, JPEG or ``.npy``; CZI, ND2 and LIF with the
        ``formats`` extra (see :mod:`napari_segany.image.readers`). An ImageSource is returned
        unchanged (a copy, when ``pixel_size`` is given).
    channel_axis : int, optional
    plane : int or sequence of int, optional
        See :class:`ImageSource`. Without them, a file's named axes choose.
    pixel_size : float, (float, float), str or Calibration, optional
        Overrides the file's pixel size, or supplies a missing one: micrometres per pixel, one
        value or (row, col), or text such as ``"0.65um"`` or ``"650nm"`` (see
        :func:`napari_segany.image.calibration.parse_pixel_size`).

    Raises
    ------
    ImageSourceError
        Unreadable or missing file, unknown format (or a vendor file without its reader: the
        message names the extra to install), or dimensions that are not one 2D plane (plus
        channels) after ``plane``; a bad ``pixel_size``.
    """
    if isinstance(image, ImageSource):
        source = image
        if pixel_size is not None:
            source = copy.copy(image)
    elif isinstance(image, str | Path):
        path = Path(image)
        try:
            opened = read_image_file(path)
        except ImageFileError as exc:
            raise ImageSourceError(str(exc)) from exc
        meta = opened.metadata
        source = ImageSource(
            opened.array,
            channel_axis,
            plane,
            name=str(path),
            axes=meta.axes,
            calibration=meta.calibration,
            channel_names=meta.channel_names,
        )
    else:
        source = ImageSource(image, channel_axis, plane)
    if pixel_size is not None:
        source.calibration = _given_calibration(source.calibration, pixel_size)
    return source


def _given_calibration(calibration: Calibration, pixel_size) -> Calibration:
    if isinstance(pixel_size, Calibration):
        return pixel_size
    try:
        return with_pixel_size(calibration, pixel_size, origin="given")
    except (TypeError, ValueError) as exc:
        raise ImageSourceError(f"pixel size: {exc}") from exc
