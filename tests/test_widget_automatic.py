"""'Segment all' in the widget, the Python API and the command line give the same labels."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    pytest.skip("no display: run under xvfb-run -a (scripts/test.sh does)", allow_module_level=True)

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _settings_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


def test_widget_api_and_cli_agree(make_napari_viewer_proxy, qtbot, tmp_path):
    import tifffile

    from napari_segany import load_model
    from napari_segany._qt.widget import SegmentAnythingWidget
    from napari_segany.automatic import matching_accuracy, segment
    from napari_segany.cli import main

    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-segany", "nuclei")
    image = np.asarray(viewer.layers["nuclei (generated)"].data)
    truth = np.asarray(viewer.layers["nuclei ground truth"].data)
    widget = SegmentAnythingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment Anything")
    widget.compute_button.click()
    qtbot.waitUntil(lambda: widget.session is not None and not widget._busy(), timeout=60_000)
    widget.segment_all()
    qtbot.waitUntil(lambda: not widget._busy(), timeout=60_000)
    from_widget = np.asarray(widget.labels_layer.data)

    from_api = segment(image, load_model(device="cpu")).labels
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    assert main(["segment", str(path), "-o", str(tmp_path / "out.tif"), "--quiet"]) == 0
    from_cli = tifffile.imread(tmp_path / "out.tif")

    np.testing.assert_array_equal(from_widget, from_api)
    np.testing.assert_array_equal(from_cli, from_api)
    # and the embedded model finds the sample's nuclei
    assert matching_accuracy(truth, from_api) > 0.6
