"""The napari layer of napari-segany: every Qt and napari import lives in this package.

The core (models, predictor, tiled sessions, automatic segmentation) never imports it. The dock
widget is :class:`napari_segany._qt.widget.SegmentAnythingWidget`, contributed to napari by the
manifest as ``napari_segany._widget:SegmentAnythingWidget``.
"""
