"""Responsiveness of the napari annotator: the event loop while encoding, click → preview.

Opens a napari window (under Xvfb on a headless machine) with the sample nuclei (512²) and the
Segment Anything widget docked, on the embedded model and the CPU, and prints, measured in this
one run:

* how late a 10 ms Qt timer fires while the 9 tiles of a 256-pixel tiling encode in the worker
  thread (max and median lateness): the event loop must stay free, the worker does the work;
* click → first preview over ``--clicks`` clicks on different nuclei (median and max): the time
  from the click until the preview mask is in the current object layer, the decode in the
  worker (one view, from the embedding alone) and what napari and the widget add (the
  difference, median);
* click → the mask averaged over the prompt views that replaces it, and that decode alone.

The decode itself is the core's; it is several times slower when other jobs share the CPU, so
compare numbers from the same run. Nothing is asserted.

Usage::

    QT_API=pyqt6 xvfb-run -a python benchmarks/bench_widget.py [--clicks 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from napari_segany._qt.user_input import click, wait_until


def compute(widget) -> None:
    widget.compute_button.click()
    wait_until(lambda: widget.session is not None and not widget.jobs.busy())
    if not widget.session.is_encoded():
        raise RuntimeError(widget.status.text())


def timer_lateness(widget) -> np.ndarray:
    """Lateness (s) of each tick of a 10 ms timer while the first tile's successors encode."""
    from qtpy.QtCore import QTimer

    widget.tile_spin.setValue(256)  # 9 tiles: the worker encodes for a few seconds
    reports, ticks = [], []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    widget.compute_button.click()
    wait_until(lambda: widget.jobs.worker("encode") is not None)
    widget.jobs.worker("encode").yielded.connect(reports.append)
    # from the first finished tile (the new layers have been drawn once) to the last
    wait_until(lambda: len(reports) >= 1)
    timer.start()
    wait_until(lambda: not widget.jobs.busy())
    timer.stop()
    return np.diff(ticks) - 0.010


def click_latency(widget, truth: np.ndarray, clicks: int) -> dict[str, list[float]]:
    """Per click: first preview, averaged preview, and the two decodes (seconds)."""
    widget.tile_spin.setValue(0)  # the default tiling: the 512² sample is one model input
    compute(widget)
    decodes: dict[int | None, list[float]] = {1: [], None: []}
    predict = widget.session.predict

    def timed_predict(*args, **kwargs):
        start = time.perf_counter()
        try:
            return predict(*args, **kwargs)
        finally:
            decodes[kwargs.get("prompt_views")].append(time.perf_counter() - start)

    widget.session.predict = timed_predict
    shown: list[float] = []  # after the widget drew each new prediction's mask
    widget.annotation.candidate_changed.connect(lambda _: shown.append(time.perf_counter()))
    first, final = [], []
    for target in np.unique(truth[truth > 0])[:clicks]:
        rows, cols = np.nonzero(truth == target)
        widget.clear_prompts()
        shown.clear()
        start = time.perf_counter()
        click(widget.points_layer, (float(np.median(rows)), float(np.median(cols))))
        wait_until(lambda: widget.preview.idle() and widget.prediction is not None)
        first.append(shown[0] - start)
        final.append(shown[-1] - start)
    views = widget.session.prompt_views
    return {
        "first": first,
        "final": final if views > 1 else [],
        "decode": decodes[1] if views > 1 else decodes[None],
        "views_decode": decodes[None] if views > 1 else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clicks", type=int, default=12, help="clicks on different nuclei")
    args = parser.parse_args()
    os.environ.setdefault("NAPARI_SEGANY_CONFIG_DIR", tempfile.mkdtemp(prefix="segany-bench-"))

    import napari
    import qtpy

    from napari_segany._sample_data import make_nuclei_sample
    from napari_segany._widget import SegmentAnythingWidget

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    (image, image_meta, _), (truth, truth_meta, _) = make_nuclei_sample()
    viewer.add_image(image, **image_meta)
    viewer.add_labels(truth, **truth_meta)
    widget = SegmentAnythingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment Anything")
    widget.device_combo.setCurrentText("cpu")
    print(f"napari {napari.__version__} on {qtpy.API_NAME}; model {widget.model_spec()}, cpu")

    lateness = timer_lateness(widget) * 1000
    print(
        f"10 ms timer while 9 tiles encode: {len(lateness) + 1} ticks, late by at most "
        f"{lateness.max():.1f} ms (median {np.median(lateness):.1f} ms)"
    )

    times = click_latency(widget, truth, args.clicks)
    ms = {key: [1000 * t for t in values] for key, values in times.items()}
    median = {key: statistics.median(values) for key, values in ms.items() if values}
    overhead = statistics.median(np.subtract(ms["first"], ms["decode"]))
    print(
        f"click → first preview: median {median['first']:.1f} ms, max {max(ms['first']):.1f} ms "
        f"({len(ms['first'])} clicks); its decode in the worker {median['decode']:.1f} ms; "
        f"napari and the widget {overhead:.1f} ms"
    )
    if ms["final"]:
        print(
            f"click → mask averaged over {widget.session.prompt_views} prompt views: median "
            f"{median['final']:.1f} ms (its decode {median['views_decode']:.1f} ms)"
        )
    viewer.close()


if __name__ == "__main__":
    main()
