"""Open an image file as a lazy pixel array with its metadata, whatever the format.

:func:`read_image_file` chooses by the file's name:

========================  ===================================================================
TIFF, OME-TIFF, ImageJ    tifffile's zarr view of the first series (tiles read on demand)
zarr, OME-Zarr            zarr (the first multiscale level of an OME-Zarr image)
PNG, JPEG                 imageio, decoded on the first read
``.npy``                  a memory map
CZI, ND2, LIF             bioio with bioio-czi, bioio-nd2 or bioio-lif (the ``formats`` extra),
                          as a dask array chunked by plane
========================  ===================================================================

The metadata (axes, pixel size, channel names) come from :mod:`.metadata`. TIFF and zarr pixels
are read directly rather than through bioio's dask arrays, which are chunked by whole planes:
reading a 1024² region of an 8192² OME-TIFF takes 22 ms this way and 930 ms through
bioio-ome-tiff (docs/formats.md).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_segany.image.metadata import (
    ImageMetadata,
    bioio_metadata,
    ome_zarr_metadata,
    tiff_metadata,
)

__all__ = [
    "FORMATS_EXTRA",
    "IMAGE_SUFFIXES",
    "VENDOR_FORMATS",
    "ImageFile",
    "ImageFileError",
    "image_stem",
    "read_image_file",
]

FORMATS_EXTRA = 'pip install "napari-segany[formats]"'
"""The command that installs the readers of microscope vendors' files."""

#: Suffix → (what it is, bioio plugin module) for microscope vendors' files.
VENDOR_FORMATS = {
    ".czi": ("Zeiss CZI", "bioio_czi"),
    ".nd2": ("Nikon ND2", "bioio_nd2"),
    ".lif": ("Leica LIF", "bioio_lif"),
}
_TIFF = (".tif", ".tiff")
_PICTURES = (".png", ".jpg", ".jpeg")
#: Every image file suffix read here (``.ome.tif`` and ``.ome.zarr`` end in these).
IMAGE_SUFFIXES = (*_TIFF, ".zarr", *_PICTURES, ".npy", *VENDOR_FORMATS)
_SUPPORTED = (
    "napari-segany reads TIFF and OME-TIFF (.tif, .tiff), zarr and OME-Zarr (.zarr), PNG, "
    f"JPEG (.jpg, .jpeg) and .npy images, and CZI, ND2 and LIF files with {FORMATS_EXTRA}"
)


def image_stem(path: str | os.PathLike) -> str:
    """An image file's name without its format extension, for naming the outputs made from it.

    >>> image_stem("plate/A01.ome.tif"), image_stem("cells.png"), image_stem("a.b.zarr")
    ('A01', 'cells', 'a.b')
    """
    name = Path(path).name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif", *IMAGE_SUFFIXES):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class ImageFileError(ValueError):
    """A file that cannot be read as an image; the message says why and what to do."""


@dataclass(frozen=True)
class ImageFile:
    """An image file's pixels, unread, and what the file says about them.

    Attributes
    ----------
    array : array-like
        Lazy: zarr, dask, a memory map, or a picture decoded on the first read.
    metadata : ImageMetadata
        Axes, calibration, channel names.
    reader : str
        What reads the pixels ("tifffile", "zarr", "imageio", "numpy", "bioio-czi", ...).
    """

    array: Any
    metadata: ImageMetadata
    reader: str


