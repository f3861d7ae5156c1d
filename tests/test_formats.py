"""Image files in: PNG, JPEG, TIFF (OME, ImageJ, plain), OME-Zarr, vendor files without their
reader; axes and channels from the files' metadata; pixel sizes as people write them.

Every file is written here with the libraries (imageio, tifffile, ome-zarr).
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_segany.image.calibration import (
    Calibration,
    length_unit,
    parse_pixel_size,
    time_unit,
    with_pixel_size,
)
from napari_segany.image.source import ImageSourceError, open_image

iio = pytest.importorskip("imageio.v3")


@pytest.fixture
def grey16(rng):
    return rng.integers(0, 60000, size=(60, 80), dtype=np.uint16)


# -- PNG and JPEG ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_png_of_8_and_16_bits(tmp_path, rng, dtype):
    pixels = rng.integers(0, np.iinfo(dtype).max, size=(60, 80), dtype=dtype)
    path = tmp_path / f"cells_{np.dtype(dtype).itemsize * 8}.png"
    iio.imwrite(path, pixels)
    source = open_image(path)
    assert source.shape == (60, 80) and source.channels is None and source.dtype == dtype
    np.testing.assert_array_equal(source.read(slice(5, 20), slice(10, 70)), pixels[5:20, 10:70])
    assert not source.calibration.calibrated  # a picture carries no microscope calibration
    assert "no pixel size" in source.describe()


def test_rgb_jpeg_is_read_as_rgb(tmp_path, rng):
    blocks = rng.integers(0, 255, size=(6, 4, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))  # 8×8 blocks of one colour
    path = tmp_path / "he.jpg"
    iio.imwrite(path, pixels, quality=100)
    source = open_image(path)
    assert source.shape == (48, 32) and source.channels == 3 and source.rgb_auto
    region = source.read(slice(0, 48), slice(0, 32))
    assert region.shape == (48, 32, 3) and region.dtype == np.uint8
    np.testing.assert_array_equal(region, iio.imread(path))
    assert np.abs(region.astype(int) - pixels).mean() < 8  # lossy, but the same picture


def test_pictures_are_decoded_on_the_first_read_only(tmp_path, rng, monkeypatch):
    from napari_segany.image import readers

    path = tmp_path / "a.png"
    iio.imwrite(path, rng.integers(0, 255, size=(30, 40), dtype=np.uint8))
    calls = []
    decode = readers._decoded.__wrapped__
    readers._decoded.cache_clear()
    monkeypatch.setattr(
        readers, "_decoded", readers.functools.lru_cache(maxsize=1)(
            lambda *a: calls.append(a) or decode(*a)
        )
    )  # fmt: skip
    source = open_image(path)
    assert calls == []  # the header gives shape and dtype
    source.read(slice(0, 10), slice(0, 10))
    source.read(slice(10, 30), slice(0, 40))
    assert len(calls) == 1


# -- TIFF -----------------------------------------------------------------------------------------
def test_ome_tiff_pixel_size_and_unit(tmp_path, grey16):
    path = tmp_path / "cells.ome.tif"
    meta = {"axes": "YX", "PhysicalSizeX": 650, "PhysicalSizeY": 650}
    tifffile.imwrite(
        path,
        grey16,
        ome=True,
        metadata={**meta, "PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm"},
    )
    source = open_image(path)
    assert source.calibration.pixel_size == pytest.approx((650, 650))
    assert source.calibration.unit == "nanometer"
    assert source.calibration.origin == "OME metadata"
    np.testing.assert_array_equal(source.read_all(), grey16)


def test_imagej_tiff_pixel_size(tmp_path, grey16):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(
        path, grey16, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"unit": "micron"}
    )
    calibration = open_image(path).calibration
    assert calibration.pixel_size == pytest.approx((0.65, 0.65))
    assert calibration.unit == "micrometer" and calibration.origin == "ImageJ metadata"


def test_tiff_resolution_tags_in_centimetres_and_none(tmp_path, grey16):
    tagged = tmp_path / "tagged.tif"
    tifffile.imwrite(
        tagged, grey16, resolution=(1e4 / 0.5, 1e4 / 0.25), resolutionunit="CENTIMETER"
    )
    calibration = open_image(tagged).calibration
    assert calibration.pixel_size == pytest.approx((0.25, 0.5))  # (row, col) = (y, x)
    assert calibration.unit == "micrometer"
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, grey16)  # tifffile's default: 1 pixel per (no) unit
    assert open_image(plain).calibration == Calibration()
    dpi = tmp_path / "dpi.tif"
    tifffile.imwrite(dpi, grey16, resolution=(300, 300), resolutionunit="INCH")
    assert not open_image(dpi).calibration.calibrated  # a print resolution, not a microscope's


def test_axes_choose_channels_and_a_default_plane(tmp_path, rng):
    stack = rng.integers(0, 4000, size=(3, 5, 2, 40, 50), dtype=np.uint16)  # t, z, c, y, x
    path = tmp_path / "stack.ome.tif"
    channels = {"Name": ["DAPI", "GFP"]}
    metadata = {"axes": "TZCYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3, "Channel": channels}
    tifffile.imwrite(path, stack, ome=True, metadata={**metadata, "PhysicalSizeZ": 1.5})
    source = open_image(path)
    assert source.channels == 2 and source.plane == (0, 2)  # first t, middle z
    np.testing.assert_array_equal(source.read_all(), np.moveaxis(stack[0, 2], 0, -1))
    text = source.describe()
    assert "DAPI, GFP" in text and "z=2 of 5" in text and "t=0 of 3" in text
    assert source.calibration.z_step == pytest.approx(1.5)
    chosen = open_image(path, plane=(2, 4))  # the user's plane wins
    np.testing.assert_array_equal(chosen.read_all(), np.moveaxis(stack[2, 4], 0, -1))
    assert "z=" not in chosen.describe()


def test_imagej_hyperstack_axes_and_times(tmp_path, rng):
    stack = rng.integers(0, 255, size=(4, 3, 30, 40), dtype=np.uint8)  # t, z, y, x
    path = tmp_path / "movie.tif"
    metadata = {"axes": "TZYX", "unit": "um", "spacing": 2.0, "finterval": 30}
    tifffile.imwrite(path, stack, imagej=True, resolution=(2, 2), metadata=metadata)
    source = open_image(path)
    assert source.plane == (0, 1) and source.channels is None
    assert source.calibration == Calibration(
        (0.5, 0.5), "micrometer", 2.0, 30.0, "second", "ImageJ metadata"
    )


def test_unnamed_stacks_still_need_a_plane(tmp_path, rng):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path, rng.integers(0, 255, size=(4, 30, 40), dtype=np.uint8), photometric="minisblack"
    )
    with pytest.raises(ImageSourceError, match="plane"):
        open_image(path)


# -- OME-Zarr -------------------------------------------------------------------------------------
def test_calibrated_ome_zarr(tmp_path, grey16):
    writer = pytest.importorskip("ome_zarr.writer")
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "cells.ome.zarr"
    writer.write_image(
        grey16,
        zarr.open_group(str(path), mode="w"),
        axes="yx",
        scale_factors=(),
        scale={"y": 0.65, "x": 0.65},
        axes_units={"y": "micrometer", "x": "micrometer"},
    )
    source = open_image(path)
    np.testing.assert_array_equal(source.read_all(), grey16)
    assert source.calibration.pixel_size == pytest.approx((0.65, 0.65))
    assert source.calibration.unit == "micrometer"
    assert source.calibration.origin == "OME-Zarr metadata"


def test_ome_zarr_without_units_or_scale(tmp_path, grey16):
    writer = pytest.importorskip("ome_zarr.writer")
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "plain.ome.zarr"
    writer.write_image(grey16, zarr.open_group(str(path), mode="w"), axes="yx", scale_factors=())
    assert not open_image(path).calibration.calibrated


# -- what cannot be read --------------------------------------------------------------------------
@pytest.mark.parametrize(("suffix", "package"), [(".czi", "bioio-czi"), (".nd2", "bioio-nd2")])
def test_vendor_file_without_the_extra_names_it(tmp_path, monkeypatch, suffix, package):
    from napari_segany.image import readers

    real = readers.importlib.util.find_spec
    monkeypatch.setattr(
        readers.importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("bioio_") else real(name, *a),
    )
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(b"vendor bytes")
    with pytest.raises(ImageSourceError) as error:
        open_image(path)
    message = str(error.value)
    assert 'pip install "napari-segany[formats]"' in message and package in message


def test_unknown_file_type_lists_the_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ImageSourceError, match=r"unsupported file type.*PNG, JPEG"):
        open_image(path)


# -- pixel sizes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.65", ((0.65, 0.65), "micrometer")),
        ("0.65um", ((0.65, 0.65), "micrometer")),
        ("0.65 µm", ((0.65, 0.65), "micrometer")),
        ("650nm", ((650.0, 650.0), "nanometer")),
        ("0.5,0.65", ((0.5, 0.65), "micrometer")),
        ("1e-3 mm", ((1e-3, 1e-3), "millimeter")),
    ],
)
def test_pixel_sizes_as_people_write_them(text, expected):
    assert parse_pixel_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "0.65 parsec", "1,2,3"])
def test_bad_pixel_sizes_are_clear_errors(text):
    with pytest.raises(ValueError, match="pixel size"):
        parse_pixel_size(text)


def test_unit_spellings():
    assert {length_unit(u) for u in ("µm", "μm", "um", "micron", "\\u00B5m")} == {"micrometer"}
    assert length_unit("pixel") is None and length_unit(None) is None
    assert time_unit("s") == "second" and time_unit("ms") == "millisecond"


def test_pixel_size_overrides_or_supplies(tmp_path, grey16):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, grey16, imagej=True, resolution=(2, 2), metadata={"unit": "um"})
    assert open_image(path).calibration.pixel_size == pytest.approx((0.5, 0.5))
    given = open_image(path, pixel_size=0.65).calibration
    assert given.pixel_size == (0.65, 0.65) and given.unit == "micrometer"
    assert given.origin == "given"
    assert open_image(grey16, pixel_size="100nm").calibration.unit == "nanometer"
    with pytest.raises(ImageSourceError, match="pixel size"):
        open_image(grey16, pixel_size="-3")
    kept = with_pixel_size(Calibration((1.0, 1.0), "micrometer", z_step=2.0), "500nm")
    assert kept.z_step == pytest.approx(2000.0)  # the z step follows the new unit


# -- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["grey8.png", "grey16.png", "rgb.jpg"])
def test_segment_command_reads_pictures(tmp_path, kind, capsys):
    from napari_segany.cli import main
    from napari_segany.labels_io import load_labels
    from napari_segany.synthetic import generate_nuclei

    nuclei, _ = generate_nuclei(shape=(256, 256), n_objects=12, seed=3)
    eight = (nuclei / max(1, nuclei.max()) * 255).astype(np.uint8)
    pixels = {"grey8.png": eight, "grey16.png": nuclei, "rgb.jpg": np.dstack([eight] * 3)}[kind]
    path = tmp_path / kind
    iio.imwrite(path, pixels)
    out = tmp_path / "out.labels.tif"
    args = ["segment", str(path), "-o", str(out), "--quiet", "--flips", "1", "--no-table"]
    assert main(args) == 0
    labels, _ = load_labels(out)
    assert labels.shape == (256, 256) and labels.max() >= 5  # the nuclei were found
    assert "objects" in capsys.readouterr().out
