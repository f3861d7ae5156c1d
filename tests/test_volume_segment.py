"""Automatic segmentation of z-stacks (3D objects) and time series (tracks): Python API, the
command line (--axes), export and reading back."""

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany.automatic import matching_accuracy, segment
from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.stack import StackResult, iter_segment_stack, segment_stack
from napari_segany.cli import main
from napari_segany.labels_io import load_labels
from napari_segany.synthetic.stacks import moving_cells, touching_ellipsoids
from napari_segany.volume import AxesError, StackSessions


@pytest.fixture(scope="module")
def stack():
    return touching_ellipsoids((8, 96, 96), radius=(10.0, 13.0), anisotropy=3.0, seed=2)


@pytest.fixture(scope="module")
def cells():
    return moving_cells(frames=5, shape=(96, 96), count=4, drift=3.0, divide=1, seed=1)


def test_segment_a_z_stack_into_3d_objects(stack, embedded_model):
    result = segment(stack.image, embedded_model, axes="zyx", flips=1)
    assert isinstance(result, StackResult) and result.axes == "zyx"
    assert result.labels.shape == stack.labels.shape and result.labels.dtype == np.uint32
    assert matching_accuracy(stack.labels, result.labels) >= 0.8
    assert set(result.scores) == set(np.unique(result.labels[result.labels > 0]).tolist())


def test_segment_a_time_series_keeps_ids(cells, embedded_model):
    result = segment(cells.image, embedded_model, axes="tyx", flips=1)
    assert result.axes == "tyx" and result.tracks.shape[1] == 5
    first = np.unique(cells.labels[0][cells.labels[0] > 0])
    for ident in first.tolist():
        frames = [t for t in range(len(cells.labels)) if (cells.labels[t] == ident).any()]
        ids = {
            int(np.bincount(result.labels[t][cells.labels[t] == ident]).argmax()) for t in frames
        }
        assert len(ids) == 1 and 0 not in ids
    # the division: two new tracks whose parent is the mother's track
    assert len(result.parents) == 2 and len(set(result.parents.values())) == 1


def test_stack_axes_errors(stack, embedded_model):
    with pytest.raises(AxesError, match="cannot tell the axes"):
        segment_stack(stack.image, embedded_model)
    with pytest.raises(AxesError, match="name 4 axes but the image has 3"):
        segment_stack(stack.image, embedded_model, axes="tzyx")


def test_slices_are_written_one_at_a_time_and_cancel_keeps_them(stack, embedded_model, tmp_path):
    out = zarr.create_array(
        tmp_path / "out.zarr", shape=stack.labels.shape, chunks=(1, 96, 96), dtype="uint32"
    )
    sessions = StackSessions(stack.image, embedded_model, "zyx", keep=1)
    job = iter_segment_stack(sessions, AutomaticParams(flips=1), out=out)
    for report in job:
        if report.done >= 2 * 100:  # two slices done
            break
    job.close()
    assert (np.asarray(out[:2]) > 0).any()
    assert not np.asarray(out[2:]).any()
    assert len(sessions._sessions) <= 1  # sessions of finished slices are let go


def test_cli_z_stack_from_imagej_tiff(stack, tmp_path, capsys):
    source = tmp_path / "stack.tif"
    tifffile.imwrite(
        source,
        stack.image,
        imagej=True,
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"},
        resolution=(2.0, 2.0),
    )
    target = tmp_path / "stack.labels.tif"
    code = main(
        ["segment", str(source), "-o", str(target), "--axes", "zyx", "--flips", "1", "--quiet"]
    )
    assert code == 0
    labels, meta = load_labels(target)
    assert labels.shape == stack.labels.shape and meta["axes"] == "zyx"
    assert meta["scale"] == pytest.approx((1.5, 0.5, 0.5))
    with tifffile.TiffFile(target) as tif:
        assert len(tif.pages) == stack.labels.shape[0]  # one page per slice
    assert matching_accuracy(stack.labels, labels) >= 0.8
    assert (tmp_path / "stack_objects.csv").exists()


