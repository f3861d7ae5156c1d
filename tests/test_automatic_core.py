"""Automatic segmentation building blocks: maps → instances, point grid, metrics."""

import dataclasses

import numpy as np
import pytest

from napari_segany import Predictor, build_model
from napari_segany.automatic.metrics import matched_objects, matching_accuracy
from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.point_grid import (
    MaskCandidate,
    box_nms,
    grid_points,
    paint_candidates,
)
from napari_segany.automatic.tile import segment_encoded
from napari_segany.geometry import Rect
from napari_segany.image.prep import to_rgb_uint8
from napari_segany.inference.instance_labels import (
    fill_object_holes,
    labels_from_maps,
    relabel_sequential,
    remove_small_objects,
    split_concave_objects,
    split_seeds_at_peaks,
)
from napari_segany.models.architectures import ARCHITECTURES
from napari_segany.training.instance_targets import centre_map


def disk(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_touching_objects_are_separated_by_the_centre_map():
    labels = np.zeros((60, 90), np.int32)
    labels[disk(labels.shape, (30, 30), 14)] = 1
    labels[disk(labels.shape, (30, 55), 14) & (labels == 0)] = 2  # touches object 1
    found = labels_from_maps((labels > 0).astype(float), centre_map(labels), min_size=5)
    assert found.dtype == np.uint32
    assert matching_accuracy(labels, found, 0.9) == 1.0


def test_targets_and_decoding_agree_on_generated_scenes():
    from napari_segany.synthetic import generate_scene

    scores = []
    for seed in range(3):
        labels = np.asarray(generate_scene((192, 192), seed=seed).labels)
        found = labels_from_maps(
            (labels > 0).astype(np.float32), centre_map(labels), min_size=1, fill_holes=False
        )
        scores.append(matching_accuracy(labels, found))
    assert np.mean(scores) > 0.95


def test_no_foreground_gives_empty_labels():
    out = labels_from_maps(np.zeros((8, 8)), np.ones((8, 8)))
    assert out.shape == (8, 8) and not out.any()


def test_maps_must_match():
    with pytest.raises(ValueError, match="one shape"):
        labels_from_maps(np.zeros((8, 8)), np.zeros((8, 9)))


def test_fill_holes_only_inside_one_object():
    labels = np.zeros((9, 9), np.uint32)
    labels[1:6, 1:6] = 1
    labels[3, 3] = 0  # a hole in object 1
    labels[6:9, 6:9] = 2
    labels[7, 7] = 0  # touches only object 2 ... but the region is enclosed: filled
    labels[0, 8] = 0
    filled = fill_object_holes(labels)
    assert filled[3, 3] == 1 and filled[7, 7] == 2
    assert filled[0, 0] == 0  # the outside stays background


def test_small_objects_removed_and_ids_sequential():
    labels = np.zeros((10, 10), np.int64)
    labels[0:4, 0:4] = 5
    labels[8, 8] = 9
    out = relabel_sequential(remove_small_objects(labels, 3))
    assert set(np.unique(out)) == {0, 1} and out.dtype == np.uint32


def test_two_touching_nuclei_taken_for_one_are_split_at_the_neck():
    left, right = disk((60, 90), (30, 28), 16), disk((60, 90), (30, 58), 16)
    labels = (left | right).astype(np.uint32)  # one object shaped like an 8
    split = split_concave_objects(labels, max_solidity=0.95)
    ids = np.unique(split)[1:]
    assert len(ids) == 2
    halves = {int(np.bincount(split[m].ravel()).argmax()) for m in (left, right)}
    assert halves == set(ids)
    for half in (left, right):
        part = split == np.bincount(split[half].ravel()).argmax()
        assert (part & half).sum() / (part | half).sum() > 0.85


def test_convex_objects_and_disabled_splitting_stay_whole():
    labels = np.zeros((80, 80), np.uint32)
    labels[disk((80, 80), (25, 25), 15)] = 1
    yy, xx = np.mgrid[:80, :80]
    labels[((yy - 60) / 8) ** 2 + ((xx - 45) / 25) ** 2 <= 1] = 2  # an elongated ellipse
    np.testing.assert_array_equal(split_concave_objects(labels, 0.95), labels)
    eight = (disk((60, 90), (30, 28), 16) | disk((60, 90), (30, 58), 16)).astype(float)
    maps = dict(foreground=eight, centre=eight * 0.9)
    assert labels_from_maps(**maps, split_solidity=0.0).max() == 1
    assert labels_from_maps(**maps, split_solidity=0.95).max() == 2


def test_matching_counts():
    truth = np.zeros((10, 10), int)
    truth[0:4, 0:4] = 1
    truth[6:10, 6:10] = 2
    pred = np.zeros_like(truth)
    pred[0:4, 0:3] = 7  # IoU 0.75 with object 1
    pred[5:7, 0:2] = 8  # nothing there
    assert matched_objects(truth, pred) == (1, 1, 1)
    assert matching_accuracy(truth, pred) == pytest.approx(1 / 3)
    assert matching_accuracy(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_grid_points_cover_the_image():
    pts = grid_points(4, (100, 60))
    assert pts.shape == (16, 2)
    assert pts[:, 0].min() > 0 and pts[:, 0].max() < 100 and pts[:, 1].max() < 60
    with pytest.raises(ValueError):
        grid_points(0, (10, 10))


def test_box_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    keep = box_nms(boxes, np.array([0.5, 0.9, 0.7]), 0.7)
    assert keep.tolist() == [1, 2]


def test_smaller_masks_are_painted_over_larger_ones():
    big = MaskCandidate(np.ones((10, 10), bool), Rect(0, 0, 10, 10), 0.9, 0.95)
    small = MaskCandidate(np.ones((3, 3), bool), Rect(2, 2, 5, 5), 0.8, 0.97)
    labels, scores = paint_candidates([small, big], (12, 12), min_size=1)
    assert labels[3, 3] != labels[0, 0] and labels[0, 0] > 0
    assert scores[int(labels[3, 3])] == (0.8, 0.97)
    assert scores[int(labels[0, 0])] == (0.9, 0.95)


def test_params_validation():
    with pytest.raises(ValueError, match="method"):
        AutomaticParams(method="magic")
    with pytest.raises(ValueError, match="unknown"):
        AutomaticParams.from_options(points_per_edge=3)
    p = AutomaticParams.from_options(points_per_side=8, min_size=3)
    assert p.point_grid.points_per_side == 8 and p.min_size == 3
    with pytest.raises(ValueError, match="no instance head"):
        AutomaticParams(method="instance_head").resolve_method(build_model("vit_t", img_size=64))


@pytest.mark.parametrize("method", ["point_grid", "instance_head"])
def test_segment_encoded_is_deterministic(method, rng):
    spec = dataclasses.replace(ARCHITECTURES["segany_cells"], instance_head=True)
    model = build_model(spec, img_size=128, seed=3)
    predictor = Predictor(model)
    image = rng.integers(0, 255, (100, 120), dtype=np.uint8)
    predictor.set_image(image)
    params = AutomaticParams(
        method=method,
        min_size=1,
        foreground_threshold=0.3,
        point_grid=dataclasses.replace(
            AutomaticParams().point_grid,
            points_per_side=6,
            pred_iou_threshold=-1.0,
            stability_threshold=0.0,
        ),
    )
    rgb = to_rgb_uint8(image)
    first, scores, _ = segment_encoded(predictor, params, rgb)
    again, _, _ = segment_encoded(predictor, params, rgb)
    assert first.shape == (100, 120) and first.dtype == np.uint32
    np.testing.assert_array_equal(first, again)
    assert set(scores) == set(np.unique(first)) - {0}


def test_crop_boxes_cover_the_image_with_overlap():
    from napari_segany.automatic.point_grid import crop_boxes

    assert crop_boxes((100, 80), 0, 0.3) == [Rect(0, 0, 100, 80)]
    boxes = crop_boxes((100, 80), 1, 0.3)
    assert len(boxes) == 4
    covered = np.zeros((100, 80), int)
    for box in boxes:
        covered[box.slices] += 1
    assert covered.min() >= 1 and covered.max() >= 2  # everything covered, crops overlap


def test_crop_layers_add_candidates_from_zoomed_crops(rng):
    model = build_model("vit_t", img_size=64, seed=0)
    predictor = Predictor(model)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    predictor.set_rgb_image(image)
    loose = dict(pred_iou_threshold=-1.0, stability_threshold=0.0, max_area_fraction=1.0)
    base = AutomaticParams.from_options(method="point_grid", points_per_side=2, **loose)
    layered = AutomaticParams.from_options(
        method="point_grid", points_per_side=2, crop_layers=1, **loose
    )
    with pytest.raises(ValueError, match="need the image"):
        segment_encoded(predictor, layered)
    labels, _, _ = segment_encoded(predictor, layered, image)
    assert labels.shape == (64, 64) and labels.dtype == np.uint32
    plain, _, _ = segment_encoded(predictor, base)
    assert plain.shape == labels.shape


def test_crop_candidates_cut_by_an_inner_crop_edge_are_dropped():
    from napari_segany.automatic.point_grid import place_crop_candidates

    def cand(*box):
        rect = Rect(*box)
        return MaskCandidate(np.ones(rect.shape, bool), rect, 0.9, 0.9)

    crop = Rect(0, 40, 60, 100)  # touches the image's top and right border, inner left edge
    inside = cand(5, 5, 20, 20)
    at_left_edge = cand(5, 0, 20, 10)  # continues left of the crop
    at_image_border = cand(0, 50, 10, 60)  # top row of crop = image border: whole
    placed = place_crop_candidates([inside, at_left_edge, at_image_border], crop, (100, 100))
    assert [c.box for c in placed] == [Rect(5, 45, 20, 60), Rect(0, 90, 10, 100)]


@pytest.fixture(scope="module")
def head_predictor():
    return Predictor(build_model("segany_cells", img_size=128, seed=0))


@pytest.mark.parametrize(
    "flips, turn", [(4, lambda a: a[::-1]), (4, lambda a: a[:, ::-1]), (8, lambda a: a.T)]
)
def test_averaged_flips_follow_the_image_when_it_is_flipped(head_predictor, rng, flips, turn):
    from napari_segany.inference.instance_maps import instance_probabilities

    model = head_predictor.model
    image = np.ascontiguousarray(rng.integers(0, 255, (96, 112), dtype=np.uint8))
    maps = []
    for view in (image, np.ascontiguousarray(turn(image))):
        head_predictor.set_image(view)
        embedding = head_predictor.get_embedding()
        maps.append(instance_probabilities(model, embedding, to_rgb_uint8(view), flips))
    single = instance_probabilities(model, head_predictor.get_embedding(), None, 1)
    for averaged, flipped in zip(maps[0], maps[1], strict=True):
        np.testing.assert_allclose(turn(averaged), flipped, atol=1e-5)
    assert not np.allclose(single[0], maps[1][0], atol=1e-3)  # the flips do differ


def test_several_flips_need_the_image(head_predictor, rng):
    head_predictor.set_image(rng.integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="needs the image"):
        segment_encoded(head_predictor, AutomaticParams(flips=4))
    with pytest.raises(ValueError, match="flips must be one of"):
        AutomaticParams(flips=3)


def test_the_old_name_views_still_sets_flips():
    with pytest.warns(DeprecationWarning, match="now called 'flips'"):
        assert AutomaticParams.from_options(views=1).flips == 1
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match="not also its old name"),
    ):
        AutomaticParams.from_options(views=1, flips=4)


