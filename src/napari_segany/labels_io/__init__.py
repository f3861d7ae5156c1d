"""Saving and loading label images: TIFF, OME-Zarr (NGFF 0.5 / 0.4) and the per-object CSV.

Qt-free; used by the napari reader and writer, the widget and the command line.

>>> from napari_segany.labels_io import save_labels, load_labels
>>> saved = save_labels("cells.labels.tif", labels, scale=(0.65, 0.65), image=img)  # doctest: +SKIP
>>> saved.paths  # doctest: +SKIP
[PosixPath('/data/cells.labels.tif'), PosixPath('/data/cells_objects.csv')]
>>> labels, metadata = load_labels("cells.labels.tif")  # doctest: +SKIP

The format follows the extension:

* ``.tif`` / ``.tiff``: tiled, zlib-compressed TIFF (uint16 or uint32), see :mod:`.tiff`.
* ``.zarr`` / ``.ome.zarr``: OME-Zarr, NGFF 0.5 on zarr v3 by default (``ngff_version="0.4"``
  for zarr v2), see :mod:`.ome_zarr` (writing) and :mod:`.ome_zarr_read` (reading). If the path
  is an existing OME-Zarr *image*, the labels are added to its ``labels/`` group under ``name``
  instead.

Name label TIFFs ``<name>.labels.tif`` (:func:`labels_file_name`): napari opens them as labels
through napari-segany's reader, while ``<name>.tif`` opens as an image (see :mod:`.naming`).

With ``table=True`` the object table (:mod:`.table`) is written beside the labels as
``<stem>_objects.csv`` (``cells.labels.tif`` and ``cells.tif`` → ``cells_objects.csv``,
``cells.ome.zarr`` → ``cells_objects.csv``; labels added to ``image.ome.zarr`` →
``image_<name>_objects.csv``). OME-Zarr label images also carry it as ``image-label`` properties
when there are at most 10,000 objects.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_segany.labels_io._arrays import MAX_LABEL, check_labels, check_scale
from napari_segany.labels_io.atomic import LabelsWriteError, atomic_output, check_writable
from napari_segany.labels_io.naming import (
    LABELS_TAG,
    NAPARI_LABEL_SUFFIXES,
    is_labels_file_name,
    labels_file_name,
    labels_stem,
)
from napari_segany.labels_io.ome_zarr import write_ome_zarr_labels, write_ome_zarr_labels_job
from napari_segany.labels_io.ome_zarr_read import (
    NGFF_VERSIONS,
    is_ome_zarr_image,
    read_ome_zarr_labels,
)
from napari_segany.labels_io.table import object_table, object_table_job, write_object_table
from napari_segany.labels_io.tiff import (
    is_label_tiff,
    is_segany_tiff,
    read_tiff_labels,
    write_tiff_labels,
    write_tiff_labels_job,
)
from napari_segany.progress import Progress, run_with_progress

__all__ = [
    "EXTENSIONS",
    "LABELS_TAG",
    "MAX_LABEL",
    "NAPARI_LABEL_SUFFIXES",
    "NGFF_VERSIONS",
    "LabelsWriteError",
    "SavedLabels",
    "atomic_output",
    "is_label_tiff",
    "is_labels_file_name",
    "is_ome_zarr_image",
    "is_segany_tiff",
    "label_format",
    "labels_file_name",
    "labels_stem",
    "load_labels",
    "object_table",
    "read_ome_zarr_labels",
    "read_tiff_labels",
    "save_labels",
    "save_labels_job",
    "table_path",
    "write_object_table",
    "write_ome_zarr_labels",
    "write_tiff_labels",
]

EXTENSIONS = {".tif": "tiff", ".tiff": "tiff", ".zarr": "ome-zarr"}
"""File extensions and the format each one selects (``.ome.zarr`` ends in ``.zarr``)."""

_MAX_PROPERTIES = 10_000


@dataclass(frozen=True)
class SavedLabels:
    """What :func:`save_labels` wrote.

    Attributes
    ----------
    labels : pathlib.Path
        The TIFF file, the OME-Zarr store, or ``image.ome.zarr/labels/<name>``.
    table : pathlib.Path or None
        The object table CSV, when one was written.
    format : str
        "tiff" or "ome-zarr".
    n_objects : int or None
        Number of labelled objects (known when the table was computed).
    """

    labels: Path
    table: Path | None
    format: str
    n_objects: int | None = None

    @property
    def paths(self) -> list[Path]:
        """Every path written, labels first."""
        return [self.labels] + ([self.table] if self.table is not None else [])


def label_format(path: str | os.PathLike) -> str:
    """The format selected by ``path``'s extension: "tiff" or "ome-zarr".

    Raises
    ------
    ValueError
        The extension is none of ``.tif``, ``.tiff``, ``.zarr``, ``.ome.zarr``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(
            f"cannot tell the label format from {Path(path).name!r}: use a name ending in "
            f".tif or .tiff (TIFF) or .zarr / .ome.zarr (OME-Zarr)"
        )
    return EXTENSIONS[suffix]


