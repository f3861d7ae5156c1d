"""Prompts sampled the way annotators click, from ground-truth instance masks.

All coordinates are (row, col) pixels of the training crop; conversion to SAM's (x, y) happens in
the training loop, in one place, with the convention of
:func:`napari_segany.inference.prompts.to_model_frame` (columns first).
"""

from __future__ import annotations

import numpy as np


def _erode(mask: np.ndarray) -> np.ndarray:
    """3×3 binary erosion of a 2D mask (pixels outside the array count as background)."""
    padded = np.pad(mask, 1, constant_values=False)
    out = mask.copy()
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            out &= padded[dr : dr + mask.shape[0], dc : dc + mask.shape[1]]
    return out


def interior(mask: np.ndarray, depth: int) -> np.ndarray:
    """The mask eroded ``depth`` times, or the deepest non-empty erosion."""
    current = mask
    for _ in range(depth):
        eroded = _erode(current)
        if not eroded.any():
            break
        current = eroded
    return current


def _random_pixel(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    i = rng.integers(len(rows))
    return np.array([rows[i], cols[i]], dtype=np.float64)


def positive_point(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A click inside the object: usually near its centre, sometimes anywhere inside it.

    Parameters
    ----------
    mask : ndarray (H, W) bool
        The object.

    Returns
    -------
    ndarray (2,)
        (row, col).
    """
    if rng.random() < 0.6:
        rows, cols = np.nonzero(mask)
        centre = np.array([rows.mean(), cols.mean()])
        spread = 0.15 * np.sqrt(len(rows))
        target = centre + rng.normal(0, spread, 2)
        d2 = (rows - target[0]) ** 2 + (cols - target[1]) ** 2
        i = int(np.argmin(d2))
        return np.array([rows[i], cols[i]], dtype=np.float64)
    size = int(np.sqrt(mask.sum()))
    return _random_pixel(interior(mask, max(1, size // 6)), rng)


def negative_point(
    mask: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray | None:
    """A click just outside the object: on a neighbour or on background near it."""
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    pad = max(3, int(0.5 * np.sqrt(len(rows))))
    r0, r1 = max(0, rows.min() - pad), min(h, rows.max() + pad + 1)
    c0, c1 = max(0, cols.min() - pad), min(w, cols.max() + pad + 1)
    ring = np.zeros_like(mask)
    ring[r0:r1, c0:c1] = True
    ring &= ~mask
    neighbours = ring & (labels > 0)
    candidates = neighbours if neighbours.any() and rng.random() < 0.6 else ring
    if not candidates.any():
        return None
    return _random_pixel(candidates, rng)


def jittered_box(mask: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> np.ndarray:
    """The object's bounding box with each side moved by up to ``jitter`` of its size.

    Returns
    -------
    ndarray (4,)
        (row0, col0, row1, col1), inside the image.
    """
    rows, cols = np.nonzero(mask)
    box = np.array([rows.min(), cols.min(), rows.max(), cols.max()], dtype=np.float64)
    size = np.array([box[2] - box[0] + 1, box[3] - box[1] + 1] * 2)
    box += rng.normal(0, jitter / 2, 4) * size
    h, w = mask.shape
    box[[0, 2]] = np.clip(box[[0, 2]], 0, h - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, w - 1)
    return np.concatenate([np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])])


def corrective_point(
    truth: np.ndarray, predicted: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, int] | None:
    """A click on the largest mistake of a prediction, as an annotator would correct it.

    Returns
    -------
    (point (2,) as (row, col), label) or None when the prediction is perfect.
        Label 1 on a missed part of the object, 0 on a wrongly included part.
    """
    missed = truth & ~predicted
    extra = predicted & ~truth
    n_missed, n_extra = int(missed.sum()), int(extra.sum())
    if n_missed == 0 and n_extra == 0:
        return None
    error, label = (missed, 1) if n_missed >= n_extra else (extra, 0)
    return _random_pixel(interior(error, 2), rng), label
