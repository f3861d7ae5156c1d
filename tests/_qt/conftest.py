"""Fixtures of the napari widget tests: a viewer, the sample nuclei, a driver of the annotator.

The GUI tests need a display: run them under ``xvfb-run -a`` (scripts/test.sh does). The viewer
is napari's plugin proxy with NAPARI_ENSURE_PLUGIN_MAIN_THREAD on, so touching a layer from a
worker thread fails the test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_segany._qt.user_input import click

os.environ["NAPARI_ENSURE_PLUGIN_MAIN_THREAD"] = "1"

#: how long a test waits for a worker (ms); the machine may be shared
WAIT_MS = 60_000


def _no_display() -> bool:
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


def pytest_collection_modifyitems(config, items):
    """GUI tests are skipped, with the reason, where there is no display."""
    if not _no_display():
        return
    skip = pytest.mark.skip(reason="no display: run under xvfb-run -a (scripts/test.sh does)")
    here = Path(__file__).parent
    for item in items:
        if "gui" in item.keywords and here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _settings_dir(tmp_path, monkeypatch):
    """A fresh settings folder per test, and layers touched only on the main thread."""
    monkeypatch.setenv("NAPARI_SEGANY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture
def viewer(make_napari_viewer_proxy):
    return make_napari_viewer_proxy()


@pytest.fixture
def nuclei(viewer):
    """The plugin's sample data opened through File > Open Sample: (image layer, truth)."""
    viewer.open_sample("napari-segany", "nuclei")
    image = viewer.layers["nuclei (generated)"]
    truth = np.asarray(viewer.layers["nuclei ground truth"].data)
    return image, truth


def centre_of_largest(truth: np.ndarray) -> tuple[int, tuple[float, float]]:
    """The largest object of ``truth`` and its pixel nearest to its centroid (row, col)."""
    ids, counts = np.unique(truth[truth > 0], return_counts=True)
    target = ids[np.argmax(counts)]
    rows, cols = np.nonzero(truth == target)
    i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return int(target), (float(rows[i]), float(cols[i]))


def box_around(truth: np.ndarray, target: int, margin: int = 2) -> np.ndarray:
    """Corners [[row0, col0], [row1, col1]] of a box ``margin`` pixels around object ``target``."""
    rows, cols = np.nonzero(truth == target)
    return np.array(
        [[rows.min() - margin, cols.min() - margin], [rows.max() + margin, cols.max() + margin]]
    )


class Annotator:
    """Drives a :class:`SegmentAnythingWidget` the way a user does, and waits for its workers."""

    centre_of_largest = staticmethod(centre_of_largest)
    box_around = staticmethod(box_around)

    def __init__(self, widget, qtbot) -> None:
        self.widget = widget
        self.qtbot = qtbot

    def compute(self) -> None:
        """Press "Compute embeddings" and wait until every tile is encoded."""
        widget = self.widget
        widget.compute_button.click()
        self.qtbot.waitUntil(lambda: widget.ready(), timeout=WAIT_MS)
        assert widget.session.is_encoded(), widget.status.text()

    def wait_idle(self) -> None:
        """Wait until no blocking job runs and no layer is being added (Compute adds the
        layers before it starts its jobs)."""
        widget = self.widget
        self.qtbot.waitUntil(
            lambda: not (widget.jobs.busy() or widget.layers.adding()), timeout=WAIT_MS
        )

    def click(self, position, modifiers=()) -> None:
        click(self.widget.points_layer, position, modifiers)

    def wait_preview(self) -> None:
        """Wait until the preview shows the current prompts (no decode runs or waits)."""
        widget = self.widget
        self.qtbot.waitUntil(
            lambda: widget.preview.idle() and widget.prediction is not None, timeout=WAIT_MS
        )

    def preview_of(self, position=None, box=None) -> np.ndarray:
        """Clear the prompts, click ``position`` or draw ``box``, wait; the preview's mask."""
        self.widget.clear_prompts()
        if position is not None:
            self.click(position)
        if box is not None:
            self.widget.box_layer.add_rectangles(box)
        self.wait_preview()
        return self.current_mask()

    def current_mask(self) -> np.ndarray:
        """The current object layer's mask placed in the full plane."""
        widget = self.widget
        full = np.zeros(widget.plane.shape, dtype=bool)
        layer = widget.current_layer
        if layer.data.shape == (1, 1):
            return full
        offset = np.round(
            (np.asarray(layer.translate) - np.asarray(widget.image_layer.translate)[-2:])
            / np.asarray(layer.scale)
        ).astype(int)
        h, w = layer.data.shape
        full[offset[0] : offset[0] + h, offset[1] : offset[1] + w] = layer.data > 0
        return full

    def labels(self) -> np.ndarray:
        """A copy of the segmentation layer's data."""
        return np.array(self.widget.labels_layer.data)


@pytest.fixture
def make_annotator(viewer, qtbot):
    """``make_annotator(viewer=None)``: our widget docked in ``viewer``, with its driver."""

    def make(target=None) -> Annotator:
        from napari_segany._qt.widget import SegmentAnythingWidget

        target = viewer if target is None else target
        widget = SegmentAnythingWidget(target)
        target.window.add_dock_widget(widget, name="Segment Anything")
        return Annotator(widget, qtbot)

    return make
