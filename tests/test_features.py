"""Per-object features: values against scikit-image, tile seams, the table and its CSV."""

import csv

import numpy as np
import pytest
from skimage.measure import regionprops_table

from _classify_scenes import mitosis_scene
from napari_segany.classify import features as features_module
from napari_segany.classify import object_features

PLAIN = ("shape", "intensity", "neighbours")


@pytest.fixture(scope="module")
def scene():
    return mitosis_scene(0)


def test_shape_and_intensity_match_scikit_image(scene):
    table = object_features(scene.raw, scene.labels, groups=PLAIN)
    ref = regionprops_table(
        scene.labels,
        scene.raw,
        properties=("label", "area", "eccentricity", "solidity", "intensity_mean", "centroid"),
    )
    assert table.ids.tolist() == ref["label"].tolist()
    np.testing.assert_array_equal(table["area"], ref["area"])
    np.testing.assert_allclose(table["eccentricity"], ref["eccentricity"], atol=1e-9)
    np.testing.assert_allclose(table["solidity"], ref["solidity"], atol=1e-9)
    np.testing.assert_allclose(table["intensity_mean"], ref["intensity_mean"], rtol=1e-9)
    np.testing.assert_allclose(table["centroid_row"], ref["centroid-0"], atol=1e-9)
    assert table.model is None and "embedding" not in table.groups


def test_objects_across_tile_seams_get_the_values_of_one_tile(scene, monkeypatch):
    whole = object_features(scene.raw, scene.labels, groups=PLAIN)
    monkeypatch.setattr(features_module, "PLAIN_TILE", 96)
    monkeypatch.setattr(features_module, "PLAIN_HALO", 16)
    tiled = object_features(scene.raw, scene.labels, groups=PLAIN)
    assert tiled.ids.tolist() == whole.ids.tolist()
    for name in whole.feature_names():
        np.testing.assert_allclose(tiled[name], whole[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_embedding_columns_record_the_model(scene):
    table = object_features(scene.raw, scene.labels, groups=("embedding",))
    names = table.feature_names(["embedding"])
    assert len(names) == 256 and names[0] == "embedding_mean_000"
    assert table.model["architecture"] == "segany_cells"
    assert np.isfinite(table.matrix(names)).all()
    assert np.ptp(table.matrix(names), axis=0).max() > 0  # objects differ


def test_neighbours_count_touching_objects():
    labels = np.zeros((40, 40), np.uint32)
    labels[5:15, 5:15], labels[5:15, 15:25], labels[30:35, 30:35] = 1, 2, 3
    image = np.ones((40, 40), np.float32)
    table = object_features(image, labels, groups=("neighbours",), neighbour_radii=(12,))
    assert table["touching_neighbours"].tolist() == [1, 1, 0]
    assert table["neighbours_12px"].tolist() == [1, 1, 0]


def test_csv_has_one_row_per_object(scene, tmp_path):
    table = object_features(scene.raw, scene.labels, groups=PLAIN)
    path = table.write_csv(tmp_path / "objects.csv")
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == table.ids.tolist()
    assert float(rows[0]["area"]) == table["area"][0]


def test_labels_that_do_not_fit_the_image_get_a_clear_error(scene):
    with pytest.raises(ValueError, match="do not match the image"):
        object_features(scene.raw, scene.labels[:-1], groups=PLAIN)
    with pytest.raises(ValueError, match="integer"):
        object_features(scene.raw, scene.labels.astype(float), groups=PLAIN)
    with pytest.raises(ValueError, match="feature groups"):
        object_features(scene.raw, scene.labels, groups=("colour",))
