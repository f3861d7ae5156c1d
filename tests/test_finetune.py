"""Training on a user's annotations: areas, crops, checkpoints, resume, cancel, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_segany import build_model, load_model
from napari_segany.cli import main as cli_main
from napari_segany.models.checkpoint import ARCH_KEY, CheckpointError
from napari_segany.models.trained import trained_dir
from napari_segany.synthetic import DENSE_CLUSTERS, generate_scene
from napari_segany.synthetic.styles import inverted_striped_nuclei
from napari_segany.training import FinetuneConfig, finetune, iter_finetune, read_provenance
from napari_segany.training.annotations import (
    AnnotatedImage,
    annotated_area,
    prepare_annotations,
    sample_batch,
)
from napari_segany.training.losses import head_loss

TINY = dict(
    steps=4,
    validate_every=2,
    crop=64,
    scenes_per_step=2,
    objects_per_scene=2,
    device="cpu",
)


@pytest.fixture(scope="module")
def annotated():
    """A 160×192 uint16 image of dense nuclei, labelled in its left half only."""
    scene = generate_scene((160, 192), DENSE_CLUSTERS, seed=5)
    labels = np.asarray(scene.labels).copy()
    for i in np.unique(labels[:, 96:]):
        labels[labels == i] = 0
    return np.asarray(scene.raw), labels


@pytest.fixture(scope="module")
def base():
    return build_model("segany_cells", img_size=128, seed=3)


def test_training_area_is_the_objects_boxes_grown_by_the_margin():
    labels = np.zeros((40, 50), np.int32)
    labels[5:10, 5:9] = 1
    labels[30:35, 40:45] = 7
    area = annotated_area(labels, margin=2)
    expected = np.zeros_like(area)
    expected[3:12, 3:11] = True
    expected[28:37, 38:47] = True
    np.testing.assert_array_equal(area, expected)


def test_crops_teach_nothing_outside_the_annotated_area():
    # every 4×4 block has its own ID; the area is the left half: after scaling, rotation and
    # flips, a valid pixel always holds a left-half ID and prompted objects lie in valid pixels
    ids = np.arange(32 * 32).reshape(32, 32) + 1
    labels = np.kron(ids, np.ones((4, 4), np.int64))
    area = np.zeros(labels.shape, bool)
    area[:, :64] = True
    left = np.unique(labels[:, :64])
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    image = AnnotatedImage("blocks", rgb, labels, area, "")
    rng = np.random.default_rng(0)
    for _ in range(10):
        batch = sample_batch([image], 64, 2, 3, rng)
        for scene, valid in zip(batch.scenes, batch.valid, strict=True):
            assert np.isin(scene.labels[valid], left).all()
            assert valid.any()
        for mask, j in zip(batch.masks, batch.scene_of, strict=True):
            assert batch.valid[j][mask].all()


def test_head_loss_ignores_pixels_outside_valid_and_keeps_its_default():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 32, 32, requires_grad=True)
    labels = torch.zeros(2, 32, 32, dtype=torch.int64)
    labels[:, 4:12, 4:12] = 1
    labels[:, 12:20, 6:14] = 2
    valid = torch.zeros(2, 32, 32, dtype=torch.bool)
    valid[:, :, :16] = True
    head_loss(logits, labels, valid).backward()
    assert logits.grad[..., 16:].abs().max() == 0
    assert logits.grad[..., :16].abs().max() > 0
    everywhere = head_loss(logits, labels, torch.ones(2, 32, 32, dtype=torch.bool))
    torch.testing.assert_close(everywhere, head_loss(logits, labels))


def test_finetune_records_provenance_loads_by_path_and_name(cache, tmp_path, annotated, base):
    image, labels = annotated
    out = tmp_path / "my_nuclei.pt"
    reports = list(iter_finetune(image, labels, out, base=base, **TINY))
    assert [r.done for r in reports] == [0, 1, 2, 3, 4]
    assert reports[0].score is not None  # the base model is validated first
    record = read_provenance(out)
    assert record["architecture"] == "segany_cells"
    assert len(record["base"]["sha256"]) == 64
    assert record["data"][0]["shape"] == [160, 192]
    assert len(record["data"][0]["sha256"]) == 64
    assert record["steps"] == 4 and record["best_step"] in (0, 2, 4)
    assert record["settings"]["validation"] == 0.2
    assert set(record["validation"]) >= {"accuracy", "click_miou", "score", "base"}
    assert record["date"].startswith("20")
    assert not (tmp_path / "my_nuclei.pt.state").exists()  # finished: nothing to resume
    assert load_model(out, device="cpu").has_instance_head
    assert load_model("my_nuclei", device="cpu").architecture == "segany_cells"
    assert (trained_dir() / "my_nuclei.pt").is_file()


def test_trained_models_are_listed_by_the_models_command(cache, tmp_path, annotated, base, capsys):
    image, labels = annotated
    finetune(image, labels, tmp_path / "out.pt", base=base, name="listed", **TINY)
    assert cli_main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["name"] == "listed")
    assert row["trained"] and row["architecture"] == "segany_cells"
    assert cli_main(["models"]) == 0
    assert "listed" in capsys.readouterr().out


def test_closing_the_job_keeps_the_best_model_and_a_rerun_resumes(cache, tmp_path, annotated, base):
    image, labels = annotated
    out = tmp_path / "cancelled.pt"
    job = iter_finetune(image, labels, out, base=base, **{**TINY, "steps": 6})
    for report in job:
        if report.done == 3:
            break
    job.close()  # as napari's worker.quit() does
    assert read_provenance(out)["best_step"] in (0, 2)
    state = torch.load(str(out) + ".state", weights_only=False)
    assert state["step"] == 3
    other = np.where(labels == labels.max(), 0, labels)
    with pytest.raises(ValueError, match="unfinished run on other images"):
        list(iter_finetune(image, other, out, base=base, **{**TINY, "steps": 6}))
    resumed = iter_finetune(image, labels, out, base=base, **{**TINY, "steps": 6})
    done = [r.done for r in resumed]
    assert done == [3, 4, 5, 6]
    assert not (tmp_path / "cancelled.pt.state").exists()


def test_a_time_budget_sets_the_number_of_steps(cache, tmp_path, annotated, base):
    image, labels = annotated
    config = FinetuneConfig(**{**TINY, "steps": 1000, "minutes": 1e-4})
    result = finetune(image, labels, tmp_path / "quick.pt", base=base, config=config)
    assert result.steps <= 4
    assert read_provenance(tmp_path / "quick.pt")["steps"] == result.steps


def _nothing_written(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == [] and not (
        trained_dir().exists()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda im, lab: (im, lab[:100]), "the labels of image 1 have shape"),
        (lambda im, lab: (im, lab.astype(np.float32)), "not integer"),
        (lambda im, lab: (im, lab > 0), "not integer"),
        (lambda im, lab: (im, np.zeros_like(lab)), "has no labels"),
        (lambda im, lab: (im, (lab == lab.max()).astype(np.int32)), "at least 2"),
        (lambda im, lab: ([im, im], [lab]), r"2 image\(s\) but 1 label"),
    ],
    ids=["shape", "float", "bool", "empty", "one object", "count"],
)
def test_bad_input_says_what_is_wrong_and_writes_nothing(
    cache, tmp_path, annotated, base, change, message
):
    image, labels = change(*annotated)
    with pytest.raises(ValueError, match=message):
        finetune(image, labels, tmp_path / "bad.pt", base=base, **TINY)
    assert _nothing_written(tmp_path)


def test_a_base_that_is_not_segany_cells_or_an_existing_output_is_refused(
    cache, tmp_path, annotated, base
):
    image, labels = annotated
    headless = build_model("segany_cells", img_size=128, seed=3)
    headless.instance_head = None
    with pytest.raises(ValueError, match="needs a segany_cells model with its instance head"):
        finetune(image, labels, tmp_path / "a.pt", base=headless, **TINY)
    (tmp_path / "taken.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="exists"):
        finetune(image, labels, tmp_path / "taken.pt", base=base, **TINY)
    with pytest.raises(ValueError, match="registry model"):
        finetune(image, labels, tmp_path / "segany_cells.pt", base=base, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["taken.pt"]


def test_files_that_are_no_trained_model_give_clear_errors(tmp_path, base):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Cannot read"):
        read_provenance(junk)
    plain = tmp_path / "plain.pt"
    torch.save({ARCH_KEY: "segany_cells", "model_state": base.state_dict()}, plain)
    with pytest.raises(CheckpointError, match="no provenance record"):
        read_provenance(plain)


def test_multichannel_float_images_and_several_images_train(cache, tmp_path, annotated, base):
    image, labels = annotated
    two_channels = np.stack([image.astype(np.float32), image[::-1].astype(np.float32)])
    flipped = two_channels[:, :, ::-1]
    data = prepare_annotations([two_channels, flipped], [labels, labels[:, ::-1]], channel_axis=0)
    assert data[0].rgb.shape == (160, 192, 3) and data[0].rgb.dtype == np.uint8
    assert data[0].sha256 != data[1].sha256
    result = finetune(
        [two_channels, flipped],
        [labels, labels[:, ::-1]],
        tmp_path / "multi.pt",
        base=base,
        channel_axis=0,
        **TINY,
    )
    assert len(read_provenance(result.path)["data"]) == 2


@pytest.mark.slow
def test_training_on_an_unseen_style_raises_its_held_out_accuracy(cache, tmp_path, embedded_model):
    from napari_segany.automatic import segment
    from napari_segany.automatic.metrics import matching_accuracy

    image, labels = inverted_striped_nuclei(1)
    tests = [inverted_striped_nuclei(100 + i, held_out=True) for i in range(2)]

    def accuracy(model):
        return np.mean([matching_accuracy(t, segment(im, model).labels) for im, t in tests])

    before = accuracy(embedded_model)
    result = finetune(image, labels, tmp_path / "style.pt", base=embedded_model, device="cpu")
    after = accuracy(load_model(result.path, device="cpu"))
    assert after >= before + 0.15, (before, after)