def table_path(path: str | os.PathLike, *, name: str | None = None) -> Path:
    """Where :func:`save_labels` writes the object table for labels saved at ``path``.

    ``name`` is the label name when the labels are added to an existing OME-Zarr image.
    """
    path = Path(path).expanduser().absolute()
    stem = labels_stem(path) + (f"_{name}" if name else "")
    return path.with_name(f"{stem}_objects.csv")


def save_labels(
    path: str | os.PathLike,
    labels: Any,
    *,
    scale: Sequence[float] | None = None,
    image: Any = None,
    scores: Mapping[int, Any] | None = None,
    overwrite: bool = False,
    table: bool = True,
    name: str = "segmentation",
    ngff_version: str | None = None,
    unit: str | None = "micrometer",
    colors: Mapping[int, Sequence[float]] | None = None,
    progress: bool = False,
    axes: str | None = None,
) -> SavedLabels:
    """Save a label image as TIFF or OME-Zarr, with its object table beside it.

    Every file is written to a temporary path and renamed into place, so an interrupted save
    leaves any earlier output intact.

    Parameters
    ----------
    path : path
        ``.tif``/``.tiff`` for TIFF, ``.zarr``/``.ome.zarr`` for OME-Zarr; an existing
        OME-Zarr image receives the labels in its ``labels/<name>`` group.
    labels : array (H, W), (Z, H, W) or (T, Z, H, W)
        Integer IDs 0 … 2**32 − 1, 0 = background; numpy, zarr or dask (streamed block by
        block, never loaded whole). 4D labels (a time series of z-stacks) have no object table:
        pass ``table=False``.
    scale : sequence of float, optional
        Pixel size per axis (row, col) or (plane, row, col), in ``unit``: written as the
        OME-Zarr ``scale`` transformation, the TIFF resolution tags, and the table's columns in
        that unit (``area_um2``, ``centroid_row_um``, ...). None: sizes are in pixels.
    image : array, optional
        The intensity image, same shape as ``labels`` (optionally with channels last), for the
        table's ``mean_intensity``.
    scores : mapping, optional
        Label ID → model scores ({"predicted_iou": …, "stability": …} or a pair) for the table.
    overwrite : bool
        Replace existing outputs (labels and CSV). Without it, an existing output raises
        :class:`FileExistsError` before anything is written.
    table : bool
        Also write the object table CSV (see :func:`table_path`).
    name : str
        Label image name inside OME-Zarr.
    ngff_version : {"0.5", "0.4"}, optional
        OME-Zarr version (0.5 on zarr v3 by default; 0.4 on zarr v2).
    unit : str
        OME-NGFF length unit of ``scale`` ("micrometer", "nanometer", ...).
    colors : mapping, optional
        Label ID → RGB(A) display colours, written to OME-Zarr ``image-label`` metadata.
    progress : bool
        Show a progress bar on the terminal.
    axes : str, optional
        What the axes of 3D labels are: ``"zyx"`` (default) or ``"tyx"`` (a time series); of
        4D labels ``"tzyx"``. Written as the TIFF description's axes and the OME-Zarr axes
        (``t`` of type time).

    Returns
    -------
    SavedLabels
        The paths written.

    Raises
    ------
    ValueError
        Unknown extension, non-integer, negative or too large IDs, wrong dimensions or shapes.
    FileExistsError
        An output exists and ``overwrite`` is False.
    LabelsWriteError
        Disk full or no permission; the message says what to do.
    """
    job = save_labels_job(
        path,
        labels,
        scale=scale,
        image=image,
        scores=scores,
        overwrite=overwrite,
        table=table,
        name=name,
        ngff_version=ngff_version,
        unit=unit,
        colors=colors,
        axes=axes,
    )
    return run_with_progress(job, show=progress, description="saving labels")


