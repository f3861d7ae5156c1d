"""A single click on a model with an instance head shows the mask that matches the object."""

import numpy as np
import pytest

from napari_segany import Predictor, build_model, load_model
from napari_segany.models.architectures import ARCHITECTURES

#: The embedded model's click guidance (its architecture spec's inference settings).
GUIDE = ARCHITECTURES["segany_cells"].inference


@pytest.fixture(scope="module")
def predictor_and_truth():
    from napari_segany.synthetic import generate_nuclei

    # radii 8-30 px: objects on both sides of the guidance threshold (800 px, ~16 px radius)
    image, truth = generate_nuclei(shape=(320, 320), n_objects=20, radius_range=(8, 30), seed=11)
    predictor = Predictor(load_model(device="cpu"))
    predictor.set_image(image)
    return predictor, truth


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_single_click_picks_the_candidate_matching_the_instance(predictor_and_truth):
    predictor, truth = predictor_and_truth
    instances = predictor.instance_labels(GUIDE.guide_flips)
    assert instances.shape == truth.shape and instances.max() > 5
    guided = small = 0
    for obj in np.unique(truth)[1:]:
        rows, cols = np.nonzero(truth == obj)
        click = [rows.mean(), cols.mean()]
        result = predictor.predict(points=[click])
        label = instances[round(click[0]), round(click[1])]
        if label == 0 or (instances == label).sum() < GUIDE.guide_min_area:
            small += label != 0
            assert result.chosen is None and result.best == int(np.argmax(result.scores))
            continue
        guided += 1
        agreement = [_iou(m, instances == label) for m in result.masks]
        assert result.best == result.chosen == int(np.argmax(agreement))
    assert guided > 0 and small > 0


def test_other_prompts_keep_the_predicted_iou_order(predictor_and_truth):
    predictor, truth = predictor_and_truth
    rows, cols = np.nonzero(truth == np.unique(truth)[1])
    box = [rows.min(), cols.min(), rows.max(), cols.max()]
    for result in (
        predictor.predict(box=box),
        predictor.predict(points=[[rows[0], cols[0]], [5, 5]], point_labels=[1, 0]),
        predictor.predict(points=[[rows[0], cols[0]]], multimask=False),
    ):
        assert result.chosen is None and result.best == int(np.argmax(result.scores))


def test_models_without_head_are_unchanged(rng):
    predictor = Predictor(build_model("vit_t", img_size=64))
    predictor.set_image(rng.integers(0, 255, (64, 64), dtype=np.uint8))
    assert predictor.predict(points=[[30, 30]]).chosen is None
    with pytest.raises(ValueError, match="no instance head"):
        predictor.instance_labels()


def test_a_click_on_a_large_nucleus_returns_all_of_it():
    from scipy import ndimage

    yy, xx = np.mgrid[:400, :400]
    disk = (yy - 200) ** 2 + (xx - 190) ** 2 <= 70**2
    noise = np.random.default_rng(3).normal(200, 20, disk.shape)
    image = (ndimage.gaussian_filter(disk * 1000.0, 2) + noise).astype(np.uint16)
    predictor = Predictor(load_model(device="cpu"))
    predictor.set_image(image)
    result = predictor.predict(points=[[200, 190]])
    assert _iou(result.masks[result.best], disk) > 0.9


def test_a_click_on_a_large_object_returns_the_instance_object(predictor_and_truth, monkeypatch):
    """The shown mask is the instance-map object; its logits come from the decoder's mask
    (a candidate, or the click with the object's box) that agrees best with the object."""
    predictor, truth = predictor_and_truth
    instances = predictor.instance_labels(GUIDE.guide_flips)
    clicks = []
    for obj in np.unique(truth)[1:]:
        rows, cols = np.nonzero(truth == obj)
        click = (round(rows.mean()), round(cols.mean()))
        if instances[click] and (instances == instances[click]).sum() >= GUIDE.guide_min_area:
            clicks.append(click)
    guided = [predictor.predict(points=[c]) for c in clicks]
    monkeypatch.setattr(Predictor, "_guide", lambda self, prediction, point, views: None)
    plain = [predictor.predict(points=[c]) for c in clicks]
    boxed = 0
    for click, g, p in zip(clicks, guided, plain, strict=True):
        obj = instances == instances[click]
        np.testing.assert_array_equal(g.masks[g.best], obj)
        others = [k for k in range(3) if k != g.best]
        np.testing.assert_array_equal(g.masks[others], p.masks[others])
        np.testing.assert_array_equal(g.logits[others], p.logits[others])
        boxed += not np.array_equal(g.logits[g.best], p.logits[g.best])
    assert boxed > 0  # the click decoded with the object's box agreed better at least once


def test_fast_answers_use_the_one_view_map_and_view_answers_the_averaged_one(
    predictor_and_truth, monkeypatch
):
    predictor, truth = predictor_and_truth
    one, four = predictor.instance_labels(1), predictor.instance_labels(GUIDE.guide_flips)
    assert not np.array_equal(one, four)  # more views change the map
    used = []
    instance_map = predictor._instance_map
    monkeypatch.setattr(predictor, "_instance_map", lambda v: used.append(v) or instance_map(v))
    rows, cols = np.nonzero(truth == 1)
    predictor.predict(points=[[rows.mean(), cols.mean()]], prompt_views=1)
    predictor.predict(points=[[rows.mean(), cols.mean()]])
    assert used == [1, GUIDE.guide_flips]


def test_a_many_view_map_needs_the_image_pixels(predictor_and_truth):
    predictor, _ = predictor_and_truth
    bare = Predictor(predictor.model)
    bare.set_embedding(predictor.get_embedding())
    assert bare.instance_labels(1).shape == predictor.instance_labels(1).shape
    with pytest.raises(ValueError, match="needs the image's pixels"):
        bare.instance_labels(4)
