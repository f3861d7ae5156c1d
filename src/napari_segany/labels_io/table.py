"""The per-object table: ID, area, centroid, bounding box, mean intensity and model scores.

Measurements are accumulated block by block (sums, counts, minima and maxima per ID), so a
zarr- or dask-backed 16384² label image is never loaded whole.

Columns, for 2D labels (3D labels add ``centroid_plane``, ``bbox_plane0``, ``bbox_plane1``):

========================  ===================================================================
``id``                    label ID (background 0 is not listed)
``area``                  number of pixels
``area_um2``              area in square units of the pixel size (``um`` = micrometer, ``nm``,
                          ``mm``...), when the pixel size is known; ``volume_um3`` for 3D
``centroid_row/_col``     mean pixel position, in pixels (row, col)
``centroid_row_um`` …     the same in the pixel size's unit, when it is known
``bbox_row0/_col0``       first row / column of the object (inclusive)
``bbox_row1/_col1``       one past the last row / column (exclusive, like Python slices)
``mean_intensity``        mean image value over the object (``mean_intensity_<c>`` per channel)
``predicted_iou`` …       values from ``scores`` (e.g. ``predicted_iou``, ``stability``)
========================  ===================================================================
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_segany.labels_io._arrays import (
    block_shape,
    check_labels,
    check_scale,
    drain,
    iter_blocks,
    read_block,
)
from napari_segany.labels_io.atomic import atomic_output
from napari_segany.progress import Progress

__all__ = ["object_table", "object_table_job", "write_object_table"]

# Blocks of about a million pixels keep the per-pixel temporaries (coordinates, sort order)
# at some tens of MB.
_BLOCK_SIDE = 512
_BLOCK_PIXELS = 2**20
_SCORE_NAMES = ("predicted_iou", "stability")
#: Short names of OME-NGFF length units for column names (other units keep their full name).
UNIT_ABBREVIATIONS = {
    "angstrom": "angstrom",
    "nanometer": "nm",
    "micrometer": "um",
    "millimeter": "mm",
    "centimeter": "cm",
    "meter": "m",
}


def object_table(
    labels: Any,
    image: Any = None,
    scores: Mapping[int, Any] | None = None,
    *,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Measure every labelled object.

    Parameters
    ----------
    labels : array (H, W) or (Z, H, W)
        Integer IDs, 0 = background; numpy, zarr or dask.
    image : array, optional
        Intensities of the same shape as ``labels``, or with one extra trailing channel axis
        (H, W, C); adds ``mean_intensity`` (or ``mean_intensity_<c>`` per channel).
    scores : mapping, optional
        ID → model scores: a mapping of column name → value (e.g. ``{"predicted_iou": 0.93,
        "stability": 0.97}``) or a pair (predicted_iou, stability). IDs without scores get
        empty cells.

    Returns
    -------
    list of dict
        One row per ID, sorted by ID; the columns are listed in the module docstring.
    """
    return drain(object_table_job(labels, image=image, scores=scores, scale=scale, unit=unit))


def object_table_job(
    labels: Any,
    image: Any = None,
    scores: Mapping[int, Any] | None = None,
    *,
    scale: Sequence[float] | None = None,
    unit: str | None = None,
) -> Generator[Progress, None, list[dict[str, Any]]]:
    """:func:`object_table` as a job: yields :class:`Progress` per block, returns the rows."""
    labels = check_labels(labels)
    scale = check_scale(scale, labels.ndim)
    if image is not None:
        _check_image(image, labels.shape)
    ndim = labels.ndim
    axis_names = ("plane", "row", "col")[-ndim:]
    base = (1,) * (ndim - 2) + (_BLOCK_SIDE, _BLOCK_SIDE)
    block = block_shape(labels, base, budget=_BLOCK_PIXELS * np.dtype(labels.dtype).itemsize)
    blocks = list(iter_blocks(labels.shape, block))
    partials: list[dict[str, np.ndarray]] = []
    for i, index in enumerate(blocks):
        values = read_block(labels, index)
        pixels = read_block(image, index) if image is not None else None
        part = _measure_block(values, pixels, tuple(s.start for s in index))
        if part is not None:
            partials.append(part)
        yield Progress(i + 1, len(blocks), "measuring objects")
    if not partials:
        return []
    merged = merge_partials(partials)
    physical = None
    if scale is not None and unit:
        physical = (scale, UNIT_ABBREVIATIONS.get(unit, unit))
    return _rows(merged, axis_names, scores, physical)


def _check_image(image: Any, shape: tuple[int, ...]) -> None:
    if not hasattr(image, "shape"):
        raise ValueError(f"image must be an array, got {type(image).__name__}")
    ishape = tuple(int(n) for n in image.shape)
    if ishape != tuple(shape) and ishape[:-1] != tuple(shape):
        raise ValueError(
            f"image of shape {ishape} does not match labels of shape {tuple(shape)}; give the "
            f"image the labels were made from (same rows and columns, channels last)."
        )


