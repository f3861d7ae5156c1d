import numpy as np
import pytest

from napari_segany.automatic.metrics import matching_accuracy
from napari_segany.automatic.stitching import TileStitcher, object_centroids
from napari_segany.image.tiling import TileGrid


def disks(shape, centres, radius):
    labels = np.zeros(shape, np.uint32)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    for i, (r, c) in enumerate(centres, start=1):
        labels[((rows - r) ** 2 + (cols - c) ** 2 <= radius**2) & (labels == 0)] = i
    return labels


def test_centroids():
    labels = np.zeros((5, 6), int)
    labels[1:3, 2:6] = 4
    ids, areas, centroids = object_centroids(labels)
    assert ids.tolist() == [4] and areas.tolist() == [8]
    np.testing.assert_allclose(centroids, [[1.5, 3.5]])


@pytest.mark.parametrize("halo", [16, 24])
def test_stitched_tiles_reproduce_the_untiled_labels(halo):
    # objects everywhere, several straddling seams; each tile "segments" perfectly what it sees
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 200, size=(40, 2))
    truth = disks((200, 200), centres, 9)
    grid = TileGrid((200, 200), 96, halo)
    assert len(grid) > 4
    out = np.zeros((200, 200), np.uint32)
    stitcher = TileStitcher(out)
    for tile in grid.tiles:
        # the tile sees cropped objects, renumbered as a real tile result would be
        view = truth[tile.outer]
        _, renumbered = np.unique(view, return_inverse=True)
        stitcher.add(tile, renumbered.reshape(view.shape).astype(np.uint32))
    assert matching_accuracy(truth, out, 0.99) == 1.0
    assert len(np.unique(out)) - 1 == len(np.unique(truth)) - 1  # nothing duplicated or lost
    assert stitcher.next_id - 1 == len(np.unique(truth)) - 1


def test_second_view_of_an_object_is_not_duplicated():
    grid = TileGrid((100, 100), 60, 10)
    out = np.zeros((100, 100), np.uint32)
    stitcher = TileStitcher(out)
    first, second = grid.tiles[0], grid.tiles[1]
    obj = disks((100, 100), [(30, 49)], 6)
    stitcher.add(first, obj[first.outer].astype(np.uint32), {1: (0.9, 0.95)})
    # the neighbour saw the same cell shifted by 2 px, centroid on its side of the seam
    shifted = disks((100, 100), [(30, 52)], 6)
    stitcher.add(second, shifted[second.outer].astype(np.uint32))
    assert set(np.unique(out)) == {0, 1}
    assert stitcher.scores == {1: (0.9, 0.95)}


def test_shape_mismatch_is_reported():
    grid = TileGrid((50, 50), 50)
    with pytest.raises(ValueError, match="tile labels"):
        TileStitcher(np.zeros((50, 50), np.uint32)).add(grid.tiles[0], np.zeros((10, 10), int))
