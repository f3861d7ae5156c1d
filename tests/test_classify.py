"""The object classifier: classes from a few examples, reuse on other images, its file."""

import json

import numpy as np
import pytest

from _classify_scenes import accuracy, mitosis_scene, pick_examples, truth
from napari_segany.classify import ClassifierFileError, ObjectClassifier
from napari_segany.classify.classifier_file import (
    Forest,
    read_classifier_file,
    write_classifier_file,
)

PLAIN = ("shape", "intensity", "neighbours")


@pytest.fixture(scope="module")
def scenes():
    return [mitosis_scene(seed) for seed in (1, 2)]


@pytest.fixture(scope="module")
def measured(scenes):
    """Every feature (embedded model) of both scenes."""
    clf = ObjectClassifier(device="cpu")
    return [clf.features(s.raw, s.labels) for s in scenes]


@pytest.fixture(scope="module")
def kind_classifier(scenes, measured):
    examples = pick_examples(truth(scenes[0], "kind"), 4, seed=0)
    return ObjectClassifier(device="cpu").fit_table(measured[0], examples), examples


@pytest.mark.parametrize("by", ["brightness", "size", "kind"])
def test_classes_are_learned_from_four_examples_each(scenes, measured, by):
    classes = truth(scenes[0], by)
    examples = pick_examples(classes, 4, seed=3)
    clf = ObjectClassifier(device="cpu").fit_table(measured[0], examples)
    predicted = clf.predict_table(measured[0])
    assert set(predicted) == set(measured[0].ids.tolist())
    assert accuracy(predicted, classes, skip=examples) >= 0.85


def test_fit_and_predict_on_images(scenes):
    scene = scenes[0]
    classes = truth(scene, "kind")
    examples = pick_examples(classes, 4, seed=1)
    clf = ObjectClassifier(device="cpu").fit(scene.raw, scene.labels, examples)
    predicted = clf.predict(scene.raw, scene.labels)
    assert accuracy(predicted, classes, skip=examples) >= 0.8
    proba = clf.predict_proba(scene.raw, scene.labels)
    for object_id, row in proba.items():
        assert set(row) == {"nucleus", "mitotic"}
        assert sum(row.values()) == pytest.approx(1.0)
        assert max(row, key=row.get) == predicted[object_id]


def test_a_classifier_trained_on_one_image_classifies_another(scenes, measured, kind_classifier):
    clf, _ = kind_classifier
    assert accuracy(clf.predict_table(measured[1]), truth(scenes[1], "kind")) >= 0.8


def test_saved_and_reloaded_it_gives_the_same_answers(measured, kind_classifier, tmp_path):
    clf, _ = kind_classifier
    path = clf.save(tmp_path / "kind.classifier.npz")
    again = ObjectClassifier.load(path, device="cpu")
    assert again.classes == clf.classes and again.feature_names == clf.feature_names
    assert again.model_record == clf.model_record
    for table in measured:
        np.testing.assert_array_equal(again.probabilities(table), clf.probabilities(table))
    # and it goes on learning from more examples
    again.fit_table(measured[1], {int(measured[1].ids[0]): "nucleus"})
    assert sum(again.example_counts.values()) == sum(clf.example_counts.values()) + 1


def test_the_forest_arrays_predict_as_scikit_learn():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(int) + (x[:, 1] > 1)
    forest = RandomForestClassifier(50, random_state=0).fit(x, y)
    test = rng.normal(size=(200, 5))
    ours = Forest.from_sklearn(forest).predict_proba(test)
    np.testing.assert_allclose(ours, forest.predict_proba(test), atol=1e-12)


def test_repeated_fits_add_examples_from_several_images(scenes):
    a, b = scenes
    clf = ObjectClassifier(groups=PLAIN)
    ex_a = pick_examples(truth(a, "kind"), 2, seed=0)
    ex_b = pick_examples(truth(b, "kind"), 2, seed=0)
    clf.fit(a.raw, a.labels, ex_a)
    clf.fit(b.raw, b.labels, ex_b)
    assert clf.example_counts == {"mitotic": 4, "nucleus": 4}
    listed = ObjectClassifier(groups=PLAIN).fit([a.raw, b.raw], [a.labels, b.labels], [ex_a, ex_b])
    table = clf.features(b.raw, b.labels)
    np.testing.assert_array_equal(listed.probabilities(table), clf.probabilities(table))


def test_bad_examples_get_clear_errors_and_are_not_kept(scenes):
    scene = scenes[0]
    clf = ObjectClassifier(groups=PLAIN)
    missing = int(scene.labels.max()) + 5
    with pytest.raises(ValueError, match=rf"\[{missing}\] are not in the labels"):
        clf.fit(scene.raw, scene.labels, {1: "a", missing: "b"})
    with pytest.raises(ValueError, match="at least two classes"):
        clf.fit(scene.raw, scene.labels, {1: "a", 2: "a"})
    assert clf.example_counts == {} and not clf.trained
    with pytest.raises(ValueError, match="non-empty strings"):
        clf.fit(scene.raw, scene.labels, {1: "a", 2: 3})
    with pytest.raises(ValueError, match="not trained"):
        clf.predict(scene.raw, scene.labels)


def test_features_of_another_model_are_refused(measured, kind_classifier):
    clf, _ = kind_classifier
    table = measured[0].take(np.arange(3))
    table.model = {"architecture": "vit_b", "weights_hash": "0" * 32}
    with pytest.raises(ValueError, match="another model"):
        clf.predict_table(table)


def test_a_file_of_another_feature_set_is_refused(kind_classifier, tmp_path):
    clf, _ = kind_classifier
    path = clf.save(tmp_path / "old.npz")
    meta, arrays = read_classifier_file(path)
    meta["feature_version"] = "segany-object-features/0"
    for key in ("format", "format_version"):
        meta.pop(key)
    write_classifier_file(path, meta, arrays)
    with pytest.raises(ClassifierFileError, match="feature set 'segany-object-features/0'"):
        ObjectClassifier.load(path)


def test_loading_never_unpickles_and_checks_the_trees(kind_classifier, tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, meta=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(ClassifierFileError, match="not a napari-segany object classifier"):
        ObjectClassifier.load(pickled)
    clf, _ = kind_classifier
    path = clf.save(tmp_path / "loop.npz")
    meta, arrays = read_classifier_file(path)
    arrays["children_left"] = arrays["children_left"].copy()
    arrays["children_left"][1] = 0  # a child that points back: walking would never end
    for key in ("format", "format_version"):
        meta.pop(key)
    write_classifier_file(path, meta, arrays)
    with pytest.raises(ClassifierFileError, match="invalid child nodes"):
        ObjectClassifier.load(path)
    (tmp_path / "text.npz").write_text(json.dumps({"classes": []}))
    with pytest.raises(ClassifierFileError):
        ObjectClassifier.load(tmp_path / "text.npz")


@pytest.mark.slow
def test_large_tiled_images_with_zarr_labels(kind_classifier, tmp_path):
    """Features from many tiles' embeddings and labels read from zarr, tile by tile."""
    import zarr

    scene = mitosis_scene(9, shape=(640, 640))
    labels = zarr.create_array(
        tmp_path / "labels.zarr", shape=scene.labels.shape, chunks=(128, 128), dtype="uint32"
    )
    labels[:] = scene.labels
    clf = kind_classifier[0].copy()
    clf.tile_size, clf.halo = 256, 32
    table = clf.features(scene.raw, labels)
    assert table.ids.tolist() == sorted(o.label for o in scene.objects)
    assert accuracy(clf.predict_table(table), truth(scene, "kind")) >= 0.8
