"""Edits of instance labels, settings, image planes and sample data of the annotator.

No display needed: napari layers without a viewer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari_segany._qt import labels_edit  # noqa: E402
from napari_segany._qt.image_source import ImageSourceError, current_plane  # noqa: E402
from napari_segany.user_settings import AnnotatorSettings  # noqa: E402


def _labels(data):
    return napari.layers.Labels(data, name="segmentation")


def _disk(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_commit_takes_the_next_free_id_and_keeps_other_objects():
    layer = _labels(np.zeros((64, 64), dtype=np.uint32))
    a = _disk((20, 20), (10, 10), 8)
    assert labels_edit.commit_mask(layer, a, (5, 5)) == 1
    assert labels_edit.commit_mask(layer, a, (10, 10)) == 2
    data = np.asarray(layer.data)
    first, second = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
    first[5:25, 5:25], second[10:30, 10:30] = a, a
    assert np.array_equal(data == 1, first), "object 1 kept every pixel"
    assert np.array_equal(data == 2, second & ~first)
    # overwrite: the new object takes its whole mask
    assert labels_edit.commit_mask(layer, a, (12, 12), overwrite=True) == 3
    assert (np.asarray(layer.data) == 3).sum() == a.sum()
    # each commit is one undo step
    layer.undo()
    assert np.array_equal(np.asarray(layer.data), data)
    layer.redo()
    assert (np.asarray(layer.data) == 3).sum() == a.sum()


def test_commit_clips_to_the_plane_and_skips_masks_without_free_pixels():
    layer = _labels(np.zeros((32, 32), dtype=np.uint16))
    mask = np.ones((10, 10), dtype=bool)
    assert labels_edit.commit_mask(layer, mask, (-5, 27)) == 1
    assert (np.asarray(layer.data) == 1).sum() == 5 * 5
    assert labels_edit.commit_mask(layer, mask, (-5, 27)) == 0  # all taken
    assert labels_edit.commit_mask(layer, mask, (40, 40)) == 0  # outside


class _RecordingArray:
    """A zarr-like array that records which regions are read and written."""

    def __init__(self, array):
        self.array = array
        self.reads, self.writes = [], []

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)

    def _extent(self, key):
        if isinstance(key, tuple) and all(isinstance(k, np.ndarray) for k in key):
            return tuple((int(k.min()), int(k.max()) + 1) if k.size else (0, 0) for k in key)
        return key

    def __getitem__(self, key):
        self.reads.append(self._extent(key))
        return self.array[key]

    def __setitem__(self, key, value):
        self.writes.append(self._extent(key))
        self.array[key] = value

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole labels array was loaded")


def test_commit_on_a_large_lazy_layer_touches_only_the_region():
    zarr = pytest.importorskip("zarr")
    store = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(4096, 4096), chunks=(512, 512), dtype="uint32"
    )
    store[100:110, 100:110] = 7  # an existing object far away
    recording = _RecordingArray(store)
    layer = napari.layers.Labels(recording, name="big", multiscale=False)
    mask = _disk((40, 40), (20, 20), 15)
    recording.reads.clear()
    label = labels_edit.commit_mask(layer, mask, (3000, 2000))
    assert label == 8  # the largest label was found once, band by band
    assert np.array_equal(store[3000:3040, 2000:2040] == 8, mask)
    for rows, cols in recording.writes:
        assert rows[0] >= 3000 and rows[1] <= 3040 and cols[0] >= 2000 and cols[1] <= 2040
    # the next commit reads only its own region
    recording.reads.clear()
    assert labels_edit.commit_mask(layer, mask, (1000, 1000)) == 9
    for key in recording.reads:
        rows = key[0]
        start = rows[0] if isinstance(rows, tuple) else rows.start
        assert 1000 <= start < 1040, key
    # deleting reads a window around the object, not the whole layer
    recording.reads.clear()
    assert labels_edit.delete_object(layer, (1020, 1020)) == 9
    assert not (store[1000:1040, 1000:1040] == 9).any()


def test_delete_object_and_write_instances_are_single_undo_steps():
    layer = _labels(np.zeros((64, 64), dtype=np.uint32))
    labels_edit.commit_mask(layer, _disk((64, 64), (20, 20), 6), (0, 0))
    before = np.asarray(layer.data).copy()
    assert labels_edit.delete_object(layer, (20, 20)) == 1
    assert not np.asarray(layer.data).any()
    assert labels_edit.delete_object(layer, (50, 50)) == 0
    layer.undo()
    assert np.array_equal(np.asarray(layer.data), before)

    auto = np.zeros((64, 64), dtype=np.uint32)
    auto[_disk((64, 64), (20, 26), 6)] = 5  # over object 1, its free part compact
    auto[_disk((64, 64), (45, 45), 6)] = 9
    assert labels_edit.write_instances(layer, auto).fitted.kept == 2
    data = np.asarray(layer.data)
    assert np.array_equal(data[before == 1], before[before == 1])
    assert set(np.unique(data)) == {0, 1, 2, 3}
    layer.undo()
    assert np.array_equal(np.asarray(layer.data), before)


def test_stack_planes_are_edited_in_place():
    layer = _labels(np.zeros((3, 32, 32), dtype=np.uint32))
    assert labels_edit.commit_mask(layer, np.ones((4, 4), bool), (2, 2), (1,)) == 1
    data = np.asarray(layer.data)
    assert data[1].sum() == 16 and not data[0].any() and not data[2].any()
    with pytest.raises(ValueError, match="dimensions"):
        labels_edit.commit_mask(layer, np.ones((4, 4), bool), (2, 2))


def test_settings_round_trip_defaults_and_atomic_write(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CONFIG_DIR", str(tmp_path))
    assert AnnotatorSettings.load() == AnnotatorSettings()
    settings = AnnotatorSettings(model="vit_b", device="cpu", tile_size=512, halo=32)
    path = settings.save()
    assert AnnotatorSettings.load() == settings
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left
    # damaged or wrong values fall back to defaults, field by field
    path.write_text("{not json")
    assert AnnotatorSettings.load() == AnnotatorSettings()
    path.write_text(json.dumps({"model": "vit_t", "device": "tpu", "tile_size": "big"}))
    loaded = AnnotatorSettings.load()
    assert (loaded.model, loaded.device, loaded.tile_size) == ("vit_t", "auto", 0)


def test_planes_of_rgb_multichannel_and_stacks():
    rgb = napari.layers.Image(np.zeros((20, 30, 3), np.uint8), rgb=True)
    plane = current_plane(rgb)
    assert plane.shape == (20, 30) and plane.channel_axis is None and plane.leading == ()

    multi = napari.layers.Image(np.zeros((2, 5, 20, 30), np.uint16))
    plane = current_plane(multi, dims_point=(0, 3, 0, 0), channel_axis=0)
    assert plane.data.shape == (2, 20, 30) and plane.channel_axis == 0
    assert plane.leading == (3,) and plane.label_shape == (5, 20, 30)
    plane = current_plane(multi, dims_point=(1, 4, 0, 0))
    assert plane.data.shape == (20, 30) and plane.leading == (1, 4)

    with pytest.raises(ImageSourceError, match="Image layer"):
        current_plane(napari.layers.Labels(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ImageSourceError, match="cannot hold channels"):
        current_plane(rgb, channel_axis=0)


def test_large_sample_is_generated_block_by_block_on_demand(monkeypatch):
    from napari_segany import _sample_data

    generated = []
    generate = _sample_data.generate_nuclei

    def counting(shape, *args, **kwargs):
        generated.append(shape)
        return generate(shape, *args, **kwargs)

    monkeypatch.setattr(_sample_data, "generate_nuclei", counting)
    ((image, meta, kind),) = _sample_data.make_large_nuclei_sample()
    assert generated == [], "nothing is generated up front"
    assert kind == "image" and image.shape == (4096, 4096) and image.dtype == np.uint16
    assert image.chunksize == (1024, 1024) and "contrast_limits" in meta
    corner = np.asarray(image[100:150, 200:250])
    assert generated == [(1024, 1024)], "reading inside one block generates that block only"
    again = np.asarray(image[100:150, 200:250])
    assert np.array_equal(corner, again) and corner.max() > corner.min()
