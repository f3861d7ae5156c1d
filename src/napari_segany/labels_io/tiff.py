"""Label images as TIFF: lossless, tiled, uint16 or uint32, with the pixel size.

Files are written with tifffile: zlib compression with the horizontal predictor, 256×256 tiles,
one page per plane for 3D labels. The dtype is uint16 when the largest ID fits, else uint32.
When a pixel size is given it is stored twice: as TIFF resolution tags in pixels per centimetre
(which Fiji/Bio-Formats and QuPath read) and exactly, with its unit, in the JSON image description
that also marks the file as a napari-segany label image (that marker is what lets the napari
reader open our TIFFs without claiming every TIFF on disk).

zarr- and dask-backed labels are streamed: tiles are read in row bands and handed to tifffile
one by one, so memory stays at one band, never the whole image.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_segany.labels_io._arrays import (
    LENGTH_UNITS_IN_CM,
    block_shape,
    check_labels,
    check_scale,
    drain,
    iter_blocks,
    label_dtype,
    read_block,
    scan_range,
    source_chunks,
)
from napari_segany.labels_io.atomic import atomic_output, check_writable
from napari_segany.progress import Progress

__all__ = [
    "MARKER",
    "is_label_tiff",
    "is_segany_tiff",
    "read_tiff_labels",
    "write_tiff_labels",
    "write_tiff_labels_job",
]

MARKER = "napari_segany"
"""Key of the JSON image description that marks a TIFF as written by napari-segany."""

_SOFTWARE = "napari-segany"
_TILE = (256, 256)


class _Cancelled(Exception):
    """Raised inside the tile iterator to stop tifffile when the job is closed."""


def write_tiff_labels(
    path: str | os.PathLike,
    labels: Any,
    *,
    scale: Sequence[float] | None = None,
    unit: str | None = "micrometer",
    overwrite: bool = False,
    axes: str | None = None,
) -> Path:
    """Write a label image to a TIFF file, atomically.

    Parameters
    ----------
    path : path
        Output ``.tif``/``.tiff`` file.
    labels : array (H, W) or (Z, H, W)
        Integer IDs, 0 = background; numpy, zarr or dask. IDs must lie in 0 … 2**32 − 1.
    scale : sequence of float, optional
        Pixel size per axis, (row, col) or (plane, row, col), in ``unit``.
    unit : str
        Unit of ``scale`` ("micrometer", "nanometer", "millimeter", "centimeter" also become
        TIFF resolution tags; any other unit is kept in the description only).
    overwrite : bool
        Replace an existing file.
    axes : str, optional
        What the axes are, e.g. ``"tyx"`` for a time series (default ``"zyx"`` for 3D): written
        as the description's ``axes`` (one page per plane), read back by
        :func:`read_tiff_labels`.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    job = write_tiff_labels_job(
        path, labels, scale=scale, unit=unit, overwrite=overwrite, axes=axes
    )
    return drain(job)


def write_tiff_labels_job(
    path: str | os.PathLike,
    labels: Any,
    *,
    scale: Sequence[float] | None = None,
    unit: str | None = "micrometer",
    overwrite: bool = False,
    axes: str | None = None,
) -> Generator[Progress, None, Path]:
    """:func:`write_tiff_labels` as a job: yields :class:`Progress`, returns the path.

    Closing the generator cancels the export; the temporary file is deleted and an existing
    output is left untouched.
    """
    labels = check_labels(labels, max_ndim=4)
    scale = check_scale(scale, labels.ndim)
    target = check_writable(path, overwrite=overwrite)
    _low, high = yield from scan_range(labels)
    dtype = label_dtype(high)
    description = {
        "axes": _axes_name(axes, labels.ndim),
        MARKER: {
            "kind": "labels",
            "version": 1,
            "max_id": int(high),
            "unit": unit if scale is not None else None,
        },
    }
    options: dict[str, Any] = {}
    if scale is not None:
        description[MARKER]["scale"] = list(scale)
        if unit in LENGTH_UNITS_IN_CM:
            per_cm = [1.0 / (s * LENGTH_UNITS_IN_CM[unit]) for s in scale[-2:]]
            options = {"resolution": (per_cm[1], per_cm[0]), "resolutionunit": "CENTIMETER"}
    with atomic_output(target, overwrite=overwrite) as temporary:
        yield from _write_tiles(temporary, labels, dtype, description, options)
    return target


def _write_tiles(
    temporary: Path, labels: Any, dtype: np.dtype, description: dict, options: dict
) -> Generator[Progress, None, None]:
    """Run tifffile in a worker thread fed tile by tile; report progress per row band."""
    import tifffile

    shape = tuple(int(n) for n in labels.shape)
    base = (1,) * (labels.ndim - 2) + _TILE
    block = block_shape(labels, base, full_axes=(labels.ndim - 1,))
    if labels.ndim >= 3 and block[-2] < shape[-2]:
        block = (1,) * (labels.ndim - 2) + tuple(
            block[-2:]
        )  # tiles must reach tifffile page by page
    blocks = list(iter_blocks(shape, block))
    width = (source_chunks(labels) or (_TILE[1],))[-1]
    reports: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def tiles() -> Iterator[np.ndarray]:
        for i, index in enumerate(blocks):
            if cancel.is_set():
                raise _Cancelled
            band = _read_band(labels, index, dtype, width)
            for plane in band:
                for r in range(0, plane.shape[0], _TILE[0]):
                    for c in range(0, plane.shape[1], _TILE[1]):
                        yield _full_tile(plane[r : r + _TILE[0], c : c + _TILE[1]])
            del band, plane  # free this band before the next one is read
            reports.put(i + 1)

    def work() -> None:
        try:
            tifffile.imwrite(
                temporary,
                tiles(),
                shape=shape,
                dtype=dtype,
                tile=_TILE,
                compression="zlib",
                predictor=True,
                photometric="minisblack",
                metadata=description,
                software=_SOFTWARE,
                bigtiff=np.prod(shape) * dtype.itemsize > 2**31,
                **options,
            )
        except BaseException as error:
            reports.put(error)
        else:
            reports.put(None)

    thread = threading.Thread(target=work, name="napari-segany-tiff", daemon=True)
    thread.start()
    try:
        while True:
            item = reports.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield Progress(item, len(blocks), "writing TIFF")
    finally:
        cancel.set()
        thread.join()


