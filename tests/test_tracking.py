"""Time linking: objects keep their IDs over frames; divisions start new IDs with a parent."""

import numpy as np
import pytest

from napari_segany.synthetic.stacks import moving_cells
from napari_segany.volume import track
from napari_segany.volume.tracking import TRACK_COLUMNS


def _per_frame(labels, seed=0):
    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    for t, plane in enumerate(labels):
        ids = np.unique(plane[plane > 0])
        lut = np.zeros(int(labels.max()) + 1, labels.dtype)
        lut[ids] = rng.permutation(len(ids)) + 1
        out[t] = lut[plane]
    return out


def _track_of(labels, truth, ident):
    """Tracked IDs of true track ``ident`` per frame where it exists."""
    return {
        t: set(np.unique(labels[t][truth[t] == ident]).tolist())
        for t in range(len(truth))
        if (truth[t] == ident).any()
    }


@pytest.mark.parametrize(("drift", "seed"), [(2.0, 0), (4.0, 1), (5.0, 2)])
def test_cells_keep_their_ids_and_divisions_get_parents(drift, seed):
    cells = moving_cells(frames=6, drift=drift, divide=1, seed=seed)
    result = track(_per_frame(cells.labels, seed))
    labels = result.labels
    for ident in np.unique(cells.labels[cells.labels > 0]).tolist():
        per_frame = _track_of(labels, cells.labels, ident)
        ids = set().union(*per_frame.values())
        assert len(ids) == 1 and all(len(s) == 1 for s in per_frame.values()), ident
    # the daughters: new IDs (not the mother's), whose parent is the mother's track
    assert len(cells.parents) == 2
    for daughter, mother in cells.parents.items():
        d = _track_of(labels, cells.labels, daughter)
        m = _track_of(labels, cells.labels, mother)
        d_id, m_id = next(iter(set().union(*d.values()))), next(iter(set().union(*m.values())))
        assert d_id != m_id
        assert result.parents[d_id] == m_id
    assert len(result.parents) == 2


def test_track_table_rows():
    cells = moving_cells(frames=4, divide=0, count=4, seed=5)
    result = track(cells.labels)
    assert TRACK_COLUMNS == ("id", "frame", "parent", "row", "col")
    table = result.table
    assert table.shape == (4 * 4, 5)
    for ident, frame, parent, row, col in table:
        mask = result.labels[int(frame)] == ident
        assert parent == 0
        assert abs(np.argwhere(mask).mean(axis=0) - [row, col]).max() < 1e-6
    assert result.graph() == {}


def test_objects_far_apart_are_not_linked():
    labels = np.zeros((2, 64, 64), np.uint32)
    labels[0, 5:12, 5:12] = 1
    labels[1, 50:57, 50:57] = 1
    result = track(labels, max_distance=20)
    assert set(np.unique(result.labels[0])) == {0, 1}
    assert set(np.unique(result.labels[1])) == {0, 2}
