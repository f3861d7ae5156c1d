"""Simulated user input for the annotator: a mouse click on a layer and waiting on the event loop.

Shared by the widget tests, ``benchmarks/bench_widget.py`` and ``scripts/screenshot_widget.py``,
which all drive a real napari window the way a user does.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np


def click(layer, position, modifiers=()) -> None:
    """A left click (press + release without moving) on ``layer`` at plane ``position``.

    Parameters
    ----------
    layer : napari layer
        The layer that receives the click (its mouse callbacks run).
    position : (float, float)
        (row, col) in the layer's data coordinates.
    modifiers : sequence of str
        Keys held, e.g. ``("Shift",)``.
    """
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    world = np.asarray(layer.data_to_world(position), dtype=float)
    common = {
        "position": world,
        "pos": np.array([10.0, 10.0]),
        "modifiers": list(modifiers),
        "button": 1,
        "handled": False,
        "view_direction": None,
        "dims_displayed": [0, 1],
        "dims_point": world,
    }
    mouse_press_callbacks(layer, SimpleNamespace(type="mouse_press", **common))
    mouse_release_callbacks(layer, SimpleNamespace(type="mouse_release", **common))


def wait_until(condition, timeout_s: float = 300.0, step_ms: int = 1) -> None:
    """Run the Qt event loop until ``condition()`` is true.

    ``condition`` is checked between events, as pytest-qt's ``waitUntil`` does (not inside a
    nested event loop, where a job may be between two steps).

    Raises
    ------
    TimeoutError
        When ``condition()`` is still false after ``timeout_s`` seconds.
    """
    from qtpy.QtTest import QTest

    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s")
        QTest.qWait(step_ms)
