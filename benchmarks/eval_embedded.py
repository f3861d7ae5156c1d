"""Evaluate a promptable model on held-out synthetic microscopy, next to a classical baseline.

Reports, over every object of the held-out images:

Each image contributes at most ``--max-objects`` objects (a fixed random subset of dense
fields); automatic segmentation is scored on all objects.

* mean IoU from one positive click at the object's centre (the best-scored of 3 candidates),
* mean IoU from one box (the object's bounding box),
* mean IoU after up to 3 corrective clicks (each on the largest remaining mistake, with the
  previous logits fed back),
* the classical baseline on the same images: Otsu threshold + distance-transform watershed
  (scikit-image), scored for the click (the region holding it), the box (the region holding its
  centre) and automatic segmentation (TP / (TP + FP + FN) at IoU 0.5),
* for automatic segmentation also the merge rate (predicted objects that cover at least half of
  each of two or more true objects, over all predicted objects) and the true objects no
  predicted object matches (:func:`napari_segany.automatic.metrics.object_errors`), and, when the
  results carry a per-object confidence, how well it ranks wrong objects below correct ones.

Two suites, each reported on its own (``--suite``):

* ``regular``: scenes of the default generator ranges (all modalities);
* ``dense``: dense clusters of touching fluorescent nuclei with weak borders between them
  (:data:`napari_segany.synthetic.presets.DENSE_CLUSTERS`), from seeds ``DENSE_SEED_OFFSET``
  after the regular suite's.

Held-out images come from the generator's held-out parameter bands and seed stream
(``generate_scene(..., held_out=True)``), never used in training. Usage::

    python benchmarks/eval_embedded.py [--model segany_cells|PATH] [--images 24] [--size 512]
        [--prompt-views 1|3|6] [--first-seed N] [--suite regular|dense|both]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed

from napari_segany import Predictor, load_model
from napari_segany.automatic import metrics
from napari_segany.automatic.metrics import matching_accuracy, object_errors
from napari_segany.synthetic import SceneConfig
from napari_segany.synthetic.presets import DENSE_CLUSTERS

EVAL_SEED = 987_654_321  # first seed of the held-out images (the generator keeps a separate stream)
DENSE_SEED_OFFSET = 100_000  # the dense suite's first seed, after the regular suite's first seed
SUITES = {"regular": None, "dense": DENSE_CLUSTERS}
"""Suite name -> generator ranges (None: the default ``SceneConfig()``)."""


def held_out_images(
    count: int, size: int, first_seed: int = EVAL_SEED, config: SceneConfig | None = None
):
    """(raw image, labels) of ``count`` held-out scenes of ``size``² from ``first_seed`` on."""
    from napari_segany.synthetic import generate_scene

    for i in range(count):
        scene = generate_scene((size, size), config, seed=first_seed + i, held_out=True)
        yield np.asarray(scene.raw), np.asarray(scene.labels)


def suite_first_seed(suite: str, first_seed: int) -> int:
    """First seed of a suite: the regular suite's ``first_seed``, the dense one's after it."""
    return first_seed + (DENSE_SEED_OFFSET if suite == "dense" else 0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def centre_click(mask: np.ndarray) -> np.ndarray:
    """The object pixel nearest its centroid, (row, col)."""
    rows, cols = np.nonzero(mask)
    d2 = (rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2
    i = int(np.argmin(d2))
    return np.array([rows[i], cols[i]], dtype=float)


def correction_click(truth: np.ndarray, predicted: np.ndarray):
    """Deterministic click on the largest mistake: its most interior pixel; None if perfect."""
    missed, extra = truth & ~predicted, predicted & ~truth
    if not missed.any() and not extra.any():
        return None
    error, label = (missed, 1) if missed.sum() >= extra.sum() else (extra, 0)
    components, n = ndi.label(error)
    sizes = ndi.sum(error, components, index=np.arange(1, n + 1))
    largest = components == (int(np.argmax(sizes)) + 1)
    depth = ndi.distance_transform_edt(largest)
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return np.array([r, c], dtype=float), label


def box_of(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([rows.min(), cols.min(), rows.max(), cols.max()], dtype=float)


def classical_instances(image: np.ndarray) -> np.ndarray:
    """Otsu threshold + distance-transform watershed; foreground is the smaller Otsu class."""
    smooth = gaussian(image.astype(np.float32), sigma=1.0)
    bright = smooth > threshold_otsu(smooth)
    foreground = bright if bright.mean() <= 0.5 else ~bright
    foreground = ndi.binary_fill_holes(foreground)
    distance = ndi.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=4, labels=ndi.label(foreground)[0])
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=foreground)


class AutomaticTally:
    """Automatic segmentation's errors summed over images, for one method (model or baseline)."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []
        self.errors: list = []  # ObjectErrors per image
        self.confidence: list[dict[int, float]] = []

    def add(self, truth: np.ndarray, predicted: np.ndarray, confidence=None) -> None:
        """Score one image's predicted labels (H, W) against the true ones."""
        self.accuracy.append(matching_accuracy(truth, predicted))
        self.errors.append(object_errors(truth, predicted))
        if confidence is not None:
            self.confidence.append(confidence)

    def summary(self) -> dict:
        """Mean accuracy; merges over predicted objects and missed true objects, pooled."""
        kinds = [k for e in self.errors for k in e.kinds.values()]
        result = {
            "accuracy": float(np.mean(self.accuracy)) if self.accuracy else float("nan"),
            "merge_rate": kinds.count("merge") / len(kinds) if kinds else float("nan"),
            "predicted": len(kinds),
            "missed": sum(e.missed for e in self.errors),
            "true": sum(e.true_count for e in self.errors),
        }
        # confidence_ranking arrived with per-object confidence; older trees lack both
        if hasattr(metrics, "confidence_ranking") and self.confidence and self.errors:
            ranked = metrics.confidence_ranking(self.confidence, self.errors)
            result["auroc"], result["lowest_quarter"] = ranked
        return result


