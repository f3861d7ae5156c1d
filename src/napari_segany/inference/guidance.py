"""Answer a single positive click with the instance-map object under it.

A click alone does not say how far a large object extends; a model's instance head, which sees
every object of the image at once, does. For models whose
:class:`~napari_segany.models.inference_settings.InferenceSettings` set ``guide_min_area``, a
single positive click on an instance-map object at least that large shows that object itself.
Why and how much it helps: docs/history.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def guide_by_instance(
    prediction,
    point: np.ndarray,
    instances: tuple[np.ndarray, list],
    min_area: int,
    decode_with_box: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Use the instance map to answer a single positive click at ``point`` (row, col).

    The chosen mask is the instance-map object under the click. Its logits, for refining with
    the next prompt, are those of the decoder's mask that agrees best (IoU) with the object: of
    the three candidates, and of the click decoded again together with the object's bounding
    box. That candidate becomes ``prediction.chosen`` and its mask is replaced by the object's.

    Nothing changes where the instance map has background under the click, or an object
    smaller than ``min_area`` pixels: there the predicted IoU ranks the candidates.

    Parameters
    ----------
    prediction : Prediction
        The click's candidates (K, H, W); changed in place.
    point : ndarray, shape (2,)
        The click, (row, col) image pixels.
    instances : (labels, boxes)
        Instance labels (H, W) and their objects' bounding slices (``ndimage.find_objects``).
    min_area : int
    decode_with_box : callable
        ``decode_with_box(box)`` with an inclusive (row0, col0, row1, col1) box → the click and
        box decoded as one mask: (masks (1, H, W), scores (1,), logits (1, h, w)).
    """
    labels, boxes = instances
    r, c = (int(v) for v in np.clip(np.round(point), 0, np.array(labels.shape) - 1))
    label = int(labels[r, c])
    if label == 0:
        return
    region = boxes[label - 1]
    obj = labels[region] == label
    if np.count_nonzero(obj) < min_area:
        return

    def agreement(masks: np.ndarray) -> np.ndarray:
        inter = np.count_nonzero(masks[(slice(None), *region)] & obj, axis=(1, 2))
        areas = np.count_nonzero(masks.reshape(len(masks), -1), axis=1)
        return inter / np.maximum(areas + np.count_nonzero(obj) - inter, 1)

    scores = agreement(prediction.masks)
    chosen = int(np.argmax(scores))
    prediction.chosen = chosen
    box = np.array([region[0].start, region[1].start, region[0].stop - 1, region[1].stop - 1])
    masks, iou, logits = decode_with_box(box)
    if agreement(masks)[0] > scores[chosen]:
        prediction.scores[chosen] = iou[0]
        prediction.logits[chosen] = logits[0]
    prediction.masks[chosen] = False
    prediction.masks[(chosen, *region)] = obj
