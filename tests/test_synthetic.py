"""Tests for the synthetic scene generator (napari_segany.synthetic)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_segany.synthetic import (
    BANDED,
    BIT_DEPTHS,
    DEBRIS_KINDS,
    KINDS,
    MODALITIES,
    SceneConfig,
    SceneParams,
    band_index,
    banded_bounds,
    gaussian_blur,
    generate_nuclei,
    generate_scene,
    sample_config,
)
from napari_segany.synthetic.filters import blur_window, gaussian_matrix
from napari_segany.synthetic.scene import _Drawn, _resolve

# a plain, noise-light scene with one round object, for geometric checks
ONE_DISK = SceneParams(
    radius_mean=12.0,
    radius_spread=0.0,
    radius_limits=(1.0, 100.0),
    aspect_max=1.0,
    irregularity=0.0,
    n_objects=1,
    profile_gamma=0.0,
    texture=0.0,
    nucleoli=0,
    psf_sigma=2.0,
    brightness=0.5,
    background_level=0.05,
    background_variation=0.0,
    photons=1e4,
    read_noise=0.001,
)


def _modality(name: str) -> SceneConfig:
    """Default ranges, always the given modality."""
    return SceneConfig(modality_weights=tuple(float(m == name) for m in MODALITIES))


def _inside_disk(params: SceneParams, size: int = 128):
    """(seed, scene) for the first seed whose single object lies wholly inside the image."""
    for seed in range(50):
        scene = generate_scene((size, size), params, seed=seed)
        r0, c0, r1, c1 = scene.objects[0].bbox
        if r0 > 0 and c0 > 0 and r1 < size and c1 < size:
            return seed, scene
    raise AssertionError("no seed put the object inside the image")


def _half_max_radius(radius: float, sigma: float) -> float:
    """Radius where a disk blurred by a Gaussian falls to half its centre value (Rice integral)."""
    rho = np.linspace(0.0, radius, 4001)

    def profile(r):
        x = r * rho / sigma**2
        # exp(-(r^2 + rho^2) / 2 s^2) I0(x), written stably as exp(-(r - rho)^2 / 2 s^2) I0e(x)
        i0e = np.i0(x) * np.exp(-x)
        return np.trapezoid(rho / sigma**2 * np.exp(-((r - rho) ** 2) / (2 * sigma**2)) * i0e, rho)

    target = 0.5 * profile(0.0)
    low, high = 0.0, radius + 5 * sigma
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if profile(mid) > target else (low, mid)
    return low


def _check_consistent(scene) -> None:
    """Labels are 1..N in order, and the metadata match them."""
    labels = scene.labels
    assert labels.dtype == np.uint32 and labels.shape == scene.image.shape
    n = len(scene.objects)
    assert set(np.unique(labels)) <= set(range(n + 1))
    area = np.bincount(labels.ravel(), minlength=n + 1)
    assert np.all(area[1:] > 0)
    for info in scene.objects:
        rows, cols = np.nonzero(labels == info.label)
        assert info.area == rows.size == area[info.label]
        assert info.bbox == (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        assert np.allclose(info.centroid, (rows.mean(), cols.mean()))
        assert info.kind in KINDS
        assert info.area >= scene.params.min_area
        # visible, and bright/dark the way the object was drawn
        assert abs(info.contrast) >= scene.params.min_contrast
        assert np.sign(info.contrast) == np.sign(info.brightness)
    assert [o.label for o in scene.objects] == list(range(1, n + 1))


def test_same_seed_gives_the_same_scene():
    a, b = generate_scene(seed=5), generate_scene(seed=5)
    assert a.params == b.params
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.image, b.image)
    assert a.objects == b.objects and a.debris == b.debris


def test_different_seeds_give_different_scenes():
    scenes = [generate_scene((64, 64), seed=s) for s in range(4)]
    assert len({s.params for s in scenes}) == 4
    assert not any(np.array_equal(scenes[0].image, s.image) for s in scenes[1:])


@pytest.mark.parametrize("bit_depth", BIT_DEPTHS)
def test_image_ranges_and_dtypes(bit_depth):
    params = dataclasses.replace(SceneParams(), bit_depth=bit_depth, brightness=0.8)
    scene = generate_scene((96, 96), params, seed=1)
    top = (1 << bit_depth) - 1
    assert scene.raw.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    assert scene.raw.max() <= top and scene.raw.max() > top // 4
    for image in (scene.image, scene.clean, scene.background):
        assert image.dtype == np.float32 and image.shape == (96, 96)
        assert image.min() >= 0.0 and image.max() <= 1.0
    assert np.array_equal(scene.raw, np.rint(scene.image * np.float32(top)).astype(scene.raw.dtype))


@pytest.mark.parametrize("modality", MODALITIES)
def test_labels_and_metadata_are_consistent(modality):
    for seed in range(3):
        scene = generate_scene((128, 128), _modality(modality), seed=seed)
        assert scene.params.modality == modality
        _check_consistent(scene)


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("inverted", [False, True])
def test_objects_are_brighter_or_darker_as_the_modality_says(modality, inverted):
    """Mean (clean - background) over each label (over its edge for brightfield rims)."""
    expected = {"nuclei": 1, "cytoplasm": 1, "phase": -1, "brightfield": None}[modality]
    flip = -1 if inverted else 1
    checked = 0
    for seed in range(4):
        drawn = sample_config(np.random.default_rng(seed), config=_modality(modality))
        params = dataclasses.replace(drawn, inverted=inverted, debris_density=0.0, coverage=0.2)
        scene = generate_scene((128, 128), params, seed=seed)
        labels, diff = scene.labels, scene.clean - scene.background
        edge = np.zeros(labels.shape, dtype=bool)
        edge[1:] |= labels[1:] != labels[:-1]
        edge[:-1] |= labels[1:] != labels[:-1]
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
        region = edge if modality == "brightfield" else np.ones_like(edge)
        sign = expected if expected is not None else np.sign(params.rim)
        for info in scene.objects:
            mean = diff[(labels == info.label) & region].mean()
            assert np.sign(mean) == flip * sign, (seed, info)
            checked += 1
    assert checked >= 5


def test_isolated_disk_is_labelled_at_the_half_maximum_of_its_blur():
    for radius, sigma in [(12.0, 2.0), (5.0, 1.5), (4.0, 2.5)]:
        params = dataclasses.replace(ONE_DISK, radius_mean=radius, psf_sigma=sigma)
        _, scene = _inside_disk(params)
        labelled = np.sqrt(scene.objects[0].area / np.pi)
        assert abs(labelled - _half_max_radius(radius, sigma)) < 1.0, (radius, sigma, labelled)


def test_domed_nucleus_is_labelled_inside_its_footprint():
    """A projected ellipsoid (gamma 0.5) has its half maximum at sqrt(3)/2 of its radius."""
    params = dataclasses.replace(ONE_DISK, radius_mean=24.0, psf_sigma=0.8, profile_gamma=0.5)
    _, scene = _inside_disk(params)
    labelled = np.sqrt(scene.objects[0].area / np.pi)
    assert abs(labelled - 24.0 * np.sqrt(0.75)) < 1.0


def test_texture_and_nucleoli_do_not_move_the_label():
    seed, plain = _inside_disk(ONE_DISK)
    textured = dataclasses.replace(ONE_DISK, texture=0.35, nucleoli=4, nucleolus_contrast=-0.6)
    scene = generate_scene((128, 128), textured, seed=seed)
    assert np.array_equal(plain.labels, scene.labels)
    assert not np.array_equal(plain.image, scene.image)


def _drawn_disk(centre, radius, canvas_shape):
    rows, cols = np.indices(canvas_shape)
    distance = np.hypot(rows - centre[0], cols - centre[1]).astype(np.float32)
    score = np.clip(1.0 - distance / (2 * radius), 0.0, 1.0)
    full = (slice(0, canvas_shape[0]), slice(0, canvas_shape[1]))
    return _Drawn(full, np.zeros(canvas_shape, np.float32), score >= 0.5, score)


@pytest.mark.parametrize("touching", [False, True])
def test_overlaps_go_to_the_object_on_top_or_the_nearer_one(touching):
    shape = (40, 60)
    first, second = _drawn_disk((20, 22), 10, shape), _drawn_disk((20, 34), 10, shape)
    labels = _resolve([first, second], np.ones(2, dtype=bool), shape, touching)
    overlap = first.mask & second.mask
    assert overlap.sum() > 20
    assert np.all(labels[first.mask & ~overlap] == 1) and np.all(
        labels[second.mask & ~overlap] == 2
    )
    if touching:  # split where the normalised envelopes are equal: the mid-line
        cols = np.indices(shape)[1]
        assert np.all(labels[overlap & (cols < 28)] == 1) and np.all(
            labels[overlap & (cols > 28)] == 2
        )
    else:  # the later object is on top
        assert np.all(labels[overlap] == 2)


def test_touching_objects_share_borders():
    params = SceneParams(
        radius_mean=8.0, coverage=0.6, touching=True, max_overlap=0.3, clustering=0.8
    )
    labels = generate_scene((128, 128), params, seed=3).labels
    a, b = labels[:, 1:], labels[:, :-1]
    assert np.count_nonzero((a != b) & (a > 0) & (b > 0)) > 20


def test_debris_is_not_labelled():
    params = SceneParams(n_objects=0, debris_density=60.0)
    scene = generate_scene((128, 128), params, seed=2)
    assert len(scene.debris) > 10
    assert {d.kind for d in scene.debris} <= set(DEBRIS_KINDS)
    assert scene.objects == () and not scene.labels.any()
    assert (scene.clean - scene.background).max() > 0.1  # yet the debris is in the image


def test_invisible_objects_are_not_labelled():
    params = SceneParams(brightness=0.001, brightness_spread=0.0, photons=50.0)
    scene = generate_scene((96, 96), params, seed=0)
    assert scene.objects == () and not scene.labels.any()


def test_held_out_parameters_lie_in_other_bands():
    config = SceneConfig()
    rng = np.random.default_rng(0)
    for held_out in (False, True):
        for _ in range(100):
            params = sample_config(rng, held_out=held_out, config=config)
            assert params.held_out is held_out
            for name in BANDED:
                bounds, log = banded_bounds(config, name, params.modality)
                band = band_index(getattr(params, name), bounds, config.n_bands, log)
                assert band % 2 == int(held_out), (name, getattr(params, name))


def test_held_out_scenes_use_another_seed_stream():
    params = SceneParams()
    train = generate_scene((64, 64), params, seed=0)
    held_out = generate_scene((64, 64), dataclasses.replace(params, held_out=True), seed=0)
    assert not np.array_equal(train.image, held_out.image)
    assert generate_scene((64, 64), seed=0).params.held_out is False
    assert generate_scene((64, 64), seed=0, held_out=True).params.held_out is True


def test_sampled_scenes_cover_the_modalities_and_bit_depths():
    rng = np.random.default_rng(1)
    drawn = [sample_config(rng) for _ in range(300)]
    assert {p.modality for p in drawn} == set(MODALITIES)
    assert {p.bit_depth for p in drawn} == set(BIT_DEPTHS)
    assert any(p.inverted for p in drawn) and any(p.touching for p in drawn)
    radii = [p.radius_mean for p in drawn]
    assert min(radii) < 6.0 and max(radii) > 50.0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(32, 96),
    cols=st.integers(32, 96),
    held_out=st.booleans(),
)
def test_any_seed_and_shape_gives_consistent_labels(seed, rows, cols, held_out):
    scene = generate_scene((rows, cols), seed=seed, held_out=held_out)
    assert scene.image.shape == scene.raw.shape == (rows, cols)
    _check_consistent(scene)


@settings(max_examples=10, deadline=None)
@given(
    rows=st.integers(3, 150),
    cols=st.integers(3, 150),
    sigma=st.floats(0.3, 6.0),
)
def test_window_blur_matches_the_dense_gaussian_product(rows, cols, sigma):
    x = np.random.default_rng(rows * cols).random((2, rows, cols), dtype=np.float32)
    sigma = round(sigma, 2)
    dense = gaussian_matrix(rows, sigma) @ x @ gaussian_matrix(cols, sigma).T
    # long rows use a kernel cut at 4 sigma: each axis may lose the tail mass beyond it
    # (2 * Phi(-4) = 6.3e-5 of the signal, here at most 1), so allow that twice plus rounding
    assert np.allclose(blur_window(x, sigma), dense, rtol=0, atol=2 * 6.4e-5 + 1e-5)


def test_generate_nuclei_contract():
    image, labels = generate_nuclei((120, 160), n_objects=8, seed=1)
    assert image.shape == labels.shape == (120, 160)
    assert image.dtype == np.uint16 and image.max() <= 4095
    assert labels.dtype == np.uint32
    n = labels.max()
    assert 4 <= n <= 8 and set(np.unique(labels)) == set(range(n + 1))
    assert image[labels > 0].mean() > 2 * image[labels == 0].mean()
    again, _ = generate_nuclei((120, 160), n_objects=8, seed=1)
    assert np.array_equal(image, again)
    small, _ = generate_nuclei((64, 64), n_objects=4, seed=1, dtype=np.uint8)
    assert small.dtype == np.uint8
    with pytest.raises(ValueError, match="dtype"):
        generate_nuclei((64, 64), dtype=np.float32)


def test_gaussian_blur_keeps_its_contract():
    image = np.zeros((21, 21))
    image[10, 10] = 1.0
    blurred = gaussian_blur(image, 2.0)
    assert blurred.dtype == np.float64 and blurred.shape == image.shape
    assert blurred.sum() == pytest.approx(1.0, abs=1e-6)
    assert blurred[10, 10] == blurred.max()
    assert np.array_equal(gaussian_blur(image, 0), image)
