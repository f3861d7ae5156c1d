"""The napari layer of napari-segany: every Qt and napari import lives in this package.

The core (models, predictor, tiled sessions, automatic segmentation) never imports it. The dock
widget is :class:`napari_segany._qt.widget.SegmentAnythingWidget`, contributed to napari by the
manifest as ``napari_segany._widget:SegmentAnythingWidget``: a shell around a plain-Python model
(:mod:`~napari_segany._qt.annotation`), its workers (:mod:`~napari_segany._qt.jobs`,
:mod:`~napari_segany._qt.session_jobs`, :mod:`~napari_segany._qt.preview`), its layers
(:mod:`~napari_segany._qt.layers`, :mod:`~napari_segany._qt.edits`) and its panel
(:mod:`~napari_segany._qt.panel` with :mod:`~napari_segany._qt.pickers`,
:mod:`~napari_segany._qt.model_controls` and :mod:`~napari_segany._qt.candidates`).
"""
