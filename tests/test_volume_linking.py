"""2D → 3D linking of per-slice objects: anisotropy, splits and merges without swallowing."""

import numpy as np
import pytest

from napari_segany.synthetic.stacks import touching_ellipsoids
from napari_segany.volume import link_slices
from napari_segany.volume.linking import overlap_table


def _per_slice(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each slice relabelled 1..n in a random order: slices no longer agree on IDs."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    for z, plane in enumerate(labels):
        ids = np.unique(plane[plane > 0])
        lut = np.zeros(int(labels.max()) + 1, labels.dtype)
        lut[ids] = rng.permutation(len(ids)) + 1
        out[z] = lut[plane]
    return out


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images hold the same objects under some renaming."""
    ids_a, ids_b, _, area_a, area_b = overlap_table(a, b)
    one_to_one = len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    return one_to_one and len(ids_a) == len(area_a) == len(area_b) and ((a > 0) == (b > 0)).all()


@pytest.mark.parametrize("anisotropy", [1.0, 2.0, 4.0])
def test_linking_recovers_touching_ellipsoids(anisotropy):
    stack = touching_ellipsoids((14, 96, 96), anisotropy=anisotropy, seed=3)
    linked = link_slices(_per_slice(stack.labels))
    assert linked.dtype == np.uint32
    assert _same_objects(linked, stack.labels)


def test_a_merge_in_one_slice_does_not_swallow_the_neighbour():
    stack = touching_ellipsoids((14, 96, 96), anisotropy=2.0, seed=3)
    truth = stack.labels
    z = 7
    # two touching objects of slice z, segmented as one there
    ids, counts = np.unique(truth[z][truth[z] > 0], return_counts=True)
    a = int(ids[np.argmax(counts)])
    grown = np.zeros(truth[z].shape, bool)
    from scipy import ndimage

    grown = ndimage.binary_dilation(truth[z] == a, iterations=2)
    b = int(np.bincount(truth[z][grown & (truth[z] != a)])[1:].argmax()) + 1
    assert b not in (0, a)
    merged = _per_slice(truth)
    plane = truth[z].copy()
    plane[plane == b] = a
    merged[z] = plane
    linked = link_slices(merged)
    # slice z is cut back between the two: each keeps its own 3D object there
    others = np.r_[:z, z + 1 : truth.shape[0]]
    found = set()
    for obj in (a, b):
        ids3d = np.unique(linked[others][truth[others] == obj])
        assert len(ids3d) == 1
        found.add(int(ids3d[0]))
        mine = linked[z] == ids3d[0]
        iou = (mine & (truth[z] == obj)).sum() / (mine | (truth[z] == obj)).sum()
        assert iou > 0.8
    assert len(found) == 2


def test_a_split_in_one_slice_does_not_join_other_objects():
    stack = touching_ellipsoids((14, 96, 96), anisotropy=2.0, seed=3)
    truth = stack.labels
    z = 6
    ids, counts = np.unique(truth[z][truth[z] > 0], return_counts=True)
    a = int(ids[np.argmax(counts)])
    split = _per_slice(truth)
    cols = np.flatnonzero((truth[z] == a).any(axis=0))
    half = (truth[z] == a) & (np.arange(truth.shape[2])[None, :] < cols.mean())
    split[z][half] = split.max() + 1
    linked = link_slices(split)
    # every 3D object lies within one true object: nothing was joined to a neighbour
    ids_l, _, _, _, _ = overlap_table(linked, truth)
    assert len(set(ids_l.tolist())) == len(ids_l)
    # away from the split slice, the object is still one 3D object on both sides
    others = np.r_[:z, z + 1 : truth.shape[0]]
    assert len(np.unique(linked[others][truth[others] == a])) == 1
    # only the split-off half is a separate (one-slice) object
    assert len(np.unique(linked[z][truth[z] == a])) == 2


def test_linking_writes_into_out():
    stack = touching_ellipsoids((6, 64, 64), anisotropy=2.0, seed=1)
    out = np.zeros(stack.labels.shape, np.uint32)
    result = link_slices(_per_slice(stack.labels), out=out)
    assert result is out and _same_objects(out, stack.labels)
    with pytest.raises(ValueError, match="out has shape"):
        link_slices(stack.labels, out=np.zeros((2, 64, 64), np.uint32))
