"""Edits of the instance Labels layer, each one undo step in napari's Labels history.

Only the touched region of the layer's data is read and written, so a large zarr-backed layer
stays on disk. Coordinates are the layer's data (row, col), with ``leading`` indices selecting
the plane of a stack.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from napari_segany.automatic.free_pixels import FreeObjects, clip_to_free

# largest label seen per non-numpy layer (computing the maximum of a big zarr array is slow)
_KNOWN_MAX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_MAX_ROWS_PER_READ = 1024


def _array_max(data) -> int:
    """Largest value of a (possibly huge, lazy) array, read a band of rows at a time."""
    if isinstance(data, np.ndarray):
        return int(data.max()) if data.size else 0
    best = 0
    for start in range(0, int(data.shape[-2]), _MAX_ROWS_PER_READ):
        band = np.asarray(data[..., start : start + _MAX_ROWS_PER_READ, :])
        if band.size:
            best = max(best, int(band.max()))
    return best


def next_free_id(layer) -> int:
    """One more than the largest label in ``layer`` (1 for an empty layer)."""
    data = layer.data
    if isinstance(data, np.ndarray):
        return _array_max(data) + 1
    known = _KNOWN_MAX.get(layer)
    if known is None:
        known = _array_max(data)
        _KNOWN_MAX[layer] = known
    return known + 1


def _remember(layer, label: int) -> None:
    if not isinstance(layer.data, np.ndarray):
        _KNOWN_MAX[layer] = max(_KNOWN_MAX.get(layer, 0), int(label))


def _check_plane(layer, leading: tuple[int, ...]) -> None:
    if layer.data.ndim != len(leading) + 2:
        raise ValueError(
            f"labels layer {layer.name!r} has {layer.data.ndim} dimensions, the image plane "
            f"needs {len(leading) + 2}; choose or create a labels layer that matches the image"
        )


def commit_mask(
    layer,
    mask: np.ndarray,
    offset: tuple[int, int],
    leading: tuple[int, ...] = (),
    *,
    overwrite: bool = False,
    label: int | None = None,
) -> int:
    """Write one object into an instance Labels layer as one undo step.

    Parameters
    ----------
    layer : napari.layers.Labels
        The instance labels, shape ``leading + (H, W)``.
    mask : ndarray, shape (h, w), bool
        The object, placed with its [0, 0] at ``offset`` (row, col) of the plane; parts outside
        the plane are dropped.
    offset : (int, int)
        Plane (row, col) of ``mask[0, 0]``.
    leading : tuple of int
        Indices of the plane in a stack.
    overwrite : bool
        Also take pixels that belong to other objects (default: only background pixels).
    label : int, optional
        ID to write (default: :func:`next_free_id`).

    Returns
    -------
    int
        The ID written, or 0 when no pixel could be written.
    """
    _check_plane(layer, leading)
    placed = _in_plane(layer, mask, offset, leading)
    if placed is None:
        return 0
    mask, existing, (top, left) = placed
    writable = mask if overwrite else mask & (existing == 0)
    if not writable.any():
        return 0
    if label is None:
        label = max(next_free_id(layer), int(existing.max()) + 1)
    with layer.block_history():
        layer.data_setitem(_indices(writable, (top, left), leading), label)
    _remember(layer, label)
    return int(label)


def _in_plane(layer, mask, offset, leading):
    """``mask`` cut to the plane, the layer's labels under it and its (top, left); None if it
    lies outside the plane."""
    mask = np.asarray(mask, dtype=bool)
    height, width = (int(s) for s in layer.data.shape[-2:])
    r0, c0 = int(offset[0]), int(offset[1])
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r0 + mask.shape[0], height), min(c0 + mask.shape[1], width)
    if bottom <= top or right <= left:
        return None
    mask = mask[top - r0 : bottom - r0, left - c0 : right - c0]
    existing = np.asarray(layer.data[(*leading, slice(top, bottom), slice(left, right))])
    return mask, existing, (top, left)


def _indices(mask: np.ndarray, origin: tuple[int, int], leading: tuple[int, ...]):
    """Fancy indices into the layer of the pixels of ``mask`` placed at plane ``origin``."""
    rows, cols = np.nonzero(mask)
    return (*(np.full(rows.shape, i) for i in leading), rows + origin[0], cols + origin[1])


def replace_object(
    layer,
    label: int,
    inside: tuple[int, int],
    mask: np.ndarray,
    offset: tuple[int, int],
    leading: tuple[int, ...] = (),
    *,
    overwrite: bool = False,
) -> bool:
    """Replace object ``label`` by ``mask``, keeping its ID, as one undo step.

    Parameters
    ----------
    label : int
        The object to replace.
    inside : (int, int)
        Plane (row, col) of one of its pixels (the object is found from there).
    mask, offset, leading, overwrite
        As for :func:`commit_mask`; the old object's pixels count as free.

    Returns
    -------
    bool
        False, and nothing changed, when ``label`` is not at ``inside`` or the mask has no
        writable pixel.
    """
    _check_plane(layer, leading)
    found, old = object_pixels(layer, inside, leading)
    placed = _in_plane(layer, mask, offset, leading)
    if found != label or placed is None:
        return False
    mask, existing, origin = placed
    writable = mask if overwrite else mask & ((existing == 0) | (existing == label))
    if not writable.any():
        return False
    with layer.block_history():
        layer.data_setitem(old, 0)
        layer.data_setitem(_indices(writable, origin, leading), label)
    return True


def object_pixels(layer, position: tuple[int, int], leading: tuple[int, ...] = ()):
    """Label under ``position`` (plane row, col) and the plane indices of all its pixels.

    Reads a window around the position that grows until the object lies inside it, so only the
    neighbourhood of the object is read from a large layer.

    Returns
    -------
    label : int
        0 when the position is background or outside the plane.
    indices : tuple of ndarray or None
        Fancy indices (``leading`` + rows, cols) of the object's pixels in the layer.
    """
    _check_plane(layer, leading)
    height, width = (int(s) for s in layer.data.shape[-2:])
    row, col = (int(np.floor(p)) for p in position)
    if not (0 <= row < height and 0 <= col < width):
        return 0, None
    label = int(np.asarray(layer.data[(*leading, row, col)]))
    if label == 0:
        return 0, None
    half = 256
    while True:
        top, left = max(row - half, 0), max(col - half, 0)
        bottom, right = min(row + half, height), min(col + half, width)
        window = np.asarray(layer.data[(*leading, slice(top, bottom), slice(left, right))])
        hit = window == label
        touches = (
            (top > 0 and hit[0].any())
            or (left > 0 and hit[:, 0].any())
            or (bottom < height and hit[-1].any())
            or (right < width and hit[:, -1].any())
        )
        if not touches:
            break
        half *= 2
    rows, cols = np.nonzero(hit)
    indices = (*(np.full(rows.shape, i) for i in leading), rows + top, cols + left)
    return label, indices


def delete_object(layer, position: tuple[int, int], leading: tuple[int, ...] = ()) -> int:
    """Set the object under ``position`` to background, as one undo step; returns its ID or 0."""
    label, indices = object_pixels(layer, position, leading)
    if label == 0:
        return 0
    with layer.block_history():
        layer.data_setitem(indices, 0)
    return label


@dataclass(frozen=True)
class WrittenInstances:
    """What :func:`write_instances` wrote.

    Attributes
    ----------
    fitted : FreeObjects
        The objects fitted into the free pixels (input IDs), and those left out and why.
    ids : dict of int to int
        Input ID of each written object → its ID in the layer.
    """

    fitted: FreeObjects
    ids: dict[int, int]


def write_instances(
    layer,
    labels: np.ndarray,
    leading: tuple[int, ...] = (),
    *,
    overwrite: bool = False,
    min_size: int = 0,
) -> FreeObjects:
    """Add a whole instance segmentation to a Labels layer as one undo step.

    Without ``overwrite``, the objects are fitted into the pixels no existing object holds by
    :func:`~napari_segany.automatic.free_pixels.clip_to_free`: an object mostly lying on
    existing ones, or whose free part is smaller than ``min_size`` or a thin sliver, is not
    written (otherwise the rings left around committed objects would become objects).

    Parameters
    ----------
    layer : napari.layers.Labels
        The instance labels, shape ``leading + (H, W)``.
    labels : ndarray, shape (H, W), integer
        0 = background, other values = objects; they get new IDs after the layer's largest.
    leading : tuple of int
        Indices of the plane in a stack.
    overwrite : bool
        Write every object whole, taking pixels of objects already in the layer.
    min_size : int
        Objects with fewer pixels (after fitting) are not written.

    Returns
    -------
    WrittenInstances
        What was fitted and written, how many objects were left out and why, and the IDs the
        written objects got.
    """
    _check_plane(layer, leading)
    labels = np.asarray(labels)
    if labels.shape != tuple(layer.data.shape[-2:]):
        raise ValueError(
            f"segmentation of shape {labels.shape} does not fit labels layer {layer.name!r} "
            f"of plane shape {tuple(layer.data.shape[-2:])}"
        )
    if overwrite:
        occupied = np.zeros(labels.shape, dtype=bool)
    else:
        occupied = np.asarray(layer.data[(*leading, slice(None), slice(None))]) != 0
    fitted = clip_to_free(labels, occupied, min_size=min_size)
    rows, cols = np.nonzero(fitted.labels)
    if rows.size == 0:
        return WrittenInstances(fitted, {})
    ids, inverse = np.unique(fitted.labels[rows, cols], return_inverse=True)
    start = next_free_id(layer)
    new_values = (start + inverse).astype(layer.data.dtype)
    indices = (*(np.full(rows.shape, i) for i in leading), rows, cols)
    with layer.block_history():
        layer.data_setitem(indices, new_values)
    _remember(layer, start + len(ids) - 1)
    return WrittenInstances(fitted, {int(i): start + k for k, i in enumerate(ids)})


def segment_all_message(written: FreeObjects, *, min_size: int, overwrite: bool) -> str:
    """Status line after "Segment all" wrote ``written``; when nothing was written, why and
    what to try, naming the annotator's controls."""

    def objects(n: int) -> str:
        return f"{n} object" if n == 1 else f"{n} objects"

    found, left_out = written.found, written.found - written.kept
    if written.kept:
        on_others = f"; {left_out} more lay on existing objects" if left_out else ""
        return f"Segment all: added {objects(written.kept)} (Ctrl+Z undoes them){on_others}."
    if not found:
        return (
            "Segment all found no objects: check that the image has signal and that Image "
            "and Channels choose the right layer and channel."
        )
    tick = "" if overwrite else '; tick "Overwrite other objects" to write them whole'
    if not written.too_small:
        return f"Segment all found {objects(found)}, all on existing objects{tick}."
    return (
        f"Segment all found {objects(found)}; what existing objects leave free of them is "
        f"under {min_size} px or too thin{tick}."
    )
