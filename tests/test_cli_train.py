"""``napari-segany train`` end to end on tiny files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from napari_segany import build_model, load_model
from napari_segany.cli import main
from napari_segany.models.checkpoint import ARCH_KEY
from napari_segany.synthetic import DENSE_CLUSTERS, generate_scene
from napari_segany.training import read_provenance


@pytest.fixture
def files(tmp_path):
    """A 96×128 uint16 .npy image, its labels as TIFF, and a random segany_cells base model."""
    scene = generate_scene((96, 128), DENSE_CLUSTERS, seed=2)
    image, labels = tmp_path / "cells.npy", tmp_path / "cells_labels.tif"
    np.save(image, np.asarray(scene.raw))
    tifffile.imwrite(labels, np.asarray(scene.labels).astype(np.uint16))
    base = tmp_path / "base.pt"
    model = build_model("segany_cells", img_size=128, seed=3)
    torch.save({ARCH_KEY: "segany_cells", "model_state": model.state_dict()}, base)
    return image, labels, base


def test_train_writes_a_registered_model_with_provenance(cache, tmp_path, files, capsys):
    image, labels, base = files
    out = tmp_path / "mine.pt"
    args = [str(image), "--labels", str(labels), "-o", str(out), "--base", str(base)]
    code = main(["train", *args, "--steps", "2", "--device", "cpu", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "registered as 'mine'" in captured.out
    record = read_provenance(out)
    assert record["data"][0]["name"].endswith("cells.npy")
    assert record["base"]["name"] == str(base)
    assert load_model("mine", device="cpu").architecture == "segany_cells"
    # the output exists and the run is finished: a rerun must be asked to overwrite
    assert main(["train", *args, "--steps", "2", "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels_of", "message"),
    [
        (lambda lab: lab.astype(np.float64), "not integer"),
        (lambda lab: lab[:50], "have shape (50, 128), the image is (96, 128)"),
        (lambda lab: np.zeros_like(lab), "has no labels"),
    ],
    ids=["float", "shape", "empty"],
)
def test_bad_labels_fail_with_a_message_and_write_nothing(
    cache, tmp_path, files, capsys, labels_of, message
):
    image, labels, base = files
    bad = tmp_path / "bad_labels.npy"
    np.save(bad, labels_of(tifffile.imread(labels)))
    before = sorted(tmp_path.iterdir())
    out = tmp_path / "out.pt"
    code = main(["train", str(image), "--labels", str(bad), "-o", str(out), "--base", str(base)])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before


def test_images_and_labels_must_pair_up(cache, tmp_path, files, capsys):
    image, labels, _ = files
    code = main(["train", str(image), str(image), "--labels", str(labels), "-o", "x.pt"])
    assert code == 1
    assert "2 image(s) but 1 label file(s)" in capsys.readouterr().err


def test_a_base_of_another_architecture_is_refused(cache, tmp_path, files, capsys):
    image, labels, _ = files
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"no model")
    code = main(["train", str(image), "--labels", str(labels), "-o", "o.pt", "--base", str(junk)])
    assert code == 1
    assert "Cannot read" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
