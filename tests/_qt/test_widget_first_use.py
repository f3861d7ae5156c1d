"""What a new user meets first: docking, the first Compute, the first click, a second image.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

WAIT_MS = 60_000
OURS = ("current object", "box prompt", "prompts")


def _canvas(viewer):
    return viewer.window._qt_viewer.canvas.native


def _canvas_click(qtbot, viewer, data_position) -> None:
    """A real left click on the canvas (Qt mouse events) over image pixel (row, col)."""
    from qtpy.QtCore import QPoint, Qt

    camera = viewer.scene.camera
    width, height = _canvas(viewer).width(), _canvas(viewer).height()
    row, col = data_position
    # 2D napari camera: canvas pixel = centre of the canvas + (world - camera centre) * zoom
    x = width / 2 + (col - camera.center[-1]) * camera.zoom
    y = height / 2 + (row - camera.center[-2]) * camera.zoom
    qtbot.mouseClick(_canvas(viewer), Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))


def test_layers_are_added_one_per_turn_of_the_event_loop(viewer, nuclei, make_annotator, qtbot):
    """The first Compute adds four layers without one long freeze: between two of them, a
    10 ms timer gets to fire."""
    from qtpy.QtCore import QTimer

    ticks, at_insert = [], {}
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    viewer.layers.events.inserted.connect(
        lambda event: at_insert.setdefault(event.value.name, len(ticks))
    )
    ui = make_annotator()
    timer.start()
    ui.compute()
    timer.stop()
    counts = [at_insert[name] for name in ("segmentation", *OURS)]
    assert all(b > a for a, b in itertools.pairwise(counts)), counts
    assert [layer.name for layer in viewer.layers][-3:] == list(OURS)
    assert viewer.layers.selection.active.name == "prompts"


def test_prompt_layer_controls_show_their_modes(viewer, nuclei, make_annotator):
    ui = make_annotator()
    ui.compute()
    controls = viewer.window._qt_viewer.controls.widgets
    points = controls[ui.widget.points_layer]
    box = controls[ui.widget.box_layer]
    assert ui.widget.points_layer.mode == "add" and points.addition_button.isChecked()
    assert not points.panzoom_button.isChecked()
    assert ui.widget.box_layer.mode == "add_rectangle" and box.rectangle_button.isChecked()
    assert not box.panzoom_button.isChecked()


def test_a_second_image_leaves_the_prompts_on_top_and_a_click_adds_a_point(
    viewer, nuclei, make_annotator, qtbot
):
    image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    # an image added later goes on top in napari; the prompts and the preview move above it
    # another size: it needs an output of its own
    second = viewer.add_image(np.asarray(image.data)[::-1, :448].copy(), name="second")
    qtbot.waitUntil(lambda: [x.name for x in viewer.layers][-3:] == list(OURS), timeout=WAIT_MS)
    assert [x.name for x in viewer.layers].index("second") < len(viewer.layers) - 3

    widget.image_combo.setCurrentText("second")
    ui.compute()
    names = [x.name for x in viewer.layers]
    assert "segmentation [1]" in names and names[-3:] == list(OURS)
    assert widget.labels_layer.name == "segmentation [1]"
    assert viewer.layers.selection.active.name == "prompts"

    # the user's first click on the canvas adds a prompt; it does not pan
    viewer.window.show()
    qtbot.waitExposed(viewer.window._qt_window)
    viewer.reset_view()
    qtbot.wait(50)
    center = tuple(viewer.scene.camera.center)
    _target, (row, col) = ui.centre_of_largest(truth[::-1, :448])
    _canvas_click(qtbot, viewer, (row, col))
    ui.wait_preview()
    assert tuple(viewer.scene.camera.center) == center
    assert len(widget.points_layer.data) == 1
    assert np.allclose(widget.points_layer.data[0], (row, col), atol=1.5)
    assert ui.current_mask()[round(row), round(col)]
    assert second.visible


def test_the_status_line_follows_a_new_object_after_a_commit(viewer, nuclei, make_annotator):
    from napari_segany._qt.widget import PREVIEW_HINT

    _image, truth = nuclei
    ui = make_annotator()
    ui.compute()
    ids = np.unique(truth[truth > 0])
    for target in ids[:2]:
        rows, cols = np.nonzero(truth == target)
        ui.click((float(np.median(rows)), float(np.median(cols))))
        ui.wait_preview()
        assert ui.widget.status.text() == PREVIEW_HINT
        label = ui.widget.commit()
        assert ui.widget.status.text() == f"Committed object {label}."


def test_the_dock_leaves_room_for_the_canvas_and_the_image_is_fitted(
    viewer, nuclei, make_annotator, qtbot
):
    """At napari's default window size the docked annotator takes less than a third of the
    window, and the image is refitted to the narrower canvas."""
    from napari_segany._qt.panel import PREFERRED_WIDTH

    image, _truth = nuclei
    window = viewer.window._qt_window
    viewer.window.show()
    qtbot.waitExposed(window)
    viewer.reset_view()
    ui = make_annotator()
    qtbot.waitUntil(lambda: hasattr(ui.widget, "_fit_timer"), timeout=WAIT_MS)
    dock = ui.widget.parentWidget()
    qtbot.waitUntil(lambda: not ui.widget._fit_timer.isActive(), timeout=WAIT_MS)
    qtbot.wait(50)
    assert dock.width() <= PREFERRED_WIDTH + 30
    assert dock.width() < window.width() / 3
    # the whole image is on the canvas (the canvas is narrower than the image at zoom 1)
    canvas = _canvas(viewer)
    rows, cols = np.asarray(image.data).shape
    assert cols * viewer.scene.camera.zoom <= canvas.width() + 1
    assert rows * viewer.scene.camera.zoom <= canvas.height() + 1
    # every control stays reachable: the panel scrolls in a short window
    assert ui.widget.minimumSizeHint().height() < ui.widget.panel.sizeHint().height()


def test_compute_prepares_the_first_click(viewer, nuclei, make_annotator, monkeypatch):
    """Everything a click needs (the window's instance maps, for the fast and the averaged
    answer) is computed with the embeddings, in the worker, not on the first click."""
    from napari_segany.inference import predictor

    ui = make_annotator()
    ui.compute()
    computed = []
    original = predictor.instance_labels
    monkeypatch.setattr(
        predictor, "instance_labels", lambda *a, **k: computed.append(1) or original(*a, **k)
    )
    _image, truth = nuclei
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    assert computed == []
    assert ui.current_mask().sum() > 0


def test_optional_sections_start_folded_under_their_titles(make_annotator, qtbot):
    """Training, object classes and volumes sit folded below the annotator, so its own
    controls fit the window; a click on a title unfolds that section."""
    from qtpy.QtCore import Qt
    from superqt import QCollapsible

    ui = make_annotator()
    sections = ui.widget.panel.findChildren(QCollapsible)
    titles = [s.text() for s in sections]
    assert titles == ["Train on my annotations", "Object classes", "Volumes and time series"]
    assert all(not s.isExpanded() and s.content().maximumHeight() == 0 for s in sections)
    classes = sections[1]
    qtbot.mouseClick(classes._toggle_btn, Qt.MouseButton.LeftButton)
    assert classes.isExpanded() and classes.content().maximumHeight() > 0
    assert ui.widget.classes.parentWidget() is classes.content()
    assert sections[0].content().maximumHeight() == 0
