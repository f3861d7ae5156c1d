"""Instance segmentation accuracy: objects matched one to one by IoU, and the kind of each error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Kinds of predicted object, as named in :class:`ObjectErrors`.
OBJECT_KINDS = ("correct", "merge", "fragment", "false")


@dataclass(frozen=True)
class _Overlaps:
    """Sparse contingency table of two label images: one row per overlapping object pair.

    ``t_ids``/``p_ids`` are the sorted label values (0 included when present), ``t_area``/
    ``p_area`` their pixel counts, and ``ti``, ``pi``, ``inter`` the indices into those arrays
    and the intersection area of each overlapping pair of non-background objects.
    """

    t_ids: np.ndarray
    p_ids: np.ndarray
    t_area: np.ndarray
    p_area: np.ndarray
    ti: np.ndarray
    pi: np.ndarray
    inter: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        """IoU of each overlapping pair, shape (pairs,)."""
        return self.inter / (self.t_area[self.ti] + self.p_area[self.pi] - self.inter)


def _overlaps(truth: np.ndarray, predicted: np.ndarray) -> _Overlaps:
    """Build the contingency table of ``truth`` and ``predicted`` with one pass over pixels."""
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
    return _Overlaps(t_ids, p_ids, t_area, p_area, ti[objects], pi[objects], inter[objects])


def _check_threshold(threshold: float) -> None:
    if threshold < 0.5:
        raise ValueError("threshold must be ≥ 0.5 for one-to-one matching")


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
    _check_threshold(threshold)
    table = _overlaps(truth, predicted)
    tp = int(np.count_nonzero(table.iou > threshold))
    n_truth = int(np.count_nonzero(table.t_ids))
    n_pred = int(np.count_nonzero(table.p_ids))
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


def pixel_agreement(truth: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> float:
    """Share of pixels that both label images give the same object, or both give background.

    Each predicted object stands for the true object it matches (IoU above ``threshold``);
    an unmatched predicted object agrees with the truth nowhere. 1.0 means the same objects,
    pixel for pixel, whatever their IDs.

    >>> a = np.array([[1, 1, 1, 0], [0, 0, 2, 2]])
    >>> pixel_agreement(a, np.where(a > 0, 3 - a, 0))       # the same objects, IDs swapped
    1.0
    >>> pixel_agreement(a, np.array([[1, 1, 0, 0], [0, 0, 2, 2]]))   # one pixel of 8 lost
    0.875
    """
    _check_threshold(threshold)
    table = _overlaps(truth, predicted)
    matched = table.iou > threshold
    stands_for = np.full(len(table.p_ids), -1, dtype=np.int64)
    stands_for[table.p_ids == 0] = 0
    stands_for[table.pi[matched]] = table.t_ids[table.ti[matched]]
    renamed = stands_for[np.searchsorted(table.p_ids, np.asarray(predicted))]
    return float(np.mean(renamed == np.asarray(truth)))


@dataclass(frozen=True)
class ObjectErrors:
    """What each predicted object is, judged against the true objects.

    Attributes
    ----------
    kinds : dict of int to str
        Predicted object ID -> ``"correct"``, ``"merge"``, ``"fragment"`` or ``"false"``
        (see :func:`object_errors` for the definitions).
    missed : int
        True objects that no predicted object matches (IoU above the threshold).
    true_count : int
        Number of true objects.
    """

    kinds: dict[int, str]
    missed: int
    true_count: int

    @property
    def wrong(self) -> set[int]:
        """IDs of the predicted objects whose kind is not ``"correct"``."""
        return {i for i, kind in self.kinds.items() if kind != "correct"}

    @property
    def merge_rate(self) -> float:
        """Merges / predicted objects (0.0 when there are no predicted objects)."""
        merges = sum(kind == "merge" for kind in self.kinds.values())
        return merges / len(self.kinds) if self.kinds else 0.0


def object_errors(truth: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> ObjectErrors:
    """Label every predicted object as correct, a merge, a fragment or a false object.

    A predicted object is, in this order of precedence:

    * ``"correct"``: it matches one true object one to one, i.e. their IoU exceeds ``threshold``
      (the matching of :func:`matched_objects`; with ``threshold ≥ 0.5`` it is one to one);
    * ``"merge"``: not correct, and it covers at least half of the pixels of each of two or more
      true objects;
    * ``"fragment"``: neither, and at least half of its own pixels lie on true objects (a piece
      of an object, or of several);
    * ``"false"``: the rest — mostly background.

    Parameters
    ----------
    truth, predicted : ndarray, shape (H, W), integer
        Instance labels, 0 background.
    threshold : float
        IoU above which a predicted and a true object match (≥ 0.5).

    Returns
    -------
    ObjectErrors
        The kind of every predicted object, and how many true objects no object matched.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2], [1, 1, 0, 2, 2]])
    >>> merged = np.array([[5, 5, 5, 5, 5], [5, 5, 5, 5, 5]])
    >>> errors = object_errors(truth, merged)
    >>> errors.kinds, errors.missed, errors.merge_rate
    ({5: 'merge'}, 2, 1.0)
    """
    _check_threshold(threshold)
    table = _overlaps(truth, predicted)
    n_pred_ids = len(table.p_ids)
    matched = table.iou > threshold
    correct = np.zeros(n_pred_ids, dtype=bool)
    correct[table.pi[matched]] = True
    # True objects at least half inside a predicted one, counted per predicted object.
    covers = table.inter * 2 >= table.t_area[table.ti]
    covered = np.bincount(table.pi[covers], minlength=n_pred_ids)
    on_truth = np.bincount(table.pi, weights=table.inter, minlength=n_pred_ids)
    merge = ~correct & (covered >= 2)
    fragment = ~correct & ~merge & (on_truth * 2 >= table.p_area)
    kind_index = np.select([correct, merge, fragment], [0, 1, 2], default=3)
    kinds = {
        int(pid): OBJECT_KINDS[k] for pid, k in zip(table.p_ids, kind_index, strict=True) if pid
    }
    true_count = int(np.count_nonzero(table.t_ids))
    return ObjectErrors(kinds, true_count - int(np.count_nonzero(matched)), true_count)


def confidence_ranking(
    confidence: dict[int, float] | list[dict[int, float]],
    errors: ObjectErrors | list[ObjectErrors],
) -> tuple[float, float]:
    """How well a per-object confidence ranks wrong objects below correct ones.

    Parameters
    ----------
    confidence : dict of int to float, or a list of them
        Predicted object ID -> confidence (higher: more likely right), one dict per image.
    errors : ObjectErrors or a list of them
        The kinds of the same objects (:func:`object_errors`), one per image, same order.
        Objects are pooled over all images.

    Returns
    -------
    auroc : float
        Probability that a random correct object is more confident than a random wrong one
        (ties count half; the Mann-Whitney U statistic); 0.5 is chance. NaN when either class
        is empty.
    share_in_lowest_quarter : float
        Share of all wrong objects found among the least-confident quarter of the objects
        (rounded up): what reviewing that quarter would catch. Chance is about 0.25.
        NaN when no object is wrong.

    Examples
    --------
    >>> errors = ObjectErrors({1: "correct", 2: "merge", 3: "correct", 4: "false"}, 0, 4)
    >>> confidence_ranking({1: 0.9, 2: 0.1, 3: 0.8, 4: 0.5}, errors)
    (1.0, 0.5)
    """
    if isinstance(errors, ObjectErrors):
        confidence, errors = [confidence], [errors]
    scores, wrong = [], []
    for conf, err in zip(confidence, errors, strict=True):
        ids = sorted(err.kinds)
        scores.extend(conf[i] for i in ids)
        wrong.extend(err.kinds[i] != "correct" for i in ids)
    scores = np.asarray(scores, dtype=np.float64)
    wrong = np.asarray(wrong, dtype=bool)
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    if n_wrong == 0:
        return float("nan"), float("nan")
    auroc = float("nan")
    if n_right:
        # Mann-Whitney: rank sum of the correct objects, ties at their mean rank.
        order = np.argsort(scores, kind="stable")
        ranks = np.empty(len(scores))
        ranks[order] = np.arange(1, len(scores) + 1)
        _, inverse = np.unique(scores, return_inverse=True)
        ranks = (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]
        u = ranks[~wrong].sum() - n_right * (n_right + 1) / 2
        auroc = float(u / (n_right * n_wrong))
    lowest = np.argsort(scores, kind="stable")[: -(-len(scores) // 4)]
    return auroc, float(wrong[lowest].sum() / n_wrong)
