"""Physical pixel sizes from image to labels: OME-Zarr scale and units, TIFF resolution tags,
the object table's physical columns; through save_labels and ``napari-segany segment``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from napari_segany.cli import main
from napari_segany.labels_io import load_labels, object_table, save_labels


@pytest.fixture
def labels():
    out = np.zeros((40, 50), np.uint16)
    out[2:6, 3:8] = 1  # 4 × 5 pixels
    out[20:30, 10:12] = 7  # 10 × 2 pixels
    return out


def _ome(path) -> dict:
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]
    return attrs["ome"]["multiscales"][0]


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- the table --------------------------------------------------------------------------------
def test_table_has_physical_columns_named_by_the_unit(labels):
    rows = object_table(labels, scale=(0.5, 0.25), unit="micrometer")
    first = rows[0]
    assert first["area"] == 20 and first["area_um2"] == pytest.approx(20 * 0.125)
    assert first["centroid_row_um"] == pytest.approx(3.5 * 0.5)
    assert first["centroid_col_um"] == pytest.approx(5.0 * 0.25)
    assert list(first)[:6] == [
        "id",
        "area",
        "area_um2",
        "centroid_row",
        "centroid_col",
        "centroid_row_um",
    ]
    in_nm = object_table(labels, scale=(500.0, 250.0), unit="nanometer")[0]
    assert in_nm["area_nm2"] == pytest.approx(20 * 125000.0)
    volume = object_table(labels[None], scale=(2.0, 0.5, 0.5), unit="micrometer")[0]
    assert volume["volume_um3"] == pytest.approx(20 * 0.5) and "centroid_plane_um" in volume


def test_table_stays_in_pixels_without_a_pixel_size(labels):
    row = object_table(labels)[0]
    assert not any(key.endswith(("_um", "_um2")) for key in row)
    assert set(object_table(labels, scale=(0.5, 0.5))[0]) == set(row)  # no unit: no name


# -- label files ------------------------------------------------------------------------------
def test_ome_zarr_labels_carry_scale_and_unit(tmp_path, labels):
    path = tmp_path / "cells.ome.zarr"
    saved = save_labels(path, labels, scale=(0.65, 0.65), unit="micrometer")
    multiscale = _ome(path)
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.65, 0.65]
    assert [axis["unit"] for axis in multiscale["axes"]] == ["micrometer"] * 2
    rows = _rows(saved.table)
    assert float(rows[0]["area_um2"]) == pytest.approx(20 * 0.65**2)


def test_tiff_labels_carry_the_pixel_size_in_resolution_tags(tmp_path, labels):
    path = tmp_path / "cells.labels.tif"
    save_labels(path, labels, scale=(0.65, 0.65), table=False)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.resolutionunit == tifffile.RESUNIT.CENTIMETER
        x_per_cm, y_per_cm = page.resolution
    assert 1e4 / x_per_cm == pytest.approx(0.65, rel=1e-6)
    assert 1e4 / y_per_cm == pytest.approx(0.65, rel=1e-6)
    _, meta = load_labels(path)
    assert meta["scale"] == pytest.approx((0.65, 0.65)) and meta["unit"] == "micrometer"


def test_uncalibrated_labels_say_no_unit(tmp_path, labels):
    path = tmp_path / "cells.labels.tif"
    save_labels(path, labels, table=False)
    _, meta = load_labels(path)
    assert meta["scale"] is None and meta["unit"] is None
    store = tmp_path / "cells.ome.zarr"
    save_labels(store, labels, table=False)
    assert all("unit" not in axis for axis in _ome(store)["axes"])


# -- the command line, end to end -------------------------------------------------------------
@pytest.fixture(scope="module")
def nuclei():
    from napari_segany.synthetic import generate_nuclei

    image, _ = generate_nuclei(shape=(256, 256), n_objects=12, seed=3)
    return image


def _ome_tiff(path, image):
    tifffile.imwrite(
        path, image, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65}
    )


def _imagej_tiff(path, image):
    tifffile.imwrite(
        path, image, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"unit": "micron"}
    )


def segment(*args) -> int:
    return main(["segment", *map(str, args), "--quiet", "--min-size", "1", "--flips", "1"])


@pytest.mark.parametrize("write", [_ome_tiff, _imagej_tiff], ids=["ome-tiff", "imagej-tiff"])
def test_calibrated_tiff_to_both_label_formats(tmp_path, nuclei, write, capsys):
    image = tmp_path / "cells.tif"
    write(image, nuclei)
    assert segment(image, "-o", tmp_path / "cells.ome.zarr") == 0
    assert "pixel size 0.65 × 0.65 micrometer" in capsys.readouterr().err
    multiscale = _ome(tmp_path / "cells.ome.zarr")
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [0.65, 0.65]
    )
    assert {axis["unit"] for axis in multiscale["axes"]} == {"micrometer"}
    rows = _rows(tmp_path / "cells_objects.csv")
    assert rows and all(
        float(r["area_um2"]) == pytest.approx(int(r["area"]) * 0.65**2) for r in rows
    )
    labels_tif = tmp_path / "cells.labels.tif"
    assert segment(image, "-o", labels_tif, "--no-table") == 0
    with tifffile.TiffFile(labels_tif) as tif:
        x_per_cm, _ = tif.pages[0].resolution
        assert tif.pages[0].resolutionunit == tifffile.RESUNIT.CENTIMETER
    assert 1e4 / x_per_cm == pytest.approx(0.65, rel=1e-6)


def test_pixel_size_option_overrides_and_supplies(tmp_path, nuclei, capsys):
    png = tmp_path / "cells.png"
    iio = pytest.importorskip("imageio.v3")
    iio.imwrite(png, (nuclei // 256).astype(np.uint8))
    assert segment(png, "-o", tmp_path / "plain.ome.zarr") == 0
    err = capsys.readouterr().err
    assert "no pixel size in the file" in err and "--pixel-size" in err
    assert "area_um2" not in _rows(tmp_path / "plain_objects.csv")[0]
    assert all("unit" not in axis for axis in _ome(tmp_path / "plain.ome.zarr")["axes"])

    assert segment(png, "-o", tmp_path / "given.ome.zarr", "--pixel-size", "0.5um") == 0
    assert "pixel size 0.5 × 0.5 micrometer (given)" in capsys.readouterr().err
    assert _ome(tmp_path / "given.ome.zarr")["datasets"][0]["coordinateTransformations"][0][
        "scale"
    ] == [0.5, 0.5]

    tiff = tmp_path / "cells.tif"
    _ome_tiff(tiff, nuclei)
    assert segment(tiff, "-o", tmp_path / "over.ome.zarr", "--pixel-size", "325nm") == 0
    multiscale = _ome(tmp_path / "over.ome.zarr")
    assert {axis["unit"] for axis in multiscale["axes"]} == {"nanometer"}
    assert "area_nm2" in _rows(tmp_path / "over_objects.csv")[0]


def test_bad_pixel_size_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "in.tif", "-o", "out.tif", "--pixel-size", "big"])
    assert "cannot read the pixel size 'big'" in capsys.readouterr().err


def test_napari_writer_names_units_as_ome_ngff(tmp_path, labels):
    pytest.importorskip("napari")
    from napari_segany._writer import write_labels

    meta = {"scale": (0.5, 0.5), "units": ("micron", "micron"), "name": "cells"}  # pint's name
    path = tmp_path / "cells.ome.zarr"
    write_labels(str(path), labels, meta)
    assert {axis["unit"] for axis in _ome(path)["axes"]} == {"micrometer"}
    assert "area_um2" in _rows(tmp_path / "cells_objects.csv")[0]


def test_python_result_carries_the_file_calibration(tmp_path, nuclei):
    from napari_segany.automatic import segment as segment_image

    path = tmp_path / "cells.ome.tif"
    _ome_tiff(path, nuclei)
    result = segment_image(path, flips=1)
    assert result.calibration.pixel_size == pytest.approx((0.65, 0.65))
    assert result.calibration.unit == "micrometer"
    assert segment_image(nuclei, flips=1).calibration.pixel_size is None