def test_cli_time_series_to_ome_zarr_with_track_table(cells, tmp_path):
    from napari_segany._reader import read_labels

    source = tmp_path / "movie.tif"
    tifffile.imwrite(source, cells.image, imagej=True, metadata={"axes": "TYX"})
    target = tmp_path / "movie.ome.zarr"
    code = main(
        ["segment", str(source), "-o", str(target), "--axes", "tyx", "--flips", "1", "--quiet"]
    )
    assert code == 0
    labels, meta = load_labels(target)
    assert labels.shape == cells.labels.shape and meta["axes"] == ["t", "y", "x"]
    lines = (tmp_path / "movie_tracks.csv").read_text().splitlines()
    assert lines[0] == "id,frame,parent,row,col"
    assert any(line.split(",")[2] != "0" for line in lines[1:])  # the daughters' parent
    data, kwargs, kind = read_labels(str(target))[0]
    assert kind == "labels" and kwargs["axis_labels"] == ("t", "y", "x") and data.ndim == 3


def test_cli_bad_axes_are_usage_errors(stack, tmp_path, capsys):
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack.image)
    code = main(["segment", str(source), "-o", str(tmp_path / "a.tif"), "--axes", "zcyx"])
    assert code != 0
    assert "name 4 axes but the image has 3" in capsys.readouterr().err
    code = main(["segment", str(source), "-o", str(tmp_path / "b.tif"), "--axes", "zqx"])
    assert code != 0 and "unknown letter" in capsys.readouterr().err
    assert not (tmp_path / "a.tif").exists() and not (tmp_path / "b.tif").exists()


def test_dask_slices_give_the_same_3d_labels(stack, embedded_model, tmp_path):
    pytest.importorskip("dask")
    from napari_segany.automatic.stack import iter_segment_stack_dask
    from napari_segany.progress import run_with_progress

    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack.image, imagej=True, metadata={"axes": "ZYX"})
    params = AutomaticParams(flips=1)
    single = run_with_progress(
        iter_segment_stack(StackSessions(source, embedded_model, "zyx"), params), show=False
    )
    sessions = StackSessions(source, embedded_model, "zyx")
    job = iter_segment_stack_dask(sessions, "segany_cells", params, device="cpu")
    result = run_with_progress(job, show=False)
    np.testing.assert_array_equal(result.labels, single.labels)
    assert result.scores.keys() == single.scores.keys()


def test_cli_stack_on_a_dask_scheduler(stack, tmp_path):
    distributed = pytest.importorskip("distributed")
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack.image, imagej=True, metadata={"axes": "ZYX"})
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        args = ["segment", str(source), "-o", str(tmp_path / "out.tif"), "--axes", "zyx"]
        args += ["--flips", "1", "--quiet", "--scheduler", cluster.scheduler_address]
        assert main(args) == 0
    labels, _ = load_labels(tmp_path / "out.tif")
    assert matching_accuracy(stack.labels, labels) >= 0.8


def test_cli_axes_auto_reads_the_files_axes(cells, tmp_path):
    source = tmp_path / "movie.tif"
    tifffile.imwrite(source, cells.image, imagej=True, metadata={"axes": "TYX"})
    target = tmp_path / "movie.labels.tif"
    args = ["segment", str(source), "-o", str(target), "--axes", "auto", "--flips", "1"]
    assert main([*args, "--quiet"]) == 0
    labels, meta = load_labels(target)
    assert meta["axes"] == "tyx" and labels.shape == cells.labels.shape
    assert (tmp_path / "movie_tracks.csv").exists()
    # a file without named axes: auto cannot tell
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, cells.image)
    assert main(["segment", str(plain), "-o", str(tmp_path / "p.tif"), "--axes", "auto"]) != 0


def test_cli_2d_axes_name_the_channel_axis(stack, tmp_path):
    source = tmp_path / "two_channels.tif"
    tifffile.imwrite(source, np.stack([stack.image[4], stack.image[4] // 2]))
    target = tmp_path / "two.labels.tif"
    assert main(["segment", str(source), "-o", str(target), "--axes", "cyx", "--quiet"]) == 0
    labels, _ = load_labels(target)
    assert labels.shape == stack.labels.shape[1:] and labels.max() > 0
