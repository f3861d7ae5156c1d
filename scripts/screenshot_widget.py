"""Make the README's screenshot of the annotator: docs/images/annotator.png.

A real napari window at napari's default size (two thirds of the screen: 853×651 on Xvfb's
1280×1024 screen) with the sample nuclei, the Segment Anything widget docked, six
objects committed from box prompts and the preview of a click on a seventh. Runs the embedded
model on the CPU (about a minute on 2 cores).

Usage (a display is needed; Xvfb on a headless machine)::

    QT_API=pyqt6 xvfb-run -a python scripts/screenshot_widget.py [--output PATH.png]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from napari_segany._qt.user_input import click, wait_until

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "annotator.png"
COMMITTED = 6
#: (timeout in seconds, event-loop step in ms) of every wait
PATIENCE = (600.0, 5)


def screenshot(output: Path = OUTPUT, show: bool = True) -> np.ndarray:
    """Build the scene, save the window's screenshot to ``output`` and return it (RGBA)."""
    settings = Path(tempfile.mkdtemp(prefix="segany-shot-"))
    os.environ.setdefault("NAPARI_SEGANY_CONFIG_DIR", str(settings))
    # fresh napari settings: napari's default window size, not one a session saved
    os.environ.setdefault("NAPARI_CONFIG", str(settings / "napari.yaml"))
    import napari
    from qtpy.QtTest import QTest

    from napari_segany._sample_data import make_nuclei_sample
    from napari_segany._widget import SegmentAnythingWidget

    viewer = napari.Viewer(show=show)
    try:
        (image, image_meta, _), (truth, _meta, _) = make_nuclei_sample()
        viewer.add_image(image, **image_meta)
        widget = SegmentAnythingWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Segment Anything")
        widget.device_combo.setCurrentText("cpu")
        widget.compute_button.click()
        wait_until(lambda: widget.ready(), *PATIENCE)

        def preview_ready():
            return widget.preview.idle() and widget.prediction is not None

        ids, counts = np.unique(truth[truth > 0], return_counts=True)
        for target in ids[np.argsort(counts)[::-1][:COMMITTED]]:
            rows, cols = np.nonzero(truth == target)
            box = [[rows.min() - 2, cols.min() - 2], [rows.max() + 2, cols.max() + 2]]
            widget.box_layer.add_rectangles(np.array(box))
            wait_until(preview_ready, *PATIENCE)
            widget.commit()
        # a click on the largest object not committed yet: its preview and candidates show
        free = np.where(np.asarray(widget.labels_layer.data) > 0, 0, truth)
        ids, counts = np.unique(free[free > 0], return_counts=True)
        rows, cols = np.nonzero(free == ids[np.argmax(counts)])
        i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        click(widget.points_layer, (float(rows[i]), float(cols[i])))
        wait_until(preview_ready, *PATIENCE)
        viewer.reset_view()
        QTest.qWait(300)  # let the canvas draw
        output.parent.mkdir(parents=True, exist_ok=True)
        return viewer.screenshot(str(output), canvas_only=False, flash=False)
    finally:
        viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    shot = screenshot(args.output)
    print(f"wrote {args.output} ({shot.shape[1]}×{shot.shape[0]})")


if __name__ == "__main__":
    main()
