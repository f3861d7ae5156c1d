"""Scoring a model on held-out annotations, the way users will use it.

Two numbers per validation part (see :func:`napari_segany.training.annotations.split_validation`):

* automatic accuracy: ``Segment all`` (:func:`napari_segany.automatic.segment`) on the part's
  box, matched to the annotations at IoU 0.5
  (:func:`napari_segany.automatic.metrics.matching_accuracy`); found objects mostly outside the
  annotated pixels are not counted;
* one-click mIoU: one positive click at each annotated object's centre, the mask shown for it
  (:attr:`napari_segany.inference.predictor.Prediction.best`), IoU with the annotation.

The score that chooses the checkpoint is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_segany.models.sam import SamModel
from napari_segany.training.annotations import AnnotatedImage, ValidationPart

__all__ = ["ValidationScore", "centre_click", "evaluate"]


@dataclass(frozen=True)
class ValidationScore:
    """Scores on the validation parts (each 0–1).

    Attributes
    ----------
    accuracy : float
        Automatic segmentation: TP / (TP + FP + FN) at IoU 0.5, over all parts.
    click_miou : float
        Mean IoU of one click per annotated object.
    """

    accuracy: float
    click_miou: float

    @property
    def score(self) -> float:
        """The mean of ``accuracy`` and ``click_miou``: what the best checkpoint maximises."""
        return 0.5 * (self.accuracy + self.click_miou)

    def as_dict(self) -> dict[str, float]:
        """``accuracy``, ``click_miou`` and ``score`` as a JSON-ready dict."""
        return {"accuracy": self.accuracy, "click_miou": self.click_miou, "score": self.score}


def centre_click(mask: np.ndarray) -> np.ndarray:
    """The pixel of a mask nearest its centroid, (row, col) float."""
    rows, cols = np.nonzero(mask)
    d2 = (rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2
    i = int(np.argmin(d2))
    return np.array([rows[i], cols[i]], dtype=np.float64)


def _inside(predicted: np.ndarray, area: np.ndarray) -> np.ndarray:
    """``predicted`` without the objects that have less than half their pixels in ``area``."""
    n = int(predicted.max()) + 1
    total = np.bincount(predicted.ravel(), minlength=n)
    kept = np.bincount(predicted[area], minlength=n)
    keep = kept * 2 >= total
    keep[0] = False
    return np.where(keep[predicted], predicted, 0)


@torch.no_grad()
def evaluate(
    model: SamModel, images: list[AnnotatedImage], parts: list[ValidationPart]
) -> ValidationScore:
    """Score ``model`` (left in eval mode) on the validation parts of ``images``."""
    from napari_segany.automatic import segment
    from napari_segany.automatic.metrics import matched_objects
    from napari_segany.inference.predictor import Predictor

    model.eval()
    counts = np.zeros(3, np.int64)  # TP, FP, FN over all parts
    ious = []
    predictor = Predictor(model)
    for part in parts:
        image = images[part.image]
        rgb = np.ascontiguousarray(image.rgb[part.rows, part.cols])
        truth = np.where(part.area, image.labels[part.rows, part.cols], 0)
        found = _inside(np.asarray(segment(rgb, model).labels).astype(np.int64), part.area)
        counts += matched_objects(truth, found, 0.5)
        predictor.set_image(rgb)
        for i in np.unique(truth[truth > 0]):
            mask = truth == i
            prediction = predictor.predict(points=[centre_click(mask)], point_labels=[1])
            shown = prediction.masks[prediction.best]
            union = np.logical_or(shown, mask).sum()
            ious.append(float(np.logical_and(shown, mask).sum() / union) if union else 1.0)
    accuracy = counts[0] / counts.sum() if counts.sum() else 1.0
    return ValidationScore(float(accuracy), float(np.mean(ious)) if ious else 0.0)
