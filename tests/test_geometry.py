"""The one rectangle type: conversions at the edges and the operations the code relies on."""

import numpy as np

from napari_segany.geometry import Rect


def test_rect_from_size_and_slices_agree():
    rect = Rect.from_size(10, 20, 5, 8)
    assert (rect.row1, rect.col1) == (15, 28)
    assert rect.shape == (5, 8) and rect.origin == (10, 20)
    assert Rect.from_slices(rect.slices) == rect
    image = np.arange(40 * 40).reshape(40, 40)
    assert image[rect.slices].shape == rect.shape
    assert image[rect.slices][0, 0] == image[10, 20]


def test_union_shift_and_holds():
    a, b = Rect(0, 0, 10, 10), Rect(5, 8, 20, 12)
    assert a.union(b) == Rect(0, 0, 20, 12)
    assert b.shifted(-5, -8) == Rect(0, 0, 15, 4)
    assert a.holds((0, 0, 9, 9))  # pixel centres of the last row and column are inside
    assert not a.holds((0, 0, 9.5, 9))
    assert not a.holds((-1, 0, 5, 5))


def test_rects_are_hashable_values():
    assert len({Rect(0, 0, 1, 1), Rect(0, 0, 1, 1), Rect(0, 0, 1, 2)}) == 2
