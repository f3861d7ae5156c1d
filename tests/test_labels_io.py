"""Label export and import: TIFF, OME-Zarr 0.5/0.4, atomic writes, the object table."""

from __future__ import annotations

import csv
import errno
import json
import os
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from napari_segany.labels_io import (
    LabelsWriteError,
    load_labels,
    object_table,
    save_labels,
    save_labels_job,
    table_path,
    write_object_table,
    write_ome_zarr_labels,
    write_tiff_labels,
)
from napari_segany.labels_io import table as table_module

MAX_ID = 2**32 - 1

# ome-zarr-py's writer (used here to make test images) warns about its own deprecated default
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated class Scaler:DeprecationWarning")


def expected_dtype(labels: np.ndarray) -> np.dtype:
    return np.dtype(np.uint16 if labels.max() <= 65535 else np.uint32)


def hidden_entries(folder: Path) -> list[str]:
    """Temporary files/folders left behind (they start with a dot)."""
    return sorted(p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


@st.composite
def label_images(draw):
    """Label images: empty, one pixel, sparse random IDs up to 2**32 − 1, odd shapes."""
    shape = (draw(st.integers(1, 37)), draw(st.integers(1, 41)))
    kind = draw(st.sampled_from(["empty", "one_pixel", "random"]))
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int32, np.uint32, np.int64]))
    high = min(MAX_ID, int(np.iinfo(dtype).max))
    labels = np.zeros(shape, dtype=dtype)
    if kind == "one_pixel":
        r, c = draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))
        labels[r, c] = draw(st.sampled_from([1, high, min(high, 65535), min(high, 65536)]))
    elif kind == "random":
        seed = draw(st.integers(0, 2**16))
        top = draw(st.sampled_from([3, 300, 70000, high]))
        rng = np.random.default_rng(seed)
        values = rng.integers(0, min(top, high), size=shape, endpoint=True, dtype=np.int64)
        labels = np.where(rng.random(shape) < 0.5, values, 0).astype(dtype)
    return labels


PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ----------------------------------------------------------------------------------- round trips
@PROPERTY_SETTINGS
@given(labels=label_images())
@example(labels=np.zeros((1, 1), np.uint8))
@example(labels=np.full((3, 5), MAX_ID, np.uint32))
def test_tiff_round_trip_keeps_values_with_the_dtype_rule(labels):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.tif"
        saved = save_labels(path, labels, table=False)
        assert saved.paths == [path]
        raw = tifffile.imread(path)  # a plain TIFF reader sees the same IDs
        assert raw.dtype == expected_dtype(labels)
        np.testing.assert_array_equal(raw, labels)
        back, meta = load_labels(path)
        np.testing.assert_array_equal(back, labels)
        assert meta["scale"] is None and meta["written_by_napari_segany"]


@PROPERTY_SETTINGS
@given(labels=label_images(), version=st.sampled_from(["0.5", "0.4"]))
@example(labels=np.zeros((1, 1), np.uint8), version="0.5")
@example(labels=np.full((2, 3), MAX_ID, np.uint32), version="0.4")
def test_ome_zarr_round_trip_keeps_values_with_the_dtype_rule(labels, version):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.ome.zarr"
        save_labels(path, labels, table=False, ngff_version=version)
        back, meta = load_labels(path)
        assert back.dtype == expected_dtype(labels)
        np.testing.assert_array_equal(back, labels)
        assert meta["version"] == version
        assert zarr.open_group(str(path), mode="r").metadata.zarr_format == (
            3 if version == "0.5" else 2
        )


@pytest.mark.parametrize("suffix", [".tiff", ".zarr"])
def test_3d_labels_and_pixel_size_round_trip(tmp_path, rng, suffix):
    labels = rng.integers(0, 5, size=(3, 20, 31)).astype(np.int32)
    path = tmp_path / f"stack{suffix}"
    save_labels(path, labels, scale=(2.0, 0.5, 0.25), table=False)
    back, meta = load_labels(path)
    np.testing.assert_array_equal(back, labels)
    assert meta["scale"] == pytest.approx((2.0, 0.5, 0.25))
    assert meta["unit"] == "micrometer"


