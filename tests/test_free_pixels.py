"""Fitting automatic objects into the pixels existing objects leave free (no Qt, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_segany.automatic import FreeObjects, clip_to_free


def _disk(shape, centre, radius) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def _has_3x3_core(mask: np.ndarray) -> bool:
    return bool(ndi.binary_erosion(mask, np.ones((3, 3), bool)).any())


def test_crescent_around_an_existing_object_is_not_kept():
    """An object seen again, its mask 1 px larger than the one committed: the ring goes."""
    labels = np.zeros((64, 64), np.uint32)
    labels[_disk((64, 64), (30, 30), 12)] = 4
    for centre in ((30, 30), (30, 31)):  # a ring, and a crescent thicker on one side
        occupied = _disk((64, 64), centre, 11)
        fitted = clip_to_free(labels, occupied, min_size=10)
        assert (fitted.found, fitted.covered, fitted.kept) == (1, 1, 0)
        assert not fitted.labels.any()
        # the sliver rule alone also drops it
        alone = clip_to_free(labels, occupied, min_size=10, min_kept_fraction=0)
        assert (alone.too_small, alone.kept) == (1, 0)


def test_half_covered_object_keeps_its_free_part_when_big_and_compact():
    labels = np.zeros((40, 40), np.uint16)
    labels[10:30, 10:30] = 7
    occupied = np.zeros((40, 40), bool)
    occupied[:, :20] = True  # exactly half of the object
    fitted = clip_to_free(labels, occupied, min_size=10)
    assert fitted.kept == 1 and fitted.labels.dtype == np.uint16
    expected = np.where(occupied, 0, labels)
    np.testing.assert_array_equal(fitted.labels, expected)
    # a little more than half covered: it is the existing object seen again
    occupied[:, 20] = True
    fitted = clip_to_free(labels, occupied, min_size=10)
    assert (fitted.covered, fitted.kept) == (1, 0)


def test_a_cut_object_keeps_only_its_largest_piece():
    labels = np.zeros((30, 60), np.uint32)
    labels[5:15, 5:45] = 1  # 400 px, cut by a 2-column band into 120 and 260 px
    occupied = np.zeros((30, 60), bool)
    occupied[:, 17:19] = True
    fitted = clip_to_free(labels, occupied, min_size=10)
    assert fitted.kept == 1
    expected = np.zeros_like(labels)
    expected[5:15, 19:45] = 1
    np.testing.assert_array_equal(fitted.labels, expected)
    # both pieces small against the whole object: dropped
    occupied[:, 17:28] = True  # 120 and 170 px left of 400
    assert clip_to_free(labels, occupied, min_size=10).covered == 1


def test_min_size_applies_after_clipping_and_to_every_object():
    labels = np.zeros((30, 30), np.uint32)
    labels[2:8, 2:8] = 1  # 36 px, 12 of them taken: 24 left, 3x3 fits
    labels[20:23, 20:23] = 2  # 9 px, untouched
    occupied = np.zeros((30, 30), bool)
    occupied[2:4, 2:8] = True
    fitted = clip_to_free(labels, occupied, min_size=25)
    assert (fitted.found, fitted.too_small, fitted.kept) == (2, 2, 0)
    fitted = clip_to_free(labels, occupied, min_size=24)
    assert fitted.kept == 1 and (fitted.labels == 1).sum() == 24
    assert clip_to_free(labels, occupied, min_size=9).kept == 2


def test_a_thin_remainder_is_a_sliver_even_when_most_of_the_object_is_free():
    labels = np.zeros((20, 60), np.uint32)
    labels[5:7, 5:55] = 3  # a 2-px-wide bar, 100 px
    occupied = np.zeros((20, 60), bool)
    occupied[:, 5:15] = True  # takes 20 px: 80% left, but no 3x3 square fits
    fitted = clip_to_free(labels, occupied, min_size=10)
    assert (fitted.too_small, fitted.kept) == (1, 0)
    assert clip_to_free(labels, occupied, min_size=10, min_width=1).kept == 1


def test_objects_that_lose_no_pixel_are_kept_as_they_are():
    labels = np.zeros((32, 32), np.uint32)
    labels[3, 3:20] = 5  # thin, but found so by the automatic segmentation itself
    labels[10:20, 10:14] = 6
    labels[25:27, 25:27] = 6  # a second piece of the same object
    occupied = np.zeros((32, 32), bool)
    occupied[28:, :5] = True  # touches none of them
    for occ in (occupied, np.zeros_like(occupied)):
        fitted = clip_to_free(labels, occ, min_size=10)
        np.testing.assert_array_equal(fitted.labels, labels)
        assert (fitted.found, fitted.kept) == (2, 2)


@pytest.mark.parametrize("seed", range(5))
def test_what_comes_out_fits_the_free_pixels_and_is_an_object(seed):
    """Random disks on random existing disks: the rules hold for every object written."""
    rng = np.random.default_rng(seed)
    shape = (128, 128)
    labels = np.zeros(shape, np.uint32)
    for i in range(1, 25):
        labels[_disk(shape, rng.uniform(0, 128, 2), rng.uniform(4, 14))] = i
    occupied = np.zeros(shape, bool)
    for _ in range(8):
        occupied |= _disk(shape, rng.uniform(0, 128, 2), rng.uniform(4, 14))
    fitted = clip_to_free(labels, occupied, min_size=20)
    out = fitted.labels
    assert not (out & occupied).any()
    assert np.array_equal(out[out > 0], labels[out > 0])
    ids = np.unique(out[out > 0])
    assert len(ids) == fitted.kept == fitted.found - fitted.covered - fitted.too_small
    area = np.bincount(labels.ravel())
    for i in ids:
        mask = out == i
        if (labels[occupied] == i).any():  # clipped: one compact piece, most of the object
            assert ndi.label(mask, np.ones((3, 3)))[1] == 1
            assert _has_3x3_core(mask)
            assert mask.sum() >= 0.5 * area[i]
        assert mask.sum() >= 20


def test_a_large_plane_with_thousands_of_objects():
    """4096 × 4096, 16,384 disks, half of them under existing ones 1 px smaller (not timed)."""
    size, step, radius = 4096, 32, 10
    rows, cols = np.ogrid[:size, :size]
    r, c = rows % step - step // 2, cols % step - step // 2
    cell = (rows // step) * (size // step) + cols // step + 1
    inside = r**2 + c**2 <= radius**2
    labels = np.where(inside, cell, 0).astype(np.uint32)
    on_committed = ((rows // step) + (cols // step)) % 2 == 0
    occupied = on_committed & (r**2 + c**2 <= (radius - 1) ** 2)
    fitted = clip_to_free(labels, occupied, min_size=10)
    n = (size // step) ** 2
    assert (fitted.found, fitted.covered, fitted.kept) == (n, n // 2, n // 2)
    np.testing.assert_array_equal(fitted.labels, np.where(on_committed, 0, labels))


def test_bad_input_is_refused():
    labels = np.zeros((8, 8), np.uint32)
    with pytest.raises(ValueError, match="plane"):
        clip_to_free(labels, np.zeros((8, 9), bool))
    with pytest.raises(ValueError, match="min_kept_fraction"):
        clip_to_free(labels, np.zeros((8, 8), bool), min_kept_fraction=1.5)
    with pytest.raises(ValueError, match="min_width"):
        clip_to_free(labels, np.zeros((8, 8), bool), min_width=0)
    empty = clip_to_free(labels, np.ones((8, 8), bool), min_size=10)
    assert isinstance(empty, FreeObjects) and (empty.found, empty.kept) == (0, 0)
