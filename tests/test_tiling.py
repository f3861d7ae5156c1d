"""Tile grids: inner regions partition the image, tiles stay inside it, halos where they belong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_segany.image.tiling import TileGrid, default_halo


@st.composite
def grids(draw):
    tile = draw(st.integers(4, 96))
    halo = draw(st.integers(0, (tile - 1) // 2))
    shape = (draw(st.integers(1, 400)), draw(st.integers(1, 400)))
    return TileGrid(shape, tile, halo)


@settings(max_examples=100, deadline=None)
@given(grids())
def test_inner_regions_partition_the_image(grid):
    count = np.zeros(grid.shape, dtype=np.int32)
    for tile in grid.tiles:
        count[tile.inner] += 1
    assert (count == 1).all()


@settings(max_examples=100, deadline=None)
@given(grids())
def test_tiles_inside_image_and_no_larger_than_the_tile_size(grid):
    h, w = grid.shape
    for tile in grid.tiles:
        (r0, r1), (c0, c1) = (
            (tile.outer[0].start, tile.outer[0].stop),
            (
                tile.outer[1].start,
                tile.outer[1].stop,
            ),
        )
        assert 0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w
        assert r1 - r0 <= grid.tile_size[0] and c1 - c0 <= grid.tile_size[1]
        # a tile is only smaller than the tile size when the image is
        assert r1 - r0 == min(h, grid.tile_size[0]) and c1 - c0 == min(w, grid.tile_size[1])
        ir, ic = tile.inner
        assert r0 <= ir.start < ir.stop <= r1 and c0 <= ic.start < ic.stop <= c1


@settings(max_examples=100, deadline=None)
@given(grids())
def test_halos_at_least_the_halo_inside_and_none_at_the_border(grid):
    h, w = grid.shape
    for tile in grid.tiles:
        for axis, size in ((0, h), (1, w)):
            outer, inner, halo = tile.outer[axis], tile.inner[axis], grid.halo[axis]
            if inner.start == 0:
                assert outer.start == 0
            else:
                assert inner.start - outer.start >= halo
            if inner.stop == size:
                assert outer.stop == size
            else:
                assert outer.stop - inner.stop >= halo


@settings(max_examples=100, deadline=None)
@given(grids(), st.data())
def test_tile_at_finds_the_tile_whose_inner_region_holds_the_pixel(grid, data):
    r = data.draw(st.integers(0, grid.shape[0] - 1))
    c = data.draw(st.integers(0, grid.shape[1] - 1))
    tile = grid.tile_at(r, c)
    assert tile.inner[0].start <= r < tile.inner[0].stop
    assert tile.inner[1].start <= c < tile.inner[1].stop


def test_image_that_fits_one_input_is_one_tile():
    grid = TileGrid.for_model((700, 1024), image_size=1024)
    assert len(grid) == 1
    assert grid.tiles[0].outer == grid.tiles[0].inner == (slice(0, 700), slice(0, 1024))


def test_automatic_grid_uses_model_input_and_default_halo():
    grid = TileGrid.for_model((3000, 1500), image_size=1024)
    assert grid.tile_size == (1024, 1024)
    assert grid.halo == (default_halo(1024),) * 2
    assert 64 <= grid.halo[0] <= 256
    assert grid.grid_shape == (4, 2)


def test_priority_order_puts_tiles_meeting_the_region_first():
    grid = TileGrid((1000, 1000), 200, 20)
    region = (slice(900, 1000), slice(900, 1000))
    order = grid.order(region)
    meeting = grid.tiles_meeting(region)
    assert sorted(order) == list(range(len(grid)))
    assert set(order[: len(meeting)]) == set(meeting)
    assert order[0] == len(grid) - 1  # the bottom-right tile
    assert grid.order() == list(range(len(grid)))


@pytest.mark.parametrize(
    ("tile", "halo"), [(10, 5), (10, 7), (0, 0), ((10, 10, 10), 1), ("big", 1)]
)
def test_bad_tile_or_halo_is_a_clear_error(tile, halo):
    with pytest.raises(ValueError, match=r"tile|halo"):
        TileGrid((100, 100), tile, halo)


def test_empty_image_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        TileGrid((0, 10), 8, 1)
