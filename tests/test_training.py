"""Shared training pieces: the model input, the config options, the instance-head trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import build_model, load_model
from napari_segany.training import train_instance_head
from napari_segany.training.common import export_weights, parse_config, stop_step
from napari_segany.training.data import Scene, draw_scene, model_input, pad_like_inference
from napari_segany.training.train_embedded import TrainConfig


@pytest.fixture(scope="module")
def model():
    return build_model("segany_cells", img_size=128, seed=1)


def test_model_input_normalises_like_the_model_and_zeroes_the_padding(model, rng):
    scenes = [
        Scene(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), np.zeros((64, 64), int), pad)
        for pad in [(0, 0), (5, 0), (0, 17), (9, 3)]
    ]
    x = model_input(model, scenes)
    rgb = torch.as_tensor(np.stack([s.rgb for s in scenes])).permute(0, 3, 1, 2).float()
    expected = (rgb - model.pixel_mean) / model.pixel_std  # what the trainers used to compute
    for k, (pad_r, pad_c) in enumerate(s.padding for s in scenes):
        expected[k, :, 64 - pad_r :] = 0
        expected[k, :, :, 64 - pad_c :] = 0
    assert x.shape == (4, 3, 64, 64)
    torch.testing.assert_close(x, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="one size"):
        model_input(model, [scenes[0], Scene(scenes[0].rgb[:32, :32], scenes[0].labels)])


def test_padded_scenes_lose_their_labels_under_the_padding():
    scene = draw_scene(seed=3, size=64)
    padded = pad_like_inference(scene, np.random.default_rng(0), probability=1.0, max_pad=20)
    pad_r, pad_c = padded.padding
    assert (pad_r, pad_c) != (0, 0)
    assert not padded.labels[64 - pad_r :].any() and not padded.labels[:, 64 - pad_c :].any()
    assert pad_like_inference(scene, np.random.default_rng(0), 0.0, 20) is scene


def test_every_config_field_is_an_option():
    cfg = parse_config(TrainConfig, "test", ["--steps", "7", "--stop-at", "3", "--lr", "0.5"])
    assert cfg == TrainConfig(steps=7, stop_at=3, lr=0.5)
    assert stop_step(cfg) == 3
    with pytest.raises(SystemExit):
        parse_config(TrainConfig, "test", ["--no-such-option", "1"])


def test_instance_head_training_changes_only_the_head(tmp_path):
    base = tmp_path / "base.pt"
    export_weights(build_model("segany_cells", seed=2), base, TrainConfig(), step=0)
    out = tmp_path / "head.pt"
    cfg = train_instance_head.HeadConfig(
        base=str(base), steps=2, crop=64, scenes_per_step=1, warmup=1, out=str(out), device="cpu"
    )
    assert train_instance_head.train(cfg) == out
    before, after = load_model(base, device="cpu"), load_model(out, device="cpu")
    assert after.architecture == "segany_cells"
    changed = {
        key.split(".")[0]
        for key, value in after.state_dict().items()
        if not torch.equal(value, before.state_dict()[key])
    }
    assert changed == {"instance_head"}


def test_dense_fraction_draws_dense_clusters_for_some_seeds_and_always_the_same():
    from napari_segany.synthetic import DENSE_CLUSTERS_ANY_SIZE, generate_scene

    def is_dense(seed):
        scene = draw_scene(seed, 96, dense_fraction=0.5)
        np.testing.assert_array_equal(scene.labels, draw_scene(seed, 96, dense_fraction=0.5).labels)
        dense = np.asarray(generate_scene((96, 96), DENSE_CLUSTERS_ANY_SIZE, seed=seed).labels)
        return np.array_equal(scene.labels, dense)

    kinds = [is_dense(seed) for seed in range(12)]
    assert 2 <= sum(kinds) <= 10  # a mix, decided by the seed
    regular = np.asarray(generate_scene((96, 96), seed=0).labels)
    np.testing.assert_array_equal(draw_scene(0, 96).labels, regular)
    with pytest.raises(ValueError, match="dense_fraction"):
        draw_scene(0, 96, dense_fraction=1.5)
    with pytest.raises(ValueError, match="not a preset"):
        draw_scene(0, 96, dense_fraction=1.0, dense_preset="generate_scene")


def test_initial_weights_grow_new_output_channels_and_keep_the_old_ones():
    from napari_segany.training.common import load_initial_weights

    model = build_model("segany_cells", img_size=128, seed=3)
    old = {
        k: v.clone()
        for k, v in build_model("segany_cells", img_size=128, seed=4).state_dict().items()
    }
    old["instance_head.out.weight"] = old["instance_head.out.weight"][:2]  # a two-map head
    old["instance_head.out.bias"] = old["instance_head.out.bias"][:2]
    fresh_row = model.state_dict()["instance_head.out.weight"][2].clone()
    grown = load_initial_weights(model, old)
    assert sorted(grown) == ["instance_head.out.bias", "instance_head.out.weight"]
    state = model.state_dict()
    torch.testing.assert_close(
        state["instance_head.out.weight"][:2], old["instance_head.out.weight"]
    )
    torch.testing.assert_close(state["instance_head.out.weight"][2], fresh_row)
    torch.testing.assert_close(
        state["mask_decoder.iou_token.weight"], old["mask_decoder.iou_token.weight"]
    )
    del old["mask_decoder.iou_token.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_initial_weights(model, old)
    head_less = {k: v for k, v in old.items() if not k.startswith("instance_head.")}
    head_less["mask_decoder.iou_token.weight"] = state["mask_decoder.iou_token.weight"]
    assert load_initial_weights(model, head_less, missing_ok="instance_head.") == []
