"""Responsiveness of the napari annotator: the event loop while encoding, click → preview.

Opens a napari window (under Xvfb on a headless machine) with the sample nuclei (512²) and the
Segment Anything widget docked, on the embedded model and the CPU, and prints, measured in this
one run:

* the longest freeze of the event loop (how late a 10 ms Qt timer fires) while the annotator is
  created and docked, and while its first Compute adds its layers and prepares the image (a
  fresh process: napari's layer code has not run yet; ``--fresh-numba`` also empties numba's
  disk cache, as on the very first launch after installing);
* the first click on the image: click → first preview and → the averaged preview;
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


def ready(widget) -> bool:
    """The widget's own readiness (its session, layers and jobs), or its parts' (older code)."""
    if hasattr(widget, "ready"):
        return widget.ready()
    return widget.session is not None and not widget.jobs.busy()


def compute(widget) -> None:
    widget.compute_button.click()
    wait_until(lambda: ready(widget))
    if not widget.session.is_encoded():
        raise RuntimeError(widget.status.text())


class Ticks:
    """A 10 ms Qt timer whose tick times show how long the event loop was blocked."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))

    def __enter__(self) -> Ticks:
        self.times.clear()
        self.times.append(time.perf_counter())
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()
        self.times.append(time.perf_counter())

    def longest_freeze(self) -> float:
        """The longest time between two ticks, less the 10 ms interval (s)."""
        return float(np.max(np.diff(self.times))) - 0.010


def startup_freezes(viewer, make_widget) -> tuple[object, float, float]:
    """(widget, freeze while it is created and docked, freeze during its first Compute)."""
    from qtpy.QtCore import QTimer

    made = []

    def dock():
        widget = make_widget()
        viewer.window.add_dock_widget(widget, name="Segment Anything")
        made.append(widget)

    with Ticks() as ticks:
        QTimer.singleShot(50, dock)
        wait_until(lambda: bool(made))
        if hasattr(made[0], "warm_up"):  # the widget's warm-up thread, started once shown
            wait_until(lambda: made[0].warm_up is not None and not made[0].warm_up.is_alive())
    widget = made[0]
    docking = ticks.longest_freeze()
    widget.device_combo.setCurrentText("cpu")
    widget.tile_spin.setValue(0)  # the default tiling: the 512² sample is one model input
    with Ticks() as ticks:
        QTimer.singleShot(50, widget.compute_button.click)
        wait_until(lambda: ready(widget), step_ms=5)
    return widget, docking, ticks.longest_freeze()


def first_click(widget, truth: np.ndarray) -> tuple[float, float]:
    """Click → first preview and → last (averaged) preview of the first click on the image (s)."""
    shown: list[float] = []
    widget.annotation.candidate_changed.connect(lambda _: shown.append(time.perf_counter()))
    target = np.unique(truth[truth > 0])[-1]
    rows, cols = np.nonzero(truth == target)
    start = time.perf_counter()
    click(widget.points_layer, (float(np.median(rows)), float(np.median(cols))))
    wait_until(lambda: widget.preview.idle() and widget.prediction is not None)
    return shown[0] - start, shown[-1] - start


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
    parser.add_argument(
        "--fresh-numba",
        action="store_true",
        help="empty numba cache (napari's compiled layer code), as on the first launch",
    )
    args = parser.parse_args()
    os.environ.setdefault("NAPARI_SEGANY_CONFIG_DIR", tempfile.mkdtemp(prefix="segany-bench-"))
    if args.fresh_numba:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="segany-bench-numba-")

    import napari
    import qtpy

    from napari_segany._sample_data import make_nuclei_sample
    from napari_segany._widget import SegmentAnythingWidget

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    (image, image_meta, _), (truth, truth_meta, _) = make_nuclei_sample()
    viewer.add_image(image, **image_meta)
    viewer.add_labels(truth, **truth_meta)
    wait_until(lambda: True)
    widget, docking, compute = startup_freezes(viewer, lambda: SegmentAnythingWidget(viewer))
    print(f"napari {napari.__version__} on {qtpy.API_NAME}; model {widget.model_spec()}, cpu")
    print(
        f"longest UI freeze: {1000 * docking:.0f} ms while the annotator is created and docked, "
        f"{1000 * compute:.0f} ms during its first Compute (layers added, image prepared)"
    )
    first, final = first_click(widget, truth)
    print(
        f"first click on the image: first preview {1000 * first:.0f} ms, averaged preview "
        f"{1000 * final:.0f} ms"
    )

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
