"""Cut a large 2D image into overlapping tiles that each fit the model's input.

Every tile has an *outer* region (the pixels the encoder sees) and an *inner* region (the pixels
it is responsible for). The inner regions partition the image exactly; the outer region is the
inner one grown by a halo of context, except at the image border, where there is nothing to grow
into. All regions are ``(row_slice, col_slice)`` in image pixels, napari's (row, col) order.

Layout along one axis of length ``L`` with tile size ``T`` and halo ``h``:

* ``L <= T``: one tile, inner = outer = the whole axis.
* otherwise ``n = ceil((L - T) / (T - 2h)) + 1`` tiles, every one exactly ``T`` long, their starts
  spread evenly from ``0`` to ``L - T`` (so consecutive tiles overlap by at least ``2h``), and
  the seam between two inner regions in the middle of their overlap. Each inner region thus has
  at least ``h`` pixels of context on every side that is not an image border, and no tile is a
  thin leftover strip: every encoder pass sees a full input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Region = tuple[slice, slice]

#: Default halo as a fraction of the tile size (see :func:`default_halo`).
HALO_FRACTION = 8


def default_halo(tile_size: int) -> int:
    """Halo used when none is given: one eighth of the tile (128 px for SAM's 1024 input).

    Why 1/8: cells and nuclei in typical microscopy are 10–160 px across, so with a 128 px halo
    an object whose centre lies in a tile's inner region is usually seen whole by that tile's
    encoder, and the encoder's features near the seam still have real context. A larger halo
    costs encoding time quadratically: with 1/8 the tiles step by 3/4 of their size, i.e. about
    1.8× the pixels of an untiled encode; 1/4 would double that. Objects that are cut anyway are
    handled by decoding on a window centred on them
    (:class:`napari_segany.tiled.session.SegmentationSession`), so the halo need not cover the
    largest objects.
    """
    return max(0, int(tile_size) // HALO_FRACTION)


@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`TileGrid`.

    Attributes
    ----------
    index : int
        Position in ``TileGrid.tiles`` (row-major).
    outer : (slice, slice)
        Image (row, col) region the encoder sees.
    inner : (slice, slice)
        Image (row, col) region this tile is responsible for; inside ``outer``.
    position : (int, int)
        (row, col) of the tile in the grid.
    """

    index: int
    outer: Region
    inner: Region
    position: tuple[int, int] = (0, 0)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the outer region."""
        return (self.outer[0].stop - self.outer[0].start, self.outer[1].stop - self.outer[1].start)

    @property
    def inner_in_outer(self) -> Region:
        """The inner region in the outer region's own coordinates."""
        r, c = self.outer[0].start, self.outer[1].start
        return (
            slice(self.inner[0].start - r, self.inner[0].stop - r),
            slice(self.inner[1].start - c, self.inner[1].stop - c),
        )

    @property
    def offset(self) -> tuple[int, int]:
        """Image (row, col) of the outer region's first pixel."""
        return (self.outer[0].start, self.outer[1].start)


def _axis_layout(length: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(outer_start, outer_stop, inner_start, inner_stop) of each tile along one axis."""
    if length <= tile:
        return [(0, length, 0, length)]
    count = math.ceil((length - tile) / (tile - 2 * halo)) + 1
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    # seams in the middle of each overlap
    seams = [0] + [(starts[i + 1] + starts[i] + tile) // 2 for i in range(count - 1)] + [length]
    return [(s, s + tile, seams[i], seams[i + 1]) for i, s in enumerate(starts)]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int | float):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an integer or a (rows, cols) pair, got {value!r}"
        ) from None
    if len(pair) != 2:
        raise ValueError(f"{name} must be an integer or a (rows, cols) pair, got {value!r}")
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class TileGrid:
    """Overlapping tiles covering an image; see the module docstring for the layout.

    Parameters
    ----------
    shape : (int, int)
        (rows, cols) of the image.
    tile_size : int or (int, int)
        Outer size of a tile (rows, cols); usually the model's input size.
    halo : int or (int, int)
        Minimum context around each inner region, on sides that are not the image border.
        Must be less than half the tile size.

    Attributes
    ----------
    tiles : list of Tile
        Row-major.
    grid_shape : (int, int)
        Number of tiles along rows and cols.
    """

    shape: tuple[int, int]
    tile_size: tuple[int, int]
    halo: tuple[int, int]
    tiles: list[Tile] = field(init=False, repr=False, compare=False)
    grid_shape: tuple[int, int] = field(init=False)

    def __init__(
        self, shape: Sequence[int], tile_size: int | Sequence[int], halo: int | Sequence[int] = 0
    ):
        shape = _pair(tuple(shape), "shape")
        tile_size = _pair(tile_size, "tile_size")
        halo = _pair(halo, "halo")
        if min(shape) < 1:
            raise ValueError(f"cannot tile an empty image of shape {shape}")
        if min(tile_size) < 1:
            raise ValueError(f"tile_size must be positive, got {tile_size}")
        if min(halo) < 0:
            raise ValueError(f"halo must be 0 or more, got {halo}")
        for t, h in zip(tile_size, halo, strict=True):
            if 2 * h >= t:
                raise ValueError(
                    f"halo {halo} must be less than half the tile size {tile_size}: each tile "
                    "needs an inner region. Use a smaller halo or a larger tile."
                )
        rows = _axis_layout(shape[0], tile_size[0], halo[0])
        cols = _axis_layout(shape[1], tile_size[1], halo[1])
        tiles = []
        for i, (r0, r1, ri0, ri1) in enumerate(rows):
            for j, (c0, c1, ci0, ci1) in enumerate(cols):
                tiles.append(
                    Tile(
                        index=len(tiles),
                        outer=(slice(r0, r1), slice(c0, c1)),
                        inner=(slice(ri0, ri1), slice(ci0, ci1)),
                        position=(i, j),
                    )
                )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "tile_size", tile_size)
        object.__setattr__(self, "halo", halo)
        object.__setattr__(self, "tiles", tiles)
        object.__setattr__(self, "grid_shape", (len(rows), len(cols)))
        object.__setattr__(self, "_row_seams", [r[3] for r in rows])
        object.__setattr__(self, "_col_seams", [c[3] for c in cols])

    @classmethod
    def for_model(
        cls,
        shape: Sequence[int],
        image_size: int,
        tile_size: int | Sequence[int] | None = None,
        halo: int | Sequence[int] | None = None,
    ) -> TileGrid:
        """The grid used for a model with a square input of side ``image_size``.

        ``tile_size`` defaults to ``image_size`` (an image that fits one input is one tile) and
        ``halo`` to :func:`default_halo` of the tile size.
        """
        tile_size = image_size if tile_size is None else tile_size
        if halo is None:
            halo = tuple(default_halo(t) for t in _pair(tile_size, "tile_size"))
        return cls(shape, tile_size, halo)

    def __len__(self) -> int:
        return len(self.tiles)

    def tile_at(self, row: float, col: float) -> Tile:
        """The tile whose inner region contains image pixel (row, col) (clamped to the image)."""
        r = min(max(math.floor(row + 0.5), 0), self.shape[0] - 1)
        c = min(max(math.floor(col + 0.5), 0), self.shape[1] - 1)
        i = next(k for k, stop in enumerate(self._row_seams) if r < stop)
        j = next(k for k, stop in enumerate(self._col_seams) if c < stop)
        return self.tiles[i * self.grid_shape[1] + j]

    def tiles_meeting(self, region: Region | None) -> list[int]:
        """Indices of the tiles whose inner region meets ``region`` (all tiles for None)."""
        if region is None:
            return [t.index for t in self.tiles]
        rows, cols = _clip_region(region, self.shape)
        return [
            t.index
            for t in self.tiles
            if t.inner[0].start < rows.stop
            and rows.start < t.inner[0].stop
            and t.inner[1].start < cols.stop
            and cols.start < t.inner[1].stop
        ]

    def order(self, priority: Region | None = None) -> list[int]:
        """All tile indices, those meeting ``priority`` first, then nearest to it first.

        Without ``priority`` the order is row-major.
        """
        if priority is None:
            return [t.index for t in self.tiles]
        rows, cols = _clip_region(priority, self.shape)
        centre = ((rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2)
        meeting = set(self.tiles_meeting((rows, cols)))

        def key(tile: Tile) -> tuple[int, float, int]:
            r = (tile.inner[0].start + tile.inner[0].stop) / 2
            c = (tile.inner[1].start + tile.inner[1].stop) / 2
            dist = (r - centre[0]) ** 2 + (c - centre[1]) ** 2
            return (0 if tile.index in meeting else 1, dist, tile.index)

        return [t.index for t in sorted(self.tiles, key=key)]


def _clip_region(region: Region, shape: tuple[int, int]) -> Region:
    """Normalise a (row_slice, col_slice) region to explicit bounds inside the image."""
    try:
        rows, cols = region
        r = rows.indices(shape[0])
        c = cols.indices(shape[1])
    except (TypeError, ValueError, AttributeError):
        raise ValueError(
            f"a region must be a (row_slice, col_slice) pair, got {region!r}"
        ) from None
    return slice(r[0], max(r[0], r[1])), slice(c[0], max(c[0], c[1]))
