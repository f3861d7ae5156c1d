"""The annotator dock widget driven as a user drives it: prompts, preview, candidates, edits.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_point_preview_cycle_commit_undo_redo(viewer, nuclei, make_annotator):
    image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    assert widget.image_combo.currentText() == image.name
    ui.compute()
    names = [layer.name for layer in viewer.layers]
    assert {"prompts", "box prompt", "current object", "segmentation"} <= set(names)
    assert widget.points_layer.mode == "add" and widget.box_layer.mode == "add_rectangle"
    assert viewer.layers.selection.active.name == "prompts"

    target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    mask = ui.current_mask()
    assert mask[int(centre[0]), int(centre[1])], "the clicked nucleus is in the preview"
    assert _iou(mask, truth == target) > 0.5

    # the three candidates are shown with their predicted IoU; N cycles them
    texts = [b.text() for b in widget.candidate_buttons]
    assert all("IoU" in t for t in texts), texts
    first = widget.candidate
    widget.next_candidate()
    assert widget.candidate == (first + 1) % 3
    assert widget.candidate_buttons[widget.candidate].isChecked()
    shown = widget.current_layer.data > 0
    assert np.array_equal(shown, widget.prediction.masks[widget.candidate])
    widget.candidate_buttons[first].click()  # a candidate button chooses it
    assert widget.candidate == first

    # commit: object 1, prompts cleared; one undo step each way
    assert widget.commit() == 1
    seg = widget.labels_layer
    assert np.array_equal(np.asarray(seg.data) == 1, mask)
    assert len(widget.points_layer.data) == 0 and widget.prediction is None
    assert not widget.current_layer.data.any()
    assert [b.text() for b in widget.candidate_buttons] == ["1: –", "2: –", "3: –"]
    widget.undo()
    assert not np.asarray(seg.data).any()
    widget.redo()
    assert np.array_equal(np.asarray(seg.data) == 1, mask)


def test_keyboard_shortcuts(viewer, nuclei, make_annotator, qtbot):
    from qtpy.QtCore import Qt

    _image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    raw = viewer.__wrapped__ if hasattr(viewer, "__wrapped__") else viewer
    canvas = raw.window._qt_viewer.canvas.native

    def press(key, modifiers=Qt.NoModifier):
        qtbot.keyClick(canvas, key, modifiers)

    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    first = widget.candidate
    press(Qt.Key_N)
    assert widget.candidate == (first + 1) % 3
    shown = ui.current_mask()
    press(Qt.Key_C)  # commits the candidate shown
    seg = widget.labels_layer
    assert np.array_equal(np.asarray(seg.data) == 1, shown)
    assert widget.prediction is None
    committed = np.asarray(seg.data).copy()
    press(Qt.Key_Z, Qt.ControlModifier)
    assert not np.asarray(seg.data).any()
    press(Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert np.array_equal(np.asarray(seg.data), committed)
    ui.click((10.0, 10.0))
    press(Qt.Key_C, Qt.ShiftModifier)  # clear
    assert len(widget.points_layer.data) == 0
    # delete the object under the cursor
    raw.cursor.position = tuple(widget.labels_layer.data_to_world(centre))
    press(Qt.Key_D, Qt.ShiftModifier)
    assert not np.asarray(seg.data).any()
    press(Qt.Key_T)
    assert widget.negative_mode
    press(Qt.Key_T)
    assert not widget.negative_mode


def test_negative_point_shift_click_and_box(nuclei, make_annotator):
    _image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    target, centre = ui.centre_of_largest(truth)
    points = widget.points_layer

    ui.click(centre)
    ui.wait_preview()
    positive = ui.current_mask()
    # Shift + click adds a negative point, drawn in another colour, and the preview changes
    inside = np.argwhere(positive & (truth == target))
    ui.click(tuple(float(v) for v in inside[len(inside) // 3]), modifiers=["Shift"])
    assert list(points.features["label"]) == [1, 0]
    assert not np.allclose(points.face_color[0], points.face_color[1])
    ui.wait_preview()
    assert not np.array_equal(ui.current_mask(), positive)

    # the toggle key makes plain clicks negative
    widget.toggle_negative()
    ui.click((5.0, 5.0))
    assert points.features["label"].iloc[-1] == 0
    widget.toggle_negative()
    ui.click((6.0, 6.0))
    assert points.features["label"].iloc[-1] == 1

    widget.clear_prompts()
    assert len(points.data) == 0 and widget.prediction is None

    # a box alone gives a preview; a second box replaces the first
    box = ui.box_around(truth, target)
    widget.box_layer.add_rectangles(box)
    ui.wait_preview()
    assert _iou(ui.current_mask(), truth == target) > 0.5
    widget.box_layer.add_rectangles(box + 1)
    assert len(widget.box_layer.data) == 1
    np.testing.assert_allclose(widget.current_prompts().box, [*(box[0] + 1), *(box[1] + 1)])
    ui.wait_preview()


def test_commit_keeps_other_objects_unless_overwrite(nuclei, make_annotator):
    _image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    target, _centre = ui.centre_of_largest(truth)
    box = ui.box_around(truth, target)
    first = ui.preview_of(box=box)
    assert widget.commit() == 1
    assert np.array_equal(ui.labels() == 1, first)

    # the same object again: it has no free pixels, nothing is written
    assert np.array_equal(ui.preview_of(box=box), first)
    assert widget.commit() == 0
    assert widget.status.text() == "The object had no free pixels."
    assert np.array_equal(ui.labels() == 1, first) and ui.labels().max() == 1

    # a larger box over it and its surroundings: object 2 takes only free pixels
    ui.preview_of(box=box + np.array([[-15, -15], [15, 15]]))
    widget.select_candidate(int(np.argmax([m.sum() for m in widget.prediction.masks])))
    larger = ui.current_mask()
    assert (larger & first).any() and (larger & ~first).any(), "overlaps object 1 and more"
    assert widget.commit() == 2
    data = ui.labels()
    assert np.array_equal(data == 1, first), "object 1 kept all its pixels"
    assert np.array_equal(data == 2, larger & ~first)

    # with "Overwrite other objects" the new object takes its whole mask
    widget.undo()
    widget.overwrite_check.setChecked(True)
    ui.preview_of(box=box + np.array([[-15, -15], [15, 15]]))
    widget.select_candidate(int(np.argmax([m.sum() for m in widget.prediction.masks])))
    assert widget.commit() == 2
    assert np.array_equal(ui.labels() == 2, larger)


def test_delete_under_cursor_is_one_undo_step(nuclei, make_annotator):
    _image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    assert widget.commit() == 1
    before = ui.labels()
    background = tuple(float(v) for v in np.argwhere(before == 0)[0])

    assert widget.delete_under_cursor(background) == 0
    assert widget.status.text() == "No object under the cursor."
    assert np.array_equal(ui.labels(), before)
    assert widget.delete_under_cursor(centre) == 1
    assert widget.status.text() == "Deleted object 1."
    assert not ui.labels().any()
    widget.undo()
    assert np.array_equal(ui.labels(), before)


def test_commit_waits_for_a_preview(nuclei, make_annotator):
    ui = make_annotator()
    widget = ui.widget
    assert widget.commit() == 0  # no embeddings, no prompts
    ui.compute()
    assert widget.commit() == 0
    assert widget.status.text().startswith("Nothing to commit yet")
    assert not ui.labels().any()


def test_widget_opens_from_the_plugins_menu(viewer, nuclei):
    """Plugins > Segment Anything: napari creates the widget with its viewer."""
    from napari_segany._widget import SegmentAnythingWidget

    _dock, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
    assert isinstance(widget, SegmentAnythingWidget)
    assert widget.image_combo.currentText() == "nuclei (generated)"
    assert not widget.segment_all_button.isEnabled()  # no embeddings yet
    assert not widget.segment_all_button.isHidden()
