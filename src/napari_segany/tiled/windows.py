"""Which embedding a prompt is decoded on: a tile, or a window centred on an object across seams.

A :class:`Window` is a rectangle of image pixels that has one embedding: a tile's outer region,
or a window encoded on demand around prompts whose object a tile cuts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from napari_segany.geometry import Rect

#: Pixels next to a window edge in which a mask runs into it (one stride-4 mask pixel).
EDGE_BAND = 4


@dataclass(frozen=True)
class Window:
    """An image region with one embedding.

    Attributes
    ----------
    rect : Rect
        Image pixels the embedding covers.
    tile : int or None
        Index of the tile whose outer region this is; None for a window encoded on demand.
    """

    rect: Rect
    tile: int | None = None

    @property
    def is_tile(self) -> bool:
        return self.tile is not None


def is_cut(mask: np.ndarray, offset: tuple[int, int], image_shape: tuple[int, int]) -> bool:
    """Whether ``mask`` runs into an edge of its window that is not the image border.

    An edge counts when the mask, within ``EDGE_BAND`` pixels of it, covers at least
    ``max(4, 0.05 * sqrt(area))`` of its pixels: a few stray pixels touching the edge are
    not a cut object, and an object poking out by less than that has lost a negligible
    sliver (a chord of 0.05 × its diameter hides about 0.1 % of its radius). The band
    allows for models that stop a mask a pixel or two before where their input ends.

    Parameters
    ----------
    mask : ndarray, shape (h, w), bool
        The mask on its window's pixels.
    offset : (int, int)
        Image (row, col) of ``mask[0, 0]``.
    image_shape : (int, int)
    """
    area = int(mask.sum())
    if area == 0:
        return False
    need = max(4.0, 0.05 * np.sqrt(area))
    h, w = mask.shape
    r, c = offset
    H, W = image_shape
    band = EDGE_BAND
    edges = (
        (r > 0, mask[:band].any(axis=0)),
        (r + h < H, mask[-band:].any(axis=0)),
        (c > 0, mask[:, :band].any(axis=1)),
        (c + w < W, mask[:, -band:].any(axis=1)),
    )
    return any(inside and int(line.sum()) >= need for inside, line in edges)


def centred_window(
    span: tuple[float, float, float, float],
    image_shape: tuple[int, int],
    tile_size: tuple[int, int],
    halo: tuple[int, int],
    cached: Iterable[Window] = (),
) -> Window:
    """A window of the tile size (larger if ``span`` needs it) centred on ``span``.

    ``span`` is (row0, col0, row1, col1) in image pixels, inclusive. The window keeps a margin
    of the halo around it (at least 16 px) where the image allows. A ``cached`` window (most
    recent last) that holds the span with half that margin is reused; otherwise the new
    window's corner is snapped to a grid of half the margin, so nearby prompts share windows.
    """
    H, W = image_shape
    margins = [max(m, 16) for m in halo]
    for window in reversed(list(cached)):
        rect = window.rect
        if all(
            (start == 0 or start <= lo - m // 2) and (stop == size or hi + 1 + m // 2 <= stop)
            for start, stop, lo, hi, m, size in (
                (rect.row0, rect.row1, span[0], span[2], margins[0], H),
                (rect.col0, rect.col1, span[1], span[3], margins[1], W),
            )
        ):
            return window
    bounds = []
    for lo, hi, size, tile, margin in (
        (span[0], span[2], H, tile_size[0], margins[0]),
        (span[1], span[3], W, tile_size[1], margins[1]),
    ):
        snap = max(1, margin // 2)
        need = int(np.ceil(hi - lo)) + 1 + 2 * margin + snap
        side = min(size, max(tile, need))
        start = snap * round(((lo + hi) / 2 - side / 2) / snap)
        start = min(max(start, 0), size - side)
        bounds.append((start, start + side))
    (r0, r1), (c0, c1) = bounds
    return Window(Rect(r0, c0, r1, c1))


def mask_extent(mask: np.ndarray, offset: tuple[int, int]) -> tuple[int, int, int, int]:
    """(row_min, col_min, row_max, col_max) image pixels of a non-empty mask at ``offset``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r, c = offset
    return (r + rows[0], c + cols[0], r + rows[-1], c + cols[-1])


def union_extent(a, b) -> tuple:
    """The smallest (row_min, col_min, row_max, col_max) holding both."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