def test_tiff_is_tiled_lossless_with_resolution_tags(tmp_path):
    labels = np.zeros((600, 300), np.uint16)
    labels[100:200, 50:90] = 3
    path = write_tiff_labels(tmp_path / "a.tif", labels, scale=(0.5, 0.25))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert page.predictor == tifffile.PREDICTOR.HORIZONTAL
        assert page.resolutionunit == tifffile.RESUNIT.CENTIMETER
        # pixels per cm: 1 / (0.25 µm) along x, 1 / (0.5 µm) along y
        assert page.resolution == pytest.approx((40000.0, 20000.0))


def test_streamed_inputs_match_in_memory_ones(tmp_path, rng):
    da = pytest.importorskip("dask.array")  # comes with ome-zarr

    labels = rng.integers(0, 70000, size=(130, 301)).astype(np.uint32)
    on_disk = zarr.create_array(
        str(tmp_path / "source.zarr"), shape=labels.shape, chunks=(37, 50), dtype=np.uint32
    )
    on_disk[...] = labels
    lazy = da.from_array(labels, chunks=(29, 64))
    for i, source in enumerate([on_disk, lazy]):
        for suffix in (".tif", ".zarr"):
            path = tmp_path / f"out{i}{suffix}"
            save_labels(path, source, table=False)
            np.testing.assert_array_equal(load_labels(path)[0], labels)


