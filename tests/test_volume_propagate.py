"""Prompt one slice, get the whole object: propagation through a synthetic z-stack with the
embedded model (both directions, stopping where the object ends, bounded, several objects at
once, corrections that stick)."""

import numpy as np
import pytest
from scipy import ndimage

from napari_segany.synthetic.stacks import touching_ellipsoids
from napari_segany.volume import (
    PropagationParams,
    StackSessions,
    VolumePropagator,
    propagate,
    propagate_objects,
)


@pytest.fixture(scope="module")
def stack():
    return touching_ellipsoids((12, 96, 96), radius=(10.0, 13.0), anisotropy=3.0, seed=4)


@pytest.fixture(scope="module")
def sessions(stack, embedded_model):
    return StackSessions(stack.image, embedded_model, "zyx")


def _click(mask2d):
    distance = ndimage.distance_transform_edt(mask2d)
    return [np.unravel_index(int(np.argmax(distance)), mask2d.shape)]


def _span(mask3d):
    zs = np.flatnonzero(mask3d.any(axis=(1, 2)))
    return int(zs[0]), int(zs[-1])


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def _inner_objects(labels, count):
    """Objects that start and end inside the stack, largest first."""
    out = []
    for obj in np.argsort(-np.bincount(labels.ravel()))[:-1]:
        if obj == 0:
            continue
        lo, hi = _span(labels == obj)
        if lo >= 2 and hi <= labels.shape[0] - 3:
            out.append(int(obj))
    assert len(out) >= count
    return out[:count]


def test_propagates_both_ways_and_stops_where_the_object_ends(stack, sessions):
    obj = _inner_objects(stack.labels, 1)[0]
    truth = stack.labels == obj
    lo, hi = _span(truth)
    z = (lo + hi) // 2
    mask = propagate(sessions, z, points=_click(truth[z]))
    assert mask.shape == truth.shape and mask.dtype == bool
    plo, phi = _span(mask)
    assert plo < z < phi  # both directions
    assert lo - 1 <= plo <= lo + 1 and hi - 1 <= phi <= hi + 1  # stopped at the object's ends
    assert _iou(mask, truth) > 0.6


def test_bounded_propagation_encodes_only_what_it_needs(stack, embedded_model):
    obj = _inner_objects(stack.labels, 1)[0]
    truth = stack.labels == obj
    z = sum(_span(truth)) // 2
    lazy = StackSessions(stack.image, embedded_model, "zyx")
    mask = propagate(lazy, z, points=_click(truth[z]), limit=1)
    assert _span(mask) == (z - 1, z + 1)
    assert sorted(lazy._sessions) == [z - 1, z, z + 1]  # the other slices were never encoded


def test_several_objects_at_once_do_not_overlap(stack, sessions):
    a, b = _inner_objects(stack.labels, 2)
    z = int(
        np.argmax(((stack.labels == a).any(axis=(1, 2))) & (stack.labels == b).any(axis=(1, 2)))
    )
    prompts = [{"points": _click(stack.labels[z] == o)} for o in (a, b)]
    labels = propagate_objects(sessions, z, prompts)
    assert labels.dtype == np.uint32 and set(np.unique(labels)) <= {0, 1, 2}
    for k, obj in enumerate((a, b), start=1):
        assert _iou(labels == k, stack.labels == obj) > 0.55


def test_a_correction_re_propagates_without_undoing_other_edits(stack, sessions):
    a, b = _inner_objects(stack.labels, 2)
    truth = stack.labels == a
    lo, hi = _span(truth)
    z = (lo + hi) // 2
    editor = VolumePropagator(sessions)
    editor.prompt(1, z, points=_click(truth[z]))
    editor.propagate(1, z)
    zb = sum(_span(stack.labels == b)) // 2
    editor.prompt(2, zb, points=_click(stack.labels[zb] == b))
    editor.propagate(2, zb)
    before = editor.labels.copy()
    # the user redraws object 1 two slices up (here: a smaller, shifted disc) and propagates
    fix = z + 2
    drawn = ndimage.binary_erosion(truth[fix], iterations=3)
    editor.set_mask(1, fix, drawn)
    editor.propagate(1, fix)
    after = editor.labels
    assert ((after[fix] == 1) == (drawn & (before[fix] != 2))).all()  # the drawn mask stays
    assert (after[z] == before[z]).all()  # the prompted slice (the user's) is kept
    assert ((after == 2) == (before == 2)).all()  # the other object is untouched
    assert ((after[:z] == 1) == (before[:z] == 1)).all()  # below the user's slice: unchanged
    assert (after[fix + 1 :] == 1).any()  # re-propagated from the correction upwards


def test_bad_requests_are_clear(stack, sessions):
    editor = VolumePropagator(sessions)
    with pytest.raises(ValueError, match="not on slice"):
        editor.propagate(3, 5)
    with pytest.raises(ValueError, match="object IDs must be > 0"):
        editor.prompt(0, 5, points=[[10, 10]])
    with pytest.raises(ValueError, match="limit"):
        PropagationParams(limit=-1)
    with pytest.raises(ValueError, match="prompt must be one of"):
        PropagationParams(prompt="lasso")
    with pytest.raises(ValueError, match="labels have shape"):
        VolumePropagator(sessions, labels=np.zeros((3, 96, 96), np.uint32))
    with pytest.raises(ValueError, match="cannot change a StackSessions"):
        propagate(sessions, 5, points=[[10, 10]], cache="elsewhere")


def test_slice_embeddings_cached_on_disk_give_the_same_object(stack, embedded_model, tmp_path):
    obj = _inner_objects(stack.labels, 1)[0]
    truth = stack.labels == obj
    z = sum(_span(truth)) // 2
    click = _click(truth[z])
    in_memory = propagate(
        StackSessions(stack.image, embedded_model, "zyx"), z, points=click, limit=1
    )
    cached = StackSessions(stack.image, embedded_model, "zyx", cache=tmp_path / "emb")
    first = propagate(cached, z, points=click, limit=1)
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == [
        f"z{k:05d}.zarr" for k in (z - 1, z, z + 1)
    ]
    reopened = StackSessions(stack.image, embedded_model, "zyx", cache=tmp_path / "emb")
    assert reopened.session(z).is_encoded()  # read back, not encoded again
    again = propagate(reopened, z, points=click, limit=1)
    np.testing.assert_array_equal(first, again)
    assert _iou(first, in_memory) > 0.95  # float16 storage changes masks only slightly
