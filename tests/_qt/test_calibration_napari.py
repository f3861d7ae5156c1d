"""In napari, the image layer's scale and units reach the annotator's layers and saved files.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

PLUGIN_NAME = "napari-segany"


def test_image_scale_and_units_reach_the_layers_and_the_saved_labels(
    viewer, nuclei, make_annotator, tmp_path
):
    from napari_segany.labels_io import load_labels

    image, truth = nuclei
    image.scale = (0.65, 0.65)
    image.units = ("micrometer", "micrometer")
    ui = make_annotator()
    ui.compute()
    widget = ui.widget
    # all in micrometres, or napari stops using units ("inconsistent units across layers")
    for layer in (widget.labels_layer, widget.current_layer, widget.box_layer, widget.points_layer):
        assert [str(u) for u in layer.units] == ["micrometer", "micrometer"], layer.name
        assert tuple(layer.scale) == pytest.approx((0.65, 0.65)), layer.name
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    assert widget.commit() == 1

    viewer.layers.selection = {widget.labels_layer}
    path = tmp_path / "cells.ome.zarr"
    viewer.layers.save(str(path), selected=True, plugin=PLUGIN_NAME)
    labels, meta = load_labels(path)
    assert meta["scale"] == pytest.approx((0.65, 0.65)) and meta["unit"] == "micrometer"
    with open(tmp_path / "cells_objects.csv", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert float(row["area_um2"]) == pytest.approx(np.count_nonzero(labels) * 0.65**2)


def test_an_image_without_units_keeps_napari_pixels(viewer, nuclei, make_annotator):
    ui = make_annotator()
    ui.compute()
    assert [str(u) for u in ui.widget.labels_layer.units] == ["pixel", "pixel"]
    assert [str(u) for u in ui.widget.points_layer.units] == ["pixel", "pixel"]
