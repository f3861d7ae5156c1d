"""Kinds of automatic-segmentation errors: correct, merge, fragment, false, and missed objects."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany.automatic import ObjectErrors, object_errors


def _scene() -> np.ndarray:
    """Four true 4x4 squares on a 12x20 background, IDs 1..4 (row, col order)."""
    truth = np.zeros((12, 20), dtype=np.uint16)
    truth[1:5, 1:5] = 1
    truth[1:5, 5:9] = 2  # touches 1
    truth[1:5, 12:16] = 3
    truth[7:11, 1:5] = 4
    return truth


def test_each_kind_is_recognised():
    truth = _scene()
    predicted = np.zeros_like(truth)
    predicted[1:5, 1:9] = 10  # covers all of 1 and 2: a merge
    predicted[1:5, 12:14] = 20  # half of 3: a fragment
    predicted[1:5, 14:16] = 21  # the other half of 3: a fragment
    predicted[7:11, 1:5] = 30  # exactly 4: correct
    predicted[8:11, 16:19] = 40  # background: false
    errors = object_errors(truth, predicted)
    assert errors.kinds == {10: "merge", 20: "fragment", 21: "fragment", 30: "correct", 40: "false"}
    assert errors.wrong == {10, 20, 21, 40}
    assert errors.true_count == 4
    assert errors.missed == 3  # 1, 2 and 3 matched by nothing
    assert errors.merge_rate == pytest.approx(1 / 5)


def test_perfect_segmentation_is_all_correct():
    truth = _scene()
    relabelled = np.where(truth > 0, truth + 100, 0)
    errors = object_errors(truth, relabelled)
    assert set(errors.kinds.values()) == {"correct"}
    assert errors.missed == 0 and errors.wrong == set() and errors.merge_rate == 0.0


def test_loose_but_matching_object_is_correct_not_merge():
    truth = _scene()
    predicted = np.zeros_like(truth)
    # All of 1 plus 6 pixels of 2 (less than half of 2): IoU 16/22 > 0.5, so correct.
    predicted[1:5, 1:5] = 7
    predicted[1:4, 5:7] = 7
    assert object_errors(truth, predicted).kinds == {7: "correct"}


def test_mostly_background_object_is_false_even_if_touching_truth():
    truth = _scene()
    predicted = np.zeros_like(truth)
    predicted[0:6, 9:12] = 5  # 18 pixels, none on truth
    predicted[4:5, 12:14] = 5  # plus 2 pixels of 3
    assert object_errors(truth, predicted).kinds == {5: "false"}


def test_empty_images():
    empty = np.zeros((4, 4), dtype=np.uint8)
    assert object_errors(empty, empty) == ObjectErrors({}, 0, 0)
    errors = object_errors(_scene(), np.zeros_like(_scene()))
    assert errors.kinds == {} and errors.missed == 4 and errors.merge_rate == 0.0


def test_rejects_low_threshold_and_size_mismatch():
    with pytest.raises(ValueError, match="threshold"):
        object_errors(_scene(), _scene(), threshold=0.3)
    with pytest.raises(ValueError, match="differ"):
        object_errors(_scene(), _scene()[:5])


def test_confidence_ranking_auroc_and_lowest_quarter():
    from napari_segany.automatic.metrics import confidence_ranking

    errors = ObjectErrors({1: "correct", 2: "merge", 3: "correct", 4: "false"}, 0, 4)
    assert confidence_ranking({1: 0.9, 2: 0.1, 3: 0.8, 4: 0.5}, errors) == (1.0, 0.5)
    # Reversed confidence: every wrong object above every correct one.
    assert confidence_ranking({1: 0.1, 2: 0.9, 3: 0.2, 4: 0.8}, errors)[0] == 0.0
    # Ties count half; lists of images are pooled.
    auroc, _ = confidence_ranking(
        [{1: 0.5, 2: 0.5}], [ObjectErrors({1: "correct", 2: "false"}, 0, 1)]
    )
    assert auroc == 0.5
    nan_auroc, nan_share = confidence_ranking({1: 0.3}, ObjectErrors({1: "correct"}, 0, 1))
    assert np.isnan(nan_auroc) and np.isnan(nan_share)
