"""Automatic instance segmentation: every object of an image, tile by tile, stitched at seams.

>>> from napari_segany.automatic import segment
>>> result = segment(image)  # embedded model, instance-head method  # doctest: +SKIP
>>> result.labels  # (H, W) uint32 instance labels  # doctest: +SKIP
"""

from napari_segany.automatic.dispatch import segment
from napari_segany.automatic.free_pixels import FreeObjects, clip_to_free
from napari_segany.automatic.metrics import (
    ObjectErrors,
    matching_accuracy,
    object_errors,
    pixel_agreement,
)
from napari_segany.automatic.params import METHODS, AutomaticParams
from napari_segany.automatic.point_grid import PointGridParams
from napari_segany.automatic.segment import AutomaticResult, iter_segment

__all__ = [
    "METHODS",
    "AutomaticParams",
    "AutomaticResult",
    "FreeObjects",
    "ObjectErrors",
    "PointGridParams",
    "clip_to_free",
    "iter_segment",
    "matching_accuracy",
    "object_errors",
    "pixel_agreement",
    "segment",
]
