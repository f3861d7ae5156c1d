"""Reading planes and regions lazily from numpy, dask, zarr (v2, v3), TIFF and .npy."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany.image.source import ImageSource, ImageSourceError, open_image


@pytest.fixture
def plane(rng):
    return rng.integers(0, 4000, size=(300, 200), dtype=np.uint16)


def _check_regions(source, expected):
    assert source.shape == expected.shape[:2]
    for rows, cols in [(slice(0, 300), slice(0, 200)), (slice(17, 123), slice(150, 200))]:
        np.testing.assert_array_equal(source.read(rows, cols), expected[rows, cols])


def test_numpy_and_dask(plane):
    da = pytest.importorskip("dask.array")
    _check_regions(open_image(plane), plane)
    _check_regions(open_image(da.from_array(plane, chunks=64)), plane)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_arrays_and_paths(tmp_path, plane, zarr_format):
    path = tmp_path / f"image_v{zarr_format}.zarr"
    z = zarr.create_array(
        str(path), shape=plane.shape, chunks=(64, 64), dtype=plane.dtype, zarr_format=zarr_format
    )
    z[:] = plane
    _check_regions(open_image(z), plane)
    _check_regions(open_image(path), plane)


def test_ome_zarr_like_group_uses_the_first_level(tmp_path, plane):
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.create_array("s0", shape=plane.shape, dtype=plane.dtype)[:] = plane
    group.attrs["multiscales"] = [{"datasets": [{"path": "s0"}]}]
    _check_regions(open_image(tmp_path / "ome.zarr"), plane)


def test_zarr_group_without_image_is_a_clear_error(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("labels_x", shape=(4, 4), dtype="u1")
    with pytest.raises(ImageSourceError, match="labels_x"):
        open_image(tmp_path / "g.zarr")


def test_tiff_is_read_region_by_region(tmp_path, plane):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, plane, tile=(64, 64), compression="zlib")
    source = open_image(path)
    _check_regions(source, plane)
    assert not isinstance(source.array, np.ndarray)  # a lazy zarr view, not a loaded image


def test_stacks_need_a_plane_and_channels_come_last(tmp_path, rng):
    stack = rng.integers(0, 255, size=(4, 2, 50, 60), dtype=np.uint8)  # (z, c, y, x)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    with pytest.raises(ImageSourceError, match="plane"):
        open_image(tmp_path / "stack.tif", channel_axis=1)
    source = open_image(tmp_path / "stack.tif", channel_axis=1, plane=2)
    assert source.shape == (50, 60) and source.channels == 2
    np.testing.assert_array_equal(
        source.read(slice(5, 9), slice(0, 60)), np.moveaxis(stack[2, :, 5:9, :], 0, -1)
    )
    with pytest.raises(ImageSourceError, match="out of range"):
        open_image(stack, channel_axis=1, plane=7)


def test_rgb_is_detected_and_gray_has_no_channels(rng):
    rgb = rng.integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    source = open_image(rgb)
    assert source.channels == 3 and source.rgb_auto and source.shape == (30, 40)
    assert open_image(rgb[..., 0]).channels is None


def test_npy_is_memory_mapped(tmp_path, plane):
    np.save(tmp_path / "image.npy", plane)
    source = open_image(tmp_path / "image.npy")
    assert isinstance(source.array, np.memmap)
    _check_regions(source, plane)


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        (b"not a tiff", "broken.tif", "TIFF"),
        (b"hello", "notes.txt", "unsupported"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path, content, name, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageSourceError, match=match):
        open_image(path)


def test_missing_file_and_bad_dimensions(tmp_path):
    with pytest.raises(ImageSourceError, match="no such file"):
        open_image(tmp_path / "nope.tif")
    with pytest.raises(ImageSourceError, match="two spatial axes"):
        open_image(np.zeros(10))
    with pytest.raises(ImageSourceError, match="dtype"):
        ImageSource(np.array([["a", "b"], ["c", "d"]]))


def test_sample_reads_a_bounded_mosaic(monkeypatch, rng):
    from napari_segany.image import source as image_source

    monkeypatch.setattr(image_source, "SAMPLE_PIXELS", 64 * 64)
    monkeypatch.setattr(image_source, "SAMPLE_BLOCK", 16)
    big = rng.integers(0, 10, size=(1000, 700), dtype=np.uint8)
    sample = open_image(big).sample()
    assert sample.size <= 64 * 64
    assert sample.shape[0] >= 32 and sample.shape[1] >= 32
