"""The annotator's "Object classes" panel: classes from clicked examples, live retraining,
class colours and counts, save/load, another image, a folder, and "find more like these".

Uses the embedded model on small synthetic scenes of nuclei and mitotic figures. Needs a
display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from _classify_scenes import accuracy, mitosis_scene, pick_examples, truth
from napari_segany._qt.user_input import click

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def scenes():
    return [mitosis_scene(seed, shape=(256, 256)) for seed in (7, 8)]


def _pixel_of(labels, object_id) -> tuple[float, float]:
    rows, cols = np.nonzero(labels == object_id)
    k = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return float(rows[k]), float(cols[k])


def _panel(viewer, make_annotator, scene):
    viewer.add_image(scene.raw, name="cells")
    labels = viewer.add_labels(scene.labels.astype(np.uint32), name="segmentation")
    ui = make_annotator()
    ui.widget.device_combo.setCurrentText("cpu")
    return ui, ui.widget.classes, labels


def _teach(qtbot, panel, layer, scene, examples):
    """Add the classes, click every example with its class selected, wait for the classes."""
    names = sorted(set(examples.values()))
    for name in names:
        panel.add_class(name)
    panel.assign_button.setChecked(True)
    for object_id, name in examples.items():
        panel.table.selectRow(names.index(name))
        click(layer, _pixel_of(scene.labels, object_id))
    qtbot.waitUntil(
        lambda: (
            len(panel.state.predicted) == len(scene.objects)
            and panel.annotator.jobs.worker("classes") is None
        ),
        timeout=WAIT_MS,
    )


def test_clicked_examples_classify_every_object(
    cache, viewer, make_annotator, scenes, qtbot, tmp_path
):
    from napari.utils.colormaps import DirectLabelColormap

    scene = scenes[0]
    _, panel, layer = _panel(viewer, make_annotator, scene)
    assert panel.labels_combo.currentText() == "segmentation"
    assert panel.image_combo.currentText() == "cells"
    classes = truth(scene, "kind")
    examples = pick_examples(classes, 4, seed=2)
    own = layer.colormap
    _teach(qtbot, panel, layer, scene, examples)
    assert panel.state.examples == examples
    predicted = panel.state.predicted
    assert accuracy(predicted, classes, skip=examples) >= 0.8
    # class colours on the layer, counts in the table
    assert isinstance(layer.colormap, DirectLabelColormap)
    mitotic = next(i for i, c in predicted.items() if c == "mitotic")
    colour = panel.state.classes[panel.state.names().index("mitotic")].colour
    np.testing.assert_allclose(layer.colormap.color_dict[mitotic], colour)
    for row, name in enumerate(panel.state.names()):
        shown = [panel.table.item(row, k).text() for k in range(3)]
        expected = [name, "4", str(sum(c == name for c in predicted.values()))]
        assert shown == expected
    # the classes are in the layer's features, and saved into OME-Zarr properties
    from napari_segany._writer import write_labels
    from napari_segany.labels_io import load_labels

    frame = layer.features.set_index("index")
    assert frame.loc[mitotic, "class"] == "mitotic"
    assert frame.loc[mitotic, "class_probability"] >= 0.5
    written = write_labels(
        str(tmp_path / "cells.ome.zarr"),
        layer.data,
        {"name": layer.name, "features": layer.features, "scale": layer.scale},
    )
    _, meta = load_labels(written[0])
    properties = {int(p["label-value"]): p for p in meta["properties"]}
    assert {i: properties[i]["class"] for i in predicted} == predicted
    # and into the object table beside the labels
    import csv

    with open(tmp_path / "cells_objects.csv", newline="") as handle:
        rows = {int(r["id"]): r for r in csv.DictReader(handle)}
    assert {i: rows[i]["class"] for i in predicted} == predicted
    assert float(rows[mitotic]["class_probability"]) >= 0.5
    # Shift-click removes an example and retrains
    first = next(iter(examples))
    click(layer, _pixel_of(scene.labels, first), modifiers=("Shift",))
    assert first not in panel.state.examples
    qtbot.waitUntil(lambda: panel.annotator.jobs.worker("classes") is None, timeout=WAIT_MS)
    # class colours off: the layer's own colours come back
    panel.show_check.setChecked(False)
    assert type(layer.colormap) is type(own) and not isinstance(layer.colormap, DirectLabelColormap)
    # saved and loaded, it classifies the same
    path = panel.save(tmp_path / "kind.npz")
    before = dict(panel.state.predicted)
    panel.load(path)
    qtbot.waitUntil(lambda: bool(panel.state.predicted), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.annotator.jobs.worker("classes") is None, timeout=WAIT_MS)
    assert panel.state.predicted == before
    assert [c.colour for c in panel.state.classes] == [
        tuple(panel.base.colours[n]) for n in panel.state.names()
    ]


def test_a_classifier_applies_to_another_image_and_a_folder(
    cache, viewer, make_annotator, scenes, qtbot, tmp_path
):
    from napari_segany.classify import ObjectClassifier
    from napari_segany.labels_io import save_labels

    first, second = scenes
    examples = pick_examples(truth(first, "kind"), 4, seed=0)
    path = (
        ObjectClassifier(device="cpu")
        .fit(first.raw, first.labels, examples)
        .save(tmp_path / "kind.npz")
    )
    _, panel, _ = _panel(viewer, make_annotator, first)
    viewer.add_image(second.raw, name="other")
    viewer.add_labels(second.labels.astype(np.uint32), name="other objects")
    panel.labels_combo.setCurrentText("other objects")
    panel._layer_chosen()
    panel.image_combo.setCurrentText("other")
    panel.load(path)
    qtbot.waitUntil(lambda: len(panel.state.predicted) == len(second.objects), timeout=WAIT_MS)
    assert accuracy(panel.state.predicted, truth(second, "kind")) >= 0.8
    qtbot.waitUntil(lambda: panel.annotator.jobs.worker("classes") is None, timeout=WAIT_MS)

    folder = tmp_path / "folder"
    folder.mkdir()
    for k, scene in enumerate(scenes):
        np.save(folder / f"scene{k}.npy", scene.raw)
        save_labels(folder / f"scene{k}.labels.tif", scene.labels, table=False)
    panel.classify_folder(folder, tmp_path / "tables")
    qtbot.waitUntil(lambda: panel.annotator.jobs.worker("classes") is None, timeout=WAIT_MS)
    for k, scene in enumerate(scenes):
        with open(tmp_path / "tables" / f"scene{k}_classes.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert accuracy({int(r["id"]): r["class"] for r in rows}, truth(scene, "kind")) >= 0.8


def test_bad_input_gets_a_message(cache, viewer, make_annotator, scenes, tmp_path):
    ui, panel, layer = _panel(viewer, make_annotator, scenes[0])
    panel.retrain(force=True)
    assert "two classes" in ui.widget.status.text()
    (tmp_path / "bad.npz").write_bytes(b"not a classifier")
    panel.load(tmp_path / "bad.npz")
    assert "not a napari-segany object classifier" in ui.widget.status.text()
    panel.add_class("a")
    panel.add_class("a")
    assert "taken" in ui.widget.status.text()
    panel.assign_button.setChecked(True)
    click(layer, (0.0, 0.0) if scenes[0].labels[0, 0] == 0 else (255.0, 255.0))
    assert "No object there" in ui.widget.status.text()


def test_find_more_like_these_keeps_one_kind_as_one_undo_step(
    cache, viewer, make_annotator, scenes, qtbot
):
    scene = scenes[0]
    viewer.add_image(scene.raw, name="cells")
    ui = make_annotator()
    widget = ui.widget
    widget.device_combo.setCurrentText("cpu")
    ui.compute()
    everything = widget.session  # the automatic segmentation on its own, for the examples
    from napari_segany.automatic import iter_segment
    from napari_segany.progress import run_with_progress

    found = run_with_progress(iter_segment(everything), show=False).labels
    kinds = {}
    for i in np.unique(found)[1:]:
        ids, counts = np.unique(scene.labels[found == i], return_counts=True)
        true_id = int(ids[np.argmax(counts)])
        kinds[int(i)] = scene.objects[true_id - 1].kind if true_id else "none"
    examples = [i for i, k in kinds.items() if k == "mitotic"][:2]
    for object_id in examples:
        ui.click(_pixel_of(found, object_id))
    widget.classes.like_button.click()
    ui.wait_idle()
    kept = ui.labels()
    ids = np.unique(kept)[1:]
    assert 0 < len(ids) < len(kinds)
    mitotic = 0
    for i in ids:
        true_ids, counts = np.unique(scene.labels[kept == i], return_counts=True)
        true_id = int(true_ids[np.argmax(counts)])
        mitotic += bool(true_id) and scene.objects[true_id - 1].kind == "mitotic"
    assert mitotic / len(ids) >= 0.7
    widget.undo()
    assert not ui.labels().any()
