"""npe2 ``widgets`` contribution: the Segment Anything annotator dock widget.

Kept import-light (Qt is imported when napari creates the widget), so the manifest's
``python_name`` resolves without a display.
"""

from __future__ import annotations


def make_annotator(napari_viewer):
    """Create the annotator dock widget for ``napari_viewer``."""
    from napari_segany._qt.widget import SegmentAnythingWidget

    return SegmentAnythingWidget(napari_viewer)
