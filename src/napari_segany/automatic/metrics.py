"""Instance segmentation accuracy: objects matched one to one by IoU."""

from __future__ import annotations

import numpy as np


def matched_objects(
    truth: np.ndarray, predicted: np.ndarray, threshold: float = 0.5
) -> tuple[int, int, int]:
    """Count true positives, false positives and false negatives.

    A predicted object and a true object match when their IoU exceeds ``threshold``; with
    ``threshold ≥ 0.5`` each object matches at most one other, so no assignment step is needed.

    Parameters
    ----------
    truth, predicted : ndarray, shape (H, W), integer
        Instance labels, 0 background.
    threshold : float
        IoU above which two objects match (≥ 0.5).

    Returns
    -------
    (tp, fp, fn) : tuple of int
    """
    if threshold < 0.5:
        raise ValueError("threshold must be ≥ 0.5 for one-to-one matching")
    truth = np.asarray(truth).ravel()
    predicted = np.asarray(predicted).ravel()
    if truth.shape != predicted.shape:
        raise ValueError(f"label images differ in size: {truth.shape} vs {predicted.shape}")
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    p_ids, p_inv = np.unique(predicted, return_inverse=True)
    t_area = np.bincount(t_inv)
    p_area = np.bincount(p_inv)
    pair = t_inv.astype(np.int64) * len(p_ids) + p_inv
    pairs, inter = np.unique(pair, return_counts=True)
    ti, pi = pairs // len(p_ids), pairs % len(p_ids)
    objects = (t_ids[ti] != 0) & (p_ids[pi] != 0)
    ti, pi, inter = ti[objects], pi[objects], inter[objects]
    iou = inter / (t_area[ti] + p_area[pi] - inter)
    tp = int(np.count_nonzero(iou > threshold))
    n_truth = int(np.count_nonzero(t_ids))
    n_pred = int(np.count_nonzero(p_ids))
    return tp, n_pred - tp, n_truth - tp


def matching_accuracy(truth: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> float:
    """TP / (TP + FP + FN) at an IoU threshold (1.0 when both images are empty).

    >>> a = np.array([[1, 1, 0], [0, 0, 2]])
    >>> matching_accuracy(a, a)
    1.0
    >>> matching_accuracy(a, np.zeros_like(a))
    0.0
    """
    tp, fp, fn = matched_objects(truth, predicted, threshold)
    total = tp + fp + fn
    return tp / total if total else 1.0