def test_a_seed_holding_two_prominent_centre_peaks_is_split():
    # two touching nuclei whose centre values stay above the seed threshold between them
    left, right = disk((60, 90), (30, 28), 16), disk((60, 90), (30, 58), 16)
    yy, xx = np.mgrid[:60, :90]

    def bump(col):
        return np.exp(-((yy - 30) ** 2 + (xx - col) ** 2) / (2 * 14.0**2))

    # peaks 1 and 0.95 (unequal, as in real maps), saddle ≈ 0.55
    centre = np.maximum(bump(28), 0.95 * bump(58)) * (left | right)
    maps = dict(foreground=(left | right).astype(float), centre=centre, seed_threshold=0.5)
    assert labels_from_maps(**maps, peak_prominence=0.0).max() == 1
    two = labels_from_maps(**maps, peak_prominence=0.15)
    assert two.max() == 2
    assert {int(two[30, 28]), int(two[30, 58])} == {1, 2}
    # a peak less prominent than the threshold does not split
    assert labels_from_maps(**maps, peak_prominence=0.6).max() == 1


def test_split_seeds_at_peaks_keeps_single_peak_seeds():
    seeds = np.zeros((20, 40), np.int32)
    seeds[5:15, 2:18], seeds[5:15, 22:38] = 1, 2
    centre = np.zeros(seeds.shape)
    centre[10, 10] = centre[10, 30] = 1.0
    np.testing.assert_array_equal(split_seeds_at_peaks(seeds, centre, 0.1), seeds)


