"""napari reader and writer contributions for label images.

The viewer round trip is marked ``gui``; run it with ``xvfb-run -a pytest -m gui ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany._reader import napari_get_reader, read_labels
from napari_segany._writer import write_labels
from napari_segany.labels_io import load_labels, save_labels


@pytest.fixture
def labels(rng):
    data = np.zeros((40, 57), np.uint32)
    data[3:15, 4:30] = 1
    data[20:38, 40:55] = 70000
    data[30, 2] = 2**32 - 1
    return data


@pytest.fixture
def foreign_files(tmp_path, rng):
    """Files napari-segany must leave to other readers."""
    image_tif = tmp_path / "image.tif"
    tifffile.imwrite(image_tif, rng.integers(0, 4000, (30, 30)).astype(np.uint16))
    junk_tif = tmp_path / "junk.tif"
    junk_tif.write_bytes(b"this is not a tiff")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    float_zarr = tmp_path / "floats.zarr"
    zarr.create_array(str(float_zarr), shape=(4, 4), dtype=np.float32)[...] = 1.5
    not_zarr = tmp_path / "folder.zarr"
    not_zarr.mkdir()
    image_zarr = tmp_path / "image_only.zarr"  # an OME-Zarr image without labels
    group = zarr.open_group(str(image_zarr), mode="w")
    group.create_array("0", shape=(8, 8), dtype=np.uint8)
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                "datasets": [
                    {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}
                ],
            }
        ],
    }
    return [image_tif, junk_tif, text, float_zarr, not_zarr, image_zarr]


def test_reader_getter_returns_none_for_what_it_cannot_read(tmp_path, foreign_files):
    for path in foreign_files:
        assert napari_get_reader(str(path)) is None, path
    assert napari_get_reader(str(tmp_path / "missing.tif")) is None
    assert napari_get_reader(str(tmp_path / "missing.zarr")) is None
    assert napari_get_reader(None) is None
    assert napari_get_reader([]) is None
    assert napari_get_reader(12345) is None


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".zarr", ".ome.zarr"])
def test_reader_opens_what_we_write_with_its_scale(tmp_path, labels, suffix):
    path = tmp_path / f"cells{suffix}"
    save_labels(path, labels, scale=(0.5, 0.25), table=False)
    reader = napari_get_reader(str(path))
    assert callable(reader)
    [(data, kwargs, kind)] = reader(str(path))
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(data), labels)
    assert kwargs["scale"] == pytest.approx((0.5, 0.25))
    assert kwargs["name"] == "cells"
    # a list of paths is read in one go
    assert len(napari_get_reader([str(path), str(path)])([str(path), str(path)])) == 2


def test_reader_opens_plain_zarr_labels_and_the_labels_of_an_image(tmp_path, labels):
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=labels.shape, dtype=np.int32)[...] = labels.astype(np.int32)
    [(data, _, kind)] = napari_get_reader(str(plain))(str(plain))
    assert kind == "labels"
    np.testing.assert_array_equal(data, labels.astype(np.int32))

    image = tmp_path / "image.zarr"
    group = zarr.open_group(str(image), mode="w")
    group.create_array("0", shape=labels.shape, dtype=np.uint8)
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [{"type": "scale", "scale": [2.0, 3.0]}],
                    }
                ],
            }
        ],
    }
    save_labels(image, labels, name="cells", table=False)
    save_labels(image, labels > 0, name="mask", table=False)
    layers = napari_get_reader(str(image))(str(image))
    assert [kw["name"] for _, kw, _ in layers] == ["cells", "mask"]
    assert layers[0][1]["scale"] == (2.0, 3.0)
    np.testing.assert_array_equal(layers[1][0], labels > 0)


def test_reader_keeps_large_labels_on_disk_as_a_multiscale(tmp_path, monkeypatch):
    from napari_segany import _reader

    labels = np.zeros((300, 500), np.uint16)
    labels[100:200, 100:300] = 5
    path = tmp_path / "big.zarr"
    save_labels(path, labels, table=False)
    monkeypatch.setattr(_reader, "_IN_MEMORY_LIMIT", 1000)
    [(data, _, _)] = read_labels(str(path))
    assert not isinstance(data, np.ndarray)
    monkeypatch.setattr("napari_segany.labels_io.ome_zarr._STANDALONE_MAX_SIDE", 200)
    save_labels(path, labels, table=False, overwrite=True)
    [(data, _, _)] = read_labels(str(path))
    assert isinstance(data, list)
    assert [lv.shape for lv in data] == [(300, 500), (150, 250), (75, 125)]  # halved to ≤ 200
    np.testing.assert_array_equal(data[0][...], labels)


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_writer_saves_a_layer_and_its_table(tmp_path, labels, suffix):
    meta = {"scale": np.array([0.5, 0.5]), "units": ("micrometer", "micrometer"), "name": "cells"}
    path = tmp_path / f"out{suffix}"
    written = write_labels(str(path), labels, meta)
    assert written == [str(path), str(tmp_path / "out_objects.csv")]
    data, meta_back = load_labels(path)
    np.testing.assert_array_equal(data, labels)
    assert meta_back["scale"] == pytest.approx((0.5, 0.5))
    assert meta_back["unit"] == "micrometer"
    # napari's dialog has confirmed the overwrite already
    write_labels(str(path), labels * 0, meta)
    assert load_labels(path)[0].max() == 0


def test_writer_maps_napari_pixel_units_and_features(tmp_path, labels):
    pd = pytest.importorskip("pandas")

    features = pd.DataFrame({"label": [1, 70000], "predicted_iou": [0.9, 0.8]})
    path = tmp_path / "px.tif"
    meta = {"scale": (1.0, 1.0), "units": ("pixel", "pixel"), "name": "x", "features": features}
    _, table = write_labels(str(path), [labels, labels[::2, ::2]], meta)
    assert load_labels(path)[1]["scale"] is None  # napari's default scale means "unknown"
    rows = pd.read_csv(table)
    assert rows.set_index("id").loc[1, "predicted_iou"] == 0.9
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].resolutionunit == tifffile.RESUNIT.NONE


@pytest.mark.gui
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_napari_save_and_open_round_trip(make_napari_viewer, tmp_path, labels, suffix):
    viewer = make_napari_viewer()
    viewer.add_labels(labels, scale=(0.5, 0.25), units="micrometer", name="cells")
    path = tmp_path / f"saved{suffix}"
    written = viewer.layers.save(str(path), selected=True, plugin="napari-segany")
    assert Path(written[0]) == path and path.exists()
    viewer.layers.clear()
    layers = viewer.open(str(path), plugin="napari-segany")
    assert len(layers) == 1 and layers[0]._type_string == "labels"
    np.testing.assert_array_equal(np.asarray(layers[0].data), labels)
    assert tuple(layers[0].scale) == pytest.approx((0.5, 0.25))
    assert [str(u) for u in layers[0].units] == ["micrometer", "micrometer"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_reader_opens_labels_written_by_ome_zarr_py(tmp_path):
    ome_writer = pytest.importorskip("ome_zarr.writer")
    path = tmp_path / "theirs.zarr"
    group = zarr.open_group(str(path), mode="w")
    ome_writer.write_image(np.zeros((64, 80), np.uint8), group, axes="yx", scale_factors=(2,))
    labels = np.zeros((64, 80), np.uint16)
    labels[10:40, 20:50] = 3
    ome_writer.write_labels(labels, group, name="nuclei", axes="yx", scale_factors=(2,))
    [(data, kwargs, kind)] = napari_get_reader(str(path))(str(path))
    assert (kind, kwargs["name"]) == ("labels", "nuclei")
    np.testing.assert_array_equal(data, labels)
