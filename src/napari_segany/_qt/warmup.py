"""Paying the annotator's one-time costs in a background thread, before the user waits on them.

* napari compiles parts of its Labels and Shapes code with numba the first time they run: about
  a second when numba loads them from its disk cache, several seconds on the very first launch.
  Paid on the main thread when the annotator adds its layers, that is a frozen window. The same
  layers, built here off screen (they are plain models until added to a viewer), pay it here.
* Importing torch and the segmentation code takes about a second, mostly holding the GIL; in
  the worker of the first Compute it would make the window stutter while the layers appear.
* Those imports leave Python's next full garbage collection due; it is run here too, so that
  it does not fall in the middle of the first Compute.

Started once the dock is shown, it runs while the user picks an image and presses Compute.
"""

from __future__ import annotations

import gc
import logging
import threading

import numpy as np

_thread: threading.Thread | None = None


def warm_in_background() -> threading.Thread:
    """Start the warm-up in a thread, once per process; return that thread.

    A plain (non-daemon) thread: Python waits for it at exit, so closing napari during the
    warm-up cannot tear down objects it still uses.
    """
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_warm_quietly, name="napari-segany warm-up")
        _thread.start()
    return _thread


def _warm_quietly() -> None:
    try:
        warm_layer_code()
        import_segmentation_code()
        # the imports leave Python's next full garbage collection due (a fifth of a second with
        # napari and torch loaded, when no thread runs): now, not while the layers are added
        gc.collect()
    except Exception:  # only an optimisation: the same work is then done when first needed
        logging.getLogger(__name__).debug("warming up the annotator failed", exc_info=True)


def import_segmentation_code() -> None:
    """Import what preparing a session and answering a click import (torch, the models, the
    session, the instance maps, automatic segmentation)."""
    import torch  # noqa: F401

    import napari_segany.automatic
    import napari_segany.inference.instance_maps
    import napari_segany.models.loading
    import napari_segany.tiled.session  # noqa: F401


def warm_layer_code() -> None:
    """Build the annotator's four kinds of layer off screen and draw into them once.

    Covers the colour mapping of a uint32 segmentation and of the uint8 current-object layer,
    a point with its colour feature, and the triangulation of a drawn rectangle. Layers that
    are not in a viewer have no vispy visuals, so this touches no Qt object.
    """
    from napari.layers import Labels

    from napari_segany._qt import prompt_layers
    from napari_segany._qt.layers import current_object_layer

    one, zero = np.ones(2), np.zeros(2)
    segmentation = Labels(np.zeros((16, 16), dtype=np.uint32))
    segmentation.data[2:6, 2:6] = 3
    segmentation.refresh()
    current = current_object_layer(one, zero)
    current.data = np.ones((4, 4), dtype=np.uint8)
    points = prompt_layers.make_points_layer(one, zero, lambda: False)
    points.add(np.array([[2.0, 2.0]]))
    box = prompt_layers.make_box_layer(one, zero)
    box.add_rectangles(np.array([[1.0, 1.0], [6.0, 6.0]]))