def test_touching_border_map_marks_only_borders_between_objects():
    from napari_segany.training.instance_targets import touching_border_map

    labels = np.zeros((12, 20), np.uint16)
    labels[2:10, 2:10], labels[2:10, 10:18] = 1, 2
    border = touching_border_map(labels, width=2)
    assert border.dtype == np.float32
    assert border[5, 8:12].all() and border[5, 7] == 0 and border[5, 12] == 0
    assert not border[5, 2:4].any() and not border[0].any()  # the background border is not one
    assert not touching_border_map(np.where(labels == 1, 1, 0)).any()


def test_a_predicted_boundary_separates_nuclei_whose_centres_join():
    # two touching nuclei whose centre map stays high across their shared border (one seed),
    # while the boundary map sees the border
    left, right = disk((60, 90), (30, 30), 16), disk((60, 90), (30, 58), 16)
    cols = np.arange(90)[None, :].repeat(60, 0)
    fg = (left | right).astype(float)
    centre = 0.9 * fg
    boundary = ((np.abs(cols - 44) <= 2) & (left | right)).astype(float)
    merged = labels_from_maps(fg, centre, boundary, boundary_weight=0.0, peak_prominence=0.0)
    assert merged.max() == 1
    split = labels_from_maps(fg, centre, boundary, boundary_weight=1.0, peak_prominence=0.0)
    assert split.max() == 2 and split[30, 30] != split[30, 58]
    with pytest.raises(ValueError, match="one shape"):
        labels_from_maps(fg, centre, boundary[:, :80])


def test_faint_boundary_values_below_the_threshold_do_not_cut_an_object():
    # one large object with faint boundary values over its inside (as a head predicts inside
    # large cells) and no real border: only the part above the threshold counts
    yy, xx = np.mgrid[:80, :80]
    fg = (np.hypot(yy - 40, xx - 40) < 30).astype(float)
    centre = np.clip(1 - np.hypot(yy - 40, xx - 40) / 30, 0, 1)
    boundary = 0.45 * fg * (np.abs(xx - 40) <= 2)  # a faint line through the middle
    maps = dict(foreground=fg, centre=centre, boundary=boundary, peak_prominence=0.0)
    assert labels_from_maps(**maps, boundary_weight=2.0, boundary_threshold=0.0).max() == 2
    assert labels_from_maps(**maps, boundary_weight=2.0, boundary_threshold=0.5).max() == 1
    with pytest.raises(ValueError, match="boundary_threshold"):
        AutomaticParams(boundary_threshold=1.0)
