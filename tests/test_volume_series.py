"""Time series of z-stacks (``tzyx``): each frame's z-stack linked into 3D objects, the 3D
objects tracked over frames with stable IDs and divisions; Python API and command line."""

import numpy as np
import pytest
import tifffile

from napari_segany.automatic import segment
from napari_segany.automatic.stack import StackResult
from napari_segany.cli import main
from napari_segany.labels_io import load_labels
from napari_segany.synthetic.stacks import _render
from napari_segany.volume import AxesError, track
from napari_segany.volume.tracking import TRACK_COLUMNS_3D


def _balls(frames=3, shape=(6, 96, 96), drift=3.0, divide=False, seed=0):
    """(T, Z, H, W) image and true labels of balls drifting in (row, col); with ``divide``,
    ball 1 splits into two daughters (IDs 5 and 6) in the last frame."""
    rng = np.random.default_rng(seed)
    z, h, w = shape
    zz, rr, cc = np.meshgrid(np.arange(z), np.arange(h), np.arange(w), indexing="ij")
    cells = {1: (2.5, 28, 28, 14), 2: (2.5, 28, 68, 12), 3: (2.5, 68, 28, 12), 4: (2.5, 68, 68, 13)}
    labels = np.zeros((frames, *shape), np.uint32)
    for t in range(frames):
        current = dict(cells)
        if divide and t == frames - 1:
            zc, r, c, rad = current.pop(1)
            current[5] = (zc, r + t * drift - 7, c + t * drift, 0.7 * rad)
            current[6] = (zc, r + t * drift + 7, c + t * drift, 0.7 * rad)
            moved = {k: v for k, v in current.items() if k in (5, 6)}
        else:
            moved = {}
        for ident, (zc, r, c, rad) in current.items():
            if ident not in moved:
                r, c = r + t * drift, c + t * drift
            d = ((zz - zc) / (rad / 4)) ** 2 + ((rr - r) / rad) ** 2 + ((cc - c) / rad) ** 2
            labels[t][d < 1] = ident
    image = np.stack([_render(frame, rng, (0.6, 1.0, 1.0)) for frame in labels])
    return image, labels


def _ids_of(result, truth, ident):
    """The predicted ID covering most of true object ``ident``, per frame where it exists."""
    return {
        t: int(np.bincount(result[t][truth[t] == ident]).argmax())
        for t in range(len(truth))
        if (truth[t] == ident).any()
    }


@pytest.fixture(scope="module")
def dividing():
    return _balls(divide=True, seed=3)


def test_tracker_links_3d_frames_and_records_divisions(dividing):
    _, truth = dividing
    # each frame's 3D objects with their own IDs, as linking through z gives them
    shuffled = np.where(truth > 0, (truth * 7) % 11 + 1, 0).astype(np.uint32)
    result = track(shuffled)
    for ident in (2, 3, 4):
        ids = set(_ids_of(result.labels, truth, ident).values())
        assert len(ids) == 1 and 0 not in ids
    mother = _ids_of(result.labels, truth, 1)[0]
    daughters = {_ids_of(result.labels, truth, d)[2] for d in (5, 6)}
    assert len(daughters) == 2 and mother not in daughters
    assert {result.parents[d] for d in daughters} == {mother}
    assert result.table.shape[1] == len(TRACK_COLUMNS_3D) == 6
    for ident, frame, _, z, row, col in result.table:
        centre = np.argwhere(result.labels[int(frame)] == ident).mean(axis=0)
        assert np.allclose(centre, [z, row, col])


def test_segment_tzyx_keeps_3d_ids_and_records_the_division(dividing, embedded_model):
    image, truth = dividing
    result = segment(image, embedded_model, axes="tzyx", flips=1)
    assert isinstance(result, StackResult) and result.axes == "tzyx"
    assert result.labels.shape == truth.shape and result.labels.dtype == np.uint32
    assert result.track_columns == TRACK_COLUMNS_3D and result.tracks.shape[1] == 6
    for ident in (2, 3, 4):  # drifting 3D objects keep one ID over frames and through z
        ids = set(_ids_of(result.labels, truth, ident).values())
        assert len(ids) == 1 and 0 not in ids, ident
        # one 3D object per frame: its slices share the ID
        for t in range(len(truth)):
            inside = result.labels[t][truth[t] == ident]
            assert np.mean(inside == next(iter(ids))) > 0.8
    mother = _ids_of(result.labels, truth, 1)[0]
    daughters = {_ids_of(result.labels, truth, d)[2] for d in (5, 6)}
    assert len(daughters) == 2 and mother not in daughters
    assert {result.parents[d] for d in daughters} == {mother}
    assert set(result.scores) == set(np.unique(result.labels[result.labels > 0]).tolist())


