"""Our SAM implementation against Meta's reference code, with the same random weights.

Proves checkpoint compatibility (identical state-dict keys and shapes, strict loading) and
numerical parity (encoder outputs, masks and IoU scores for every kind of prompt) without any real
weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import Predictor, build_model
from napari_segany.inference.embedding import resize_for_model
from napari_segany.models.loading import model_from_state_dict
from reference_models import ours_from_reference, randomise, small_reference_sam

SMALL = dict(size=320, dim=96, depth=4, heads=4, glob=(1, 3))


@pytest.fixture(scope="module")
def small_pair(reference_sam):
    """A reference SAM with a shrunken ViT (320² input: 20×20 tokens, windows padded to 28) and
    our model loaded from its state dict."""
    ref = small_reference_sam(reference_sam, **SMALL)
    ours = ours_from_reference(ref, **SMALL)
    return ref, ours


@pytest.mark.parametrize("arch", ["vit_b", "vit_l", "vit_h"])
def test_state_dict_layout_matches_reference(reference_sam, arch):
    with torch.device("meta"):
        ref = reference_sam.sam_model_registry[arch]()
    ours = build_model(arch, device="meta", seed=None)
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    expected_keys = {"vit_b": 314, "vit_l": 482, "vit_h": 594}[arch]
    assert len(our_shapes) == expected_keys


def test_encoder_matches_reference(small_pair):
    ref, ours = small_pair
    x = torch.randn(2, 3, SMALL["size"], SMALL["size"], generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = ref.image_encoder(x)
        got = ours.image_encoder(x)
    assert got.shape == expected.shape == (2, 256, 20, 20)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_encoder_gradient_path_matches_inference_path(small_pair):
    """The differentiable attention path (training) computes the same function."""
    _, ours = small_pair
    x = torch.randn(1, 3, SMALL["size"], SMALL["size"], generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        fast = ours.image_encoder(x)
    x.requires_grad_(True)
    slow = ours.image_encoder(x)
    slow.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    torch.testing.assert_close(slow.detach(), fast, rtol=1e-4, atol=1e-4)


PROMPTS = {
    "one point": dict(points=[[100, 140]], point_labels=[1]),
    "several points": dict(points=[[100, 140], [40, 30], [190, 260]], point_labels=[1, 0, 1]),
    "box": dict(box=[60, 90, 170, 230]),
    "point and box": dict(points=[[110, 150]], point_labels=[1], box=[60, 90, 170, 230]),
}


def _reference_prediction(reference_sam, ref, image, prompts, multimask, mask_input=None):
    predictor = reference_sam.SamPredictor(ref)
    resized = resize_for_model(image, ref.image_encoder.img_size)
    predictor.set_torch_image(resized, image.shape[:2])
    kwargs = {}
    if "points" in prompts:
        kwargs["point_coords"] = np.asarray(prompts["points"], dtype=float)[:, ::-1]  # → (x, y)
        kwargs["point_labels"] = np.asarray(prompts["point_labels"])
    if "box" in prompts:
        r0, c0, r1, c1 = prompts["box"]
        kwargs["box"] = np.array([c0, r0, c1, r1], dtype=float)
    return predictor.predict(**kwargs, mask_input=mask_input, multimask_output=multimask)


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_predictions_match_reference(reference_sam, small_pair, rng, prompt, multimask):
    ref, ours = small_pair
    image = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    predictor = Predictor(ours)
    predictor.set_image(image)
    got = predictor.predict(**PROMPTS[prompt], multimask=multimask)
    masks, scores, logits = _reference_prediction(
        reference_sam, ref, image, PROMPTS[prompt], multimask
    )
    assert got.masks.shape == masks.shape == ((3 if multimask else 1), 200, 300)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.logits, logits, rtol=1e-3, atol=1e-4)
    # identical masks, up to float rounding for pixels whose logit is within ~1e-5 of 0
    assert (got.masks != masks).mean() < 1e-4
    assert got.masks.any() and not got.masks.all()  # a non-trivial comparison


def test_mask_input_prediction_matches_reference(reference_sam, small_pair, rng):
    ref, ours = small_pair
    image = rng.integers(0, 256, size=(240, 180, 3), dtype=np.uint8)
    predictor = Predictor(ours)
    predictor.set_image(image)
    first = predictor.predict(points=[[120, 90]], point_labels=[1])
    prompt = dict(points=[[120, 90], [30, 40]], point_labels=[1, 0])
    got = predictor.predict(**prompt, mask_input=first.logits[first.best], multimask=False)
    masks, scores, _ = _reference_prediction(
        reference_sam, ref, image, prompt, False, mask_input=first.logits[first.best][None]
    )
    np.testing.assert_allclose(got.scores, scores, rtol=1e-4, atol=1e-5)
    assert (got.masks != masks).mean() < 1e-4


@pytest.mark.slow
def test_full_size_vit_b_encoder_matches_reference(reference_sam):
    """The real vit_b configuration (1024² input, 64×64 tokens, 4 global blocks)."""
    torch.manual_seed(0)
    ref = reference_sam.sam_model_registry["vit_b"]().eval()
    randomise(ref, seed=2)
    ours = model_from_state_dict(ref.state_dict())
    assert ours.architecture == "vit_b"
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = ref.image_encoder(x)
        got = ours.image_encoder(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-4)
