"""Read one 2D plane of a (possibly huge) image, region by region, without loading it whole.

An :class:`ImageSource` wraps a numpy, dask or zarr array (zarr v2 or v3), or opens a TIFF,
zarr or ``.npy`` file lazily (TIFF through tifffile's zarr store, ``.npy`` as a memory map). It
exposes one 2D plane, optionally with channels: ``read(rows, cols)`` returns just that region as
numpy, channels last. Stacks and time series are handled one plane at a time (``plane=``).

Axis conventions: the last two non-channel axes of the array are (row, col); any axes before
them are stack axes (z, t, ...) and are fixed by ``plane``. Channels are on ``channel_axis``, or,
when it is not given, the last axis if it has length 3 or 4 (RGB/RGBA).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

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

    Attributes
    ----------
    shape : (int, int)
        (rows, cols) of the plane.
    channels : int or None
        Number of channels, None for a grayscale plane.
    rgb_auto : bool
        The channels are an RGB(A) last axis detected without ``channel_axis``.
    """

    def __init__(self, array, channel_axis: int | None = None, plane=None, name: str = "image"):
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            array = np.asarray(array)
        self.array = array
        self.name = name
        shape = tuple(int(s) for s in array.shape)
        ndim = len(shape)
        if not np.issubdtype(np.dtype(array.dtype), np.number) and np.dtype(array.dtype) != bool:
            raise ImageSourceError(f"{name}: cannot segment an image of dtype {array.dtype}")
        self.rgb_auto = False
        if channel_axis is not None:
            if not -ndim <= int(channel_axis) < ndim:
                raise ImageSourceError(
                    f"{name}: channel_axis={channel_axis} is out of range for {_describe(array)}"
                )
            channel_axis = int(channel_axis) % ndim
        elif ndim >= 3 and shape[-1] in (3, 4):
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

    def _check_plane(self, plane, stack_shape: tuple[int, ...]) -> tuple[int, ...]:
        if plane is None:
            if all(s == 1 for s in stack_shape):
                return (0,) * len(stack_shape)
            raise ImageSourceError(
                f"{self.name} is a stack of {int(np.prod(stack_shape))} planes "
                f"(stack axes of sizes {stack_shape}, {_describe(self.array)}); images are "
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

    def __repr__(self) -> str:
        return (
            f"ImageSource({self.name!r}, plane shape={self.shape}, channels={self.channels}, "
            f"dtype={self.dtype}, plane={self.plane})"
        )


def open_image(image, channel_axis: int | None = None, plane=None) -> ImageSource:
    """An :class:`ImageSource` for an array or a file path.

    Parameters
    ----------
    image : array-like, str, Path or ImageSource
        numpy/dask/zarr array, or the path of a TIFF (``.tif``/``.tiff``, incl. OME-TIFF), zarr
        (``.zarr``, v2 or v3; for a group the first multiscale level or array ``"0"``) or ``.npy``
        file. An ImageSource is returned unchanged.
    channel_axis : int, optional
    plane : int or sequence of int, optional
        See :class:`ImageSource`.

    Raises
    ------
    ImageSourceError
        Unreadable or missing file, unknown format, or dimensions that are not one 2D plane
        (plus channels) after ``plane``.
    """
    if isinstance(image, ImageSource):
        return image
    if isinstance(image, str | Path):
        path = Path(image)
        return ImageSource(_open_path(path), channel_axis, plane, name=str(path))
    return ImageSource(image, channel_axis, plane)


def _open_path(path: Path):
    if not path.exists():
        raise ImageSourceError(f"{path}: no such file or folder")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith((".tif", ".tiff")):
            return _open_tiff(path)
        if suffixes.endswith(".zarr") or (path.is_dir() and _looks_like_zarr(path)):
            return _open_zarr(path)
        if suffixes.endswith(".npy"):
            return np.load(path, mmap_mode="r", allow_pickle=False)
    except ImageSourceError:
        raise
    except Exception as exc:
        raise ImageSourceError(f"{path}: cannot read it as an image ({exc})") from exc
    raise ImageSourceError(
        f"{path}: unsupported file type; napari-segany reads TIFF (.tif, .tiff), zarr (.zarr) "
        "and .npy images. Convert it, or open it in napari and use the layer."
    )


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def _open_tiff(path: Path):
    import tifffile
    import zarr

    try:
        store = tifffile.imread(path, aszarr=True)
    except Exception as exc:
        raise ImageSourceError(f"{path}: not a readable TIFF file ({exc})") from exc
    node = zarr.open(store, mode="r")
    return node if isinstance(node, zarr.Array) else _first_level(node, path)


def _open_zarr(path: Path):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise ImageSourceError(f"{path}: not a readable zarr store ({exc})") from exc
    return node if isinstance(node, zarr.Array) else _first_level(node, path)


def _first_level(group, path: Path):
    """The full-resolution array of a zarr group (OME-Zarr multiscales, or array "0")."""
    import zarr

    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    candidates: Sequence[str] = []
    if multiscales:
        candidates = [multiscales[0]["datasets"][0]["path"]]
    candidates = [*candidates, "0"]
    for key in candidates:
        try:
            node = group[key]
        except KeyError:
            continue
        if isinstance(node, zarr.Array):
            return node
    arrays = sorted(name for name, _ in group.arrays())
    raise ImageSourceError(
        f"{path} is a zarr group without a multiscale image or array '0'; arrays in it: "
        f"{arrays or 'none'}. Pass the path of the array itself (e.g. {path}/<name>)."
    )
