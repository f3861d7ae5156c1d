"""Whole-image automatic segmentation: tiles, stitching, zarr output, CLI and dask."""

import numpy as np
import pytest
import tifffile
import torch

from napari_segany import build_model
from napari_segany.automatic import AutomaticParams, iter_segment, segment
from napari_segany.cli import main
from napari_segany.models.checkpoint import ARCH_KEY
from napari_segany.progress import Progress
from napari_segany.tiled.session import SegmentationSession


@pytest.fixture(scope="module")
def head_model():
    """A randomly initialised embedded-architecture model (with instance head), 256² input."""
    return build_model("segany_cells", img_size=256, seed=1)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, head_model):
    path = tmp_path_factory.mktemp("model") / "random_cells.pt"
    state = {
        k: v.half() if v.is_floating_point() else v for k, v in head_model.state_dict().items()
    }
    torch.save({ARCH_KEY: "segany_cells", "model_state": state}, path)
    return path


@pytest.fixture(scope="module")
def nuclei_image():
    """Synthetic nuclei, uint16 ``(300, 360)`` (30 placed): several tiles of the 256 px model."""
    from napari_segany.synthetic import generate_nuclei

    img, _ = generate_nuclei(shape=(300, 360), n_objects=30, seed=2)
    return img


# the random head gives few confident pixels; low thresholds make it find objects
OPTIONS = dict(foreground_threshold=0.45, seed_threshold=0.45, min_size=1)


def test_iter_segment_reports_each_tile_and_returns_unique_ids(head_model, nuclei_image):
    session = SegmentationSession(nuclei_image, head_model, tile_size=192, halo=24)
    job = iter_segment(session, **OPTIONS)
    reports = []
    while True:
        try:
            reports.append(next(job))
        except StopIteration as stop:
            result = stop.value
            break
    n = len(session.grid)
    assert n > 1
    assert [r.done for r in reports] == list(range(1, n + 1))
    assert all(isinstance(r, Progress) and r.total == n for r in reports)
    labels = result.labels
    assert labels.shape == nuclei_image.shape and labels.dtype == np.uint32
    ids = np.unique(labels[labels > 0])
    assert set(result.scores) == set(ids.tolist())
    assert result.method == "instance_head"


def test_zarr_output_matches_numpy(head_model, nuclei_image, tmp_path):
    import zarr

    in_memory = segment(nuclei_image, head_model, tile_size=192, halo=24, **OPTIONS)
    out = zarr.create_array(
        tmp_path / "l.zarr", shape=nuclei_image.shape, chunks=(64, 64), dtype="u4"
    )
    on_disk = segment(nuclei_image, head_model, tile_size=192, halo=24, out=out, **OPTIONS)
    assert on_disk.labels is out
    np.testing.assert_array_equal(out[:], in_memory.labels)


def test_point_grid_method_on_any_model(nuclei_image):
    model = build_model("vit_t", img_size=224, seed=0)
    params = AutomaticParams.from_options(method="point_grid", points_per_side=4, min_size=1)
    result = segment(nuclei_image, model, **vars_of(params))
    assert result.method == "point_grid" and result.labels.shape == nuclei_image.shape


def vars_of(params):
    opts = {k: getattr(params, k) for k in ("method", "min_size")}
    opts["points_per_side"] = params.point_grid.points_per_side
    return opts


def test_out_of_wrong_shape_is_refused(head_model, nuclei_image):
    session = SegmentationSession(nuclei_image, head_model)
    with pytest.raises(ValueError, match="out has shape"):
        next(iter_segment(session, out=np.zeros((5, 5), np.uint32)))


# -- command line ---------------------------------------------------------------------------


@pytest.fixture()
def image_file(tmp_path, nuclei_image):
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, nuclei_image)
    return path


def run_cli(*args):
    return main(["segment", *map(str, args), "--quiet", "--min-size", "1"])


def test_cli_writes_tiff_and_table(image_file, tmp_path, nuclei_image, capsys):
    """The default (embedded) model through the command line: labels, table, summary."""
    from napari_segany.models.loading import load_model

    out = tmp_path / "result.tif"
    assert run_cli(image_file, "-o", out) == 0
    written = tifffile.imread(out)
    expected = segment(nuclei_image, load_model(device="cpu"), min_size=1).labels
    np.testing.assert_array_equal(written, expected)
    assert expected.max() > 10  # the nuclei were found
    table = (tmp_path / "result_objects.csv").read_text().splitlines()
    assert len(table) == 1 + int(expected.max())
    header = table[0].split(",")
    assert {"foreground_probability", "stability", "mean_intensity", "area"} <= set(header)
    assert f"{int(expected.max())} objects" in capsys.readouterr().out


