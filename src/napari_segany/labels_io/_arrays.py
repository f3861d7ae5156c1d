"""Label arrays of any backing (numpy, zarr, dask): validation and block-by-block reading.

The writers never call ``np.asarray`` on a whole zarr- or dask-backed array: they read it in
blocks whose shape is a multiple of the output's chunks (or tiles) and covers the source's own
chunks, so each source chunk is decoded once and peak memory stays at a few blocks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import numpy as np

from napari_segany.progress import Progress

MAX_LABEL = 2**32 - 1
"""Largest label ID that can be saved (uint32)."""

LENGTH_UNITS_IN_CM = {
    "nanometer": 1e-7,
    "micrometer": 1e-4,
    "millimeter": 1e-1,
    "centimeter": 1.0,
}

# Upper bound for one block read from a lazy source (bytes of the source dtype).
_BLOCK_BUDGET = 64 * 2**20


def check_labels(labels: Any, max_ndim: int = 3) -> Any:
    """Check that ``labels`` is a 2D or 3D integer (or bool) array; return it unchanged.

    ``max_ndim=4`` also accepts 4D labels (a time series of z-stacks, ``tzyx``), which the
    TIFF and OME-Zarr writers can write.

    Accepts numpy arrays and array-likes with ``shape``, ``dtype`` and slicing (zarr, dask).

    Raises
    ------
    ValueError
        Not array-like, not integer, or not 2D (row, col) / 3D (plane, row, col) (or 4D when
        allowed).
    """
    if isinstance(labels, list | tuple):
        labels = np.asarray(labels)
    if not (hasattr(labels, "shape") and hasattr(labels, "dtype") and hasattr(labels, "ndim")):
        raise ValueError(
            f"labels must be an array (numpy, zarr or dask), got {type(labels).__name__}"
        )
    dtype = np.dtype(labels.dtype)
    if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_):
        raise ValueError(
            f"labels must hold integer IDs, got dtype {dtype}. Label images store whole "
            f"numbers (0 = background); convert with labels.astype(np.uint32) if the values "
            f"are whole numbers."
        )
    if not 2 <= labels.ndim <= max(3, max_ndim):
        four = ", or 4D (frame, plane, row, col) for a time series of z-stacks" * (max_ndim >= 4)
        raise ValueError(
            f"labels must be 2D (row, col) or 3D (plane, row, col){four}, got shape "
            f"{tuple(labels.shape)}. Squeeze or select the axes to save first."
        )
    if any(int(n) == 0 for n in labels.shape):
        raise ValueError(f"labels have an empty axis: shape {tuple(labels.shape)}")
    return labels


def check_scale(scale: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Return ``scale`` as a tuple of ``ndim`` positive finite floats, or None."""
    if scale is None:
        return None
    values = tuple(float(s) for s in np.asarray(scale, dtype=float).ravel())
    if len(values) != ndim:
        raise ValueError(
            f"scale needs one pixel size per axis ({ndim} values for these labels), "
            f"got {len(values)}: {values}"
        )
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"scale values must be positive and finite, got {values}")
    return values


def label_dtype(max_id: int) -> np.dtype:
    """uint16 when the largest ID fits, else uint32."""
    if max_id > MAX_LABEL:
        raise ValueError(
            f"the largest label ID is {max_id}, above {MAX_LABEL} (uint32), which TIFF and "
            f"OME-Zarr label readers support. Relabel the objects consecutively first, "
            f"e.g. skimage.segmentation.relabel_sequential."
        )
    return np.dtype(np.uint16) if max_id <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def source_chunks(array: Any) -> tuple[int, ...] | None:
    """The chunk shape of a zarr or dask array, None for in-memory arrays."""
    if isinstance(array, np.ndarray):
        return None
    chunksize = getattr(array, "chunksize", None)  # dask
    if chunksize is not None:
        return tuple(int(c) for c in chunksize)
    chunks = getattr(array, "chunks", None)  # zarr
    if isinstance(chunks, tuple) and all(isinstance(c, int | np.integer) for c in chunks):
        return tuple(int(c) for c in chunks)
    return None


def block_shape(
    array: Any,
    base: Sequence[int],
    *,
    full_axes: Sequence[int] = (),
    budget: int = _BLOCK_BUDGET,
) -> tuple[int, ...]:
    """Shape of the blocks to read ``array`` in.

    Each axis is a multiple of ``base`` (the output's chunk or tile shape) that covers one
    source chunk, so no source chunk is decoded twice per block row. ``full_axes`` take the
    whole extent. Axes are shrunk back toward ``base`` while a block exceeds ``budget`` bytes.
    """
    shape = tuple(int(n) for n in array.shape)
    chunks = source_chunks(array) or base
    block = []
    for axis, (n, b, c) in enumerate(zip(shape, base, chunks, strict=True)):
        if axis in full_axes:
            block.append(n)
        else:
            block.append(min(n, b * math.ceil(max(c, b) / b)))
    itemsize = np.dtype(array.dtype).itemsize
    for axis in range(len(block)):  # leading axes first: planes, then rows
        while math.prod(block) * itemsize > budget and block[axis] > base[axis]:
            block[axis] = max(base[axis], base[axis] * math.ceil(block[axis] / base[axis] / 2))
    return tuple(block)


def iter_blocks(shape: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """Slices tiling ``shape`` with ``block``-sized pieces, in C order."""
    ranges = [range(0, int(n), int(b)) for n, b in zip(shape, block, strict=True)]
    for starts in itertools.product(*ranges):
        yield tuple(
            slice(s, min(s + int(b), int(n))) for s, b, n in zip(starts, block, shape, strict=True)
        )


def read_block(array: Any, index: tuple[slice, ...]) -> np.ndarray:
    """One block of ``array`` as a numpy array (computes dask, decodes zarr)."""
    return np.asarray(array[index])


def scan_range(array: Any) -> Generator[Progress, None, tuple[int, int]]:
    """Smallest and largest label ID, read block by block. Yields progress per block.

    Raises
    ------
    ValueError
        Negative IDs, or IDs above 2**32 − 1.
    """
    dtype = np.dtype(array.dtype)
    if isinstance(array, np.ndarray):
        blocks = [tuple(slice(None) for _ in array.shape)]
    else:
        blocks = list(iter_blocks(array.shape, block_shape(array, _default_base(array.ndim))))
    low, high = None, None
    for i, index in enumerate(blocks):
        values = read_block(array, index)
        b_low, b_high = int(values.min()), int(values.max())
        low = b_low if low is None else min(low, b_low)
        high = b_high if high is None else max(high, b_high)
        yield Progress(i + 1, len(blocks), "checking label IDs")
    assert low is not None and high is not None
    if low < 0:
        raise ValueError(
            f"labels contain negative IDs (smallest {low}, dtype {dtype}). Label images "
            f"use 0 for background and positive IDs for objects."
        )
    label_dtype(high)  # raises for IDs above uint32
    return low, high


def _default_base(ndim: int) -> tuple[int, ...]:
    return (1,) * (ndim - 2) + (1024, 1024)


def drain(job: Generator[Progress, None, Any]) -> Any:
    """Run a job generator to the end without progress display; return its result."""
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value
