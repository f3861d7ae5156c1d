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