def _read_band(labels: Any, index: tuple[slice, ...], dtype: np.dtype, width: int) -> np.ndarray:
    """A row band as (planes, rows, cols) of ``dtype``, read one source-chunk column at a time.

    Reading the band piecewise keeps the reader's own temporary buffers at one chunk column
    instead of the whole band.
    """
    shape = tuple(s.stop - s.start for s in index)
    band = np.empty(shape, dtype=dtype)
    cols = index[-1]
    for c0 in range(cols.start, cols.stop, width):
        piece = (*index[:-1], slice(c0, min(c0 + width, cols.stop)))
        band[..., c0 - cols.start : piece[-1].stop - cols.start] = read_block(labels, piece)
    return band.reshape((-1, *shape[-2:]))


def _full_tile(tile: np.ndarray) -> np.ndarray:
    """A contiguous copy of a tile, zero-padded to the full tile shape at the edges.

    The copy matters: a view would keep its whole row band alive while tifffile holds the last
    tile, doubling peak memory. tifffile pads incomplete tiles itself, but (2026.3) mangles
    one-pixel-wide ones when the predictor is on, so edge tiles are padded here.
    """
    if tile.shape == _TILE:
        return tile.copy()
    full = np.zeros(_TILE, dtype=tile.dtype)
    full[: tile.shape[0], : tile.shape[1]] = tile
    return full


def _segany_metadata(tif: Any) -> dict | None:
    with contextlib.suppress(Exception):
        for meta in tif.shaped_metadata or ():
            if isinstance(meta, dict) and isinstance(meta.get(MARKER), dict):
                return meta[MARKER]
    return None


def is_segany_tiff(path: str | os.PathLike) -> bool:
    """True if ``path`` is a TIFF label image written by napari-segany (reads the header only)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            meta = _segany_metadata(tif)
            return meta is not None and meta.get("kind") == "labels"
    except Exception:
        return False


def is_label_tiff(path: str | os.PathLike) -> bool:
    """True if ``path`` is a TIFF that :func:`read_tiff_labels` reads (reads the header only).

    That is one of ours, or any TIFF whose first series holds integers without a colour
    (samples) axis.
    """
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if _segany_metadata(tif) is not None:
                return True
            series = tif.series[0]
            return np.issubdtype(series.dtype, np.integer) and "S" not in series.axes
    except Exception:
        return False


def read_tiff_labels(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a TIFF label image.

    Parameters
    ----------
    path : path
        A TIFF file; any single-series integer TIFF works, ours carry their pixel size.

    Returns
    -------
    labels : np.ndarray (H, W) or (Z, H, W)
        The IDs with the file's dtype.
    metadata : dict
        ``scale`` (tuple per axis, or None when unknown), ``unit``, ``format`` ("tiff") and
        ``written_by_napari_segany`` (bool) and ``axes`` (e.g. ``"zyx"``, ``"tyx"``).

    Raises
    ------
    ValueError
        The file holds non-integer data.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        labels = tif.asarray()
        ours = _segany_metadata(tif)
        axes = str(tif.series[0].axes).lower() if tif.series else None
        scale, unit = None, None
        if ours is not None:
            scale = tuple(float(s) for s in ours["scale"]) if ours.get("scale") else None
            unit = ours.get("unit")
        else:
            scale, unit = _scale_from_tags(tif.pages[0], labels.ndim)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path} holds {labels.dtype} pixels, not integer label IDs; open it as an image."
        )
    metadata = {
        "scale": scale,
        "unit": unit,
        "format": "tiff",
        "written_by_napari_segany": ours is not None,
        "axes": axes if axes and len(axes) == labels.ndim else None,
    }
    return labels, metadata


def _axes_name(axes: str | None, ndim: int) -> str:
    """The description's ``axes`` (upper case, as tifffile names series axes)."""
    if axes is None:
        return "ZYX" if ndim == 3 else "YX"
    if len(axes) != ndim or not set(axes.lower()) <= set("tzyx") or not axes.lower().endswith("yx"):
        raise ValueError(f"axes {axes!r} do not fit {ndim}D labels (e.g. 'zyx', 'tyx')")
    return axes.upper()


def _scale_from_tags(page: Any, ndim: int) -> tuple[tuple[float, ...] | None, str | None]:
    """Pixel size from resolution tags in pixels per centimetre, in micrometres."""
    with contextlib.suppress(Exception):
        if int(page.tags["ResolutionUnit"].value) == 3:  # centimetre
            x_num, x_den = page.tags["XResolution"].value
            y_num, y_den = page.tags["YResolution"].value
            col = 1e4 * x_den / x_num
            row = 1e4 * y_den / y_num
            return (1.0,) * (ndim - 2) + (row, col), "micrometer"
    return None, None
