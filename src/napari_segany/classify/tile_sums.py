"""Per-object sums over one tile's inner pixels, and their merge across tiles.

The inner regions of a :class:`~napari_segany.image.tiling.TileGrid` partition the image, so
summing each object's pixels over the inner regions counts every pixel once: an object that
crosses a seam gets one value, the same as if the image were one tile. Sums, sums of squares,
minima and maxima are kept per object and tile (:func:`tile_sums`), then reduced by object ID
(:func:`merge_sums`).
"""

from __future__ import annotations

import numpy as np

from napari_segany.labels_io.table import merge_partials


def group_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The object pixels of a label block, grouped by ID.

    Parameters
    ----------
    labels : ndarray, shape (h, w), integer

    Returns
    -------
    ids : ndarray, shape (n,), int64
        The IDs present (ascending, background 0 left out).
    starts : ndarray, shape (n,), int64
        Where each ID's pixels start in ``flat``.
    flat : ndarray, shape (pixels,), int64
        Flat indices into ``labels`` of the object pixels, sorted by ID.
    inverse : ndarray, shape (pixels,), int64
        The position in ``ids`` of each pixel of ``flat``.
    """
    nonzero = np.flatnonzero(labels)
    values = labels.ravel()[nonzero]
    order = np.argsort(values, kind="stable")
    flat = nonzero[order]
    values = values[order]
    if values.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    boundary = np.r_[True, values[1:] != values[:-1]]
    starts = np.flatnonzero(boundary)
    inverse = np.cumsum(boundary) - 1
    return values[starts].astype(np.int64), starts, flat, inverse


def tile_sums(
    labels: np.ndarray,
    origin: tuple[int, int],
    pixels: np.ndarray | None = None,
    tokens: np.ndarray | None = None,
    features: np.ndarray | None = None,
    squares: bool = False,
) -> dict[str, np.ndarray] | None:
    """Partial measurements of the objects of one block of labels.

    Parameters
    ----------
    labels : ndarray, shape (h, w), integer
        The block (a tile's inner region).
    origin : (int, int)
        Image (row, col) of ``labels[0, 0]``.
    pixels : ndarray, shape (h, w) or (h, w, C), optional
        The image's values over the block, for intensity statistics.
    tokens : ndarray, shape (h, w), int, optional
        For each pixel, the row of ``features`` (the embedding token) it lies in.
    features : ndarray, shape (T, D), optional
        The tile's image embedding, one row per token.
    squares : bool
        Also sum the squares of the embedding (for its standard deviation over the object).

    Returns
    -------
    dict or None
        ``id`` (n,); ``area``, ``sum_row``, ``sum_col``, ``min_row`` … ``max_col`` (n,);
        with ``pixels``: ``sum_i``, ``sq_i``, ``min_i``, ``max_i`` (n, C); with ``features``:
        ``sum_e`` (and ``sq_e``) (n, D). None when the block has no object.
    """
    ids, starts, flat, inverse = group_pixels(labels)
    if ids.size == 0:
        return None
    width = labels.shape[1]
    rows = flat // width + origin[0]
    cols = flat % width + origin[1]
    part = {
        "id": ids,
        "area": np.diff(np.r_[starts, flat.size]).astype(np.int64),
        "sum_row": np.add.reduceat(rows.astype(np.float64), starts),
        "sum_col": np.add.reduceat(cols.astype(np.float64), starts),
        "min_row": np.minimum.reduceat(rows, starts),
        "min_col": np.minimum.reduceat(cols, starts),
        "max_row": np.maximum.reduceat(rows, starts),
        "max_col": np.maximum.reduceat(cols, starts),
    }
    if pixels is not None:
        values = pixels.reshape(labels.size, -1)[flat].astype(np.float64)
        part["sum_i"] = np.add.reduceat(values, starts, axis=0)
        part["sq_i"] = np.add.reduceat(values * values, starts, axis=0)
        part["min_i"] = np.minimum.reduceat(values, starts, axis=0)
        part["max_i"] = np.maximum.reduceat(values, starts, axis=0)
    if features is not None and tokens is not None:
        from scipy import sparse

        counts = sparse.csr_matrix(
            (np.ones(flat.size), (inverse, tokens.ravel()[flat])),
            shape=(ids.size, features.shape[0]),
        )  # duplicates add up: pixels of each object in each token
        part["sum_e"] = np.asarray(counts @ features.astype(np.float64))
        if squares:
            part["sq_e"] = np.asarray(counts @ np.square(features, dtype=np.float64))
    return part


def merge_sums(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine the partials of several tiles into one entry per object ID (the same keys, IDs
    ascending; ``min_*``/``max_*`` by minimum/maximum, the others by addition)."""
    return merge_partials(parts)


def token_index(
    shape: tuple[int, int],
    offset: tuple[int, int],
    scale: tuple[float, float],
    stride: float,
    grid: tuple[int, int],
    valid: tuple[int, int],
) -> np.ndarray:
    """The embedding token under each pixel of a block of a tile.

    Parameters
    ----------
    shape : (int, int)
        (rows, cols) of the block.
    offset : (int, int)
        (row, col) of the block's first pixel in the tile (the encoded image).
    scale : (float, float)
        Model input pixels per tile pixel, (rows, cols) (1 when the tile is not resized).
    stride : float
        Model input pixels per token (16 for SAM and the embedded model).
    grid : (int, int)
        (rows, cols) of the embedding.
    valid : (int, int)
        Tokens that cover the resized tile, (rows, cols); the others see only padding.

    Returns
    -------
    ndarray, shape ``shape``, int64
        Row-major token index ``token_row * grid[1] + token_col``.
    """
    index = []
    for n, o, s, v in zip(shape, offset, scale, valid, strict=True):
        centre = (np.arange(n, dtype=np.float64) + o + 0.5) * s
        index.append(np.clip(np.floor(centre / stride).astype(np.int64), 0, max(0, v - 1)))
    return index[0][:, None] * grid[1] + index[1][None, :]
