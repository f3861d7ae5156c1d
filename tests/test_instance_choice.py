"""A single click on a model with an instance head shows the candidate that matches the object."""

import numpy as np
import pytest

from napari_segany import Predictor, build_model, load_model


@pytest.fixture(scope="module")
def predictor_and_truth():
    from napari_segany.synthetic import generate_nuclei

    image, truth = generate_nuclei(shape=(256, 256), n_objects=20, seed=11)
    predictor = Predictor(load_model(device="cpu"))
    predictor.set_image(image)
    return predictor, truth


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_single_click_picks_the_candidate_matching_the_instance(predictor_and_truth):
    predictor, truth = predictor_and_truth
    instances = predictor.instance_labels()
    assert instances.shape == truth.shape and instances.max() > 5
    chosen_any = False
    for obj in np.unique(truth)[1:6]:
        rows, cols = np.nonzero(truth == obj)
        click = [rows.mean(), cols.mean()]
        result = predictor.predict(points=[click])
        label = instances[round(click[0]), round(click[1])]
        if label == 0:
            assert result.chosen is None and result.best == int(np.argmax(result.scores))
            continue
        chosen_any = True
        agreement = [_iou(m, instances == label) for m in result.masks]
        assert result.best == result.chosen == int(np.argmax(agreement))
    assert chosen_any


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