def prompt_scores(predictor, labels, base, objects, corrections: int, scores: dict) -> None:
    """Append one image's click, box and corrected IoUs (model and baseline) to ``scores``."""
    for obj in objects:
        truth = labels == obj
        click = centre_click(truth)
        first = predictor.predict(points=[click], point_labels=[1])
        best = first.best
        scores["point"].append(iou(first.masks[best], truth))
        box = box_of(truth)
        scores["box"].append(iou(predictor.predict(box=box, multimask=False).masks[0], truth))
        points, point_labels = [click], [1]
        mask, logits = first.masks[best], first.logits[best]
        for _ in range(corrections):
            found = correction_click(truth, mask)
            if found is None:
                break
            points.append(found[0])
            point_labels.append(found[1])
            result = predictor.predict(
                points=points, point_labels=point_labels, mask_input=logits, multimask=False
            )
            mask, logits = result.masks[0], result.logits[0]
        scores["corrected"].append(iou(mask, truth))
        region = base[int(click[0]), int(click[1])]
        scores["base_point"].append(iou(base == region, truth) if region else 0.0)
        centre = ((box[:2] + box[2:]) / 2).astype(int)
        region = base[centre[0], centre[1]]
        scores["base_box"].append(iou(base == region, truth) if region else 0.0)


def evaluate(
    model,
    predictor,
    images: int,
    size: int,
    corrections: int = 3,
    max_objects: int = 25,
    first_seed: int = EVAL_SEED,
    config: SceneConfig | None = None,
) -> dict:
    """Prompted and automatic scores of one suite (see the module documentation)."""
    from napari_segany.automatic import segment

    scores = {k: [] for k in ("point", "box", "corrected", "base_point", "base_box")}
    auto_base, auto_model = AutomaticTally(), AutomaticTally()
    for image, labels in held_out_images(images, size, first_seed, config):
        predictor.set_image(image)
        base = classical_instances(image)
        auto_base.add(labels, base)
        if model.has_instance_head:
            found = segment(image, model)
            auto_model.add(labels, found.labels, getattr(found, "confidence", None) or None)
        objects = np.unique(labels)[1:]
        if len(objects) > max_objects:  # dense fields: a fixed random subset of the objects
            objects = np.random.default_rng(len(scores["point"])).choice(
                objects, max_objects, replace=False
            )
        prompt_scores(predictor, labels, base, objects, corrections, scores)
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result["base_auto"] = auto_base.summary()
    result["auto"] = auto_model.summary()
    result["objects"] = len(scores["point"])
    result["prompt_views"] = predictor.prompt_views
    return result


def report(suite: str, r: dict, images: int, size: int, first_seed: int, max_objects: int):
    """Print one suite's table; the regular suite's first lines keep their historical wording."""
    name = {"regular": "", "dense": "dense-cluster "}[suite]
    print(
        f"{name}synthetic images from the held-out bands: {images} of {size}² from seed "
        f"{first_seed}, {r['objects']} prompted "
        f"objects (at most {max_objects} per image), prompt views: {r['prompt_views']}"
    )
    auto, base = r["auto"], r["base_auto"]
    print("| prompt | model mIoU | classical baseline |")
    print("| --- | --- | --- |")
    print(f"| one click at the centre | {r['point']:.3f} | {r['base_point']:.3f} |")
    print(f"| one box | {r['box']:.3f} | {r['base_box']:.3f} |")
    print(f"| click + up to 3 corrections | {r['corrected']:.3f} | – |")
    print(
        f"| automatic, TP/(TP+FP+FN) at IoU 0.5 | {auto['accuracy']:.3f} | {base['accuracy']:.3f} |"
    )
    print(
        f"| automatic, merges / predicted objects | {auto['merge_rate']:.3f} "
        f"({auto['predicted']}) | {base['merge_rate']:.3f} ({base['predicted']}) |"
    )
    print(
        f"| automatic, true objects missed | {auto['missed']} of {auto['true']} | "
        f"{base['missed']} of {base['true']} |"
    )
    if "auroc" in auto:
        print(
            f"model confidence: AUROC correct vs wrong objects {auto['auroc']:.3f}, "
            f"share of wrong objects in the least-confident quarter {auto['lowest_quarter']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segany_cells", help="registry name or file")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--max-objects", type=int, default=25, help="prompted objects per image")
    parser.add_argument(
        "--prompt-views", type=int, default=None, help="Predictor prompt_views (default: model's)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=EVAL_SEED,
        help="seed of the first image (555000: the validation images settings are chosen on)",
    )
    parser.add_argument(
        "--suite",
        choices=("regular", "dense", "both"),
        default="both",
        help="regular: default generator ranges; dense: dense clusters of touching nuclei",
    )
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    predictor = Predictor(model, prompt_views=args.prompt_views)
    for suite in SUITES if args.suite == "both" else (args.suite,):
        start = time.perf_counter()
        first_seed = suite_first_seed(suite, args.first_seed)
        r = evaluate(
            model,
            predictor,
            args.images,
            args.size,
            max_objects=args.max_objects,
            first_seed=first_seed,
            config=SUITES[suite],
        )
        report(suite, r, args.images, args.size, first_seed, args.max_objects)
        print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
