"""Review after Segment all: least confident first; accept, delete, or fix with prompts.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def _segment_all(ui) -> None:
    ui.compute()
    ui.widget.segment_all()
    ui.wait_idle()


def _features(layer) -> dict[int, dict]:
    frame = layer.features
    return {int(row["index"]): row for _, row in frame.iterrows()}


def _key(qtbot, viewer, key) -> None:
    """A real key press on the canvas (napari sends it to the active layer's key bindings)."""
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, key)


def test_segment_all_keeps_its_scores_and_review_starts_with_the_least_confident(
    viewer, nuclei, make_annotator
):
    ui = make_annotator()
    widget = ui.widget
    _segment_all(ui)
    labels = ui.labels()
    ids = set(np.unique(labels[labels > 0]).tolist())
    rows = _features(widget.labels_layer)
    assert ids <= set(rows)
    column = next(c for c in ("confidence", "foreground_probability") if c in rows[min(ids)])
    scores = {i: float(rows[i][column]) for i in ids}

    widget.review_button.click()
    assert widget.reviewer.active and widget.accept_button.isEnabled()
    first = widget.reviewer.current.label
    assert scores[first] == min(scores.values())
    assert np.array_equal(ui.current_mask(), labels == first)  # drawn as the current object
    rows_, cols_ = np.nonzero(labels == first)
    centre = ((rows_.min() + rows_.max() + 1) / 2, (cols_.min() + cols_.max() + 1) / 2)
    assert np.allclose(viewer.scene.camera.center[-2:], centre, atol=1.0)
    assert widget.status.text().startswith(f"Review 1/{len(ids)}: object {first}, {column} ")

    order = [item.label for item in widget.reviewer.items]
    assert [scores[i] for i in order] == sorted(scores.values())
    widget.toggle_review()
    assert not widget.reviewer.active and not widget.accept_button.isEnabled()


def test_review_keys_accept_delete_and_step(viewer, nuclei, make_annotator, qtbot):
    from qtpy.QtCore import Qt

    ui = make_annotator()
    widget = ui.widget
    _segment_all(ui)
    viewer.window.show()
    qtbot.waitExposed(viewer.window._qt_window)
    widget.review_button.click()
    order = [item.label for item in widget.reviewer.items]

    _key(qtbot, viewer, Qt.Key.Key_BracketRight)
    assert widget.reviewer.current.label == order[1]
    _key(qtbot, viewer, Qt.Key.Key_BracketLeft)
    assert widget.reviewer.current.label == order[0]

    qtbot.keyClick(
        viewer.window._qt_viewer.canvas.native, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier
    )
    assert _features(widget.labels_layer)[order[0]]["reviewed"] == 1
    assert widget.reviewer.current.label == order[1]

    before = ui.labels()
    widget.delete_button.click()  # the button does what Shift+X does
    after = ui.labels()
    assert not (after == order[1]).any() and np.array_equal(
        after[before != order[1]], before[before != order[1]]
    )
    assert _features(widget.labels_layer)[order[1]]["reviewed"] == 1
    assert widget.reviewer.current.label == order[2]
    widget.undo()  # one undo step brings the object back
    assert np.array_equal(ui.labels(), before)


def test_a_fix_with_prompts_replaces_the_reviewed_object(viewer, nuclei, make_annotator):
    ui = make_annotator()
    widget = ui.widget
    _segment_all(ui)
    widget.review_button.click()
    # review the largest object: a click at its centre is a fix of it
    labels = ui.labels()
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    target = int(ids[np.argmax(counts)])
    while widget.reviewer.current.label != target:
        widget.review_next()
    rows, cols = np.nonzero(labels == target)
    i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    preview = ui.preview_of((float(rows[i]), float(cols[i])))
    free = (labels == 0) | (labels == target)
    assert widget.commit() == target
    after = ui.labels()
    assert np.array_equal(after == target, preview & free)  # same ID, the fixed mask
    assert np.array_equal(
        after[labels != target], np.where(preview & free, target, labels)[labels != target]
    )
    assert _features(widget.labels_layer)[target]["reviewed"] == 1
    assert widget.reviewer.current is None or widget.reviewer.current.label != target
    widget.undo()
    assert np.array_equal(ui.labels(), labels)


def test_reviewed_objects_are_saved_with_the_labels(viewer, nuclei, make_annotator, tmp_path):
    import csv

    ui = make_annotator()
    widget = ui.widget
    _segment_all(ui)
    widget.review_button.click()
    first = widget.reviewer.current.label
    widget.review_accept()
    path = tmp_path / "cells.labels.tif"
    viewer.layers.selection.active = widget.labels_layer
    viewer.layers.save(str(path), selected=True, plugin="napari-segany")
    with open(tmp_path / "cells_objects.csv", newline="") as table:
        rows = {int(r["id"]): r for r in csv.DictReader(table)}
    assert float(rows[first]["reviewed"]) == 1
    assert all(rows[i]["reviewed"] in ("", "nan") for i in rows if i != first)
    assert float(rows[first]["foreground_probability"]) > 0
