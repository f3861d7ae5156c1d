"""Segment Anything for cell microscopy, as a napari plugin and a Qt-free Python core.

The public API is importable from the package root. Importing the package is cheap: torch and the
model code are imported on first use of one of these names.

>>> import napari_segany
>>> model = napari_segany.load_model("vit_b")  # doctest: +SKIP
>>> predictor = napari_segany.Predictor(model)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module defining it, imported lazily so `import napari_segany` stays light
_LAZY = {
    "build_model": "napari_segany.models.architectures",
    "ARCHITECTURES": "napari_segany.models.architectures",
    "load_model": "napari_segany.models.loading",
    "CheckpointError": "napari_segany.models.checkpoint",
    "Predictor": "napari_segany.inference.predictor",
    "Prediction": "napari_segany.inference.predictor",
    "SegmentationSession": "napari_segany.tiled.session",
    "MODELS": "napari_segany.models.registry",
    "ModelDownloadError": "napari_segany.models.download",
}

__all__ = [  # noqa: RUF022 - grouped by topic
    "__version__",
    "ARCHITECTURES",
    "MODELS",
    "CheckpointError",
    "ModelDownloadError",
    "Prediction",
    "Predictor",
    "SegmentationSession",
    "build_model",
    "load_model",
]

if TYPE_CHECKING:  # pragma: no cover
    from napari_segany.inference.predictor import Prediction, Predictor
    from napari_segany.models.architectures import ARCHITECTURES, build_model
    from napari_segany.models.checkpoint import CheckpointError
    from napari_segany.models.download import ModelDownloadError
    from napari_segany.models.loading import load_model
    from napari_segany.models.registry import MODELS
    from napari_segany.tiled.session import SegmentationSession


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'napari_segany' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