def read_image_file(path: str | os.PathLike) -> ImageFile:
    """Open ``path`` lazily; see the module docstring for the formats.

    Raises
    ------
    ImageFileError
        A missing file, an unknown or unreadable format, or a vendor file without its reader
        installed (the message names the ``formats`` extra).
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    try:
        if suffix in _TIFF:
            return _open_tiff(path)
        if suffix == ".zarr" or (path.is_dir() and _looks_like_zarr(path)):
            return _open_zarr(path)
        if suffix in _PICTURES:
            return _open_picture(path)
        if suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            return ImageFile(array, ImageMetadata(), "numpy")
        if suffix in VENDOR_FORMATS:
            return _open_with_bioio(path, *VENDOR_FORMATS[suffix])
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(f"{path}: cannot read it as an image ({exc})") from exc
    raise ImageFileError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}; {_SUPPORTED}. Convert "
        "it, or open it in napari and use the layer."
    )


# ---------------------------------------------------------------------------------------- TIFF
def _open_tiff(path: Path) -> ImageFile:
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            metadata = tiff_metadata(path, tif)
        store = tifffile.imread(path, aszarr=True)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable TIFF file ({exc})") from exc
    node = zarr.open(store, mode="r")
    array = node if isinstance(node, zarr.Array) else _first_level(node, path)[0]
    if metadata.axes is not None and len(metadata.axes) != array.ndim:
        metadata = ImageMetadata(None, metadata.calibration, metadata.channel_names)
    return ImageFile(array, metadata, "tifffile")


# ---------------------------------------------------------------------------------------- zarr
def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def _open_zarr(path: Path) -> ImageFile:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable zarr store ({exc})") from exc
    if isinstance(node, zarr.Array):
        return ImageFile(node, ImageMetadata(), "zarr")
    array, multiscale = _first_level(node, path)
    metadata = ImageMetadata()
    if multiscale is not None:
        metadata = ome_zarr_metadata(path, multiscale, array.ndim)
    return ImageFile(array, metadata, "zarr")


def _first_level(group, path: Path) -> tuple[Any, dict | None]:
    """The full-resolution array of a zarr group (OME-Zarr multiscales, or array "0"), and the
    multiscales entry it comes from (None without one)."""
    import zarr

    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    candidates: Sequence[str] = []
    if multiscales:
        candidates = [multiscales[0]["datasets"][0]["path"]]
    for key in [*candidates, "0"]:
        try:
            node = group[key]
        except KeyError:
            continue
        if isinstance(node, zarr.Array):
            from_multiscale = bool(candidates) and key == candidates[0]
            return node, (multiscales[0] if from_multiscale else None)
    arrays = sorted(name for name, _ in group.arrays())
    raise ImageFileError(
        f"{path} is a zarr group without a multiscale image or array '0'; arrays in it: "
        f"{arrays or 'none'}. Pass the path of the array itself (e.g. {path}/<name>)."
    )


# ------------------------------------------------------------------------------ PNG and JPEG
class _Picture:
    """A PNG or JPEG file as an array: shape and dtype from its header, pixels decoded on the
    first read (the most recently read picture stays decoded)."""

    def __init__(self, path: Path):
        import imageio.v3 as iio

        self.path = path
        properties = iio.improps(path)
        self.shape = tuple(int(n) for n in properties.shape)
        self.dtype = np.dtype(properties.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        stat = self.path.stat()
        # a copy: the decoded picture is shared by every read and must stay unchanged
        return np.array(_decoded(str(self.path), stat.st_mtime_ns, stat.st_size)[index])

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[...], dtype=dtype)


@functools.lru_cache(maxsize=1)
def _decoded(path: str, _mtime: int, _size: int) -> np.ndarray:
    import imageio.v3 as iio

    pixels = iio.imread(path)
    pixels.flags.writeable = False  # shared by every read: nobody may change it
    return pixels


def _open_picture(path: Path) -> ImageFile:
    try:
        picture = _Picture(path)
    except Exception as exc:
        kind = path.suffix[1:].upper()
        raise ImageFileError(f"{path}: not a readable {kind} file ({exc})") from exc
    if picture.ndim not in (2, 3):
        raise ImageFileError(f"{path}: an animated or multi-page picture is not supported")
    axes = "YX" if picture.ndim == 2 else "YXS"
    # PNG and JPEG carry at most a print resolution (dots per inch), never a microscope's
    return ImageFile(picture, ImageMetadata(axes), "imageio")


# --------------------------------------------------------------------------------------- bioio
def _open_with_bioio(path: Path, kind: str, plugin: str) -> ImageFile:
    if importlib.util.find_spec(plugin) is None:
        package = plugin.replace("_", "-")
        raise ImageFileError(
            f"{path}: reading {kind} files needs {package}, which is not installed. Install "
            f"the readers of microscope files with: {FORMATS_EXTRA} (or pip install {package})"
        )
    import warnings

    module = importlib.import_module(plugin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # chunks of one plane: a region read decodes one plane, not a whole stack
            reader = module.Reader(str(path), chunk_dims=["Y", "X"])
        except TypeError:
            reader = module.Reader(str(path))
        data = reader.xarray_dask_data
    dims = "".join(str(d) for d in data.dims).upper()
    array = data.data
    return ImageFile(array, bioio_metadata(reader, dims, kind), plugin.replace("_", "-"))
