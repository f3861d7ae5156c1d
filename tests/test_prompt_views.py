"""Prompts decoded on zoomed and mirrored views of the image around them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import Predictor, build_model
from napari_segany.geometry import Rect
from napari_segany.inference.prompt_views import (
    VIEW_MARGIN,
    VIEW_SETS,
    MaskInput,
    _view_to_image,
    frame_logits_on_image,
    view_crop,
)
from napari_segany.synthetic import generate_nuclei

#: Side of a view's input for the embedded model (its 16-token decoder window).
VIEW_INPUT = 256


def _crop(extent, zoom, shape):
    """view_crop as (row0, col0, rows, cols), or None."""
    rect = view_crop(extent, zoom, shape, VIEW_INPUT)
    return None if rect is None else (rect.row0, rect.col0, rect.rows, rect.cols)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


# -- geometry -----------------------------------------------------------------------------------
def test_crop_is_centred_on_the_prompts_and_zoomed_to_the_input_size():
    r0, c0, rows, cols = _crop((100, 200, 110, 220), 2.0, (512, 512))
    assert (rows, cols) == (VIEW_INPUT // 2, VIEW_INPUT // 2)
    assert abs((r0 + rows / 2) - 105.5) <= 1 and abs((c0 + cols / 2) - 210.5) <= 1


def test_crop_moves_inside_the_image_and_shrinks_to_small_images():
    assert _crop((2, 3, 10, 12), 1.5, (512, 400))[:2] == (0, 0)
    r0, c0, rows, cols = _crop((500, 390, 505, 395), 1.5, (512, 400))
    assert (r0 + rows, c0 + cols) == (512, 400)
    assert _crop((10, 10, 20, 20), 2.0, (60, 40)) == (0, 0, 60, 40)


def test_no_crop_when_the_object_does_not_fit_at_that_zoom():
    fits = (VIEW_INPUT - 2 * VIEW_MARGIN) // 2  # pixels a side at zoom 2
    assert _crop((0, 0, fits - 1, 10), 2.0, (512, 512)) is not None
    assert _crop((0, 0, fits + 1, 10), 2.0, (512, 512)) is None
    assert _crop((0, 0, fits + 1, 10), 1.0, (512, 512)) is not None


def _ramp(k: int = 1) -> torch.Tensor:
    """Low-res logits over the view frame whose value is each pixel's x (frame pixels)."""
    x = (torch.arange(VIEW_INPUT // 4, dtype=torch.float32) + 0.5) * 4
    return x.expand(k, VIEW_INPUT // 4, -1).clone()


@pytest.mark.parametrize("mirror", [False, True])
def test_view_logits_land_on_the_image_pixels_they_were_decoded_for(mirror):
    # crop of 100 x 120 image pixels zoomed 2x: image column c is frame x = 2 (c + 0.5)
    crop, scale, zoomed = Rect.from_size(30, 40, 100, 120), (2.0, 2.0), (200, 240)
    got = _view_to_image(_ramp(), crop, scale, zoomed, mirror, VIEW_INPUT)[0]
    cols = np.arange(120)
    want = 2 * (cols + 0.5)
    if mirror:
        want = 240 - want
    inner = slice(5, 115)  # away from the frame edge, where bilinear sampling clamps
    np.testing.assert_allclose(got[50, inner], want[inner], atol=1e-4)
    assert np.ptp(got[:, 60]) < 1e-5  # constant along rows


def test_frame_logits_are_sampled_at_image_pixel_centres():
    low_res = _ramp(2) * 4  # frame of 1024 = 4 x the view frame: value = frame x
    got = frame_logits_on_image(
        low_res, Rect.from_size(10, 300, 5, 50), (512, 512), (512, 512), 1024
    )
    assert got.shape == (2, 5, 50)
    np.testing.assert_allclose(got[1, 2], np.arange(300, 350) + 0.5, atol=1e-3)


# -- predictor ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_nuclei_256():
    """Small synthetic nuclei (radius 5-12 px): uint16 image, uint32 labels, both ``(256, 256)``."""
    image, labels = generate_nuclei((256, 256), n_objects=14, radius_range=(5, 12), seed=3)
    return image, labels


def test_the_embedded_model_uses_six_views_and_sam_one(embedded_model):
    assert Predictor(embedded_model).prompt_views == 6
    sam = build_model("vit_t", img_size=64)
    assert Predictor(sam).prompt_views == 1
    with pytest.raises(ValueError, match="supports only prompt_views=1"):
        Predictor(sam, prompt_views=3)
    with pytest.raises(ValueError, match="prompt_views must be one of"):
        Predictor(embedded_model, prompt_views=4)


@pytest.mark.parametrize("views", sorted(VIEW_SETS))
def test_every_view_set_segments_small_nuclei(embedded_model, small_nuclei_256, views):
    image, labels = small_nuclei_256
    predictor = Predictor(embedded_model, prompt_views=views)
    predictor.set_image(image)
    boxes, clicks = [], []
    for obj in np.unique(labels)[1:]:
        truth = labels == obj
        rows, cols = np.nonzero(truth)
        box = [rows.min(), cols.min(), rows.max(), cols.max()]
        boxes.append(_iou(predictor.predict(box=box, multimask=False).masks[0], truth))
        result = predictor.predict(points=[[rows.mean(), cols.mean()]])
        clicks.append(_iou(result.masks[result.best], truth))
    assert np.mean(boxes) > 0.75 and np.mean(clicks) > 0.7


def test_views_change_only_pixels_near_the_prompt(embedded_model, small_nuclei_256):
    image, labels = small_nuclei_256
    one, six = Predictor(embedded_model, prompt_views=1), Predictor(embedded_model, prompt_views=6)
    one.set_image(image)
    six.set_image(image)
    rows, cols = np.nonzero(labels == 1)
    box = [rows.min(), cols.min(), rows.max(), cols.max()]
    a = one.predict(box=box, multimask=False)
    b = six.predict(box=box, multimask=False)
    np.testing.assert_array_equal(a.logits, b.logits)  # refinement starts from the same logits
    differs = np.nonzero(a.masks[0] != b.masks[0])
    assert differs[0].size > 0  # the views refine the mask (11 pixels here)
    centre = np.array([rows.mean(), cols.mean()])
    assert np.abs(np.stack(differs, 1) - centre).max() <= VIEW_INPUT
    assert _iou(b.masks[0], labels == 1) > 0.7


def test_an_embedding_without_pixels_decodes_on_the_embedding_only(
    embedded_model, small_nuclei_256
):
    image, _ = small_nuclei_256
    six = Predictor(embedded_model, prompt_views=6)
    six.set_image(image)
    one = Predictor(embedded_model, prompt_views=1)
    one.set_image(image)
    bare = Predictor(embedded_model, prompt_views=6)
    bare.set_embedding(six.get_embedding())
    box = [40, 40, 70, 75]
    np.testing.assert_array_equal(bare.predict(box=box).masks, one.predict(box=box).masks)


@pytest.mark.parametrize("mirror", [False, True])
def test_a_mask_prompt_is_resampled_into_each_view(mirror):
    frame_x = (torch.arange(256, dtype=torch.float32) + 0.5) * 4  # logits = frame x, 1024 frame
    mask = MaskInput(frame_x.expand(1, 256, -1).clone(), (1.0, 1.0), 1024)
    crop, scale, zoomed = Rect.from_size(100, 300, 128, 100), (2.0, 2.0), (256, 200)
    got = mask.in_view(crop, scale, zoomed, mirror, VIEW_INPUT)[0]
    assert got.shape == (VIEW_INPUT // 4, VIEW_INPUT // 4)
    zoomed_x = np.arange(VIEW_INPUT // 4) * 4 + 2.0  # view mask pixel centres
    if mirror:
        zoomed_x = 200 - zoomed_x
    np.testing.assert_allclose(got[10].numpy(), zoomed_x / 2 + 300, atol=1e-3)


def test_refining_with_a_mask_prompt_uses_the_views_too(
    embedded_model, small_nuclei_256, monkeypatch
):
    image, labels = small_nuclei_256
    predictor = Predictor(embedded_model, prompt_views=6)
    predictor.set_image(image)
    rows, cols = np.nonzero(labels == 2)
    click = [rows.mean(), cols.mean()]
    first = predictor.predict(points=[click], multimask=False)
    import napari_segany.inference.prompt_views as pv

    seen = []
    decode = pv.decode_views
    monkeypatch.setattr(pv, "decode_views", lambda *a, **k: seen.append(a[-1]) or decode(*a, **k))
    again = predictor.predict(points=[click], mask_input=first.logits[0], multimask=False)
    assert isinstance(seen[0], MaskInput)
    assert _iou(again.masks[0], labels == 2) > 0.7


def test_a_tiled_session_reads_each_view_from_the_prompted_window(embedded_model):
    from napari_segany.tiled.session import SegmentationSession

    image, labels = generate_nuclei((520, 560), n_objects=40, radius_range=(5, 10), seed=8)
    session = SegmentationSession(image, embedded_model, tile_size=256)
    assert len(session.grid) > 4 and session.prompt_views == 6
    far = [o for o in np.unique(labels)[1:] if (np.argwhere(labels == o) > 300).all()][:4]
    assert far
    for obj in far:
        truth = labels == obj
        rows, cols = np.nonzero(truth)
        box = [rows.min(), cols.min(), rows.max(), cols.max()]
        ious = []
        for views in (1, 6):
            result = session.predict(box=box, multimask=False, prompt_views=views)
            assert result.offset != (0, 0)  # decoded on a window away from the image origin
            full = np.zeros(labels.shape, bool)
            full[result.region()] = result.masks[0]
            ious.append(_iou(full, truth))
        assert ious[1] > 0.7 and ious[1] >= ious[0] - 0.05
