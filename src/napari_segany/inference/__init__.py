"""From an image to masks with one model: encoding, prompt geometry, decoding, instance maps.

:mod:`~napari_segany.inference.embedding` holds the one encode path; the
:class:`~napari_segany.inference.predictor.Predictor` answers prompts on one encoded image.
Nothing here knows about tiles of a large image (:mod:`napari_segany.tiled`) or about
automatic segmentation (:mod:`napari_segany.automatic`).
"""
