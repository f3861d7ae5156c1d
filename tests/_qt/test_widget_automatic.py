"""'Segment all' in the widget, the Python API and the command line give the same labels.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def test_widget_api_and_cli_agree(nuclei, make_annotator, tmp_path):
    import tifffile

    from napari_segany import load_model
    from napari_segany.automatic import matching_accuracy, segment
    from napari_segany.cli import main

    image_layer, truth = nuclei
    image = np.asarray(image_layer.data)
    ui = make_annotator()
    ui.compute()
    ui.widget.segment_all()
    ui.wait_idle()
    from_widget = ui.labels()

    from_api = segment(image, load_model(device="cpu")).labels
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    assert main(["segment", str(path), "-o", str(tmp_path / "out.tif"), "--quiet"]) == 0
    from_cli = tifffile.imread(tmp_path / "out.tif")

    np.testing.assert_array_equal(from_widget, from_api)
    np.testing.assert_array_equal(from_cli, from_api)
    # and the embedded model finds the sample's nuclei
    assert matching_accuracy(truth, from_api) > 0.6
