"""File names of label images: ``<name>.labels.tif`` is how napari tells them from images.

napari's own reader claims every ``*.tif``, so a label image saved as ``cells.tif`` reopens in
napari as an image. The plugin's reader claims only ``*.labels.tif`` and ``*.labels.tiff``; every
output whose name napari-segany chooses (the command line, the napari writer's default, one
file per layer when several are saved at once) ends in ``.labels.<format>`` so it reopens as
labels. A name chosen by the user is always kept as given.

>>> labels_file_name("cells")
'cells.labels.tif'
>>> labels_stem("cells.labels.tif"), labels_stem("cells.ome.zarr"), labels_stem("a.b.tiff")
('cells', 'cells', 'a.b')
>>> is_labels_file_name("Cells.LABELS.tif"), is_labels_file_name("cells.tif")
(True, False)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "LABELS_TAG",
    "NAPARI_LABEL_SUFFIXES",
    "is_labels_file_name",
    "labels_file_name",
    "labels_stem",
]

LABELS_TAG = ".labels"
"""Inserted before the format's extension in the names napari-segany chooses."""

NAPARI_LABEL_SUFFIXES = (".labels.tif", ".labels.tiff")
"""Name endings the napari reader claims (its manifest's ``filename_patterns``)."""

_FORMAT_SUFFIXES = (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif")


def labels_file_name(stem: str, fmt: str = "tif") -> str:
    """The name napari-segany gives a label image: ``<stem>.labels.<fmt>``.

    Parameters
    ----------
    stem : str
        Name without extension (an image's or a layer's name).
    fmt : {"tif", "tiff", "zarr"}
        Extension without the dot.
    """
    return f"{stem}{LABELS_TAG}.{fmt.lstrip('.')}"


def labels_stem(path: str | os.PathLike) -> str:
    """The name of a label file without its format extension and ``.labels`` tag.

    ``cells.labels.tif``, ``cells.tif``, ``cells.ome.zarr`` and ``cells.labels.zarr`` all give
    ``cells``; other dots are kept (``a.b.tif`` gives ``a.b``).
    """
    name = Path(path).name
    for suffix in _FORMAT_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = Path(name).stem
    if name.lower().endswith(LABELS_TAG) and len(name) > len(LABELS_TAG):
        name = name[: -len(LABELS_TAG)]
    return name


def is_labels_file_name(path: str | os.PathLike) -> bool:
    """True if the name ends in ``.labels.tif`` or ``.labels.tiff`` (any case)."""
    return Path(path).name.lower().endswith(NAPARI_LABEL_SUFFIXES)
