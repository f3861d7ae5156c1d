"""Conversion of microscopy images (any dtype, any channel layout) to SAM's 8-bit RGB input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_segany.image.prep import channel_layout, intensity_range, to_rgb_uint8


@pytest.fixture
def no_warnings():
    """Turn every warning into an error for the duration of a test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _assert_gray(out: np.ndarray, shape: tuple[int, int]) -> None:
    assert out.dtype == np.uint8
    assert out.shape == (*shape, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


# -- 8-bit RGB(A) passes through -----------------------------------------------------------------
def test_uint8_rgb_is_passed_through_bit_identical(rng):
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    out = to_rgb_uint8(image)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)
    # low-contrast 8-bit RGB is not stretched either: SAM sees photos exactly as they are
    dim = (image // 8 + 100).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(dim), dim)


@pytest.mark.parametrize("channel_axis", [None, 2, -1])
def test_uint8_rgba_drops_alpha_and_keeps_rgb(rng, channel_axis):
    image = rng.integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
    out = to_rgb_uint8(image, channel_axis=channel_axis)
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, image[..., :3])
    assert out.flags.c_contiguous


def test_passthrough_of_a_non_contiguous_view(rng):
    image = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    view = image[::2, ::3]
    out = to_rgb_uint8(view)
    np.testing.assert_array_equal(out, view)
    assert out.flags.c_contiguous


# -- grayscale ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
def test_grayscale_becomes_equal_rgb_channels_with_full_contrast(dtype, no_warnings):
    # a ramp 10..59 in the native dtype, tiled to 50 x 40
    image = np.tile(np.arange(10, 60, dtype=dtype)[:, None], (1, 40))
    out = to_rgb_uint8(image)
    _assert_gray(out, image.shape)
    gray = out[..., 0]
    assert gray.min() == 0
    assert gray.max() == 255
    # order preserving: brighter input rows are never darker
    assert np.all(np.diff(gray[:, 0].astype(int)) >= 0)
    # all columns identical (pure per-pixel mapping)
    assert np.all(gray == gray[:, :1])
    # contrast is used: the 50 levels become many distinct output levels
    assert len(np.unique(gray)) >= 45


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_negative_values_are_scaled(dtype):
    image = np.linspace(-1000, -10, 200).astype(dtype).reshape(10, 20)
    gray = to_rgb_uint8(image)[..., 0]
    assert gray[0, 0] == 0
    assert gray[-1, -1] == 255
    assert np.all(np.diff(gray.ravel().astype(int)) >= 0)


def test_hot_pixels_do_not_wash_out_the_image(rng):
    image = rng.integers(100, 201, size=(100, 100)).astype(np.uint16)
    hot = [(3, 4), (50, 50), (70, 10), (99, 99), (0, 0)]
    for r, c in hot:
        image[r, c] = 60000
    gray = to_rgb_uint8(image)[..., 0]
    normal = np.ones(image.shape, dtype=bool)
    for r, c in hot:
        normal[r, c] = False
        assert gray[r, c] == 255
    values = gray[normal]
    # the 100..200 range (almost) fills 0..255 instead of being squeezed into 0..1
    assert values.min() <= 5
    assert values.max() >= 250
    assert len(np.unique(values)) >= 90
    # a pixel at 150 lands mid-range
    mid = gray[normal & (image == 150)]
    assert np.all((mid > 100) & (mid < 155))


def test_dark_outliers_do_not_wash_out_the_image(rng):
    image = rng.uniform(1000.0, 2000.0, size=(80, 80)).astype(np.float32)
    image[10, 10] = -1e6
    image[20, 30] = -5e5
    gray = to_rgb_uint8(image)[..., 0]
    assert gray[10, 10] == 0
    assert gray[20, 30] == 0
    rest = np.delete(gray.ravel(), [10 * 80 + 10, 20 * 80 + 30])
    assert rest.min() <= 5
    assert rest.max() == 255
    assert len(np.unique(rest)) >= 200


