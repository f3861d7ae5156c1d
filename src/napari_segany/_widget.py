"""npe2 ``widgets`` contribution: the Segment Anything annotator dock widget.

napari creates the class with the viewer (its ``napari_viewer`` parameter). The widget itself
lives in :mod:`napari_segany._qt.widget`, with all other Qt code.
"""

from __future__ import annotations

from napari_segany._qt.widget import SegmentAnythingWidget

__all__ = ["SegmentAnythingWidget"]
