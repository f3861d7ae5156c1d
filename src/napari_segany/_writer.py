"""napari writer: a Labels layer to TIFF (``.tif``/``.tiff``) or OME-Zarr (``.zarr``).

Calls :func:`napari_segany.labels_io.save_labels`, so the file is written atomically and the
object table CSV is written beside it. napari's Save dialog has already asked before replacing
an existing file, so existing outputs are overwritten here.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_SCORE_COLUMNS = ("predicted_iou", "stability")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save one Labels layer; return the paths written (labels first, then the CSV).

    Parameters
    ----------
    path : str
        Output path chosen in napari (``.tif``, ``.tiff``, ``.zarr`` or ``.ome.zarr``).
    data : array or list of arrays
        The layer's data (the finest level of multiscale data is saved).
    meta : dict
        The layer's attributes (``scale``, ``units``, ``name``, ``features``).
    """
    from napari_segany.labels_io import save_labels

    if isinstance(data, list | tuple):
        data = data[0]
    scale, unit = _scale_and_unit(data, meta)
    saved = save_labels(
        path,
        data,
        scale=scale,
        unit=unit,
        scores=_scores(meta.get("features")),
        name=_label_name(meta.get("name")),
        overwrite=True,
    )
    return [str(p) for p in saved.paths]


def _scale_and_unit(data: Any, meta: dict) -> tuple[tuple[float, ...] | None, str | None]:
    scale = meta.get("scale")
    if scale is None:
        return None, None
    scale = tuple(float(s) for s in np.asarray(scale, dtype=float).ravel())[-data.ndim :]
    units = {str(u) for u in (meta.get("units") or ())}
    unit = units.pop() if len(units) == 1 else None
    if unit in (None, "pixel", "px", "dimensionless", ""):
        if all(s == 1.0 for s in scale):
            return None, None  # napari's default: no physical size known
        return scale, None
    return scale, unit


def _label_name(name: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name or "")).strip("._")
    return text or "segmentation"


def _scores(features: Any) -> dict[int, dict[str, float]] | None:
    """Model scores from the layer's features table, when it has them."""
    columns = getattr(features, "columns", None)
    if columns is None or len(features) == 0:
        return None
    present = [c for c in _SCORE_COLUMNS if c in columns]
    id_column = next((c for c in ("label", "id", "index") if c in columns), None)
    if not present or id_column is None:
        return None
    ids = np.asarray(features[id_column])
    return {
        int(i): {c: float(v) for c, v in zip(present, row, strict=True)}
        for i, row in zip(ids, np.asarray(features[present], dtype=float), strict=True)
    }
