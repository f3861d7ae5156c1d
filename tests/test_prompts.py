"""Prompt validation in napari's (row, col) convention and the conversion to SAM's (x, y) frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_segany.inference.embedding import resized_size
from napari_segany.inference.prompts import ModelPrompts, to_model_frame, validate_prompts

SHAPE = (50, 100)  # (rows, cols)


# -- validate_prompts: accepted input -----------------------------------------------------------
def test_no_prompts_give_nones():
    assert validate_prompts(SHAPE) == (None, None, None)


def test_points_and_labels_are_returned_as_arrays():
    pts, labels, box = validate_prompts(SHAPE, [[10, 20], [30.5, 99]], [1, 0])
    assert pts.dtype == np.float64
    np.testing.assert_array_equal(pts, [[10, 20], [30.5, 99]])  # still (row, col)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [1, 0])
    assert box is None


def test_labels_default_to_foreground():
    _, labels, _ = validate_prompts(SHAPE, np.array([[1, 2], [3, 4], [5, 6]]))
    np.testing.assert_array_equal(labels, [1, 1, 1])
    assert labels.dtype == np.int64


def test_a_single_point_may_be_given_flat():
    pts, labels, _ = validate_prompts(SHAPE, (12, 34), [0])
    np.testing.assert_array_equal(pts, [[12, 34]])
    np.testing.assert_array_equal(labels, [0])


@pytest.mark.parametrize("labels", [[True, False], np.array([1.0, 0.0]), [[1], [0]]])
def test_label_variants_equal_to_0_and_1_are_accepted(labels):
    _, out, _ = validate_prompts(SHAPE, [[1, 1], [2, 2]], labels)
    np.testing.assert_array_equal(out, [1, 0])
    assert out.dtype == np.int64


def test_the_input_is_not_modified():
    points = np.array([[1.0, 2.0]])
    box = np.array([40.0, 90.0, 10.0, 5.0])
    validate_prompts(SHAPE, points, None, box)
    np.testing.assert_array_equal(points, [[1.0, 2.0]])
    np.testing.assert_array_equal(box, [40.0, 90.0, 10.0, 5.0])


@pytest.mark.parametrize(
    "box",
    [
        [10, 20, 40, 90],  # top-left, bottom-right
        [40, 90, 10, 20],  # bottom-right, top-left
        [10, 90, 40, 20],  # top-right, bottom-left
        [40, 20, 10, 90],  # bottom-left, top-right
        [[40, 20], [10, 90]],  # as two corners
    ],
)
def test_box_corners_in_any_order_are_sorted(box):
    _, _, out = validate_prompts(SHAPE, box=box)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [10, 20, 40, 90])  # (row_min, col_min, row_max, col_max)


def test_degenerate_box_is_accepted():
    _, _, out = validate_prompts(SHAPE, box=[5, 5, 5, 5])
    np.testing.assert_array_equal(out, [5, 5, 5, 5])


@pytest.mark.parametrize(
    "point",
    [(-0.5, -0.5), (49.5, 99.5), (-0.5, 99.5), (49.5, -0.5), (0, 0), (49, 99), (25.25, 60.75)],
)
def test_points_anywhere_on_the_image_are_accepted_with_half_pixel_tolerance(point):
    pts, _, _ = validate_prompts(SHAPE, [point])
    np.testing.assert_array_equal(pts, [point])


def test_box_on_the_image_border_is_accepted():
    _, _, out = validate_prompts(SHAPE, box=[-0.5, -0.5, 49.5, 99.5])
    np.testing.assert_array_equal(out, [-0.5, -0.5, 49.5, 99.5])


# -- validate_prompts: rejected input -----------------------------------------------------------
@pytest.mark.parametrize(
    ("point", "text"),
    [
        ((-0.51, 3), "-0.51"),
        ((3, -0.51), "-0.51"),
        ((49.51, 3), "49.51"),
        ((3, 99.51), "99.51"),
        ((50, 3), "50.0"),
        ((3, 100), "100.0"),
        ((-7, 250), "250.0"),
    ],
)
def test_points_outside_the_image_are_rejected_naming_the_point(point, text):
    with pytest.raises(ValueError, match="points outside the image") as info:
        validate_prompts(SHAPE, [point])
    message = str(info.value)
    assert text in message
    assert str([float(point[0]), float(point[1])]) in message
    assert "(50, 100)" in message  # the image shape, (rows, cols)
    assert "(row, col)" in message


def test_only_the_offending_points_are_listed():
    with pytest.raises(ValueError) as info:
        validate_prompts(SHAPE, [[3, 4], [7, 250], [10, 11], [60, 1]], [1, 0, 1, 1])
    message = str(info.value)
    assert "[[7.0, 250.0], [60.0, 1.0]]" in message
    assert "3.0, 4.0" not in message
    assert "10.0, 11.0" not in message


def test_rows_and_columns_are_not_confused():
    # (row=80, col=20) is outside a 50-row image, though (x=80, y=20) would be inside
    with pytest.raises(ValueError, match=r"\[\[80\.0, 20\.0\]\]"):
        validate_prompts(SHAPE, [[80, 20]])
    validate_prompts(SHAPE, [[20, 80]])


@pytest.mark.parametrize("box", [[10, 20, 60, 30], [-3, 20, 10, 30], [10, 20, 30, 101]])
def test_box_outside_the_image_is_rejected_naming_the_corner(box):
    with pytest.raises(ValueError, match="box corners outside the image") as info:
        validate_prompts(SHAPE, box=box)
    bad = next(v for v in box if v in (60, -3, 101))
    assert f"{float(bad)}" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_points_are_rejected(bad):
    with pytest.raises(ValueError, match="points contains NaN or infinite"):
        validate_prompts(SHAPE, [[1, 2], [bad, 3]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_box_is_rejected(bad):
    with pytest.raises(ValueError, match="box contains NaN or infinite"):
        validate_prompts(SHAPE, box=[1, 2, bad, 4])


@pytest.mark.parametrize(
    "points",
    [[], np.zeros((0, 2)), [[1, 2, 3]], [1, 2, 3], np.zeros((2, 2, 2)), [[1], [2]], 5],
)
def test_points_of_the_wrong_shape_are_rejected(points):
    with pytest.raises(ValueError, match=r"points must have shape \(N, 2\)"):
        validate_prompts(SHAPE, points)


@pytest.mark.parametrize("points", [[[1, "a"]], [[1, 2], [3]], "row 1"])
def test_non_numeric_points_are_rejected(points):
    with pytest.raises(ValueError, match="points must be numeric"):
        validate_prompts(SHAPE, points)


def test_missing_coordinate_is_rejected():
    with pytest.raises(ValueError, match=r"points contains NaN.*\[\[nan, 1.0\]\]"):
        validate_prompts(SHAPE, [[None, 1]])


@pytest.mark.parametrize("box", [[1, 2, 3], [1, 2, 3, 4, 5], [], [[1, 2, 3], [4, 5, 6]]])
def test_boxes_of_the_wrong_size_are_rejected(box):
    with pytest.raises(ValueError, match=r"box must be \(row0, col0, row1, col1\)"):
        validate_prompts(SHAPE, box=box)


def test_non_numeric_box_is_rejected():
    with pytest.raises(ValueError, match="box must be numeric"):
        validate_prompts(SHAPE, box=["a", 1, 2, 3])


@pytest.mark.parametrize(
    ("labels", "shown"),
    [([2], "[2]"), ([-1], "[-1]"), ([1, 0, 3], "[1, 0, 3]"), ([0.5], "[0.5]"), (["1"], "['1']")],
)
def test_labels_other_than_0_and_1_are_rejected(labels, shown):
    points = [[1, 1]] * len(labels)
    with pytest.raises(ValueError, match="point_labels must be 1") as info:
        validate_prompts(SHAPE, points, labels)
    assert shown in str(info.value)


@pytest.mark.parametrize(("n_points", "labels"), [(2, [1]), (1, [1, 0]), (2, [])])
def test_label_count_must_match_the_points(n_points, labels):
    with pytest.raises(ValueError, match=f"point_labels has {len(labels)} entries"):
        validate_prompts(SHAPE, [[1, 1]] * n_points, labels)


def test_labels_without_points_are_rejected():
    with pytest.raises(ValueError, match="without points"):
        validate_prompts(SHAPE, None, [1])
    with pytest.raises(ValueError, match="without points"):
        validate_prompts(SHAPE, None, [1], box=[1, 2, 3, 4])


# -- to_model_frame -----------------------------------------------------------------------------
def test_point_becomes_x_y_scaled_to_the_input_frame():
    # 100 x 200 image resized to 512 x 1024: x = col * 1024/200, y = row * 512/100
    out = to_model_frame(np.array([[10.0, 30.0]]), np.array([1]), None, (100, 200), (512, 1024))
    assert isinstance(out, ModelPrompts)
    assert out.points.dtype == np.float32
    assert out.points.shape == (1, 2)
    np.testing.assert_allclose(out.points, [[153.6, 51.2]], rtol=1e-6)
    np.testing.assert_array_equal(out.labels, [1])
    assert out.box is None


def test_box_becomes_x0_y0_x1_y1_scaled_to_the_input_frame():
    box_rc = np.array([10.0, 30.0, 60.0, 150.0])  # (row0, col0, row1, col1)
    out = to_model_frame(None, None, box_rc, (100, 200), (512, 1024))
    assert out.points is None
    assert out.labels is None
    assert out.box.dtype == np.float32
    np.testing.assert_allclose(out.box, [153.6, 51.2, 768.0, 307.2], rtol=1e-6)


def test_same_size_only_swaps_the_axes():
    pts = np.array([[1.0, 2.0], [3.0, 4.5], [0.0, 7.0]])
    labels = np.array([1, 0, 1])
    out = to_model_frame(pts, labels, np.array([1.0, 2.0, 3.0, 4.0]), (8, 9), (8, 9))
    np.testing.assert_array_equal(out.points, [[2.0, 1.0], [4.5, 3.0], [7.0, 0.0]])
    np.testing.assert_array_equal(out.labels, labels)
    np.testing.assert_array_equal(out.box, [2.0, 1.0, 4.0, 3.0])


def test_non_uniform_scale_uses_each_axis_own_factor():
    # rows scaled by 3, columns by 0.5
    out = to_model_frame(np.array([[10.0, 10.0]]), None, None, (10, 40), (30, 20))
    np.testing.assert_allclose(out.points, [[5.0, 30.0]])


def test_validated_box_in_any_corner_order_gives_the_same_model_box():
    frames = set()
    for box in ([40, 90, 10, 20], [10, 20, 40, 90], [10, 90, 40, 20]):
        _, _, bx = validate_prompts(SHAPE, box=box)
        frames.add(tuple(to_model_frame(None, None, bx, SHAPE, (512, 1024)).box.tolist()))
    assert len(frames) == 1
    (model_box,) = frames
    np.testing.assert_allclose(model_box, [204.8, 102.4, 921.6, 409.6], rtol=1e-6)


def test_matches_the_reference_coordinate_transform(reference_sam):
    """Same numbers as segment-anything's ResizeLongestSide on (x, y) prompts."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(1024)
    rng = np.random.default_rng(0)
    for original in [(100, 200), (700, 1024), (37, 53), (2000, 1500), (1024, 1024)]:
        h, w = original
        pts_rc = rng.uniform(-0.5, [h - 0.5, w - 0.5], size=(6, 2))
        box_rc = np.concatenate([pts_rc[0], pts_rc[1]])
        ours = to_model_frame(pts_rc, None, box_rc, original, resized_size(original, 1024))
        ref_points = transform.apply_coords(pts_rc[:, ::-1].copy(), original)
        ref_box = transform.apply_boxes(box_rc.reshape(2, 2)[:, ::-1].reshape(1, 4), original)
        np.testing.assert_allclose(ours.points, ref_points, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(ours.box, ref_box[0], rtol=1e-6, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 3000),
    w=st.integers(1, 3000),
    target=st.sampled_from([256, 1024]),
    fractions=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=5),
)
def test_points_round_trip_between_frames(h, w, target, fractions):
    original = (h, w)
    points = np.array([(fr * h - 0.5, fc * w - 0.5) for fr, fc in fractions])
    pts, labels, _ = validate_prompts(original, points)
    input_size = resized_size(original, target)
    out = to_model_frame(pts, labels, None, original, input_size)
    sx, sy = input_size[1] / w, input_size[0] / h
    # x comes from the column, y from the row
    np.testing.assert_allclose(out.points[:, 0], points[:, 1] * sx, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out.points[:, 1], points[:, 0] * sy, rtol=1e-5, atol=1e-3)
    # and the point stays on the resized image (same half-pixel margin, scaled)
    assert np.all(out.points[:, 0] >= -0.5 * sx - 1e-3)
    assert np.all(out.points[:, 0] <= (w - 0.5) * sx + 1e-3)
    assert np.all(out.points[:, 1] >= -0.5 * sy - 1e-3)
    assert np.all(out.points[:, 1] <= (h - 0.5) * sy + 1e-3)
