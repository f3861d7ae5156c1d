"""An image, or the part of it under a click, without signal gives no object, and says why."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany.inference.predictor import NO_SIGNAL, Predictor
from napari_segany.tiled.session import NO_SIGNAL_HERE, NO_SIGNAL_IMAGE, SegmentationSession


def _assert_empty(prediction, count: int, shape, model) -> None:
    assert prediction.masks.shape == (count, *shape) and not prediction.masks.any()
    assert prediction.masks.dtype == bool
    np.testing.assert_array_equal(prediction.scores, np.zeros(count))
    logits_shape = (count, *model.prompt_encoder.mask_input_size)
    assert prediction.logits.shape == logits_shape and (prediction.logits < 0).all()


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((120, 90), np.uint16),
        np.full((120, 90), 42.0),
        np.zeros((120, 90, 3), np.uint8),
        np.full((120, 90, 3), 200, np.uint8),  # constant colour, passed through unchanged
    ],
    ids=["zeros", "constant", "rgb-zeros", "rgb-constant"],
)
def test_predictor_on_a_constant_image_answers_nothing(random_cells_model, image):
    predictor = Predictor(random_cells_model)
    predictor.set_image(image)
    assert not predictor.has_signal()
    for multimask, count in ((True, 3), (False, 1)):
        result = predictor.predict(points=[[60, 45]], multimask=multimask)
        _assert_empty(result, count, (120, 90), random_cells_model)
        assert result.reason == NO_SIGNAL and result.best == 0
    box = predictor.predict(box=[10, 10, 80, 70])
    assert box.reason == NO_SIGNAL and not box.masks.any()


def test_predictor_on_an_image_with_signal_has_no_reason(random_cells_model, noise_image):
    predictor = Predictor(random_cells_model)
    predictor.set_image(noise_image)
    assert predictor.has_signal()
    assert predictor.predict(points=[[60, 45]]).reason is None


def test_the_embedded_model_draws_no_phantom_on_zeros(embedded_model):
    """It used to answer a click on an all-zero image with a 65 px mask (scores ~0.4)."""
    zeros = np.zeros((512, 512), np.uint16)
    session = SegmentationSession(zeros, embedded_model)
    assert not session.has_signal
    result = session.predict(points=[[256, 256]])
    _assert_empty(result, 3, (512, 512), embedded_model)
    assert result.reason == NO_SIGNAL_IMAGE
    assert not session.is_encoded(), "nothing is encoded to answer it"

    from napari_segany.automatic import segment

    assert segment(zeros, embedded_model).count == 0


def test_session_on_an_empty_image_answers_without_encoding(random_cells_model):
    session = SegmentationSession(np.zeros((400, 300), np.float32), random_cells_model)
    assert len(session.grid) > 1 and not session.has_signal
    result = session.predict(points=[[390, 10]], multimask=False)
    assert result.reason == NO_SIGNAL_IMAGE and not result.masks.any()
    tile = session.grid.tile_at(390, 10)
    assert result.region() == tile.outer
    assert not session.is_encoded(tile.outer)


def test_a_constant_tile_of_a_big_image_is_empty_there_only(random_cells_model, rng):
    image = rng.integers(0, 4000, size=(400, 400), dtype=np.uint16)
    session = SegmentationSession(image, random_cells_model)
    # a tile whose whole outer region (what the model sees of it) is made constant
    tile = session.grid.tile_at(399, 399)
    image[tile.outer] = 0
    session = SegmentationSession(image, random_cells_model)
    assert session.has_signal
    inside = tile.outer[0].start + 20, tile.outer[1].start + 20
    empty = session.predict(points=[inside])
    assert empty.reason == NO_SIGNAL_HERE and not empty.masks.any()
    assert not empty.scores.any()
    elsewhere = session.predict(points=[[20, 20]])
    assert elsewhere.reason is None and elsewhere.scores.max() > 0
    # and a click there again, after one elsewhere, is still empty
    assert session.predict(points=[inside], previous=elsewhere).reason == NO_SIGNAL_HERE