def test_explicit_ranges_map_low_to_0_and_high_to_255():
    image = np.array([[0, 10, 15, 20, 25], [12, 14, 16, 18, 11]], dtype=np.uint16)
    out = to_rgb_uint8(image, ranges=np.array([[10.0, 20.0]]))
    expected = np.clip(np.rint((image.astype(float) - 10) * 25.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    assert out[0, 1, 0] == 0
    assert out[0, 3, 0] == 255
    assert out[0, 0, 0] == 0  # below the range: clipped, not wrapped around
    assert out[0, 4, 0] == 255  # above the range: clipped
    _assert_gray(out, image.shape)


def test_ranges_override_the_image_statistics(rng):
    image = rng.uniform(0, 100, size=(30, 30))
    auto = to_rgb_uint8(image)
    wide = to_rgb_uint8(image, ranges=[[0.0, 1000.0]])
    assert wide.max() <= 26  # 100 / 1000 * 255 = 25.5
    assert auto.max() == 255


# -- NaN, inf and constant images ---------------------------------------------------------------
def test_nan_and_infinities_are_safe(no_warnings):
    image = np.tile(np.linspace(0.0, 1.0, 20, dtype=np.float32), (10, 1))
    image[0, 0] = np.nan
    image[1, 1] = np.inf
    image[2, 2] = -np.inf
    out = to_rgb_uint8(image)
    _assert_gray(out, image.shape)
    gray = out[..., 0]
    assert gray[0, 0] == 0  # NaN -> 0
    assert gray[1, 1] == 255  # +inf -> brightest
    assert gray[2, 2] == 0  # -inf -> darkest
    # the finite values still use the full range (non-finite values are ignored for the range)
    finite = np.isfinite(image)
    assert gray[finite].min() == 0
    assert gray[finite].max() == 255
    assert len(np.unique(gray[finite])) >= 18


def test_intensity_range_ignores_nan_and_inf(rng):
    image = rng.normal(500, 50, size=(60, 60))
    dirty = image.copy()
    dirty[::7, ::5] = np.nan
    dirty[3, :] = np.inf
    dirty[:, 9] = -np.inf
    clean_values = dirty[np.isfinite(dirty)]
    expected = np.percentile(clean_values, [0.5, 99.8])
    np.testing.assert_allclose(intensity_range(dirty)[0], expected)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((16, 16), dtype=np.uint8),
        np.full((16, 16), 7, dtype=np.uint16),
        np.full((16, 16), 65535, dtype=np.uint16),
        np.full((16, 16), -3, dtype=np.int32),
        np.full((16, 16), 3.5, dtype=np.float32),
        np.full((16, 16), 1e-30, dtype=np.float64),
        np.full((16, 16), np.nan),
        np.full((16, 16), np.inf),
        np.full((16, 16), -np.inf, dtype=np.float32),
    ],
    ids=[
        "u8-0",
        "u16-7",
        "u16-max",
        "i32-neg",
        "f32",
        "f64-tiny",
        "all-nan",
        "all-inf",
        "all-ninf",
    ],
)
def test_constant_images_become_zeros_without_warnings(image, no_warnings):
    out = to_rgb_uint8(image)
    assert out.shape == (16, 16, 3)
    assert out.dtype == np.uint8
    assert not out.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_constant_image_with_non_finite_pixels_becomes_zeros_without_warnings(bad, no_warnings):
    image = np.full((8, 8), 5.0)
    image[2, 3] = bad
    out = to_rgb_uint8(image)
    assert not out.any()


def test_constant_channel_of_a_multichannel_image_is_zero(rng, no_warnings):
    image = np.stack([np.full((12, 12), 9.0), rng.uniform(0, 1, (12, 12))])
    out = to_rgb_uint8(image, channel_axis=0)
    assert not out[..., 0].any()
    assert out[..., 1].max() == 255
    assert not out[..., 2].any()


def test_intensity_range_of_a_constant_image():
    ranges = intensity_range(np.full((5, 5), 42, dtype=np.uint16))
    np.testing.assert_array_equal(ranges, [[42.0, 42.0]])
    np.testing.assert_array_equal(intensity_range(np.full((5, 5), np.nan)), [[0.0, 0.0]])


def test_nearly_constant_image_with_outliers_keeps_the_outliers_visible(no_warnings):
    image = np.full((100, 100), 10, dtype=np.uint16)
    image[5, 5] = 1000  # 1 pixel in 10000: above the 99.8th percentile
    out = to_rgb_uint8(image)[..., 0]
    assert out[5, 5] == 255
    assert out.sum() == 255  # everything else stays black


# -- channels -----------------------------------------------------------------------------------
def test_two_channels_leave_the_third_empty(rng):
    a = rng.uniform(0, 1, (25, 35))
    b = rng.uniform(100, 300, (25, 35))
    out = to_rgb_uint8(np.stack([a, b]), channel_axis=0)
    assert out.shape == (25, 35, 3)
    np.testing.assert_array_equal(out[..., 0], to_rgb_uint8(a)[..., 0])
    np.testing.assert_array_equal(out[..., 1], to_rgb_uint8(b)[..., 0])
    assert not out[..., 2].any()
    # the same channels last
    np.testing.assert_array_equal(to_rgb_uint8(np.stack([a, b], axis=-1), channel_axis=2), out)