def test_channels_and_cancel_in_a_series_of_stacks(embedded_model):
    from napari_segany.automatic.params import AutomaticParams
    from napari_segany.automatic.stack import iter_segment_stack
    from napari_segany.volume import StackSessions

    image, _ = _balls(frames=2, seed=4)
    tczyx = np.stack([image, image // 2], axis=1)
    sessions = StackSessions(tczyx, embedded_model, "tczyx", keep=1)
    out = np.zeros((2, 6, 96, 96), np.uint32)
    job = iter_segment_stack(sessions, AutomaticParams(flips=1), out=out)
    reports = []
    for report in job:
        reports.append(report)
        if report.message == "t=0 done":
            break
    job.close()
    assert reports[-1].total == 2 * 6 * 100 and reports[-1].done == 6 * 100
    assert out[0].any() and not out[1].any()  # the first frame is written, then cancelled


def test_bad_axes_for_a_series_of_stacks(embedded_model):
    image = np.zeros((2, 3, 32, 32), np.uint16)
    with pytest.raises(AxesError, match="name 3 axes but the image has 4"):
        segment(image, embedded_model, axes="zyx")
    with pytest.raises(AxesError, match="cannot tell the axes"):
        from napari_segany.automatic.stack import segment_stack

        segment_stack(image, embedded_model)
    with pytest.raises(AxesError, match="given more than once"):
        segment(image, embedded_model, axes="ttyx")


@pytest.mark.parametrize("suffix", [".ome.zarr", ".labels.tif"])
def test_cli_tzyx_round_trip(suffix, tmp_path):
    image, truth = _balls(frames=3, seed=5)
    source = tmp_path / "series.tif"
    tifffile.imwrite(
        source, image, imagej=True, metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um"}
    )
    target = tmp_path / f"series{suffix}"
    args = ["segment", str(source), "-o", str(target), "--flips", "1", "--quiet"]
    assert main([*args, "--axes", "tzyx" if suffix == ".ome.zarr" else "auto"]) == 0
    labels, meta = load_labels(target)
    labels = np.asarray(labels)
    assert labels.shape == truth.shape
    assert "".join(meta["axes"]) == "tzyx"
    assert meta["scale"][:2] == pytest.approx((1.0, 2.0))
    for ident in (1, 2, 3, 4):
        ids = set(_ids_of(labels, truth, ident).values())
        assert len(ids) == 1 and 0 not in ids
    lines = (tmp_path / "series_tracks.csv").read_text().splitlines()
    assert lines[0] == "id,frame,parent,z,row,col"
    assert len(lines) - 1 == sum(len(np.unique(f[f > 0])) for f in labels)


def test_cli_bad_axes_for_a_series(tmp_path, capsys):
    source = tmp_path / "series.tif"
    tifffile.imwrite(source, np.zeros((2, 3, 32, 32), np.uint16), photometric="minisblack")
    code = main(["segment", str(source), "-o", str(tmp_path / "a.tif"), "--axes", "tzcyx"])
    assert code != 0 and "name 5 axes but the image has 4" in capsys.readouterr().err
    code = main(["segment", str(source), "-o", str(tmp_path / "b.tif"), "--axes", "tzzx"])
    assert code != 0 and "more than once" in capsys.readouterr().err
    assert not (tmp_path / "a.tif").exists() and not (tmp_path / "b.tif").exists()


def test_dask_tasks_give_the_same_4d_labels(embedded_model, tmp_path):
    pytest.importorskip("dask")
    from napari_segany.automatic.params import AutomaticParams
    from napari_segany.automatic.stack import iter_segment_stack, iter_segment_stack_dask
    from napari_segany.progress import run_with_progress
    from napari_segany.volume import StackSessions

    image, _ = _balls(frames=2, seed=6)
    source = tmp_path / "series.tif"
    tifffile.imwrite(source, image, imagej=True, metadata={"axes": "TZYX"})
    params = AutomaticParams(flips=1)
    single = run_with_progress(
        iter_segment_stack(StackSessions(source, embedded_model), params), show=False
    )
    sessions = StackSessions(source, embedded_model)
    job = iter_segment_stack_dask(sessions, "segany_cells", params, device="cpu")
    result = run_with_progress(job, show=False)
    assert result.axes == "tzyx" and result.tracks.shape[1] == 6
    np.testing.assert_array_equal(result.labels, single.labels)


def test_4d_labels_are_saved_without_the_object_table(tmp_path):
    from napari_segany.labels_io import save_labels

    labels = np.zeros((2, 3, 16, 16), np.uint32)
    labels[:, 1, 4:8, 4:8] = 1
    with pytest.raises(ValueError, match="table=False"):
        save_labels(tmp_path / "x.tif", labels)
    saved = save_labels(tmp_path / "x.tif", labels, axes="tzyx", table=False)
    back, meta = load_labels(saved.labels)
    np.testing.assert_array_equal(back, labels)
    assert meta["axes"] == "tzyx"
