"""The interactive Predictor on small randomly initialised models (no weights needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from napari_segany import Prediction, Predictor, build_model
from napari_segany.image.prep import intensity_range, to_rgb_uint8
from napari_segany.inference.embedding import ImageEmbedding, resize_for_model, resized_size
from napari_segany.models.architectures import Architecture
from napari_segany.synthetic import generate_nuclei

SIZE = 256  # model input side: 16 x 16 embedding grid, 64 x 64 logits
LOW_RES = (64, 64)


def _tiny(name: str, img_size: int = SIZE) -> Architecture:
    encoder = {"embed_dim": 64, "depth": 2, "num_heads": 2, "global_attn_indexes": (1,)}
    return Architecture(name, "vit", encoder, img_size=img_size)


@pytest.fixture(scope="module")
def model():
    return build_model(_tiny("tiny_test"))


@pytest.fixture(scope="module")
def other_model():
    """Same embedding shape as ``model``, different architecture."""
    return build_model(_tiny("tiny_other"), seed=1)


@pytest.fixture(scope="module")
def small_input_model():
    """Same architecture name as ``model``, smaller input: a different embedding shape."""
    return build_model(_tiny("tiny_test", img_size=128))


@pytest.fixture(scope="module")
def nuclei_120x160():
    """Synthetic nuclei: uint16 image and uint32 labels, both ``(120, 160)``, 8 nuclei placed."""
    image, labels = generate_nuclei((120, 160), n_objects=8, seed=1)
    return image, labels


@pytest.fixture
def predictor(model, nuclei_120x160):
    p = Predictor(model)
    p.set_image(nuclei_120x160[0])
    return p


def _assert_prediction(pred: Prediction, k: int, shape: tuple[int, int]) -> None:
    assert isinstance(pred, Prediction)
    assert isinstance(pred.masks, np.ndarray)
    assert pred.masks.dtype == np.bool_
    assert pred.masks.shape == (k, *shape)
    assert pred.scores.dtype == np.float32
    assert pred.scores.shape == (k,)
    assert pred.logits.dtype == np.float32
    assert pred.logits.shape == (k, *LOW_RES)
    assert np.all(np.isfinite(pred.scores))
    assert np.all(np.isfinite(pred.logits))


def _assert_same(a: Prediction, b: Prediction) -> None:
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.logits, b.logits)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# -- images -------------------------------------------------------------------------------------
def test_grayscale_uint16_image(predictor, nuclei_120x160):
    pred = predictor.predict(points=[[60, 80]], point_labels=[1])
    _assert_prediction(pred, 3, nuclei_120x160[0].shape)
    emb = predictor.get_embedding()
    assert emb.original_size == (120, 160)
    assert emb.input_size == (192, 256)
    assert emb.architecture == "tiny_test"
    assert tuple(emb.features.shape) == (1, 256, 16, 16)
    assert emb.features.dtype == torch.float32


def test_rgb_uint8_image(model, rng):
    image = rng.integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    p = Predictor(model)
    p.set_image(image)
    _assert_prediction(p.predict(points=[[10, 60]]), 3, (90, 70))
    assert p.get_embedding().input_size == (256, 199)
    # 8-bit RGB reaches the model exactly as given
    q = Predictor(model)
    q.set_rgb_image(image)
    torch.testing.assert_close(p.get_embedding().features, q.get_embedding().features)


@pytest.mark.parametrize("channels", [2, 3])
def test_multichannel_image_with_channel_axis(model, rng, channels):
    image = rng.uniform(0, 4000, size=(channels, 50, 64)).astype(np.float32)
    p = Predictor(model)
    p.set_image(image, channel_axis=0)
    _assert_prediction(p.predict(box=[5, 5, 40, 60]), 3, (50, 64))
    q = Predictor(model)
    q.set_rgb_image(to_rgb_uint8(image, channel_axis=0))
    torch.testing.assert_close(p.get_embedding().features, q.get_embedding().features)


def test_more_than_three_channels_warn(model, rng):
    image = rng.uniform(0, 1, size=(40, 40, 5))
    p = Predictor(model)
    with pytest.warns(UserWarning, match="5 channels"):
        p.set_image(image, channel_axis=2)
    _assert_prediction(p.predict(points=[[20, 20]]), 3, (40, 40))


def test_ambiguous_multichannel_image_is_rejected(model, rng):
    with pytest.raises(ValueError, match="channel_axis"):
        Predictor(model).set_image(rng.uniform(size=(5, 40, 40)))


def test_tile_with_whole_image_ranges_is_encoded_like_the_whole_image_scaling(
    model, nuclei_120x160
):
    image = nuclei_120x160[0]
    ranges = intensity_range(image)
    tile = image[20:100, 30:130]
    p = Predictor(model)
    p.set_image(tile, ranges=ranges)
    q = Predictor(model)
    q.set_rgb_image(to_rgb_uint8(image, ranges=ranges)[20:100, 30:130])
    torch.testing.assert_close(p.get_embedding().features, q.get_embedding().features)


@pytest.mark.parametrize(
    ("shape", "channel_axis"),
    [((0, 10), None), ((10, 0), None), ((0, 0), None), ((0, 10, 3), None), ((3, 0, 10), 0)],
)
def test_empty_image_is_rejected(model, shape, channel_axis):
    with pytest.raises(ValueError, match="empty image"):
        Predictor(model).set_image(np.zeros(shape, dtype=np.uint8), channel_axis=channel_axis)


@pytest.mark.parametrize(
    "rgb",
    [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint16), np.zeros((8, 8, 4), np.uint8)],
)
def test_set_rgb_image_needs_uint8_rgb(model, rgb):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        Predictor(model).set_rgb_image(rgb)


@pytest.mark.parametrize("shape", [(1, 600), (600, 1), (1, 1), (2, 3000)])
def test_extremely_elongated_and_tiny_images_work(model, shape):
    p = Predictor(model)
    p.set_image(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
    pred = p.predict(points=[[0, 0]], multimask=False)
    _assert_prediction(pred, 1, shape)


# -- prompts ------------------------------------------------------------------------------------
def test_multimask_false_gives_one_mask(predictor):
    pred = predictor.predict(points=[[60, 80]], multimask=False)
    _assert_prediction(pred, 1, (120, 160))
    assert pred.best == 0


def test_box_and_points_together(predictor):
    pred = predictor.predict(
        points=[[60, 80], [10, 10]], point_labels=[1, 0], box=[40, 50, 90, 130]
    )
    _assert_prediction(pred, 3, (120, 160))


def test_box_corner_order_does_not_matter(predictor):
    a = predictor.predict(box=[40, 50, 90, 130])
    b = predictor.predict(box=[90, 130, 40, 50])
    c = predictor.predict(box=[40, 130, 90, 50])
    _assert_same(a, b)
    _assert_same(a, c)


def test_prompts_reach_the_model_as_x_y_in_the_resized_frame(model, monkeypatch, rng):
    p = Predictor(model)
    p.set_image(rng.uniform(size=(100, 200)))  # resized to 128 x 256
    seen = {}
    decode = model.decode

    def spy(embedding, points=None, labels=None, boxes=None, *args, **kwargs):
        seen.update(points=points, labels=labels, boxes=boxes)
        return decode(embedding, points, labels, boxes, *args, **kwargs)

    monkeypatch.setattr(model, "decode", spy)
    p.predict(points=[[10, 30], [99, 0]], point_labels=[1, 0], box=[60, 150, 10, 30])
    # x = col * 256 / 200, y = row * 128 / 100
    torch.testing.assert_close(seen["points"], torch.tensor([[[38.4, 12.8], [0.0, 126.72]]]))
    torch.testing.assert_close(seen["labels"], torch.tensor([[1, 0]]))
    torch.testing.assert_close(seen["boxes"], torch.tensor([[38.4, 12.8, 192.0, 76.8]]))


def test_background_point_changes_the_result(predictor):
    a = predictor.predict(points=[[60, 80]], point_labels=[1])
    b = predictor.predict(points=[[60, 80]], point_labels=[0])
    assert not np.array_equal(a.logits, b.logits)


def test_predictions_are_deterministic(predictor, model, nuclei_120x160):
    prompt = {"points": [[60, 80], [100, 20]], "point_labels": [1, 0], "box": [30, 40, 100, 150]}
    first = predictor.predict(**prompt)
    _assert_same(first, predictor.predict(**prompt))
    # a fresh predictor encoding the same image gives the same again
    other = Predictor(model)
    other.set_image(nuclei_120x160[0])
    torch.testing.assert_close(
        other.get_embedding().features, predictor.get_embedding().features, rtol=0, atol=0
    )
    _assert_same(first, other.predict(**prompt))


def test_masks_are_the_thresholded_upsampled_logits(predictor):
    pred = predictor.predict(points=[[60, 80]])
    emb = predictor.get_embedding()
    x = _bilinear(torch.from_numpy(pred.logits)[None], (SIZE, SIZE))
    x = x[..., : emb.input_size[0], : emb.input_size[1]]
    values = _bilinear(x, emb.original_size)[0].numpy()
    near = np.abs(values) <= 1e-4 * max(1.0, float(np.abs(pred.logits).max()))
    assert not ((pred.masks != (values > 0)) & ~near).any()


def _bilinear(x: torch.Tensor, size) -> torch.Tensor:
    return torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=False)


def test_best_is_the_highest_score():
    pred = Prediction(
        masks=np.zeros((3, 2, 2), bool),
        scores=np.array([0.1, 0.9, 0.3], np.float32),
        logits=np.zeros((3, 4, 4), np.float32),
    )
    assert pred.best == 1
    assert isinstance(pred.best, int)


def test_best_of_a_real_prediction(predictor):
    pred = predictor.predict(points=[[60, 80]])
    assert pred.best == int(np.argmax(pred.scores))
    assert pred.scores[pred.best] == pred.scores.max()


def test_mask_input_refines_the_prediction(predictor):
    first = predictor.predict(points=[[60, 80]])
    low_res = first.logits[first.best]
    assert low_res.shape == LOW_RES
    refined = predictor.predict(points=[[60, 80]], mask_input=low_res, multimask=False)
    _assert_prediction(refined, 1, (120, 160))
    plain = predictor.predict(points=[[60, 80]], multimask=False)
    assert not np.array_equal(refined.logits, plain.logits)  # the mask was used
    # a leading axis of 1 is accepted too, with the same result
    _assert_same(
        refined, predictor.predict(points=[[60, 80]], mask_input=low_res[None], multimask=False)
    )


def test_mask_input_alone_is_a_prompt(predictor):
    first = predictor.predict(points=[[60, 80]])
    pred = predictor.predict(mask_input=first.logits[0], multimask=False)
    _assert_prediction(pred, 1, (120, 160))


@pytest.mark.parametrize("shape", [(256, 256), (1, 1, 64, 64), (2, 64, 64), (64,), (64, 65)])
def test_mask_input_of_the_wrong_shape_is_rejected(predictor, shape):
    with pytest.raises(
        ValueError, match=r"mask_input must be low-resolution logits of shape"
    ) as info:
        predictor.predict(points=[[60, 80]], mask_input=np.zeros(shape, np.float32))
    assert str(shape) in str(info.value)
    assert "(64, 64)" in str(info.value)


def test_no_prompt_is_rejected(predictor):
    with pytest.raises(ValueError, match="at least one prompt"):
        predictor.predict()


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [
        ({"points": [[125, 10]]}, "125.0"),
        ({"points": [[10, 160]]}, "160.0"),
        ({"points": [[-3, 10]]}, "-3.0"),
        ({"box": [10, 10, 130, 50]}, "130.0"),
    ],
)
def test_prompts_outside_the_image_are_rejected_naming_the_value(predictor, prompt, shown):
    with pytest.raises(ValueError, match="outside the image") as info:
        predictor.predict(**prompt)
    assert shown in str(info.value)
    assert "(120, 160)" in str(info.value)


@pytest.mark.parametrize("labels", [[2], [-1]])
def test_invalid_labels_are_rejected(predictor, labels):
    with pytest.raises(ValueError, match="point_labels"):
        predictor.predict(points=[[60, 80]], point_labels=labels)


def test_predict_before_set_image_is_a_helpful_error(model):
    p = Predictor(model)
    with pytest.raises(RuntimeError, match=r"set_image"):
        p.predict(points=[[1, 1]])
    with pytest.raises(RuntimeError, match=r"set_image"):
        p.get_embedding()


def test_reset_image_forgets_the_image(predictor):
    predictor.predict(points=[[60, 80]])
    predictor.reset_image()
    with pytest.raises(RuntimeError, match="No image is set"):
        predictor.predict(points=[[60, 80]])
    with pytest.raises(RuntimeError, match="No image is set"):
        predictor.get_embedding()


def test_a_new_image_replaces_the_old_one(model, nuclei_120x160, rng):
    p = Predictor(model)
    p.set_image(nuclei_120x160[0])
    before = p.predict(points=[[10, 10]])
    p.set_image(rng.uniform(size=(40, 30)))
    after = p.predict(points=[[10, 10]])
    _assert_prediction(after, 3, (40, 30))
    with pytest.raises(ValueError, match="outside the image"):
        p.predict(points=[[100, 100]])  # fine on the first image, outside the second
    p.set_image(nuclei_120x160[0])
    _assert_same(before, p.predict(points=[[10, 10]]))


# -- embeddings ---------------------------------------------------------------------------------
def test_embedding_round_trip_gives_identical_predictions_without_encoding(
    predictor, model, monkeypatch
):
    prompts = [
        {"points": [[60, 80]]},
        {"points": [[60, 80], [5, 150]], "point_labels": [1, 0], "multimask": False},
        {"box": [30, 40, 100, 150]},
    ]
    expected = [predictor.predict(**prompt) for prompt in prompts]
    embedding = predictor.get_embedding()
    assert isinstance(embedding, ImageEmbedding)

    # as if cached on disk and loaded in another session
    buffer = io.BytesIO()
    torch.save(embedding.features, buffer)
    buffer.seek(0)
    restored = ImageEmbedding(
        features=torch.load(buffer),
        original_size=list(embedding.original_size),
        input_size=list(embedding.input_size),
        architecture=embedding.architecture,
    )

    def no_encoding(*args, **kwargs):
        raise AssertionError("the image encoder must not run")

    monkeypatch.setattr(model.image_encoder, "forward", no_encoding)
    with pytest.raises(AssertionError, match="must not run"):  # the patch is effective
        Predictor(model).set_image(np.zeros((8, 8)))

    fresh = Predictor(model)
    fresh.set_embedding(restored)
    assert fresh.get_embedding().original_size == (120, 160)
    for prompt, want in zip(prompts, expected, strict=True):
        _assert_same(want, fresh.predict(**prompt))
    # refining with mask_input works from an embedding too
    refined = fresh.predict(points=[[60, 80]], mask_input=expected[0].logits[0], multimask=False)
    _assert_same(
        predictor.predict(points=[[60, 80]], mask_input=expected[0].logits[0], multimask=False),
        refined,
    )


def test_embedding_prompts_are_checked_against_the_embedded_image_size(predictor, model):
    fresh = Predictor(model)
    fresh.set_embedding(predictor.get_embedding())
    with pytest.raises(ValueError, match="outside the image"):
        fresh.predict(points=[[125, 10]])


def test_embedding_of_another_architecture_is_rejected(predictor, other_model):
    embedding = predictor.get_embedding()
    with pytest.raises(ValueError, match="tiny_test") as info:
        Predictor(other_model).set_embedding(embedding)
    assert "tiny_other" in str(info.value)


def test_embedding_of_the_wrong_shape_is_rejected(predictor, small_input_model):
    with pytest.raises(ValueError, match=r"\(1, 256, 16, 16\)") as info:
        Predictor(small_input_model).set_embedding(predictor.get_embedding())
    assert "(1, 256, 8, 8)" in str(info.value)


@pytest.mark.parametrize("shape", [(256, 16, 16), (1, 128, 16, 16), (1, 256, 16, 15)])
def test_hand_made_embedding_of_the_wrong_shape_is_rejected(model, shape):
    embedding = ImageEmbedding(torch.zeros(shape), (100, 100), (256, 256), "tiny_test")
    with pytest.raises(ValueError, match="embedding features have shape"):
        Predictor(model).set_embedding(embedding)


def test_embedding_with_inconsistent_sizes_is_rejected(model):
    # a 100×100 image is resized to 256×256 for this model, not 256×128
    embedding = ImageEmbedding(torch.zeros(1, 256, 16, 16), (100, 100), (256, 128), "tiny_test")
    with pytest.raises(ValueError, match=r"does not match its original_size \(100, 100\)"):
        Predictor(model).set_embedding(embedding)


def test_rejected_embedding_keeps_the_current_image(predictor, other_model, model):
    p = Predictor(model)
    p.set_embedding(predictor.get_embedding())
    bad = ImageEmbedding(torch.zeros(1, 256, 8, 8), (10, 10), (256, 256), "tiny_test")
    with pytest.raises(ValueError):
        p.set_embedding(bad)
    _assert_same(predictor.predict(points=[[60, 80]]), p.predict(points=[[60, 80]]))


# -- precision ----------------------------------------------------------------------------------
def test_bf16_runs_and_agrees_with_fp32(model, nuclei_120x160):
    fp32 = Predictor(model, precision="fp32")
    bf16 = Predictor(model, precision="bf16")
    fp32.set_image(nuclei_120x160[0])
    bf16.set_image(nuclei_120x160[0])
    assert bf16.get_embedding().features.dtype == torch.float32
    a, b = fp32.get_embedding().features, bf16.get_embedding().features
    assert float((a - b).norm() / a.norm()) < 0.03  # bf16 has ~3 significant digits
    ious = []
    for point in ([60, 80], [10, 10], [110, 150], [30, 140]):
        pa, pb = fp32.predict(points=[point]), bf16.predict(points=[point])
        _assert_prediction(pb, 3, (120, 160))
        np.testing.assert_allclose(pb.scores, pa.scores, atol=5e-3)
        ious += [_iou(pa.masks[k], pb.masks[k]) for k in range(3)]
    # masks that are not trivially empty or full: the comparison means something
    assert 0.05 < pa.masks.mean() < 0.95
    assert min(ious) >= 0.95
    assert np.mean(ious) >= 0.98


@pytest.mark.parametrize("precision", ["fp16", "float32", "BF16", "", None])
def test_invalid_precision_is_rejected(model, precision):
    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor(model, precision=precision)


# -- resizing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("original", "target", "expected"),
    [
        ((1024, 1024), 1024, (1024, 1024)),
        ((700, 1024), 1024, (700, 1024)),
        ((100, 200), 1024, (512, 1024)),
        ((120, 160), 256, (192, 256)),
        ((2000, 1500), 1024, (1024, 768)),
        ((37, 53), 1024, (715, 1024)),  # 37 * 1024/53 = 714.87 -> 715
        ((1, 2), 5, (3, 5)),  # 2.5 rounds up (int(x + 0.5)), not to even
        ((3, 2), 5, (5, 3)),  # 3.33 rounds down
        ((5, 7), 3, (2, 3)),  # 2.14 rounds down
    ],
)
def test_resized_size_rounds_like_sam(original, target, expected):
    assert resized_size(original, target) == expected


def test_resized_size_matches_the_reference(reference_sam):
    from segment_anything.utils.transforms import ResizeLongestSide

    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 5000, size=(300, 2)):
        for target in (256, 1024):
            ref = ResizeLongestSide.get_preprocess_shape(int(h), int(w), target)
            assert resized_size((int(h), int(w)), target) == tuple(max(1, v) for v in ref)


def test_resized_size_never_returns_zero():
    assert resized_size((1, 3000), 1024) == (1, 1024)
    assert resized_size((5000, 1), 256) == (256, 1)


def test_resize_for_model_returns_integer_valued_floats(rng):
    rgb = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    x = resize_for_model(rgb, 256)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (1, 3, 192, 256)
    assert torch.equal(x, x.round())
    assert x.min() >= 0
    assert x.max() <= 255
    assert x.max() > 200  # not squeezed


def test_resize_for_model_downscales_with_integer_values(rng):
    rgb = rng.integers(0, 256, size=(500, 300, 3), dtype=np.uint8)
    x = resize_for_model(rgb, 256)
    assert tuple(x.shape) == (1, 3, 256, 154)
    assert torch.equal(x, x.round())
    assert float(x.min()) >= 0 and float(x.max()) <= 255
    # antialiased: the mean brightness of noise is kept
    assert abs(float(x.mean()) - rgb.mean()) < 2


def test_resize_for_model_keeps_an_image_of_the_right_size_exactly(rng):
    rgb = rng.integers(0, 256, size=(256, 100, 3), dtype=np.uint8)
    x = resize_for_model(rgb, 256)
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), rgb.astype(np.float32))


def test_resize_for_model_keeps_constant_colours(rng):
    rgb = np.empty((37, 53, 3), dtype=np.uint8)
    rgb[...] = (10, 128, 255)
    x = resize_for_model(rgb, 1024)
    assert tuple(x.shape) == (1, 3, 715, 1024)
    for c, value in enumerate((10, 128, 255)):
        assert torch.all(x[0, c] == value)
