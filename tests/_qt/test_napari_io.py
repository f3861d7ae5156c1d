"""Opening and saving through a napari viewer: which reader napari picks, Save All Layers, and
the image behind the object table.

File > Open, drag-and-drop and ``napari <file>`` call ``viewer.open(paths, plugin=None)``: napari
picks the reader from the preferences, or the only compatible one, and raises MultipleReaderError
where the GUI shows its "Choose reader" dialog. (In napari 0.9 a bare ``viewer.open(path)`` means
``plugin="napari"``, the builtin reader, so the tests pass ``plugin=None``.) Each test has its own
napari settings file, so reader preferences never leak between tests or into the user's settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany._qt.reader_preference import PLUGIN_NAME, activate
from napari_segany.labels_io import load_labels, save_labels

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def napari_settings(tmp_path, monkeypatch):
    """Fresh napari settings saved under ``tmp_path``, set up before the viewer."""
    from napari import settings
    from napari.settings import NapariSettings

    path = tmp_path / "napari" / "settings.yaml"
    monkeypatch.setattr(NapariSettings.model_fields["config_path"], "default", path)
    monkeypatch.setattr(settings, "_SETTINGS", None)
    return settings.get_settings()


@pytest.fixture
def labels():
    data = np.zeros((40, 50), np.uint32)
    data[3:15, 4:30] = 1
    data[20:38, 30:45] = 70000
    return data


@pytest.fixture
def image(rng, labels):
    return rng.integers(0, 4000, labels.shape).astype(np.uint16)


@pytest.fixture
def notices(monkeypatch):
    """The messages the writer shows in napari's notifications."""
    import napari.utils.notifications

    shown: list[str] = []
    monkeypatch.setattr(napari.utils.notifications, "show_info", shown.append)
    return shown


def _gui_open(viewer, *paths: Path) -> list:
    """Open the way File > Open does: no plugin named."""
    return viewer.open([str(p) for p in paths], plugin=None)


def _readers(path: Path) -> set[str]:
    from napari.plugins import _npe2

    return set(_npe2.get_readers(str(path)))


def test_an_ordinary_tiff_opens_with_napari_without_asking(viewer, tmp_path, image):
    activate()  # the plugin has been used: its preferences are in place
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image)
    assert _readers(path) == {"napari"}
    [layer] = _gui_open(viewer, path)
    assert layer._type_string == "image"
    assert layer.source.reader_plugin == "napari"
    np.testing.assert_array_equal(layer.data, image)


def test_an_ordinary_zarr_is_not_claimed(viewer, tmp_path, image):
    path = tmp_path / "image.zarr"
    zarr.create_array(str(path), shape=image.shape, dtype=image.dtype)[...] = image
    assert PLUGIN_NAME not in _readers(path)
    [layer] = _gui_open(viewer, path)
    assert layer.source.reader_plugin == "napari"
    np.testing.assert_array_equal(np.asarray(layer.data), image)


def test_labels_saved_by_the_writer_reopen_as_labels(viewer, tmp_path, labels):
    viewer.add_labels(labels, scale=(0.5, 0.25), units="micrometer", name="cells")
    # a name without extension gets the writer's first one, as in napari's Save dialog
    written = viewer.layers.save(str(tmp_path / "cells"), selected=True, plugin=PLUGIN_NAME)
    path = tmp_path / "cells.labels.tif"
    assert written == [str(path), str(tmp_path / "cells_objects.csv")]
    assert _readers(path) == {"napari", PLUGIN_NAME}  # napari's *.tif matches too ...
    viewer.layers.clear()
    [layer] = _gui_open(viewer, path)  # ... and the preference the writer recorded settles it
    assert layer._type_string == "labels"
    assert layer.source.reader_plugin == PLUGIN_NAME
    assert layer.name == "cells"
    np.testing.assert_array_equal(np.asarray(layer.data), labels)
    assert tuple(layer.scale) == pytest.approx((0.5, 0.25))
    assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]


def test_napari_asks_until_the_plugin_has_been_used(viewer, tmp_path, labels):
    from napari.errors import MultipleReaderError

    path = tmp_path / "cells.labels.tif"
    save_labels(path, labels, table=False)  # written outside napari: no preference yet
    with pytest.raises(MultipleReaderError):  # the GUI would ask
        _gui_open(viewer, path)
    activate()  # npe2 calls it when napari first uses any of the plugin's contributions
    [layer] = _gui_open(viewer, path)
    assert (layer._type_string, layer.source.reader_plugin) == ("labels", PLUGIN_NAME)


