"""napari reader: label images saved by napari-segany (TIFF), and zarr labels when called directly.

napari hands this reader only files named ``*.labels.tif`` / ``*.labels.tiff`` (the manifest's
``filename_patterns``), so ordinary TIFFs and folders stay with napari's own reader and napari
never asks which reader to use for them. napari's builtin reader also matches ``*.labels.tif``:
:mod:`napari_segany._qt.reader_preference` records napari-segany as the preferred reader for
those names in napari's settings, whenever the plugin is used.

The getter takes:

* ``*.labels.tif``/``*.labels.tiff`` files holding integer IDs (ours carry their pixel size);
* any TIFF carrying napari-segany's label marker, whatever its name (when called directly);
* ``.zarr`` stores that are OME-Zarr label images, OME-Zarr images with a ``labels/`` group
  (one Labels layer per listed label image), or plain zarr arrays of integers. napari does not
  route folders here: npe2 offers a folder to every reader that accepts folders, whatever its
  name (npe2 issue 155), so claiming folders would make napari ask for every ``.zarr``.

Label images larger than 512 MiB stay on disk (read-only, multiscale when the store has
levels); smaller ones are loaded into memory so they can be edited.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LayerData = tuple[Any, dict, str]

_IN_MEMORY_LIMIT = 512 * 2**20


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return :func:`read_labels` if every path is a label image we can read, else None.

    Never raises: anything unexpected means "not ours". Being asked also records the reader
    preference for ``*.labels.tif`` in napari's settings, so napari stops asking.
    """
    from napari_segany._qt.reader_preference import register_reader_preference

    register_reader_preference()
    try:
        paths = [path] if isinstance(path, str | os.PathLike) else list(path)
        if paths and all(_readable(Path(p)) for p in paths):
            return read_labels
    except Exception:
        pass
    return None


def _readable(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        from napari_segany.labels_io import is_label_tiff, is_labels_file_name, is_segany_tiff

        if not path.is_file():
            return False
        return is_label_tiff(path) if is_labels_file_name(path) else is_segany_tiff(path)
    if suffix == ".zarr" and path.is_dir():
        return bool(_zarr_label_names(path))
    return False


def _zarr_label_names(path: Path) -> list[str | None]:
    """Label images in a zarr store: [None] for the store itself, else names under labels/."""
    import numpy as np
    import zarr

    from napari_segany.labels_io.ome_zarr_read import ome_attrs

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return [None] if np.issubdtype(np.dtype(node.dtype), np.integer) else []
    ome, version = ome_attrs(node)
    if version is None:
        return []
    if "image-label" in ome:
        return [None]
    if "labels" in node:
        listed, _ = ome_attrs(node["labels"])
        return [str(n) for n in listed.get("labels", []) if str(n) in node["labels"]]
    return []


def read_labels(path: str | list[str]) -> list[LayerData]:
    """Read label images as napari Labels layer data, with their scale and translation."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() in (".tif", ".tiff"):
            layers.append(_tiff_layer(p))
        else:
            layers.extend(_zarr_layer(p, name) for name in _zarr_label_names(p))
    return layers


def _tiff_layer(path: Path) -> LayerData:
    from napari_segany.labels_io import labels_stem, read_tiff_labels

    data, meta = read_tiff_labels(path)
    kwargs: dict[str, Any] = {"name": labels_stem(path), "metadata": _plain(meta)}
    if meta.get("scale"):
        kwargs["scale"] = tuple(meta["scale"])
    if meta.get("unit"):
        kwargs["units"] = meta["unit"]
    kwargs.update(_axis_labels(meta, data))
    return data, kwargs, "labels"


def _zarr_layer(path: Path, name: str | None) -> LayerData:
    import numpy as np

    from napari_segany.labels_io import labels_stem, read_ome_zarr_labels

    data, meta = read_ome_zarr_labels(path, name=name, lazy=True)
    levels = meta.get("levels") or [data]
    if hasattr(data, "nbytes") and int(data.nbytes) <= _IN_MEMORY_LIMIT:
        data = np.asarray(data[...])
    elif len(levels) > 1 and all(lv.ndim == data.ndim for lv in levels):
        data = levels
    title = name or labels_stem(path)  # the label's name inside an image, else the file's
    kwargs: dict[str, Any] = {"name": title, "metadata": _plain(meta)}
    if meta.get("scale"):
        kwargs["scale"] = tuple(meta["scale"])
    if meta.get("translate"):
        kwargs["translate"] = tuple(meta["translate"])
    if meta.get("unit"):
        kwargs["units"] = meta["unit"]
    kwargs.update(_axis_labels(meta, data))
    return data, kwargs, "labels"


def _axis_labels(meta: dict, data) -> dict:
    """``axis_labels`` of a stack's layer (``("t", "y", "x")`` for a time series); none in 2D."""
    ndim = len(data[0].shape if isinstance(data, list) else data.shape)
    axes = meta.get("axes")
    if ndim < 3 or not axes or len(axes) != ndim:
        return {}
    return {"axis_labels": tuple(str(a) for a in axes)}


def _plain(meta: dict) -> dict:
    """Metadata worth keeping on the layer (no array handles)."""
    keep = ("format", "version", "unit", "colors", "properties", "written_by_napari_segany")
    return {k: meta[k] for k in keep if k in meta}