def test_more_than_three_channels_warn_and_use_the_first_three(rng):
    image = rng.uniform(0, 1000, (5, 20, 24)).astype(np.float32)
    with pytest.warns(UserWarning, match="5 channels"):
        out = to_rgb_uint8(image, channel_axis=0)
    np.testing.assert_array_equal(out, to_rgb_uint8(image[:3], channel_axis=0))


def test_float_rgba_drops_alpha_without_a_warning(rng, no_warnings):
    image = rng.uniform(0, 1, (10, 12, 4))
    out = to_rgb_uint8(image)
    np.testing.assert_array_equal(out, to_rgb_uint8(image[..., :3]))


def test_each_channel_is_scaled_on_its_own(rng):
    # other offsets and scales, contrasts within 20x of each other: every channel has signal
    image = np.stack(
        [
            rng.uniform(0, 1, (30, 30)),
            rng.uniform(100, 105, (30, 30)),
            rng.uniform(-5, -3, (30, 30)),
        ],
        axis=-1,
    ).astype(np.float32)
    out = to_rgb_uint8(image)
    for c in range(3):
        assert out[..., c].min() == 0
        assert out[..., c].max() == 255
        np.testing.assert_array_equal(out[..., c], to_rgb_uint8(image[..., c])[..., 0])


@pytest.mark.parametrize("channel_axis", [0, -3])
def test_channels_first_equals_channels_last(rng, channel_axis):
    image = rng.integers(0, 4096, size=(3, 18, 22)).astype(np.uint16)
    out = to_rgb_uint8(image, channel_axis=channel_axis)
    expected = to_rgb_uint8(np.moveaxis(image, 0, -1))
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (18, 22, 3)


def test_channel_axis_in_the_middle(rng):
    image = rng.uniform(0, 1, (18, 2, 22))
    out = to_rgb_uint8(image, channel_axis=1)
    assert out.shape == (18, 22, 3)
    np.testing.assert_array_equal(out[..., 1], to_rgb_uint8(image[:, 1])[..., 0])


def test_16bit_rgb_is_scaled_not_passed_through(rng):
    image = rng.integers(0, 4096, size=(10, 10, 3)).astype(np.uint16)
    layout = channel_layout(image)
    assert layout.channel_axis == 2
    assert not layout.passthrough
    out = to_rgb_uint8(image)
    assert out.dtype == np.uint8
    assert out.max() == 255


@pytest.mark.parametrize("shape", [(5, 32, 32), (32, 32, 2), (32, 32, 7), (2, 3, 5)])
def test_ambiguous_3d_image_needs_channel_axis(shape):
    image = np.zeros(shape, dtype=np.uint16)
    with pytest.raises(ValueError, match="channel_axis"):
        to_rgb_uint8(image)
    with pytest.raises(ValueError, match="channel_axis"):
        intensity_range(image)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 1, 1, 1, 3), (16,)])
def test_images_that_are_not_2d_are_rejected(shape):
    with pytest.raises(ValueError, match=r"2D"):
        to_rgb_uint8(np.zeros(shape, dtype=np.float32))


def test_4d_with_channel_axis_is_rejected():
    with pytest.raises(ValueError, match=r"3D"):
        to_rgb_uint8(np.zeros((3, 4, 16, 16)), channel_axis=0)


def test_channel_axis_on_a_2d_image_is_rejected():
    with pytest.raises(ValueError, match="channel_axis=0"):
        to_rgb_uint8(np.zeros((16, 16)), channel_axis=0)


@pytest.mark.parametrize("axis", [3, -4, 10])
def test_channel_axis_out_of_range_is_rejected(axis):
    with pytest.raises(ValueError, match="out of range"):
        to_rgb_uint8(np.zeros((3, 16, 16)), channel_axis=axis)


# -- ranges and tiling --------------------------------------------------------------------------
def _gradient_image(rng, shape=(96, 128)) -> np.ndarray:
    rows = np.linspace(0.0, 1.0, shape[0])[:, None]
    cols = np.linspace(0.0, 3.0, shape[1])[None, :]
    return (1000 * rows + 4000 * cols * rows + rng.normal(0, 20, shape)).astype(np.float32)


