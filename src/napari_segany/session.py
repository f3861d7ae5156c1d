"""Old import path of :mod:`napari_segany.tiled.session`, kept because it is public."""

from napari_segany.tiled.session import RegionPrediction, SegmentationSession

__all__ = ["RegionPrediction", "SegmentationSession"]
