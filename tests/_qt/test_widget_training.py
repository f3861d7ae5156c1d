"""The annotator's "Train on my annotations" panel: train, list, use, cancel, bad input.

Trains a small random ``segany_cells`` model (128 px input, chosen with "From file…") for a
few tiny steps. Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

WAIT_MS = 60_000
#: settings that make a step take a few tens of milliseconds
TINY = dict(validate_every=2, crop=64, scenes_per_step=2, objects_per_scene=2)


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    """A random segany_cells checkpoint with a 128 px input."""
    import torch

    from napari_segany import build_model
    from napari_segany.models.checkpoint import ARCH_KEY

    path = tmp_path_factory.mktemp("base") / "base.pt"
    model = build_model("segany_cells", img_size=128, seed=3)
    torch.save({ARCH_KEY: "segany_cells", "model_state": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def scene():
    from napari_segany.synthetic import DENSE_CLUSTERS, generate_scene

    scene = generate_scene((96, 128), DENSE_CLUSTERS, seed=2)
    return np.asarray(scene.raw), np.asarray(scene.labels).astype(np.uint32)


def _trainer(viewer, make_annotator, base_file, labels=None, steps=4):
    """The annotator on image "cells" with its committed ``labels`` (None: no Labels layer),
    the random model chosen and tiny training settings."""
    ui = make_annotator()
    widget = ui.widget
    widget.set_checkpoint(str(base_file))
    widget.device_combo.setCurrentText("cpu")
    if labels is not None:
        viewer.add_labels(labels, name="segmentation")
    panel = widget.training
    panel.options = dict(TINY)
    panel.steps_spin.setValue(steps)
    return ui, panel


def test_train_lists_the_model_and_segments_with_it(
    cache, viewer, scene, make_annotator, base_file, qtbot
):
    from napari_segany import load_model

    image, labels = scene
    viewer.add_image(image, name="cells")
    ui, panel = _trainer(viewer, make_annotator, base_file, labels)
    widget = ui.widget
    # the annotator's segmentation is ticked and paired with its image; a default name
    assert [layer.name for layer in panel.checked_labels()] == ["segmentation"]
    assert panel.image_combo.currentText() == "cells"
    assert panel.name_edit.text() == "cells_cells"
    assert widget.model_combo.findData("cells_cells") < 0

    panel.train_button.click()
    assert widget.jobs.worker("train") is not None
    assert not panel.train_button.isEnabled() and panel.cancel_button.isEnabled()
    ui.wait_idle()

    # a random model may not improve in 4 steps: the summary says either way
    status = widget.status.text()
    assert status.startswith("Trained 'cells_cells'") and "4 steps" in status, status
    assert "validation score 0." in status
    assert widget.model_combo.findData("cells_cells") >= 0
    assert (cache / "trained" / "cells_cells.pt").is_file()
    assert not (cache / "trained" / "cells_cells.pt.state").exists()
    assert load_model("cells_cells", device="cpu").architecture == "segany_cells"
    assert panel.name_edit.text() == "cells_cells_2"  # the next run does not replace it
    assert panel.use_button.isEnabled() and panel.train_button.isEnabled()

    segmented = []
    segment_all = widget.segment_all
    widget.segment_all = lambda **kw: (segmented.append(widget.model_spec()), segment_all(**kw))
    panel.use_button.click()
    qtbot.waitUntil(lambda: bool(segmented), timeout=WAIT_MS)
    ui.wait_idle()
    assert segmented == ["cells_cells"]
    assert widget.model_combo.currentData() == "cells_cells"
    assert widget.session is not None and widget.session.is_encoded()


def test_cancel_keeps_the_best_model_so_far(cache, viewer, scene, make_annotator, base_file, qtbot):
    image, labels = scene
    viewer.add_image(image, name="cells")
    ui, panel = _trainer(viewer, make_annotator, base_file, labels, steps=500)
    widget = ui.widget
    panel.train_button.click()
    reports = []
    widget.jobs.worker("train").yielded.connect(reports.append)
    qtbot.waitUntil(lambda: any(r.done >= 1 for r in reports), timeout=WAIT_MS)
    panel.cancel_button.click()
    ui.wait_idle()

    assert widget.status.text().startswith("Training stopped at step "), widget.status.text()
    assert "'cells_cells' holds the best model so far" in widget.status.text()
    assert reports[-1].done < 500
    assert widget.model_combo.findData("cells_cells") >= 0
    assert (cache / "trained" / "cells_cells.pt").is_file()
    assert not (cache / "trained" / "cells_cells.pt.state").exists()  # no resuming here
    assert panel.use_button.isEnabled()


def test_cancel_before_the_first_step_trains_nothing(
    cache, viewer, scene, make_annotator, base_file
):
    image, labels = scene
    viewer.add_image(image, name="cells")
    ui, panel = _trainer(viewer, make_annotator, base_file, labels, steps=500)
    panel.train_button.click()
    ui.widget.cancel_button.click()  # the annotator's Cancel stops training too
    ui.wait_idle()

    assert ui.widget.status.text() == (
        "Training cancelled before the first step: nothing was trained."
    )
    assert ui.widget.model_combo.findData("cells_cells") < 0
    assert not list(cache.glob("trained/*"))
    assert not panel.use_button.isEnabled()


@pytest.mark.parametrize(
    ("labels_of", "message"),
    [
        (lambda lab: None, "Nothing to train on: segment some objects and commit them (C)"),
        (np.zeros_like, "'segmentation' has no committed objects: segment some objects"),
        (lambda lab: lab[:50], "Labels 'segmentation' have shape (50, 128), image 'cells' has"),
        (lambda lab: (lab == 1).astype(np.uint32), "Only 1 object is committed"),
    ],
    ids=["no-labels", "empty", "shape", "one-object"],
)
def test_bad_input_says_why_and_starts_nothing(
    cache, viewer, scene, make_annotator, base_file, labels_of, message
):
    image, labels = scene
    viewer.add_image(image, name="cells")
    ui, panel = _trainer(viewer, make_annotator, base_file, labels_of(labels))
    panel.train_button.click()

    assert ui.widget.status.text().startswith(message), ui.widget.status.text()
    assert ui.widget.jobs.worker("train") is None and not ui.widget.jobs.busy()
    assert not (cache / "trained").exists()


def test_too_few_objects_to_validate_ends_the_job_with_a_message(
    cache, viewer, scene, make_annotator, base_file
):
    """Found by the training code in the worker: said in the status, nothing written."""
    image, labels = scene
    viewer.add_image(image, name="cells")
    two = np.where(np.isin(labels, [1, 2]), labels, 0).astype(np.uint32)
    ui, panel = _trainer(viewer, make_annotator, base_file, two)
    panel.train_button.click()
    ui.wait_idle()

    status = ui.widget.status.text()
    assert status.startswith("Training stopped: holding out 20% for validation"), status
    assert "annotate more objects" in status
    assert not list(cache.glob("trained/*"))
    assert not panel.use_button.isEnabled() and panel.train_button.isEnabled()


def test_a_taken_name_is_refused(cache, viewer, scene, make_annotator, base_file):
    image, labels = scene
    viewer.add_image(image, name="cells")
    ui, panel = _trainer(viewer, make_annotator, base_file, labels)
    panel.name_edit.setText("vit_b")
    panel.train_button.click()
    assert "name of a registry model" in ui.widget.status.text()
    assert ui.widget.jobs.worker("train") is None
