"""``napari-segany features`` and ``napari-segany classify``: tables, folders, OME-Zarr."""

import csv

import numpy as np
import pytest

from _classify_scenes import accuracy, mitosis_scene, pick_examples, truth
from napari_segany.classify import ObjectClassifier
from napari_segany.cli import main
from napari_segany.labels_io import load_labels, save_labels

PLAIN = ("shape", "intensity", "neighbours")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two scenes as .npy images with TIFF labels, and a classifier trained on the first."""
    folder = tmp_path_factory.mktemp("objects")
    scenes = [mitosis_scene(seed) for seed in (5, 6)]
    paths = []
    for k, scene in enumerate(scenes):
        image = folder / f"cells{k}.npy"
        np.save(image, scene.raw)
        labels = save_labels(folder / f"cells{k}.labels.tif", scene.labels, table=False).labels
        paths.append((str(image), str(labels)))
    examples = pick_examples(truth(scenes[0], "kind"), 4, seed=0)
    clf = ObjectClassifier(groups=PLAIN).fit(scenes[0].raw, scenes[0].labels, examples)
    return scenes, paths, clf.save(folder / "kind.classifier.npz"), clf


def _read(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_features_writes_one_table(files, tmp_path):
    scenes, paths, _, _ = files
    out = tmp_path / "objects.csv"
    code = main(["features", paths[0][0], "--labels", paths[0][1], "-o", str(out), "--quiet",
                 "--groups", "shape,intensity"])  # fmt: skip
    assert code == 0
    rows = _read(out)
    assert len(rows) == len(scenes[0].objects)
    assert {"id", "area", "solidity", "intensity_mean"} <= set(rows[0])
    assert not any(name.startswith("embedding_") for name in rows[0])


def test_features_with_the_embedding(files, tmp_path):
    _, paths, _, _ = files
    out = tmp_path / "objects.csv"
    assert main(["features", paths[1][0], "--labels", paths[1][1], "-o", str(out), "--quiet",
                 "--device", "cpu"]) == 0  # fmt: skip
    assert "embedding_mean_255" in _read(out)[0]


def test_classify_writes_classes_for_many_images_into_a_folder(files, tmp_path):
    scenes, paths, classifier, clf = files
    images, labels = [p[0] for p in paths], [p[1] for p in paths]
    code = main(["classify", *images, "--labels", *labels, "--classifier", str(classifier),
                 "-o", str(tmp_path / "out"), "--quiet"])  # fmt: skip
    assert code == 0
    for k, scene in enumerate(scenes):
        rows = _read(tmp_path / "out" / f"cells{k}_classes.csv")
        predicted = {int(r["id"]): r["class"] for r in rows}
        assert accuracy(predicted, truth(scene, "kind")) >= 0.8
        for row in rows:
            p = {c: float(row[f"probability_{c}"]) for c in clf.classes}
            assert float(row["class_probability"]) == max(p.values())
            assert row["class"] == max(p, key=p.get)
    # the same answers as the classifier from Python
    table = clf.features(scenes[1].raw, scenes[1].labels)
    rows = _read(tmp_path / "out" / "cells1_classes.csv")
    assert {int(r["id"]): r["class"] for r in rows} == clf.predict_table(table)


def test_classify_puts_classes_into_ome_zarr_properties(files, tmp_path):
    scenes, paths, classifier, _ = files
    zarr_labels = save_labels(tmp_path / "cells0.ome.zarr", scenes[0].labels).labels
    out = tmp_path / "classes.csv"
    code = main(["classify", paths[0][0], "--labels", str(zarr_labels), "--classifier",
                 str(classifier), "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    _, meta = load_labels(zarr_labels)
    properties = {int(p["label-value"]): p for p in meta["properties"]}
    classes = {int(r["id"]): r["class"] for r in _read(out)}
    assert {i: properties[i]["class"] for i in classes} == classes
    assert "area" in properties[next(iter(classes))]  # the table's properties stay


def test_clear_errors(files, tmp_path, capsys):
    _, paths, classifier, _ = files
    out = str(tmp_path / "x.csv")
    assert main(["classify", paths[0][0], "--labels", paths[1][1], paths[0][1],
                 "--classifier", str(classifier), "-o", out]) == 1  # fmt: skip
    assert "one --labels file per IMAGE" in capsys.readouterr().err
    assert main(["classify", paths[0][0], "--labels", paths[0][1],
                 "--classifier", paths[0][0], "-o", out]) == 1  # fmt: skip
    assert "not a napari-segany object classifier" in capsys.readouterr().err
    assert main(["features", paths[0][0], "--labels", paths[0][1], "-o", out,
                 "--groups", "colour"]) == 1  # fmt: skip
    assert "--groups" in capsys.readouterr().err