def _measure_block(
    values: np.ndarray, pixels: np.ndarray | None, offset: tuple[int, ...]
) -> dict[str, np.ndarray] | None:
    coords = np.nonzero(values)
    if coords[0].size == 0:
        return None
    ids = values[coords]
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    part = {
        "id": ids[starts].astype(np.int64),
        "area": np.diff(np.r_[starts, ids.size]).astype(np.int64),
    }
    for axis, c in enumerate(coords):
        c = c[order].astype(np.int64) + offset[axis]
        part[f"sum{axis}"] = np.add.reduceat(c, starts)
        part[f"min{axis}"] = np.minimum.reduceat(c, starts)
        part[f"max{axis}"] = np.maximum.reduceat(c, starts)
    if pixels is not None:
        intensity = np.asarray(pixels[coords], dtype=np.float64)[order]
        part["intensity"] = np.add.reduceat(intensity, starts, axis=0)
    return part


def merge_partials(partials: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-block partial measurements into one row per object ID.

    Parameters
    ----------
    partials : list of dict
        Each maps ``"id"`` (K,) and measurement names to arrays with K rows, all with the same
        keys. Names starting with ``min`` or ``max`` are combined by minimum or maximum, all
        others (sums, counts) by addition.

    Returns
    -------
    dict
        The same keys, one row per ID, IDs ascending.
    """
    joined = {key: np.concatenate([p[key] for p in partials]) for key in partials[0]}
    order = np.argsort(joined["id"], kind="stable")
    ids = joined["id"][order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    merged = {"id": ids[starts]}
    for key, value in joined.items():
        if key == "id":
            continue
        reducer = {"min": np.minimum, "max": np.maximum}.get(key[:3], np.add)
        merged[key] = reducer.reduceat(value[order], starts, axis=0)
    return merged


def _score_columns(value: Any) -> dict[str, float | str]:
    if isinstance(value, Mapping):  # text (an object's class) stays text
        return {str(k): v if isinstance(v, str) else float(v) for k, v in value.items()}
    if isinstance(value, Sequence | np.ndarray):
        return {n: float(v) for n, v in zip(_SCORE_NAMES, value, strict=False)}
    return {_SCORE_NAMES[0]: float(value)}


def _rows(
    merged: dict[str, np.ndarray],
    axis_names: tuple[str, ...],
    scores: Mapping[int, Any] | None,
    physical: tuple[tuple[float, ...], str] | None = None,
) -> list[dict[str, Any]]:
    """The table's rows; ``physical`` = (scale per axis, unit's short name) adds the columns in
    that unit."""
    area = merged["area"]
    columns: dict[str, np.ndarray] = {"id": merged["id"], "area": area}
    if physical is not None:
        scale, short = physical
        name = "area" if len(axis_names) == 2 else "volume"
        columns[f"{name}_{short}{len(axis_names)}"] = area * float(np.prod(scale))
    for axis, name in enumerate(axis_names):
        columns[f"centroid_{name}"] = merged[f"sum{axis}"] / area
    if physical is not None:
        for axis, name in enumerate(axis_names):
            columns[f"centroid_{name}_{short}"] = columns[f"centroid_{name}"] * scale[axis]
    for axis, name in enumerate(axis_names):
        columns[f"bbox_{name}0"] = merged[f"min{axis}"]
    for axis, name in enumerate(axis_names):
        columns[f"bbox_{name}1"] = merged[f"max{axis}"] + 1
    if "intensity" in merged:
        mean = merged["intensity"] / (area if merged["intensity"].ndim == 1 else area[:, None])
        if mean.ndim == 1:
            columns["mean_intensity"] = mean
        else:
            for c in range(mean.shape[1]):
                columns[f"mean_intensity_{c}"] = mean[:, c]
    lists = {key: value.tolist() for key, value in columns.items()}
    rows = [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
    if scores:
        score_rows = {int(k): _score_columns(v) for k, v in scores.items()}
        names = list(dict.fromkeys(n for s in score_rows.values() for n in s))
        for row in rows:
            found = score_rows.get(row["id"], {})
            for name in names:
                row[name] = found.get(name)
    return rows


def write_object_table(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], *, overwrite: bool = False
) -> Path:
    """Write object table rows to a CSV file, atomically.

    Parameters
    ----------
    path : path
        Output ``.csv`` file.
    rows : sequence of mapping
        Rows from :func:`object_table` (any mappings; the columns are the union of their keys
        in first-seen order; missing values and None become empty cells).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["id"]
    target = Path(path)
    with (
        atomic_output(target, overwrite=overwrite) as temporary,
        open(temporary, "w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return Path(target).expanduser().absolute()


def _cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, float):
        # 12 significant digits: 433 px × 0.65² µm² reads 182.9425, not 182.94250000000002
        return format(value, ".12g") if math.isfinite(value) else ""
    return value
