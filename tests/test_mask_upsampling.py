"""MaskUpsampler against SAM's reference post-processing of low-resolution mask logits.

SAM (``Sam.postprocess_masks``) upsamples the logits bilinearly to the padded model input, crops the
padding, resizes bilinearly to the original image size and thresholds. The upsampler must give the
same boolean masks. Pixels may differ only where the value is a rounding error away from the
threshold: PyTorch's float32 ``interpolate`` computes its sample positions in float32, which moves
values by up to ~3e-5 × the logit magnitude (the upsampler's banded matrices are built in float64),
so the tolerance scales with the largest logit. Against a float64 evaluation of the same chain the
upsampler is held to a much tighter tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_segany.inference.embedding import resized_size
from napari_segany.inference.mask_upsampling import MaskUpsampler

#: allowed disagreement with SAM's float32 chain: |value - threshold| <= REF_TOL * logit scale
REF_TOL = 1e-4
#: allowed disagreement with the exact (float64) chain
EXACT_TOL = 1e-5


def reference_values(logits: torch.Tensor, padded: int, input_size, original_size) -> torch.Tensor:
    """SAM's post-processing before thresholding, in the dtype of ``logits``."""
    x = F.interpolate(logits[None], (padded, padded), mode="bilinear", align_corners=False)
    x = x[..., : input_size[0], : input_size[1]]
    return F.interpolate(x, tuple(original_size), mode="bilinear", align_corners=False)[0]


def assert_matches_reference(
    logits: torch.Tensor, padded: int, original_size, threshold: float = 0.0, upsampler=None
) -> torch.Tensor:
    """Check the upsampler against SAM's reference; returns the reference masks."""
    input_size = resized_size(original_size, padded)
    if upsampler is None:
        upsampler = MaskUpsampler(tuple(logits.shape[-2:]), padded, input_size, original_size)
    got = upsampler(logits, threshold)
    assert got.dtype == torch.bool
    assert tuple(got.shape) == (logits.shape[0], *original_size)

    scale = max(1.0, float((logits - threshold).abs().max()))
    ref32 = reference_values(logits.float(), padded, input_size, original_size)
    expected = ref32 > threshold
    differ = got != expected
    near = (ref32 - threshold).abs() <= REF_TOL * scale
    assert not (differ & ~near).any(), (
        f"{int((differ & ~near).sum())} pixels differ from SAM's post-processing away from "
        f"the threshold (original {original_size}, padded {padded})"
    )
    ref64 = reference_values(logits.double(), padded, input_size, original_size)
    near64 = (ref64 - threshold).abs() <= EXACT_TOL * scale
    assert not ((got != (ref64 > threshold)) & ~near64).any()
    return expected


