"""napari reader and writer contributions for label images, called directly (no viewer).

Tests through a napari viewer (reader choice, Save All Layers, the image behind the table) are in
``tests/_qt/test_napari_io.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany._reader import napari_get_reader, read_labels
from napari_segany._writer import write_labels, write_layers
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
    float_labels = tmp_path / "floats.labels.tif"  # named as labels, but holds no IDs
    tifffile.imwrite(float_labels, rng.random((30, 30), dtype=np.float32))
    rgb_labels = tmp_path / "rgb.labels.tif"
    tifffile.imwrite(
        rgb_labels, rng.integers(0, 255, (30, 30, 3)).astype(np.uint8), photometric="rgb"
    )
    junk_labels = tmp_path / "junk.labels.tif"
    junk_labels.write_bytes(b"this is not a tiff")
    return [
        image_tif,
        junk_tif,
        text,
        float_zarr,
        not_zarr,
        image_zarr,
        float_labels,
        rgb_labels,
        junk_labels,
    ]


def test_reader_getter_returns_none_for_what_it_cannot_read(tmp_path, foreign_files):
    for path in foreign_files:
        assert napari_get_reader(str(path)) is None, path
    assert napari_get_reader(str(tmp_path / "missing.tif")) is None
    assert napari_get_reader(str(tmp_path / "missing.labels.tif")) is None
    assert napari_get_reader(str(tmp_path / "missing.zarr")) is None
    assert napari_get_reader(None) is None
    assert napari_get_reader([]) is None
    assert napari_get_reader(12345) is None


def test_reader_opens_any_integer_tiff_named_labels(tmp_path, labels):
    """A file named *.labels.tif is a label image, whoever wrote it."""
    path = tmp_path / "theirs.labels.tif"
    tifffile.imwrite(path, labels.astype(np.uint16))
    assert napari_get_reader(str(path)) is not None
    # the same pixels without the name are an image: left to napari's reader
    plain = tmp_path / "theirs.tif"
    tifffile.imwrite(plain, labels.astype(np.uint16))
    assert napari_get_reader(str(plain)) is None
    [(data, kwargs, kind)] = read_labels(str(path))
    assert (kind, kwargs["name"]) == ("labels", "theirs")
    np.testing.assert_array_equal(data, labels.astype(np.uint16))


@pytest.mark.parametrize(
    "suffix", [".labels.tif", ".labels.tiff", ".tif", ".tiff", ".zarr", ".ome.zarr"]
)
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


def _ome_zarr_image(path, shape, scale):
    """An empty OME-Zarr 0.5 image (one uint8 level) with pixel size ``scale`` (y, x)."""
    group = zarr.open_group(str(path), mode="w")
    group.create_array("0", shape=shape, dtype=np.uint8)
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    transform = [{"type": "scale", "scale": list(scale)}]
    dataset = {"path": "0", "coordinateTransformations": transform}
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [dataset]}]}
    return path


def test_reader_opens_plain_zarr_labels_and_the_labels_of_an_image(tmp_path, labels):
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=labels.shape, dtype=np.int32)[...] = labels.astype(np.int32)
    [(data, _, kind)] = napari_get_reader(str(plain))(str(plain))
    assert kind == "labels"
    np.testing.assert_array_equal(data, labels.astype(np.int32))

    image = _ome_zarr_image(tmp_path / "image.zarr", labels.shape, scale=(2.0, 3.0))
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


@pytest.mark.parametrize("suffix", [".labels.tif", ".tif", ".zarr"])
def test_writer_saves_a_layer_and_its_table(tmp_path, labels, suffix):
    meta = {"scale": np.array([0.5, 0.5]), "units": ("micrometer", "micrometer"), "name": "cells"}
    path = tmp_path / f"out{suffix}"
    written = write_labels(str(path), labels, meta)  # exactly where napari asks
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


def _layer(data, name, kind, **meta):
    return data, {"name": name, "scale": (1.0,) * np.ndim(data), **meta}, kind


def test_writer_without_a_format_extension_appends_labels_tif(tmp_path, labels):
    written = write_labels(str(tmp_path / "cells"), labels, {"name": "cells"})
    assert written == [str(tmp_path / "cells.labels.tif"), str(tmp_path / "cells_objects.csv")]
    written = write_labels(str(tmp_path / "more.labels"), labels, {"name": "cells"})
    assert written[0] == str(tmp_path / "more.labels.tif")


def test_writer_saves_every_labels_layer_and_reports_the_others(tmp_path, labels, caplog):
    layers = [
        _layer(labels.astype(np.uint16), "image", "image"),
        _layer(labels, "cells", "labels"),
        _layer(np.array([[1.0, 2.0]]), "prompts", "points"),
        _layer(labels > 0, "mask / v2", "labels"),
    ]
    with caplog.at_level("INFO", logger="napari_segany._writer"):
        written = write_layers(str(tmp_path / "all.labels.tif"), layers)
    assert written == [
        str(tmp_path / "all_cells.labels.tif"),
        str(tmp_path / "all_cells_objects.csv"),
        str(tmp_path / "all_mask_v2.labels.tif"),
        str(tmp_path / "all_mask_v2_objects.csv"),
    ]
    np.testing.assert_array_equal(load_labels(written[2])[0], labels > 0)
    assert "'image' (image), 'prompts' (points)" in caplog.text
    assert "'cells' → all_cells.labels.tif" in caplog.text


def test_writer_puts_several_layers_into_an_ome_zarr_image(tmp_path, labels):
    image = _ome_zarr_image(tmp_path / "image.ome.zarr", labels.shape, scale=(1, 1))
    layers = [_layer(labels, "cells", "labels"), _layer(labels > 0, "cells", "labels")]
    write_layers(str(image), layers)
    names = [kw["name"] for _, kw, _ in read_labels(str(image))]
    assert names == ["cells", "cells_2"]


def test_writer_measures_the_image_it_is_given(tmp_path, labels, rng):
    pd = pytest.importorskip("pandas")

    image = rng.integers(0, 1000, labels.shape).astype(np.uint16)
    stack = np.stack([image * 0, image])  # a stack: no viewer says which plane
    layers = [
        _layer(image, "nuclei", "image"),
        _layer(stack, "stack", "image"),
        _layer(labels, "cells", "labels"),
    ]
    _, table = write_layers(str(tmp_path / "cells.labels.tif"), layers)
    rows = pd.read_csv(table).set_index("id")
    for i in (1, 70000):
        assert rows.loc[i, "mean_intensity"] == pytest.approx(image[labels == i].mean())
    # without an image that fits, the table has no intensity column
    _, table = write_layers(str(tmp_path / "alone.labels.tif"), layers[1:])
    assert "mean_intensity" not in pd.read_csv(table).columns


def test_manifest_reader_claims_the_patterns_we_prefer():
    npe2 = pytest.importorskip("npe2")
    from napari_segany._qt.reader_preference import READER_PATTERNS

    manifest = npe2.PluginManifest.from_distribution("napari-segany")
    [reader] = manifest.contributions.readers
    assert tuple(reader.filename_patterns) == READER_PATTERNS
    assert not reader.accepts_directories  # npe2 would offer every folder to it
    assert manifest.on_activate == "napari_segany._qt.reader_preference:activate"
    [writer] = manifest.contributions.writers
    assert writer.filename_extensions[0] == ".labels.tif"  # what napari appends by default


def test_writer_refuses_layers_without_labels(tmp_path, labels):
    with pytest.raises(ValueError, match="select a Labels layer"):
        write_layers(str(tmp_path / "x.labels.tif"), [_layer(labels, "image", "image")])
    assert not list(tmp_path.iterdir())


def test_layers_with_the_same_name_get_files_of_their_own(tmp_path, labels):
    layers = [_layer(labels, n, "labels") for n in ("a", "a_2", "a")]
    written = write_layers(str(tmp_path / "x.tif"), layers)
    assert [Path(p).name for p in written[::2]] == [
        "x_a.labels.tif",
        "x_a_2.labels.tif",
        "x_a_3.labels.tif",
    ]