def test_cli_views_option_reaches_the_segmentation(image_file, tmp_path, nuclei_image):
    from napari_segany.models.loading import load_model

    out = tmp_path / "one_view.tif"
    assert run_cli(image_file, "-o", out, "--views", "1") == 0
    model = load_model(device="cpu")
    one = segment(nuclei_image, model, min_size=1, flips=1).labels
    np.testing.assert_array_equal(tifffile.imread(out), one)
    four = segment(nuclei_image, model, min_size=1).labels
    assert not np.array_equal(one, four)  # 4 views differ


def test_cli_many_images_into_a_folder_as_ome_zarr(image_file, model_file, tmp_path, nuclei_image):
    second = tmp_path / "other.tif"
    tifffile.imwrite(second, nuclei_image[:200, :150])
    folder = tmp_path / "labels"
    code = run_cli(image_file, second, "-o", folder, "--model", model_file, "--format", "zarr")
    assert code == 0
    from napari_segany.labels_io import load_labels

    labels, _ = load_labels(folder / "other.labels.zarr")
    assert np.asarray(labels).shape == (200, 150)
    assert (folder / "nuclei.labels.zarr").is_dir()


def test_cli_never_overwrites_without_flag(image_file, model_file, tmp_path, capsys):
    out = tmp_path / "result.tif"
    out.write_bytes(b"precious")
    assert run_cli(image_file, "-o", out, "--model", model_file) == 1
    assert out.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err
    assert run_cli(image_file, "-o", out, "--model", model_file, "--overwrite") == 0
    assert tifffile.imread(out).ndim == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tif", "-o", "x.tif"], "no such file"),
        (["{img}", "{img}", "-o", "one.tif"], "cannot all be written to one file"),
        (["{img}", "-o", "labels.png"], "use a name ending in .tif"),
    ],
)
def test_cli_clear_errors(args, message, image_file, model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.format(img=image_file) for a in args]
    assert run_cli(*args, "--model", model_file) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_dask_local_cluster_gives_the_single_process_result(image_file, model_file, nuclei_image):
    distributed = pytest.importorskip("distributed")
    from napari_segany.automatic.distributed import ImageJob, iter_segment_dask
    from napari_segany.models.loading import load_model
    from napari_segany.progress import run_with_progress

    params = AutomaticParams.from_options(**OPTIONS)
    single = segment(nuclei_image, load_model(model_file, device="cpu"), tile_size=256, **OPTIONS)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        job = iter_segment_dask(
            [ImageJob(str(image_file))], str(model_file), params, tile_size=256, client=client
        )
        (result,) = run_with_progress(job, show=False)
    np.testing.assert_array_equal(result.labels, single.labels)
    assert result.scores.keys() == single.scores.keys()
    for key, value in single.scores.items():
        np.testing.assert_allclose(result.scores[key], value, rtol=1e-6)


def test_cli_labels_large_images_on_disk(image_file, tmp_path, nuclei_image, monkeypatch):
    """Above the in-memory limit the labels go to a scratch zarr array, with the same result."""
    import napari_segany.cli.segment as cli_segment
    from napari_segany.models.loading import load_model

    made = []
    scratch = cli_segment._scratch_labels

    def recording(shape):
        made.append(scratch(shape))
        return made[-1]

    monkeypatch.setattr(cli_segment, "IN_MEMORY_PIXELS", 1000)
    monkeypatch.setattr(cli_segment, "_scratch_labels", recording)
    out = tmp_path / "big.ome.zarr"
    assert run_cli(image_file, "-o", out) == 0
    assert len(made) == 1 and type(made[0]).__module__.startswith("zarr")
    from napari_segany.labels_io import load_labels

    written, _ = load_labels(out)
    expected = segment(nuclei_image, load_model(device="cpu"), min_size=1).labels
    np.testing.assert_array_equal(np.asarray(written), expected)


def test_cli_scheduler_address(image_file, tmp_path, nuclei_image):
    distributed = pytest.importorskip("distributed")
    from napari_segany.models.loading import load_model

    out = tmp_path / "labels.tif"
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        assert run_cli(image_file, "-o", out, "--scheduler", cluster.scheduler_address) == 0
    expected = segment(nuclei_image, load_model(device="cpu"), min_size=1).labels
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_dask_threads_without_a_cluster(image_file, model_file, nuclei_image):
    pytest.importorskip("dask")
    from napari_segany.automatic.distributed import ImageJob, iter_segment_dask
    from napari_segany.models.loading import load_model
    from napari_segany.progress import run_with_progress

    params = AutomaticParams.from_options(**OPTIONS)
    single = segment(nuclei_image, load_model(model_file, device="cpu"), tile_size=256, **OPTIONS)
    job = iter_segment_dask([ImageJob(str(image_file))], str(model_file), params, tile_size=256)
    (result,) = run_with_progress(job, show=False)
    np.testing.assert_array_equal(result.labels, single.labels)
