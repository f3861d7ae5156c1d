"""The embedded model's architecture, its weight files and its training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import Predictor, build_model, load_model
from napari_segany.models.cell_encoder import CellEncoder
from napari_segany.training import train_embedded as training


@pytest.mark.parametrize("size", [64, 256, 1024])
def test_cell_encoder_output_matches_sam_embeddings(size):
    encoder = CellEncoder(img_size=size).eval()
    with torch.inference_mode():
        out = encoder(torch.randn(1, 3, size, size))
    assert out.shape == (1, 256, size // 16, size // 16)
    assert torch.isfinite(out).all()


def test_cell_encoder_rejects_sizes_off_the_token_grid():
    with pytest.raises(ValueError, match="multiples of 16"):
        CellEncoder()(torch.zeros(1, 3, 100, 64))


def test_model_is_small_enough_to_ship():
    model = build_model("segany_cells")
    n_params = sum(p.numel() for p in model.state_dict().values() if p.is_floating_point())
    assert n_params * 2 < 20e6  # float16 weights file under 20 MB


def test_small_images_are_padded_not_upscaled(rng):
    predictor = Predictor(build_model("segany_cells"))
    predictor.set_image(rng.integers(0, 4000, size=(300, 500), dtype=np.uint16))
    embedding = predictor.get_embedding()
    assert embedding.input_size == embedding.original_size == (300, 500)
    result = predictor.predict(points=[[150, 250]])
    assert result.masks.shape == (3, 300, 500)


def test_exported_half_precision_weights_load_as_float32(tmp_path):
    model = build_model("segany_cells", seed=4)
    path = tmp_path / "cells.pt"
    training.export_weights(model, path, training.TrainConfig(), step=0)
    assert path.stat().st_size < 12e6
    loaded = load_model(path, device="cpu")
    assert loaded.architecture == "segany_cells" and not loaded.upscale_input
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 256, 256) * 255
    with torch.inference_mode():
        a = model.image_encoder(model.normalize(x))
        b = loaded.image_encoder(loaded.normalize(x))
    torch.testing.assert_close(a, b, rtol=0.05, atol=0.05)


def _tiny_run(out, **kwargs):
    cfg = dict(
        steps=3,
        crop=64,
        scenes_per_step=1,
        objects_per_scene=2,
        corrective_rounds=1,
        warmup=1,
        log_every=1,
        save_every=10,
        out=str(out),
        device="cpu",
    )
    return training.TrainConfig(**{**cfg, **kwargs})


def test_training_runs_resumes_and_exports(tmp_path):
    out = tmp_path / "cells.pt"
    cfg = _tiny_run(out, steps=2, save_every=1)
    training.train(cfg)
    assert out.is_file()
    state = torch.load(str(out) + ".state", weights_only=False)
    assert state["step"] == 2
    cfg.steps = 3
    training.train(cfg)  # resumes at step 2 and runs one more
    assert torch.load(str(out) + ".state", weights_only=False)["step"] == 3
    model = load_model(out, device="cpu")
    assert model.architecture == "segany_cells"


def test_stop_at_reproduces_a_run_interrupted_at_that_step(tmp_path, monkeypatch):
    # the README recipe lists runs that were stopped by hand as --steps N --stop-at M
    interrupted = tmp_path / "interrupted.pt"
    step_once = training.training_step

    def interrupt(model, cfg, step, rng, device):
        if step == 2:
            raise KeyboardInterrupt
        return step_once(model, cfg, step, rng, device)

    monkeypatch.setattr(training, "training_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        training.train(_tiny_run(interrupted, save_every=1))
    monkeypatch.undo()
    stopped = tmp_path / "stopped.pt"
    training.train(_tiny_run(stopped, stop_at=2))
    a = torch.load(str(interrupted) + ".state", weights_only=False)
    b = torch.load(str(stopped) + ".state", weights_only=False)
    assert a["step"] == b["step"] == 2
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="stop_at must be between 0 and steps"):
        training.train(_tiny_run(tmp_path / "bad.pt", stop_at=5))


# -- decoding on a window, as in training ----------------------------------------------------
@pytest.fixture(scope="module")
def windowed():
    from napari_segany.synthetic import generate_nuclei

    image, labels = generate_nuclei(shape=(600, 500), n_objects=30, seed=5)
    # the embedding's own window; prompt views are tested in test_prompt_views.py
    predictor = Predictor(load_model(device="cpu"), prompt_views=1)
    predictor.set_image(image)
    return predictor, labels


def _windows_seen(predictor, monkeypatch, **prompts):
    seen = []
    decode = predictor.model.decode

    def spy(*args, **kwargs):
        seen.append(kwargs.get("window"))
        return decode(*args, **kwargs)

    monkeypatch.setattr(predictor.model, "decode", spy)
    result = predictor.predict(**prompts)
    monkeypatch.undo()
    return seen, result


@pytest.mark.parametrize(
    "click, window",
    [
        ((300, 250), (11, 8, 16, 16)),  # centred on the click
        ((5, 5), (0, 0, 16, 16)),  # pushed inside at the top left
        ((595, 495), (22, 16, 16, 16)),  # and inside the image (38 x 32 tokens), not its padding
    ],
)
def test_the_embedded_model_decodes_a_window_centred_on_the_click(
    windowed, monkeypatch, click, window
):
    predictor, _ = windowed
    seen, result = _windows_seen(predictor, monkeypatch, points=[click], multimask=False)
    assert seen == [window]
    r0, c0, rows, cols = (16 * v for v in window)
    outside = np.ones((600, 500), bool)
    outside[r0 : r0 + rows, c0 : c0 + cols] = False
    assert not result.masks[0][outside].any()
    assert result.logits.shape == (1, 256, 256)


def test_a_large_box_gets_a_window_that_holds_it(windowed, monkeypatch):
    predictor, _ = windowed
    seen, _ = _windows_seen(predictor, monkeypatch, box=[100, 50, 500, 450])
    r0, c0, rows, cols = seen[0]
    assert rows >= 400 / 16 + 4 and cols >= 400 / 16 + 4
    assert 16 * r0 <= 100 - 32 and 16 * (r0 + rows) >= 500 + 32
    assert 16 * c0 <= 50 - 32 and 16 * (c0 + cols) >= 450 + 32


def test_window_logits_refine_like_any_mask_input(windowed):
    predictor, labels = windowed
    rows, cols = np.nonzero(labels == 3)
    click = [rows.mean(), cols.mean()]
    first = predictor.predict(points=[click], multimask=False)
    again = predictor.predict(points=[click], mask_input=first.logits[0], multimask=False)
    truth = labels == 3
    iou = (again.masks[0] & truth).sum() / (again.masks[0] | truth).sum()
    assert iou > 0.6


def test_sam_models_decode_on_the_whole_embedding(rng, monkeypatch):
    predictor = Predictor(build_model("vit_t", img_size=64))
    predictor.set_image(rng.integers(0, 255, (64, 64), dtype=np.uint8))
    seen, _ = _windows_seen(predictor, monkeypatch, points=[[30, 30]])
    assert seen == [None]