def smooth_logits(seed: int, k: int, low_res: int, scale: float = 10.0, offset: float = -2.0):
    """Blob-shaped logits like a real decoder's: coarse noise upsampled, plus an offset."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, k, max(2, low_res // 16), max(2, low_res // 16), generator=gen)
    fine = F.interpolate(coarse, (low_res, low_res), mode="bicubic", align_corners=False)[0]
    return fine * scale + offset


ORIGINALS = [(1024, 1024), (700, 1024), (1024, 700), (37, 53), (2000, 1500), (300, 300), (1, 3000)]


@pytest.mark.parametrize("original", ORIGINALS, ids=str)
def test_random_logits_match_sam(original):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 256, 256, generator=gen)  # noisy: many edges, many near-zero values
    expected = assert_matches_reference(logits, 1024, original)
    assert expected.any()
    assert not expected.all()


@pytest.mark.parametrize("original", ORIGINALS, ids=str)
def test_smooth_large_logits_match_sam(original):
    logits = smooth_logits(seed=2, k=3, low_res=256, scale=15.0)
    expected = assert_matches_reference(logits, 1024, original)
    assert expected.any()


@pytest.mark.parametrize("original", [(1024, 1024), (700, 1024), (2000, 1500), (300, 300)], ids=str)
@pytest.mark.parametrize(("row", "col"), [(0, 0), (100, 150), (255, 255), (3, 200), (170, 5)])
def test_a_single_positive_logit_matches_sam(original, row, col):
    logits = torch.full((1, 256, 256), -5.0)
    logits[0, row, col] = 8.0
    assert_matches_reference(logits, 1024, original)


def test_a_single_positive_logit_gives_a_small_mask_at_the_right_place():
    logits = torch.full((1, 256, 256), -5.0)
    logits[0, 100, 150] = 8.0
    mask = MaskUpsampler((256, 256), 1024, (1024, 1024), (1024, 1024))(logits)[0].numpy()
    rows, cols = np.nonzero(mask)
    assert 0 < mask.sum() < 64
    # low-res pixel (100, 150) covers rows 400..403 and columns 600..603 of the 1024 input
    assert rows.min() >= 396 and rows.max() <= 407
    assert cols.min() >= 596 and cols.max() <= 607


@pytest.mark.parametrize("original", [(1024, 1024), (700, 1024), (37, 53), (2000, 1500)], ids=str)
@pytest.mark.parametrize(
    "window", [(100, 120, 150, 200), (0, 10, 240, 256), (250, 256, 0, 5), (30, 31, 0, 256)]
)
def test_rectangles_anywhere_match_sam(original, window):
    r0, r1, c0, c1 = window
    logits = torch.full((2, 256, 256), -3.0)
    logits[0, r0:r1, c0:c1] = 3.0
    logits[1, c0 // 2 : c1 // 2 + 1, r0 // 2 : r1 // 2 + 1] = 1.0
    assert_matches_reference(logits, 1024, original)


def test_empty_masks_are_all_false_without_computing_anything(monkeypatch):
    upsampler = MaskUpsampler((256, 256), 1024, (700, 1024), (700, 1024))

    def fail(*args, **kwargs):
        raise AssertionError("an all-negative mask needs no upsampling")

    monkeypatch.setattr(upsampler, "_threshold_window", fail)
    logits = -torch.rand(3, 256, 256) - 0.01
    logits[1] = 0.0  # exactly at the threshold is not foreground
    masks = upsampler(logits)
    assert masks.shape == (3, 700, 1024)
    assert masks.dtype == torch.bool
    assert not masks.any()


def test_positive_logits_only_in_the_padding_give_an_empty_mask():
    # a 700 x 1024 image fills rows 0..174 of the 256 x 256 logits; rows 176.. are padding
    logits = torch.full((1, 256, 256), -4.0)
    logits[0, 200:, :] = 6.0
    expected = assert_matches_reference(logits, 1024, (700, 1024))
    assert not expected.any()


@pytest.mark.parametrize("original", [(1024, 1024), (700, 1024), (37, 53), (2000, 1500)], ids=str)
def test_full_masks_are_all_true(original):
    logits = torch.full((2, 256, 256), 0.5)
    logits[1] = 12.0
    masks = MaskUpsampler((256, 256), 1024, resized_size(original, 1024), original)(logits)
    assert masks.shape == (2, *original)
    assert masks.all()


@pytest.mark.parametrize("threshold", [-1.0, 0.5, 2.0])
def test_other_thresholds_match_sam(threshold):
    logits = smooth_logits(seed=3, k=2, low_res=256, scale=4.0, offset=0.0)
    expected = assert_matches_reference(logits, 1024, (640, 480), threshold=threshold)
    assert expected.any()
    assert not expected.all()


def test_masks_of_a_batch_are_independent():
    logits = smooth_logits(seed=4, k=3, low_res=256)
    logits[1] = -1.0  # one empty mask in the middle
    upsampler = MaskUpsampler((256, 256), 1024, (768, 1024), (600, 800))
    together = upsampler(logits)
    for k in range(3):
        torch.testing.assert_close(together[k : k + 1], upsampler(logits[k : k + 1]))
    assert not together[1].any()


def test_the_upsampler_can_be_reused_and_is_deterministic():
    upsampler = MaskUpsampler((256, 256), 1024, (1024, 768), (1333, 1000))
    first = smooth_logits(seed=5, k=1, low_res=256)
    second = smooth_logits(seed=6, k=1, low_res=256)
    a = upsampler(first)
    assert_matches_reference(second, 1024, (1333, 1000), upsampler=upsampler)
    assert torch.equal(upsampler(first), a)


def test_half_precision_logits_are_accepted():
    logits = smooth_logits(seed=7, k=2, low_res=256).to(torch.bfloat16)
    upsampler = MaskUpsampler((256, 256), 1024, (1024, 1024), (512, 512))
    masks = upsampler(logits)
    assert masks.dtype == torch.bool
    torch.testing.assert_close(masks, upsampler(logits.float()))


# -- small models: 64 x 64 logits over a 256 x 256 input -------------------------------------------
@pytest.mark.parametrize(
    "original", [(256, 256), (100, 200), (37, 53), (1000, 700), (5, 900)], ids=str
)
def test_small_model_logits_match_sam(original):
    logits = torch.cat(
        [smooth_logits(seed=8, k=2, low_res=64), torch.randn(1, 64, 64) * 3],
    )
    logits[1] = -2.0
    logits[1, 20:25, 30:40] = 2.0  # a small object away from the origin
    assert_matches_reference(logits, 256, original)


# -- properties ---------------------------------------------------------------------------------
@st.composite
def cases(draw):
    padded, low = draw(st.sampled_from([(256, 64), (1024, 256)]))
    h = draw(st.integers(1, 1500))
    w = draw(st.integers(1, 1500))
    kind = draw(st.sampled_from(["smooth", "noise", "rectangle", "single"]))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    if kind == "smooth":
        logits = smooth_logits(seed, 1, low, scale=draw(st.floats(0.5, 30.0)))
    elif kind == "noise":
        logits = torch.randn(1, low, low, generator=gen) * draw(st.floats(0.1, 10.0))
    else:
        r0 = draw(st.integers(0, low - 1))
        c0 = draw(st.integers(0, low - 1))
        r1 = r0 + (1 if kind == "single" else draw(st.integers(1, low - r0)))
        c1 = c0 + (1 if kind == "single" else draw(st.integers(1, low - c0)))
        logits = torch.full((1, low, low), -draw(st.floats(0.1, 20.0)))
        logits[0, r0:r1, c0:c1] = draw(st.floats(0.1, 20.0))
    threshold = draw(st.sampled_from([0.0, 0.0, 0.5, -0.5]))
    return logits, padded, (h, w), threshold


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_any_size_and_logits_match_sam(case):
    logits, padded, original, threshold = case
    assert_matches_reference(logits, padded, original, threshold)
