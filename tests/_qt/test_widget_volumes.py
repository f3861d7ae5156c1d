"""The widget's "Volumes and time series" section: propagate a committed object through a
z-stack (bounded or not, one undo step), segment a stack, track a time series.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


@pytest.fixture
def stack():
    from napari_segany.synthetic.stacks import touching_ellipsoids

    return touching_ellipsoids((8, 96, 96), radius=(10.0, 13.0), anisotropy=3.0, seed=2)


def test_propagate_a_committed_object_through_the_stack(viewer, make_annotator, stack):
    from scipy import ndimage

    layer = viewer.add_image(stack.image, name="stack")
    ids, counts = np.unique(stack.labels[4][stack.labels[4] > 0], return_counts=True)
    obj = int(ids[np.argmax(counts)])
    truth = stack.labels == obj
    viewer.dims.set_current_step(0, 4)
    ui = make_annotator()
    ui.compute()
    distance = ndimage.distance_transform_edt(truth[4])
    ui.click(tuple(float(v) for v in np.unravel_index(int(np.argmax(distance)), truth[4].shape)))
    ui.wait_preview()
    label = ui.widget.commit()
    assert label > 0
    labels_layer = ui.widget.labels_layer
    assert labels_layer.data.shape == stack.labels.shape
    only_this_slice = ui.labels()
    panel = ui.widget.volumes
    labels_layer.selected_label = label
    panel.limit_spin.setValue(1)  # bounded: one slice each way
    panel.propagate()
    ui.wait_idle()
    bounded = ui.labels() == label
    assert np.flatnonzero(bounded.any(axis=(1, 2))).tolist() == [3, 4, 5]
    panel.limit_spin.setValue(0)  # until the object ends
    panel.propagate()
    ui.wait_idle()
    full = ui.labels() == label
    assert _iou(full, truth) > 0.6
    assert layer.data.shape == full.shape
    labels_layer.undo()  # the propagation is one undo step
    np.testing.assert_array_equal(ui.labels() == label, bounded)
    labels_layer.undo()
    np.testing.assert_array_equal(ui.labels(), only_this_slice)


def test_segment_stack_and_track_a_time_series(viewer, make_annotator, stack):
    from napari_segany.automatic import matching_accuracy
    from napari_segany.synthetic.stacks import moving_cells

    viewer.add_image(stack.image, name="stack")
    ui = make_annotator()
    ui.widget.volumes.segment_button.click()
    ui.wait_idle()
    result = viewer.layers["stack 3D objects"]
    assert result.data.shape == stack.labels.shape
    assert matching_accuracy(stack.labels, np.asarray(result.data)) > 0.8

    cells = moving_cells(frames=4, shape=(96, 96), count=4, seed=1)
    viewer.add_image(cells.image, name="movie", axis_labels=("t", "y", "x"))
    ui.widget.panel.pickers.image_combo.setCurrentText("movie")
    assert ui.widget.volumes.axis_combo.currentData() == "z"
    ui.widget.volumes.segment_button.click()
    ui.wait_idle()
    assert ui.widget.volumes.axis_combo.currentData() == "t"  # from the layer's axis labels
    tracks = np.asarray(viewer.layers["movie tracks"].data)
    assert tracks.shape[1] == 4  # id, frame, row, col
    labels = np.asarray(viewer.layers["movie tracked objects"].data)
    for ident in np.unique(cells.labels[0][cells.labels[0] > 0]).tolist():
        frames = [t for t in range(4) if (cells.labels[t] == ident).any()]
        ids = {int(np.bincount(labels[t][cells.labels[t] == ident]).argmax()) for t in frames}
        assert len(ids) == 1 and 0 not in ids  # each cell keeps one ID


def test_segment_a_time_series_of_z_stacks(viewer, make_annotator, stack):
    series = np.stack([stack.image, np.roll(stack.image, 3, axis=-1)])
    viewer.add_image(series, name="series", axis_labels=("t", "z", "y", "x"))
    ui = make_annotator()
    ui.widget.volumes.segment_button.click()
    ui.wait_idle()
    labels = np.asarray(viewer.layers["series tracked 3D objects"].data)
    assert labels.shape == series.shape
    tracks = np.asarray(viewer.layers["series tracks"].data)
    assert tracks.shape[1] == 5  # id, frame, z, row, col
    kept = 0
    for ident in np.unique(stack.labels[stack.labels > 0]).tolist():  # IDs kept over frames
        first = labels[0][stack.labels == ident]
        second = labels[1][np.roll(stack.labels == ident, 3, axis=-1)]
        kept += np.bincount(first).argmax() == np.bincount(second).argmax() > 0
    assert kept >= 0.9 * len(np.unique(stack.labels[stack.labels > 0]))


def test_all_objects_at_once_and_a_correction_sticks(viewer, make_annotator, stack):
    from scipy import ndimage

    viewer.add_image(stack.image, name="stack")
    z = 4
    ids, counts = np.unique(stack.labels[z][stack.labels[z] > 0], return_counts=True)
    chosen = [int(i) for i in ids[np.argsort(-counts)][:2]]
    viewer.dims.set_current_step(0, z)
    ui = make_annotator()
    ui.compute()
    for obj in chosen:
        ui.widget.clear_prompts()
        distance = ndimage.distance_transform_edt(stack.labels[z] == obj)
        ui.click(tuple(float(v) for v in np.unravel_index(int(np.argmax(distance)), (96, 96))))
        ui.wait_preview()
        assert ui.widget.commit() > 0
    panel = ui.widget.volumes
    panel.all_check.setChecked(True)
    panel.propagate()
    ui.wait_idle()
    labels = ui.labels()
    committed = [int(np.bincount(labels[z][stack.labels[z] == o]).argmax()) for o in chosen]
    for label, obj in zip(committed, chosen, strict=True):
        assert _iou(labels == label, stack.labels == obj) > 0.6  # both went through the stack
    # the user paints a correction of the first object two slices up and propagates from there
    fix = z + 2
    layer = ui.widget.labels_layer
    corrected = labels.copy()
    corrected[fix][corrected[fix] == committed[0]] = 0
    drawn = ndimage.binary_erosion(stack.labels[fix] == chosen[0], iterations=2)
    corrected[fix][drawn & (corrected[fix] == 0)] = committed[0]
    layer.data = corrected
    panel.all_check.setChecked(False)
    layer.selected_label = committed[0]
    viewer.dims.set_current_step(0, fix)
    panel.propagate()
    ui.wait_idle()
    after = ui.labels()
    np.testing.assert_array_equal(after[fix], corrected[fix])  # the correction stays
    np.testing.assert_array_equal(after[: z + 1], corrected[: z + 1])  # the first slice kept
    assert ((after == committed[1]) == (corrected == committed[1])).all()  # other object kept


def test_tracked_labels_saved_from_napari_open_back_as_a_time_series(viewer, tmp_path):
    from napari_segany._reader import read_labels
    from napari_segany.labels_io import load_labels
    from napari_segany.synthetic.stacks import moving_cells

    cells = moving_cells(frames=3, shape=(48, 48), count=4, divide=0, seed=3)
    layer = viewer.add_labels(cells.labels, name="tracked", axis_labels=("t", "y", "x"))
    for suffix in ("tracked.labels.tif", "tracked.ome.zarr"):
        layer.save(str(tmp_path / suffix), plugin="napari-segany")
        labels, meta = load_labels(tmp_path / suffix)
        np.testing.assert_array_equal(labels, cells.labels)
        assert "".join(meta["axes"]) == "tyx"
    # napari opens the TIFF through our reader (folders such as .zarr go through read_labels)
    opened = viewer.open(str(tmp_path / "tracked.labels.tif"), plugin="napari-segany")
    assert tuple(opened[0].axis_labels) == ("t", "y", "x")
    _, kwargs, _ = read_labels(str(tmp_path / "tracked.ome.zarr"))[0]
    assert kwargs["axis_labels"] == ("t", "y", "x")


def test_4d_labels_saved_from_napari_keep_their_axes(viewer, tmp_path):
    from napari_segany.labels_io import load_labels

    labels = np.zeros((2, 3, 32, 32), np.uint32)
    labels[:, :, 5:15, 5:15] = 1
    labels[1, 1:, 20:28, 18:30] = 2
    layer = viewer.add_labels(labels, name="series", axis_labels=("t", "z", "y", "x"))
    for suffix in ("series.labels.tif", "series.ome.zarr"):
        layer.save(str(tmp_path / suffix), plugin="napari-segany")
        loaded, meta = load_labels(tmp_path / suffix)
        np.testing.assert_array_equal(loaded, labels)
        assert "".join(meta["axes"]) == "tzyx"
    # the object table measures 2D and 3D labels only: none is written for 4D
    assert not list(tmp_path.glob("*.csv"))
