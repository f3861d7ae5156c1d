"""The annotator's workers: encoding (cancelled, following the view), previews, segment all.

Needs a display: ``xvfb-run -a pytest tests/_qt``. Timings are measured by
``benchmarks/bench_widget.py``, not asserted here.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


def _start_large_encoding(viewer, make_annotator, qtbot):
    """A 2048² image in 512² tiles, the view zoomed on its top-left tile; encoding started."""
    from napari_segany._sample_data import large_nuclei_image

    viewer.add_image(large_nuclei_image(size=2048, block=512), contrast_limits=(150, 3500))
    ui = make_annotator()
    widget = ui.widget
    widget.tile_spin.setValue(512)
    camera = viewer.scene.camera
    camera.center, camera.zoom = (256, 256), 2.0
    reports = []
    widget.compute_button.click()
    qtbot.waitUntil(lambda: widget.jobs.worker("encode") is not None, timeout=WAIT_MS)
    widget.jobs.worker("encode").yielded.connect(reports.append)
    qtbot.waitUntil(lambda: len(reports) >= 1, timeout=WAIT_MS)
    assert widget.cancel_button.isEnabled() and not widget.compute_button.isEnabled()
    return ui


def test_cancel_mid_encoding_leaves_a_usable_session(viewer, make_annotator, qtbot):
    ui = _start_large_encoding(viewer, make_annotator, qtbot)
    widget = ui.widget
    widget.cancel_button.click()
    ui.wait_idle()
    assert widget.status.text() == "Cancelled; finished tiles stay usable."
    assert widget.compute_button.isEnabled() and not widget.cancel_button.isEnabled()
    session = widget.session
    assert not session.is_encoded(), "cancelled before the last tile"
    # the tiles under the view were encoded first: prompting there works right away
    assert session.is_encoded((slice(200, 300), slice(200, 300)))
    ui.click((256.0, 256.0))
    ui.wait_preview()
    assert widget.prediction is not None


def test_encoding_follows_the_view(viewer, make_annotator, qtbot):
    ui = _start_large_encoding(viewer, make_annotator, qtbot)
    widget = ui.widget
    corner = (slice(1850, 2000), slice(1850, 2000))
    assert not widget.session.is_encoded(corner)
    viewer.scene.camera.center = (1925, 1925)  # the user pans to the opposite corner
    qtbot.waitUntil(lambda: widget.session.is_encoded(corner), timeout=WAIT_MS)
    assert not widget.session.is_encoded(), "the new view came before the rest"
    # prompting works there while the other tiles are still encoding
    ui.click((1925.0, 1925.0))
    ui.wait_preview()
    assert widget.jobs.worker("encode") is not None and not widget.session.is_encoded()
    widget.cancel()
    ui.wait_idle()


def test_encoding_runs_in_a_worker_and_the_event_loop_keeps_running(
    nuclei, make_annotator, qtbot, monkeypatch
):
    from qtpy.QtCore import QTimer

    from napari_segany.tiled.session import SegmentationSession

    on_main = []
    encode = SegmentationSession.encode

    def recording(self, *args, **kwargs):
        for report in encode(self, *args, **kwargs):
            on_main.append(threading.current_thread() is threading.main_thread())
            yield report

    monkeypatch.setattr(SegmentationSession, "encode", recording)
    ui = make_annotator()
    ui.widget.tile_spin.setValue(256)  # 9 tiles
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(len(on_main)))
    timer.start()
    ui.compute()
    timer.stop()
    assert on_main == [False] * 9
    assert set(ticks) & set(range(1, 9)), "the timer fired while tiles were encoding"


class _GatedPredict:
    """Stands in for ``session.predict``: records each call, and waits for a go when gated."""

    def __init__(self, predict) -> None:
        self.predict = predict
        self.calls = []  # (number of points, prompt_views, on the main thread)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, **kwargs):
        on_main = threading.current_thread() is threading.main_thread()
        points = kwargs["points"]
        self.calls.append(
            (0 if points is None else len(points), kwargs.get("prompt_views"), on_main)
        )
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.predict(**kwargs)


def _gated(widget, monkeypatch) -> _GatedPredict:
    gated = _GatedPredict(widget.session.predict)
    monkeypatch.setattr(widget.session, "predict", gated)
    return gated


def _click_while_decodes_wait(nuclei, make_annotator, qtbot, monkeypatch):
    """Encode, hold every decode at a gate, click the largest nucleus' centre and wait until
    its decode has started. Returns (annotator, gated predict, the click's (row, col))."""
    _image, truth = nuclei
    ui = make_annotator()
    ui.compute()
    gated = _gated(ui.widget, monkeypatch)
    gated.gate.clear()
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    qtbot.waitUntil(gated.entered.is_set, timeout=WAIT_MS)
    return ui, gated, centre


def test_preview_decodes_the_embedding_first_then_the_prompt_views(
    nuclei, make_annotator, monkeypatch
):
    _image, truth = nuclei
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    assert widget.session.prompt_views > 1
    gated = _gated(widget, monkeypatch)
    shown = []
    widget.annotation.prediction_changed.connect(shown.append)
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    # one decode from the embedding alone, then one over the prompt views; never on the main thread
    assert gated.calls == [(1, 1, False), (1, None, False)]
    assert len(shown) == 2 and shown[-1] is widget.prediction


def test_preview_of_a_moving_point_decodes_only_the_newest_prompts(
    nuclei, make_annotator, qtbot, monkeypatch
):
    ui, gated, centre = _click_while_decodes_wait(nuclei, make_annotator, qtbot, monkeypatch)
    widget = ui.widget
    ui.click((centre[0] + 1, centre[1]))  # while the first decode runs
    ui.click((centre[0] + 2, centre[1]))
    assert widget.preview.pending and widget.preview.running()
    gated.gate.set()
    ui.wait_preview()
    # the first point's fast answer is shown, its prompt-view average skipped; then the newest
    # prompts (all three points) are decoded, and refine the mask shown
    assert gated.calls == [(1, 1, False), (3, 1, False), (3, None, False)]
    assert len(widget.annotation.last_prompts.points) == 3


def test_a_decode_of_cleared_prompts_is_not_shown(nuclei, make_annotator, qtbot, monkeypatch):
    ui, gated, _centre = _click_while_decodes_wait(nuclei, make_annotator, qtbot, monkeypatch)
    widget = ui.widget
    widget.clear_prompts()  # while the decode runs
    gated.gate.set()
    qtbot.waitUntil(lambda: not widget.preview.running(), timeout=WAIT_MS)
    assert widget.prediction is None
    assert not widget.current_layer.data.any()
    assert widget.commit() == 0


def test_segment_all_runs_in_a_worker_and_is_one_undo_step(
    nuclei, make_annotator, qtbot, monkeypatch
):
    """The button drives napari_segany.automatic.iter_segment (a stand-in with the same contract
    here, so the test checks the widget, not the automatic segmentation's quality)."""
    from napari_segany import automatic
    from napari_segany.automatic import AutomaticParams, clip_to_free
    from napari_segany.progress import Progress

    _image, truth = nuclei
    calls = []

    def iter_segment(session, **params):
        calls.append((params, threading.current_thread() is threading.main_thread()))
        for done in range(1, 4):
            yield Progress(done, 3, "segmenting")
        ids = np.unique(truth[truth > 0])
        return SimpleNamespace(
            labels=truth.astype(np.uint32), scores={int(i): (0.9, 0.9) for i in ids}
        )

    monkeypatch.setattr(automatic, "iter_segment", iter_segment)
    ui = make_annotator()
    widget = ui.widget
    assert not widget.segment_all_button.isEnabled()  # no embeddings yet
    ui.compute()
    assert widget.segment_all_button.isEnabled()
    # one object committed by hand first: segment all keeps it and numbers the rest after it
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    assert widget.commit() == 1
    manual = ui.labels()
    widget.segment_all(points_per_side=8)
    assert not widget.segment_all_button.isEnabled()  # while it runs
    ui.wait_idle()
    assert calls == [({"points_per_side": 8}, False)]
    data = ui.labels()
    assert np.array_equal(data[manual == 1], manual[manual == 1])
    # the truth objects are fitted around it, each added once with IDs from 2; the rest of the
    # committed one (a ring where the two masks differ) is left out
    fitted = clip_to_free(truth, manual > 0, min_size=AutomaticParams().min_size).labels
    added = np.unique(fitted[fitted > 0])
    assert len(added) == len(np.unique(truth[truth > 0])) - 1
    assert widget.status.text() == (
        f"Segment all: added {len(added)} objects (Ctrl+Z undoes them); "
        "1 more lay on existing objects."
    )
    assert set(np.unique(data[data > 1])) == set(range(2, 2 + len(added)))
    assert np.array_equal(data > 1, fitted > 0)
    assert widget.segment_all_button.isEnabled()
    widget.undo()
    assert np.array_equal(ui.labels(), manual)