def save_labels_job(
    path: str | os.PathLike,
    labels: Any,
    *,
    scale: Sequence[float] | None = None,
    image: Any = None,
    scores: Mapping[int, Any] | None = None,
    overwrite: bool = False,
    table: bool = True,
    name: str = "segmentation",
    ngff_version: str | None = None,
    unit: str | None = "micrometer",
    colors: Mapping[int, Sequence[float]] | None = None,
    axes: str | None = None,
) -> Generator[Progress, None, SavedLabels]:
    """:func:`save_labels` as a job: yields :class:`Progress`, returns :class:`SavedLabels`.

    Run it in a napari thread worker, or with :func:`napari_segany.progress.run_with_progress`.
    Closing the generator cancels; the output being written is discarded.
    """
    fmt = label_format(path)
    labels = check_labels(labels, max_ndim=4)
    check_scale(scale, labels.ndim)
    if table and labels.ndim == 4:
        raise ValueError(
            "the object table measures 2D (row, col) or 3D labels; save 4D labels (a time "
            "series of z-stacks) with table=False (their track table holds each object per "
            "frame)"
        )
    if ngff_version is not None and ngff_version not in NGFF_VERSIONS:
        raise ValueError(
            f"ngff_version must be one of {sorted(NGFF_VERSIONS)}, got {ngff_version!r}"
        )
    path = Path(path).expanduser().absolute()
    into_image = fmt == "ome-zarr" and is_ome_zarr_image(path)
    csv_path = table_path(path, name=name if into_image else None) if table else None
    if csv_path is not None:  # refuse before any work is done
        check_writable(csv_path, overwrite=overwrite)
    check_writable(path / "labels" / name if into_image else path, overwrite=overwrite)
    rows = None
    if table:
        measure = object_table_job(labels, image=image, scores=scores, scale=scale, unit=unit)
        rows = yield from _relabel(measure, "table")
    if fmt == "tiff":
        job = write_tiff_labels_job(
            path, labels, scale=scale, unit=unit, overwrite=overwrite, axes=axes
        )
    else:
        properties = rows if rows is not None and len(rows) <= _MAX_PROPERTIES else None
        job = write_ome_zarr_labels_job(
            path,
            labels,
            name=name,
            scale=scale,
            unit=unit,
            version=ngff_version,
            colors=colors,
            properties=properties,
            overwrite=overwrite,
            axes=axes,
        )
    written = yield from _relabel(job, fmt)
    if csv_path is not None:
        write_object_table(csv_path, rows or [], overwrite=overwrite)
    return SavedLabels(
        labels=written,
        table=csv_path,
        format=fmt,
        n_objects=None if rows is None else len(rows),
    )


def _relabel(job: Generator[Progress, None, Any], stage: str) -> Generator[Progress, None, Any]:
    """Pass a sub-job's progress on, prefixing its message with the stage."""
    try:
        while True:
            report = next(job)
            yield Progress(report.done, report.total, f"{stage}: {report.message}")
    except StopIteration as stop:
        return stop.value
    finally:
        job.close()


def load_labels(
    path: str | os.PathLike, *, name: str | None = None, lazy: bool = False
) -> tuple[Any, dict]:
    """Load a label image saved by :func:`save_labels` (or any integer TIFF / zarr labels).

    Parameters
    ----------
    path : path
        ``.tif``/``.tiff`` file, or ``.zarr`` store (OME-Zarr label image, an OME-Zarr image
        with a ``labels/`` group, or a plain zarr array).
    name : str, optional
        Which label image of an OME-Zarr image's ``labels/`` group (default: the first).
    lazy : bool
        For zarr, return a read-only zarr array instead of loading into memory.

    Returns
    -------
    labels : array (H, W) or (Z, H, W)
        Integer IDs.
    metadata : dict
        At least ``scale`` (pixel size per axis, or None when unknown), ``unit`` and
        ``format`` ("tiff", "ome-zarr" or "zarr"); see the readers for the rest.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unknown extension, or the file holds no integer labels.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no labels at {path}: the path does not exist")
    if path.is_dir() or path.suffix.lower() == ".zarr":
        return read_ome_zarr_labels(path, name=name, lazy=lazy)
    if label_format(path) == "tiff":
        return read_tiff_labels(path)
    raise ValueError(f"cannot read labels from {path}")  # pragma: no cover
