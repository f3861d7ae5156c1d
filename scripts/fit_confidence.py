"""Fit the instance head's per-object confidence scorer on synthetic scenes, and evaluate it.

Reproduces the packaged scorer (``src/napari_segany/weights/`` + ``SCORER_FILE``)::

    python scripts/fit_confidence.py fit          # train scenes -> JSON (+ cross-validated AUROCs)
    python scripts/fit_confidence.py evaluate     # held-out scenes: confidence vs single scores

Training scenes are regular generator scenes (seeds ``TRAIN_SEED`` …) and dense, clustered,
touching ones (seeds ``DENSE_TRAIN_SEED`` …), never the held-out stream. Each object of the
embedded model's automatic segmentation is described by
:func:`napari_segany.automatic.confidence.object_features` and labelled wrong or correct by
:func:`napari_segany.automatic.metrics.object_errors`; a logistic regression on standardised
features (scikit-learn) gives the shipped numbers. Evaluation uses
``benchmarks/eval_embedded.py``'s held-out images and a dense held-out variant (seeds
``EVAL_SEED + 1000`` …).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from napari_segany.automatic import AutomaticParams
from napari_segany.automatic.confidence import FEATURES, SCORER_FILE, object_features
from napari_segany.automatic.metrics import confidence_ranking, object_errors
from napari_segany.automatic.tile import head_labels_and_maps, head_object_scores
from napari_segany.synthetic import SceneConfig, generate_scene

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "napari_segany" / "weights" / SCORER_FILE
TRAIN_SEED = 20_000  # regular training scenes: TRAIN_SEED, TRAIN_SEED + 1, …
DENSE_TRAIN_SEED = 30_000  # dense training scenes
TRAIN_SCENES = 48  # of each kind
SIZE = 512
#: Dense, clustered nuclei fields where touching objects get merged.
DENSE = SceneConfig(
    modality_weights=(1.0, 0.0, 0.0, 0.0),
    clustering=(0.7, 0.95),
    p_touching=0.9,
    coverage=(0.3, 0.6),
)
C = 1.0  # inverse L2 strength of the logistic regression


def scene_objects(model, image, truth, params):
    """Features, stability-free scores and kinds of one image's automatic objects.

    Returns
    -------
    features : ndarray (N, F)
    wrong : ndarray (N,) bool
    """
    from napari_segany.inference.predictor import Predictor
    from napari_segany.tiled.session import SegmentationSession

    session = SegmentationSession(image, model)
    if len(session.grid.tiles) != 1:
        raise ValueError("scenes must fit one tile")
    predictor = Predictor(model, session.precision)
    predictor.set_embedding(session.tile_embedding(0))
    labels, maps = head_labels_and_maps(predictor, params, session.tile_image(0))
    scores = head_object_scores(labels, maps.foreground, params.foreground_threshold)
    stability = np.ones(int(labels.max()) + 1)
    for i, (_, s) in scores.items():
        stability[i] = s
    ids, features = object_features(
        labels, maps.foreground, maps.centre, maps.foreground_spread, stability, maps.boundary
    )
    kinds = object_errors(truth, labels).kinds
    wrong = np.array([kinds[int(i)] != "correct" for i in ids], bool)
    return features, wrong


def collect(model, scenes, params):
    """Stack :func:`scene_objects` over (image, truth) pairs; also the image index of each row."""
    rows, wrong, groups = [], [], []
    for n, (image, truth) in enumerate(scenes):
        f, w = scene_objects(model, image, truth, params)
        rows.append(f)
        wrong.append(w)
        groups.append(np.full(len(w), n))
    return np.concatenate(rows), np.concatenate(wrong), np.concatenate(groups)


def synthetic(first_seed: int, count: int, config=None, held_out: bool = False):
    for seed in range(first_seed, first_seed + count):
        scene = generate_scene((SIZE, SIZE), config, seed=seed, held_out=held_out)
        yield np.asarray(scene.raw), np.asarray(scene.labels)


def ranking(conf: np.ndarray, wrong: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """:func:`confidence_ranking` over all rows, one image per group."""
    from napari_segany.automatic.metrics import ObjectErrors

    confs, errors = [], []
    for g in np.unique(groups):
        sel = groups == g
        confs.append(dict(enumerate(conf[sel])))
        kinds = {i: ("false" if w else "correct") for i, w in enumerate(wrong[sel])}
        errors.append(ObjectErrors(kinds, 0, 0))
    return confidence_ranking(confs, errors)


def fit(model, params, cache: Path | None):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if cache is not None and cache.exists():
        data = np.load(cache)
        x, wrong, groups = data["x"], data["wrong"], data["groups"]
    else:
        scenes = [
            *synthetic(TRAIN_SEED, TRAIN_SCENES),
            *synthetic(DENSE_TRAIN_SEED, TRAIN_SCENES, DENSE),
        ]
        x, wrong, groups = collect(model, scenes, params)
        if cache is not None:
            np.savez(cache, x=x, wrong=wrong, groups=groups)
    print(f"{len(x)} objects, {wrong.mean():.1%} wrong, {len(np.unique(groups))} scenes")
    folds = GroupKFold(5)
    for k, name in enumerate(FEATURES):
        auroc, share = ranking(x[:, k], wrong, groups)
        print(
            f"  {name:<20} AUROC {max(auroc, 1 - auroc):.3f} (sign {'+' if auroc >= 0.5 else '-'})"
        )
    learners = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)),
        "boosting": HistGradientBoostingClassifier(max_depth=3, max_iter=200, random_state=0),
    }
    for name, learner in learners.items():
        p = cross_val_predict(learner, x, ~wrong, groups=groups, cv=folds, method="predict_proba")
        auroc, share = ranking(p[:, 1], wrong, groups)
        print(
            f"  cross-validated {name:<10} AUROC {auroc:.3f}, wrong in lowest quarter {share:.1%}"
        )
    final = learners["logistic"].fit(x, ~wrong)
    scaler, logistic = final[0], final[1]
    result = {
        "model": f"{SCORER_FILE.removesuffix('_confidence.json')} instance head",
        "target": "object is correct (object_errors kind 'correct', IoU > 0.5)",
        "features": list(FEATURES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": logistic.coef_[0].tolist(),
        "intercept": float(logistic.intercept_[0]),
        "fitted_by": "scripts/fit_confidence.py fit",
        "training": {
            "regular_seeds": [TRAIN_SEED, TRAIN_SEED + TRAIN_SCENES],
            "dense_seeds": [DENSE_TRAIN_SEED, DENSE_TRAIN_SEED + TRAIN_SCENES],
            "size": SIZE,
            "flips": params.flips,
            "C": C,
            "objects": len(x),
        },
    }
    OUTPUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


def evaluate(model, params, images: int):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from eval_embedded import EVAL_SEED, held_out_images
    from napari_segany.automatic.confidence import packaged_scorer

    scorer = packaged_scorer()
    sets = {
        "regular": held_out_images(images, SIZE),
        "dense": synthetic(EVAL_SEED + 1000, images, DENSE, held_out=True),
    }
    for name, scenes in sets.items():
        x, wrong, groups = collect(model, scenes, params)
        print(f"{name}: {len(x)} objects, {wrong.mean():.1%} wrong")
        columns = {
            "confidence": scorer(x),
            "foreground_probability": x[:, FEATURES.index("foreground_mean")],
            "stability": x[:, FEATURES.index("stability")],
        }
        for column, values in columns.items():
            auroc, share = ranking(values, wrong, groups)
            print(f"  {column:<24} AUROC {auroc:.3f}, wrong in lowest quarter {share:.1%}")


def main() -> None:
    from napari_segany import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("fit", "evaluate"))
    parser.add_argument("--cache", type=Path, help="npz of training features to reuse/write")
    parser.add_argument("--images", type=int, default=16, help="held-out images per set")
    args = parser.parse_args()
    model = load_model()
    params = AutomaticParams()
    if args.action == "fit":
        fit(model, params, args.cache)
    else:
        evaluate(model, params, args.images)


if __name__ == "__main__":
    main()
