"""Reading OME-Zarr label images (OME-NGFF 0.5 on zarr v3, or 0.4 on zarr v2), and the NGFF
metadata helpers the writer (:mod:`.ome_zarr`) shares.

A store is recognised by its attributes: NGFF 0.5 keeps them under ``"ome"`` (with a
``version``), 0.4 at the top level (``multiscales[0].version``). Label images carry
``image-label``; an image's labels are listed in its ``labels/`` group.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "NGFF_VERSIONS",
    "find_label_group",
    "is_ome_zarr_image",
    "ome_attrs",
    "open_group",
    "read_ome_zarr_labels",
]

NGFF_VERSIONS = {"0.5": 3, "0.4": 2}
"""Supported OME-NGFF versions and the zarr format each is stored in."""


def ome_attrs(group: Any) -> tuple[dict, str | None]:
    """The OME attributes of a zarr group and their NGFF version (None if not OME)."""
    attrs = dict(group.attrs)
    if isinstance(attrs.get("ome"), dict):
        ome = attrs["ome"]
        return ome, str(ome.get("version", "0.5"))
    multiscales = attrs.get("multiscales")
    if isinstance(multiscales, list) and multiscales:
        return attrs, str(multiscales[0].get("version", "0.4"))
    if "labels" in attrs or "image-label" in attrs:
        return attrs, "0.4"
    return attrs, None


def open_group(path: str | os.PathLike, mode: str = "r") -> Any:
    """The zarr group at ``path`` (zarr is imported on first use)."""
    import zarr

    return zarr.open_group(str(path), mode=mode)


def is_ome_zarr_image(path: str | os.PathLike) -> bool:
    """True if ``path`` is an OME-Zarr image (multiscales, not itself a label image)."""
    try:
        ome, version = ome_attrs(open_group(path))
    except Exception:
        return False
    return version is not None and "multiscales" in ome and "image-label" not in ome


def find_label_group(path: Path, name: str | None) -> tuple[Any, str]:
    """The zarr group of a label image at ``path`` (itself, or one under its ``labels/``)."""
    root = open_group(path)
    ome, version = ome_attrs(root)
    if "image-label" in ome:
        return root, version or "0.4"
    if "labels" in root:
        labels_group = root["labels"]
        listed, _ = ome_attrs(labels_group)
        names = list(listed.get("labels", []))
        if not names:
            raise ValueError(f"{path}/labels lists no label images")
        chosen = name or names[0]
        if chosen not in names:
            raise ValueError(f"{path} has no labels named {chosen!r}; it has {names}")
        group = labels_group[chosen]
        return group, ome_attrs(group)[1] or version or "0.4"
    if "multiscales" in ome:  # a multiscale image without label metadata
        return root, version or "0.4"
    raise ValueError(f"{path} is a zarr group without OME-Zarr label metadata")


def read_ome_zarr_labels(
    path: str | os.PathLike, *, name: str | None = None, lazy: bool = False
) -> tuple[Any, dict]:
    """Read labels from an OME-Zarr label image, an image's ``labels/``, or a plain zarr array.

    Parameters
    ----------
    path : path
        A ``.zarr`` store: a label image (standalone, or ``image.zarr/labels/<name>``), an
        OME-Zarr image with a ``labels/`` group (the first listed, or ``name``), or a zarr
        array of integers.
    name : str, optional
        Which entry of an image's ``labels/`` group to read.
    lazy : bool
        Return the full-resolution level as a read-only zarr array instead of numpy.

    Returns
    -------
    labels : np.ndarray or zarr.Array (H, W) or (Z, H, W)
        Full-resolution IDs; size-1 channel axes are dropped (loaded with numpy when lazy and
        such axes exist).
    metadata : dict
        ``scale`` and ``translate`` per returned axis (None when absent), ``unit``, ``axes``,
        ``name``, ``version``, ``format`` ("ome-zarr" or "zarr"), ``colors`` (id → RGBA),
        ``properties`` (list of dicts) and ``levels`` (read-only zarr arrays, finest first,
        with the channel axes kept).

    Raises
    ------
    ValueError
        Not a zarr store, no labels inside, or non-integer data.
    """
    import zarr

    path = Path(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as error:
        raise ValueError(f"{path} is not a zarr store ({error})") from error
    if isinstance(node, zarr.Array):
        _check_integer(node, path)
        data = node if lazy else np.asarray(node[...])
        meta = {"scale": None, "translate": None, "unit": None, "axes": None, "name": path.stem}
        meta.update(version=None, format="zarr", colors={}, properties=[], levels=[node])
        return data, meta
    group, version = find_label_group(path, name)
    ome, _ = ome_attrs(group)
    multiscale = ome["multiscales"][0]
    datasets = multiscale["datasets"]
    levels = [group[d["path"]] for d in datasets]
    _check_integer(levels[0], path)
    axes = [{"name": a} if isinstance(a, str) else dict(a) for a in multiscale.get("axes", [])]
    ndim = levels[0].ndim
    if len(axes) != ndim:
        axes = [{"name": n} for n in "tczyx"[-ndim:]]
    keep = [
        i for i, a in enumerate(axes)
        if not ((a.get("type") == "channel" or a["name"] == "c") and levels[0].shape[i] == 1)
    ]  # fmt: skip
    transforms = datasets[0].get("coordinateTransformations", [])
    scale = translate = None
    for t in transforms:
        if t.get("type") == "scale" and "scale" in t:
            scale = tuple(float(t["scale"][i]) for i in keep)
        if t.get("type") == "translation" and "translation" in t:
            translate = tuple(float(t["translation"][i]) for i in keep)
    units = {axes[i].get("unit") for i in keep if axes[i].get("type", "space") == "space"}
    unit = units.pop() if len(units) == 1 else None
    image_label = ome.get("image-label", {}) or {}
    colors = {
        int(c["label-value"]): tuple(c["rgba"])
        for c in image_label.get("colors", [])
        if "label-value" in c and "rgba" in c
    }
    full = levels[0]
    if len(keep) == ndim:
        data = full if lazy else np.asarray(full[...])
    else:
        index = tuple(slice(None) if i in keep else 0 for i in range(ndim))
        data = np.asarray(full[index])
    metadata = {
        "scale": scale,
        "translate": translate,
        "unit": unit,
        "axes": [axes[i]["name"] for i in keep],
        "name": multiscale.get("name") or Path(str(group.store_path)).name,
        "version": version,
        "format": "ome-zarr",
        "colors": colors,
        "properties": list(image_label.get("properties", [])),
        "levels": levels,
    }
    return data, metadata


def _check_integer(array: Any, path: Path) -> None:
    if not np.issubdtype(np.dtype(array.dtype), np.integer):
        raise ValueError(
            f"{path} holds {array.dtype} values, not integer label IDs; open it as an image"
        )