def test_an_ome_zarr_saved_from_napari_holds_the_labels(viewer, tmp_path, labels):
    viewer.add_labels(labels, scale=(0.5, 0.25), units="micrometer", name="cells")
    path = tmp_path / "cells.ome.zarr"
    written = viewer.layers.save(str(path), selected=True, plugin=PLUGIN_NAME)
    assert Path(written[0]) == path
    data, meta = load_labels(path)
    np.testing.assert_array_equal(data, labels)
    assert meta["scale"] == pytest.approx((0.5, 0.25))


def test_save_all_layers_saves_the_labels_and_names_the_skipped_layers(
    viewer, tmp_path, labels, image, notices
):
    viewer.add_image(image, name="nuclei")
    viewer.add_labels(labels, name="cells")
    viewer.add_points([[5, 5]], name="prompts")
    path = tmp_path / "all.labels.tif"
    written = viewer.layers.save(str(path), selected=False, plugin=PLUGIN_NAME)
    assert written == [str(path), str(tmp_path / "all_objects.csv")]
    [notice] = notices
    assert "skipped 'nuclei' (image), 'prompts' (points)" in notice
    np.testing.assert_array_equal(load_labels(path)[0], labels)


def test_save_all_layers_writes_one_file_per_labels_layer(viewer, tmp_path, labels, notices):
    viewer.add_labels(labels, name="cells")
    viewer.add_labels(labels > 0, name="mask")
    viewer.add_shapes([[[0, 0], [5, 5], [0, 5]]], shape_type="polygon", name="outline")
    # no plugin named: *.labels.tif is the longest extension a writer claims, ours
    written = viewer.layers.save(str(tmp_path / "all.labels.tif"), selected=False)
    assert written == [
        str(tmp_path / "all_cells.labels.tif"),
        str(tmp_path / "all_cells_objects.csv"),
        str(tmp_path / "all_mask.labels.tif"),
        str(tmp_path / "all_mask_objects.csv"),
    ]
    assert "'cells' → all_cells.labels.tif, 'mask' → all_mask.labels.tif" in notices[0]
    assert "'outline' (shapes)" in notices[0]
    viewer.layers.clear()
    layers = _gui_open(viewer, written[0], written[2])
    assert [layer.name for layer in layers] == ["all_cells", "all_mask"]


def _table(path: str):
    pd = pytest.importorskip("pandas")
    return pd.read_csv(path).set_index("id")


def _means(image: np.ndarray, labels: np.ndarray) -> list[float]:
    return [float(image[labels == i].mean()) for i in (1, 70000)]


def test_the_table_measures_the_image_shown_with_the_labels(viewer, tmp_path, labels, image):
    viewer.add_image(image, name="nuclei")
    viewer.add_points([[5, 5]], name="prompts")
    viewer.add_labels(labels, name="cells")
    _, table = viewer.layers.save(str(tmp_path / "cells.labels.tif"), selected=True)
    assert _table(table)["mean_intensity"].tolist() == pytest.approx(_means(image, labels))


def test_the_table_measures_the_current_plane_of_a_stack(viewer, tmp_path, labels, image):
    stack = np.stack([image // 4, image // 2, image])
    viewer.add_image(stack, name="stack")
    viewer.add_labels(labels, name="cells")  # 2D labels of one plane
    viewer.dims.set_current_step(0, 1)
    _, table = viewer.layers.save(str(tmp_path / "cells.labels.tif"), selected=True)
    assert _table(table)["mean_intensity"].tolist() == pytest.approx(_means(stack[1], labels))


def test_the_table_uses_the_image_named_in_the_labels_metadata(viewer, tmp_path, labels, image):
    viewer.add_image(image, name="first")
    viewer.add_image(image // 2, name="second")
    layer = viewer.add_labels(labels, name="cells")
    # two images fit: without a name the table has no intensities
    _, table = viewer.layers.save(str(tmp_path / "a.labels.tif"), selected=True)
    assert "mean_intensity" not in _table(table).columns
    layer.metadata["napari_segany_image"] = "second"
    _, table = viewer.layers.save(str(tmp_path / "b.labels.tif"), selected=True)
    assert _table(table)["mean_intensity"].tolist() == pytest.approx(_means(image // 2, labels))


def test_the_table_measures_each_channel_of_an_rgb_image(viewer, tmp_path, labels, image):
    rgb = np.stack([image % 256, image // 16, image % 7], axis=-1).astype(np.uint8)
    viewer.add_image(rgb, name="rgb", rgb=True)
    viewer.add_labels(labels, name="cells")
    _, table = viewer.layers.save(str(tmp_path / "cells.labels.tif"), selected=True)
    rows = _table(table)
    for c in range(3):
        assert rows[f"mean_intensity_{c}"].tolist() == pytest.approx(_means(rgb[..., c], labels))