def test_tiles_with_the_whole_image_ranges_match_the_whole_image(rng):
    image = _gradient_image(rng)
    image[5, 7] = 1e6  # a hot pixel in one tile only
    image[60, 100] = np.nan
    ranges = intensity_range(image)
    whole = to_rgb_uint8(image)
    np.testing.assert_array_equal(to_rgb_uint8(image, ranges=ranges), whole)
    differs_without_ranges = False
    for r in range(0, 96, 32):
        for c in range(0, 128, 40):  # uneven tiles at the right border
            tile = image[r : r + 32, c : c + 40]
            np.testing.assert_array_equal(
                to_rgb_uint8(tile, ranges=ranges), whole[r : r + 32, c : c + 40]
            )
            differs_without_ranges |= not np.array_equal(
                to_rgb_uint8(tile), whole[r : r + 32, c : c + 40]
            )
    # the property is not trivial: tiles scaled on their own look different
    assert differs_without_ranges


def test_multichannel_tiles_with_the_whole_image_ranges_match(rng):
    image = np.stack([_gradient_image(rng), 5 * _gradient_image(rng)[::-1] + 100])
    ranges = intensity_range(image, channel_axis=0)
    assert ranges.shape == (2, 2)
    whole = to_rgb_uint8(image, channel_axis=0)
    for r, c in [(0, 0), (48, 64), (17, 99)]:
        tile = image[:, r : r + 29, c : c + 29]
        np.testing.assert_array_equal(
            to_rgb_uint8(tile, channel_axis=0, ranges=ranges), whole[r : r + 29, c : c + 29]
        )


@pytest.mark.parametrize(
    ("image", "kwargs", "ranges"),
    [
        (np.zeros((8, 8)), {}, np.zeros((2, 2))),
        (np.zeros((8, 8)), {}, np.zeros(2)),
        (np.zeros((8, 8)), {}, np.zeros((1, 3))),
        (np.zeros((8, 8, 3)), {}, np.zeros((1, 2))),
        (np.zeros((2, 8, 8)), {"channel_axis": 0}, np.zeros((3, 2))),
    ],
)
def test_ranges_of_the_wrong_shape_are_rejected(image, kwargs, ranges):
    with pytest.raises(ValueError, match="ranges must have shape"):
        to_rgb_uint8(image, ranges=ranges, **kwargs)


def test_intensity_range_shape_and_percentiles():
    image = np.arange(10000, dtype=np.uint16).reshape(100, 100)
    ranges = intensity_range(image)
    assert ranges.shape == (1, 2)
    assert ranges.dtype == np.float64
    np.testing.assert_allclose(ranges[0], np.percentile(image, [0.5, 99.8]))
    rgb16 = np.stack([image, 2 * image, image // 2], axis=-1)
    ranges = intensity_range(rgb16)
    assert ranges.shape == (3, 2)
    np.testing.assert_allclose(ranges[1], 2 * ranges[0])


def test_intensity_range_of_a_large_image_is_close_to_the_exact_percentiles(rng):
    image = rng.gamma(2.0, 300.0, size=(2100, 2100)).astype(np.float32)  # subsampled
    low, high = intensity_range(image)[0]
    exact_low, exact_high = np.percentile(image, [0.5, 99.8])
    spread = exact_high - exact_low
    assert abs(low - exact_low) < 0.01 * spread
    assert abs(high - exact_high) < 0.01 * spread


# -- properties ---------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    image=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24),
        elements=st.one_of(
            st.floats(-(2.0**100), 2.0**100, width=32),
            st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
        ),
    )
)
def test_any_float_image_becomes_uint8_rgb_without_warnings(image):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = to_rgb_uint8(image)
    _assert_gray(out, image.shape)
    assert not out[np.isnan(image)].any()
    # order preserving on finite pixels
    finite = np.isfinite(image)
    values, gray = image[finite], out[..., 0][finite]
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(gray[order].astype(int)) >= 0)


@settings(max_examples=40, deadline=None)
@given(
    image=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int32]),
        shape=st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(1, 5)),
    )
)
def test_any_integer_multichannel_image_becomes_uint8_rgb(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the > 3 channels warning
        out = to_rgb_uint8(image, channel_axis=2)
    assert out.dtype == np.uint8
    assert out.shape == (*image.shape[:2], 3)
    if image.shape[2] == 2:
        assert not out[..., 2].any()
    if image.dtype == np.uint8 and image.shape[2] in (3, 4):
        np.testing.assert_array_equal(out, image[..., :3])


def test_channels_first_8bit_rgb_is_passed_through(rng):
    rgb = rng.integers(0, 256, size=(3, 20, 30), dtype=np.uint8)
    out = to_rgb_uint8(rgb, channel_axis=0)
    np.testing.assert_array_equal(out, np.moveaxis(rgb, 0, -1))
