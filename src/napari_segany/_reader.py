"""napari reader: label images saved by napari-segany (TIFF, OME-Zarr) and plain zarr labels.

The getter claims only what it can read as labels, so it never hijacks ordinary images:

* ``.tif``/``.tiff`` files carrying napari-segany's label marker in their description;
* ``.zarr`` stores that are OME-Zarr label images, OME-Zarr images with a ``labels/`` group
  (one Labels layer per listed label image), or plain zarr arrays of integers.

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

    Never raises: anything unexpected means "not ours".
    """
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
        from napari_segany.labels_io import is_segany_tiff

        return path.is_file() and is_segany_tiff(path)
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
    from napari_segany.labels_io import read_tiff_labels

    data, meta = read_tiff_labels(path)
    kwargs: dict[str, Any] = {"name": path.name.split(".")[0], "metadata": _plain(meta)}
    if meta.get("scale"):
        kwargs["scale"] = tuple(meta["scale"])
    if meta.get("unit"):
        kwargs["units"] = meta["unit"]
    return data, kwargs, "labels"


def _zarr_layer(path: Path, name: str | None) -> LayerData:
    import numpy as np

    from napari_segany.labels_io import read_ome_zarr_labels

    data, meta = read_ome_zarr_labels(path, name=name, lazy=True)
    levels = meta.get("levels") or [data]
    if hasattr(data, "nbytes") and int(data.nbytes) <= _IN_MEMORY_LIMIT:
        data = np.asarray(data[...])
    elif len(levels) > 1 and all(lv.ndim == data.ndim for lv in levels):
        data = levels
    title = name or path.name.split(".")[0]  # the label's name inside an image, else the file
    kwargs: dict[str, Any] = {"name": title, "metadata": _plain(meta)}
    if meta.get("scale"):
        kwargs["scale"] = tuple(meta["scale"])
    if meta.get("translate"):
        kwargs["translate"] = tuple(meta["translate"])
    if meta.get("unit"):
        kwargs["units"] = meta["unit"]
    return data, kwargs, "labels"


def _plain(meta: dict) -> dict:
    """Metadata worth keeping on the layer (no array handles)."""
    keep = ("format", "version", "unit", "colors", "properties", "written_by_napari_segany")
    return {k: meta[k] for k in keep if k in meta}
