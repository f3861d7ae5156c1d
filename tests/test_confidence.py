"""Per-object confidence of automatic segmentation: features, packaged scorer, plumbing, ranking."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from napari_segany.automatic.confidence import (
    FEATURES,
    SCORER_FILE,
    ConfidenceScorer,
    head_confidence,
    object_features,
    packaged_scorer,
)
from napari_segany.automatic.segment import AutomaticResult
from napari_segany.automatic.stitching import TileStitcher
from napari_segany.image.tiling import TileGrid


def _column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, FEATURES.index(name)]


def _two_nuclei_maps():
    """Labels with one object over two touching discs (a merge) and one lone disc; and maps
    whose centre has one peak per disc. Shapes (60, 90), (row, col)."""
    rows, cols = np.indices((60, 90))
    discs = [(30, 20), (30, 38), (30, 72)]  # first two touch
    centre = np.zeros((60, 90))
    inside = np.zeros((60, 90), bool)
    for r, c in discs:
        d = np.hypot(rows - r, cols - c)
        inside |= d < 10
        centre = np.maximum(centre, np.clip(1 - d / 10, 0, 1))
    labels = np.where(inside, np.where(cols < 55, 1, 2), 0).astype(np.uint32)
    foreground = np.where(inside, 0.9, 0.05)
    return labels, foreground, centre


def test_features_see_two_centre_peaks_and_a_concave_outline():
    labels, foreground, centre = _two_nuclei_maps()
    ids, features = object_features(labels, foreground, centre)
    assert ids.tolist() == [1, 2] and features.shape == (2, len(FEATURES))
    assert _column(features, "centre_peaks").tolist() == [2, 1]
    solidity = _column(features, "solidity")
    assert solidity[0] < solidity[1] - 0.03 and 0.9 < solidity[1] <= 1.0
    assert _column(features, "log_elongation")[0] > 0.5 > _column(features, "log_elongation")[1]
    np.testing.assert_allclose(_column(features, "foreground_mean"), 0.9)
    assert _column(features, "touching").tolist() == [0.0, 0.0]
    assert np.all(_column(features, "stability") == 1) and np.all(np.isfinite(features))
    assert _column(features, "boundary_inside").tolist() == [0.0, 0.0]  # no boundary map given


def test_a_predicted_border_inside_an_object_is_seen_but_not_one_along_its_outline():
    labels, foreground, centre = _two_nuclei_maps()
    cols = np.indices(labels.shape)[1]
    boundary = np.where(np.abs(cols - 29) <= 1, 0.8, 0.0)  # between the merged discs
    boundary[labels == 2] = 0.0
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    boundary[edge & (labels == 2)] = 0.9  # on the lone disc's outline only
    _, features = object_features(labels, foreground, centre, boundary=boundary)
    np.testing.assert_allclose(_column(features, "boundary_inside"), [0.8, 0.0])


def test_touching_share_counts_boundaries_shared_with_other_objects():
    labels = np.zeros((10, 10), np.uint32)
    labels[2:6, 2:5] = 1
    labels[2:6, 5:8] = 2
    _, features = object_features(labels, np.ones(labels.shape), np.zeros(labels.shape))
    touching = _column(features, "touching")
    assert 0 < touching[0] < 1 and touching[0] == touching[1]


def test_empty_labels_have_no_features():
    ids, features = object_features(np.zeros((5, 5), np.uint8), np.zeros((5, 5)), np.zeros((5, 5)))
    assert len(ids) == 0 and features.shape == (0, len(FEATURES))


def test_packaged_scorer_loads_with_the_expected_features():
    text = resources.files("napari_segany.weights").joinpath(SCORER_FILE).read_text("utf-8")
    data = json.loads(text)
    assert tuple(data["features"]) == FEATURES
    scorer = packaged_scorer()
    assert np.all(scorer.scale > 0) and np.all(np.isfinite(scorer.coef))
    assert "fitted_by" in data and "training" in data


def test_confidence_is_a_deterministic_probability_that_doubts_the_merge():
    labels, foreground, centre = _two_nuclei_maps()
    first = head_confidence(labels, foreground, centre, None, {1: 1.0, 2: 1.0})
    again = head_confidence(labels, foreground, centre, None, {1: 1.0, 2: 1.0})
    assert first == again and set(first) == {1, 2}
    assert all(0.0 <= c <= 1.0 for c in first.values())
    assert first[1] < first[2]  # two centre peaks, concave: the merge is less trusted


def test_scorer_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="one value per feature"):
        ConfidenceScorer.from_dict(
            {"features": ["a", "b"], "mean": [0], "scale": [1], "coef": [1], "intercept": 0}
        )


def test_stitcher_carries_confidence_to_image_ids():
    out = np.zeros((40, 40), np.uint32)
    grid = TileGrid((40, 40), tile_size=40, halo=0)
    tile = grid.tiles[0]
    labels = np.zeros((40, 40), np.uint32)
    labels[5:10, 5:10] = 7
    stitcher = TileStitcher(out)
    stitcher.add(tile, labels, {7: (0.9, 0.95)}, {7: 0.4})
    assert stitcher.scores == {1: (0.9, 0.95)} and stitcher.confidence == {1: 0.4}


def test_named_scores_and_saved_properties_have_a_confidence_column(tmp_path):
    from napari_segany.labels_io import save_labels
    from napari_segany.labels_io.ome_zarr_read import read_ome_zarr_labels

    labels = np.zeros((20, 20), np.uint32)
    labels[2:8, 2:8] = 1
    result = AutomaticResult(labels, {1: (0.8, 0.9)}, "instance_head", confidence={1: 0.7})
    assert result.named_scores() == {
        1: {"foreground_probability": 0.8, "stability": 0.9, "confidence": 0.7}
    }
    score, stability = result.scores[1]  # the pair users unpack is unchanged
    assert (score, stability) == (0.8, 0.9)
    path = tmp_path / "labels.ome.zarr"
    save_labels(path, labels, scores=result.named_scores())
    properties = read_ome_zarr_labels(path)[1]["properties"]
    assert properties[0]["confidence"] == pytest.approx(0.7)


def test_confidence_ranks_wrong_objects_low_on_synthetic_scenes():
    """On a few small dense synthetic scenes (training stream, not the held-out seeds) the
    embedded model's confidence separates wrong from correct objects better than chance."""
    from napari_segany.automatic import object_errors, segment
    from napari_segany.automatic.metrics import confidence_ranking
    from napari_segany.models.loading import load_model
    from napari_segany.synthetic import SceneConfig, generate_scene

    model = load_model()
    dense = SceneConfig(
        modality_weights=(1.0, 0.0, 0.0, 0.0), clustering=(0.7, 0.95), p_touching=0.9
    )
    confidences, errors = [], []
    for seed in (101, 102, 103):
        scene = generate_scene((256, 256), dense, seed=seed)
        result = segment(np.asarray(scene.raw), model)
        assert set(result.confidence) == set(result.scores)
        confidences.append(result.confidence)
        errors.append(object_errors(np.asarray(scene.labels), result.labels))
    auroc, share = confidence_ranking(confidences, errors)
    assert auroc > 0.6 and share > 0.25


def test_objects_below_the_minimum_confidence_are_left_out():
    from napari_segany.automatic import AutomaticParams
    from napari_segany.automatic.tile import drop_unconfident

    labels = np.zeros((10, 10), np.uint32)
    labels[1:4, 1:4], labels[6:9, 6:9] = 1, 2
    scores = {1: (0.9, 0.9), 2: (0.6, 0.5)}
    kept, kept_scores, kept_conf = drop_unconfident(labels, scores, {1: 0.8, 2: 0.1}, 0.3)
    assert set(np.unique(kept)) == {0, 1} and kept_scores == {1: (0.9, 0.9)}
    assert kept_conf == {1: 0.8}
    same = drop_unconfident(labels, scores, {1: 0.8, 2: 0.1}, 0.0)
    assert same[0] is labels and same[2] == {1: 0.8, 2: 0.1}
    with pytest.raises(ValueError, match="min_confidence"):
        AutomaticParams(min_confidence=1.0)