def test_zarr_export_streams_with_memory_well_under_the_array_size(tmp_path):
    shape = (4096, 4096)  # 64 MiB of uint32, written as two OME-Zarr levels
    source = zarr.create_array(
        str(tmp_path / "big.zarr"), shape=shape, chunks=(512, 512), dtype=np.uint32
    )
    for r in range(0, shape[0], 512):
        band = np.arange(r, r + 512, dtype=np.uint32)[:, None] * 7 + np.arange(shape[1])
        source[r : r + 512] = band.astype(np.uint32) + 70000
    nbytes = int(np.prod(shape)) * 4
    for suffix in (".tif", ".zarr"):
        tracemalloc.start()
        try:
            save_labels(tmp_path / f"out{suffix}", source, table=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 0.75 * nbytes, (suffix, peak / nbytes)
    back = load_labels(tmp_path / "out.tif", lazy=True)[0]
    assert back[1000, 5] == 1000 * 7 + 5 + 70000 and back.dtype == np.uint32


# ------------------------------------------------------------------------------- OME-Zarr details
@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_ome_zarr_metadata_follows_the_spec_and_opens_with_ome_zarr_py(tmp_path, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    labels = np.zeros((50, 70), np.uint16)
    labels[5:20, 10:30] = 4
    path = tmp_path / "labels.ome.zarr"
    write_ome_zarr_labels(
        path,
        labels,
        name="cells",
        scale=(0.5, 0.5),
        version=version,
        colors={4: (255, 0, 0, 255)},
        properties=[{"id": 4, "area": 300}],
    )
    if version == "0.5":
        attrs = json.loads((path / "zarr.json").read_text())["attributes"]
        assert attrs["ome"]["version"] == "0.5"
        ome = attrs["ome"]
        assert "version" not in ome["multiscales"][0]
    else:
        ome = json.loads((path / ".zattrs").read_text())
        assert ome["multiscales"][0]["version"] == "0.4"
        assert ome["image-label"]["version"] == "0.4"
    multiscale = ome["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["y", "x"]
    assert all(a["type"] == "space" and a["unit"] == "micrometer" for a in multiscale["axes"])
    assert multiscale["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [0.5, 0.5]}
    ]
    colors = ome["image-label"]["colors"]
    assert {"label-value": 4, "rgba": [255, 0, 0, 255]} in colors
    assert ome["image-label"]["properties"] == [{"label-value": 4, "area": 300}]

    nodes = list(Reader(parse_url(str(path)))())
    assert nodes and any(isinstance(spec, Label) for spec in nodes[0].specs)
    np.testing.assert_array_equal(np.asarray(nodes[0].data[0]), labels)


def test_standalone_pyramid_levels_halve_and_keep_objects(tmp_path):
    labels = np.zeros((100, 130), np.uint16)
    labels[20:60, 40:80] = 9
    path = write_ome_zarr_labels(tmp_path / "p.zarr", labels, levels=3, scale=(1.0, 1.0))
    _, meta = load_labels(path)
    shapes = [lv.shape for lv in meta["levels"]]
    assert shapes == [(100, 130), (50, 65), (25, 33)]
    level1 = np.asarray(meta["levels"][1][...])
    assert set(np.unique(level1)) == {0, 9}
    assert (level1[10:30, 20:40] == 9).all() and level1.sum() == 9 * 20 * 20
    ome = zarr.open_group(str(path), mode="r").attrs["ome"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ome["multiscales"][0]["datasets"]]
    assert scales[1] == [2.0, 2.0]


def _write_image(path: Path, image: np.ndarray, version: str, axes: str, levels: int = 3):
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_multiscale

    fmt = FormatV05() if version == "0.5" else FormatV04()
    pyramid = [image]
    for _ in range(levels - 1):
        prev = pyramid[-1]
        pyramid.append(prev[..., ::2, ::2])
    group = zarr.open_group(str(path), mode="w", zarr_format=3 if version == "0.5" else 2)
    write_multiscale(pyramid, group, fmt=fmt, axes=axes)


@pytest.mark.parametrize(("version", "axes"), [("0.5", "yx"), ("0.4", "cyx")])
def test_labels_beside_an_image_match_its_levels(tmp_path, rng, version, axes):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    shape = (2, 40, 66) if axes == "cyx" else (40, 66)
    image = rng.integers(0, 255, size=shape).astype(np.uint8)
    path = tmp_path / "image.ome.zarr"
    _write_image(path, image, version, axes)
    labels = np.zeros((40, 66), np.uint32)
    labels[4:20, 8:40] = 70000
    saved = save_labels(path, labels, image=image[0] if axes == "cyx" else image, name="cells")
    assert saved.labels == path / "labels" / "cells"
    assert saved.table == tmp_path / "image_cells_objects.csv"
    back, meta = load_labels(path)
    np.testing.assert_array_equal(back, labels)
    image_group = zarr.open_group(str(path), mode="r")
    ome = image_group.attrs["ome"] if version == "0.5" else image_group.attrs
    image_datasets = ome["multiscales"][0]["datasets"]
    assert len(meta["levels"]) == len(image_datasets) == 3
    for level, array in enumerate(meta["levels"]):
        image_shape = image_group[image_datasets[level]["path"]].shape
        expected = tuple(1 if a == "c" else n for a, n in zip(axes, image_shape, strict=True))
        assert array.shape == expected
    nodes = list(Reader(parse_url(str(path)))())
    label_nodes = [n for n in nodes if any(isinstance(s, Label) for s in n.specs)]
    assert label_nodes
    assert len(label_nodes[0].data) == 3
    # a second label image is listed beside the first
    save_labels(path, labels, name="nuclei", table=False)
    assert load_labels(path, name="nuclei")[1]["name"] == "nuclei"
    with pytest.raises(ValueError, match="do not match the image"):
        save_labels(path, labels[:10], name="bad", table=False)


# ------------------------------------------------------------------------------- safety / errors
class ExplodingArray:
    """A lazy array that fails after ``good`` block reads (an interrupted export)."""

    def __init__(self, data, good):
        self.data, self.good = data, good
        self.shape, self.dtype, self.ndim, self.chunks = data.shape, data.dtype, data.ndim, (8, 8)

    def __getitem__(self, index):
        if self.good <= 0:
            raise RuntimeError("interrupted")
        self.good -= 1
        return self.data[index]


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_failed_export_leaves_the_previous_output_and_no_temporary(tmp_path, suffix):
    path = tmp_path / f"cells{suffix}"
    first = np.ones((2000, 300), np.uint16)
    save_labels(path, first, table=False)
    # the ID scan reads 2 blocks of 1024 rows; the write then fails after one more block
    with pytest.raises(RuntimeError, match="interrupted"):
        save_labels(path, ExplodingArray(first * 2, 3), overwrite=True, table=False)
    np.testing.assert_array_equal(load_labels(path)[0], first)
    assert hidden_entries(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_job_cancelled_while_writing_leaves_nothing(tmp_path, suffix):
    labels = np.ones((3000, 300), np.uint16)
    path = tmp_path / f"cells{suffix}"
    job = save_labels_job(path, labels, table=False)
    reports = [next(job) for _ in range(3)]  # the ID scan, then two blocks written
    assert reports[-1].message.startswith(("tiff: writing", "ome-zarr: writing"))
    job.close()
    assert not path.exists() and hidden_entries(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_existing_output_is_refused_unless_overwrite(tmp_path, suffix):
    path = tmp_path / f"cells{suffix}"
    save_labels(path, np.ones((5, 5), np.uint8))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_labels(path, np.full((5, 5), 2, np.uint8))
    assert load_labels(path)[0].max() == 1
    save_labels(path, np.full((5, 5), 2, np.uint8), overwrite=True)
    assert load_labels(path)[0].max() == 2
    assert hidden_entries(tmp_path) == []


def test_disk_full_and_permission_errors_say_what_to_do(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(LabelsWriteError, match="Not enough disk space") as info:
        write_tiff_labels(tmp_path / "a.tif", np.ones((4, 4), np.uint8))
    assert info.value.errno == errno.ENOSPC
    assert hidden_entries(tmp_path) == [] and not (tmp_path / "a.tif").exists()

    real_rename = os.rename

    def denied(src, dst):
        if Path(dst).name == "b.zarr":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_rename(src, dst)

    from zarr.storage import LocalStore

    real_set = LocalStore.set

    async def full_store(self, key, value):
        if key.startswith("0/"):  # chunk data, after the metadata was written
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real_set(self, key, value)

    monkeypatch.setattr(LocalStore, "set", full_store)
    with pytest.raises(LabelsWriteError, match="Not enough disk space"):
        write_ome_zarr_labels(tmp_path / "c.zarr", np.ones((4, 4), np.uint8))
    assert hidden_entries(tmp_path) == [] and not (tmp_path / "c.zarr").exists()
    monkeypatch.setattr(LocalStore, "set", real_set)

    monkeypatch.setattr(os, "rename", denied)
    with pytest.raises(LabelsWriteError, match=r"No permission.*folder you can write to"):
        write_ome_zarr_labels(tmp_path / "b.zarr", np.ones((4, 4), np.uint8))
    assert hidden_entries(tmp_path) == [] and not (tmp_path / "b.zarr").exists()


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((4, 4), np.float32), "integer IDs"),
        (np.full((4, 4), -1, np.int16), "negative"),
        (np.zeros((2, 2, 2, 2), np.uint8), "2D .* or 3D"),
        (np.zeros(5, np.uint8), "2D .* or 3D"),
        (np.full((2, 2), 2**32, np.uint64), "above 4294967295"),
        ("not an array", "must be an array"),
    ],
)
def test_bad_labels_give_clear_errors(tmp_path, labels, match):
    for suffix in (".tif", ".zarr"):
        with pytest.raises(ValueError, match=match):
            save_labels(tmp_path / f"x{suffix}", labels)
    assert list(tmp_path.iterdir()) == []


def test_bad_paths_and_options_give_clear_errors(tmp_path):
    labels = np.ones((4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"\.tif or \.tiff .* \.zarr"):
        save_labels(tmp_path / "x.png", labels)
    with pytest.raises(ValueError, match="one pixel size per axis"):
        save_labels(tmp_path / "x.tif", labels, scale=(1.0,))
    with pytest.raises(ValueError, match="ngff_version"):
        save_labels(tmp_path / "x.zarr", labels, ngff_version="0.3")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_labels(tmp_path / "missing.tif")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- object table
def reference_rows(labels, image):
    rows = []
    for label in np.unique(labels[labels > 0]):
        rr, cc = np.nonzero(labels == label)
        rows.append(
            {
                "id": int(label),
                "area": rr.size,
                "centroid_row": rr.mean(),
                "centroid_col": cc.mean(),
                "bbox_row0": rr.min(),
                "bbox_col0": cc.min(),
                "bbox_row1": rr.max() + 1,
                "bbox_col1": cc.max() + 1,
                "mean_intensity": image[rr, cc].mean(),
            }
        )
    return rows


def assert_rows_equal(rows, expected):
    assert [r["id"] for r in rows] == [e["id"] for e in expected]
    for row, ref in zip(rows, expected, strict=True):
        for key, value in ref.items():
            assert row[key] == pytest.approx(value), (row["id"], key)


def test_object_table_matches_numpy_and_merges_blocks(tmp_path, monkeypatch):
    labels = np.zeros((23, 29), np.uint32)
    labels[2:9, 3:20] = 5  # spans several blocks
    labels[10:22, 25:28] = MAX_ID
    labels[12, 1] = 2  # one pixel
    labels[15:18, 5:9] = 5  # a second, separate piece of object 5
    image = np.random.default_rng(3).random((23, 29)) * 100
    expected = reference_rows(labels, image)
    assert_rows_equal(object_table(labels, image=image), expected)
    monkeypatch.setattr(table_module, "_BLOCK_SIDE", 8)
    chunked = zarr.create_array(
        str(tmp_path / "l.zarr"), shape=labels.shape, chunks=(7, 9), dtype=np.uint32
    )
    chunked[...] = labels
    assert_rows_equal(object_table(chunked, image=image), expected)


def test_object_table_scores_channels_and_csv(tmp_path):
    labels = np.zeros((6, 6), np.uint16)
    labels[:2, :2], labels[4:, 4:] = 1, 3
    image = np.stack([labels * 1.0, labels * 10.0], axis=-1)
    rows = object_table(labels, image=image, scores={1: (0.9, 0.8), 3: {"predicted_iou": 0.7}})
    assert [r["mean_intensity_1"] for r in rows] == [10.0, 30.0]
    assert (rows[0]["predicted_iou"], rows[0]["stability"]) == (0.9, 0.8)
    assert (rows[1]["predicted_iou"], rows[1]["stability"]) == (0.7, None)
    assert object_table(np.zeros((3, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="does not match labels"):
        object_table(labels, image=np.zeros((5, 6)))

    path = write_object_table(tmp_path / "t.csv", rows)
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert read[0]["id"] == "1" and float(read[0]["predicted_iou"]) == 0.9
    assert read[1]["stability"] == ""


def test_save_labels_writes_the_table_beside_the_labels(tmp_path, rng):
    labels = rng.integers(0, 4, size=(30, 20)).astype(np.uint8)
    image = rng.random((30, 20))
    saved = save_labels(tmp_path / "cells.ome.zarr", labels, image=image)
    assert saved.table == table_path(tmp_path / "cells.ome.zarr") == tmp_path / "cells_objects.csv"
    with open(saved.table, newline="") as handle:
        read = list(csv.DictReader(handle))
    expected = reference_rows(labels, image)
    assert [int(r["id"]) for r in read] == [e["id"] for e in expected]
    assert [float(r["mean_intensity"]) for r in read] == pytest.approx(
        [e["mean_intensity"] for e in expected]
    )
    assert saved.n_objects == len(expected)
