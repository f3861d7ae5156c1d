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
  centre) and automatic segmentation (TP / (TP + FP + FN) at IoU 0.5).

Held-out images come from the generator's held-out parameter bands and seed stream
(``generate_scene(..., held_out=True)``), never used in training. Usage::

    python benchmarks/eval_embedded.py [--model segany_cells|PATH] [--images 24] [--size 512]
        [--prompt-views 1|3|6] [--first-seed N]
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
from napari_segany.automatic.metrics import matching_accuracy

EVAL_SEED = 987_654_321  # first seed of the held-out images (the generator keeps a separate stream)


def held_out_images(count: int, size: int, first_seed: int = EVAL_SEED):
    from napari_segany.synthetic import generate_scene

    for i in range(count):
        scene = generate_scene((size, size), seed=first_seed + i, held_out=True)
        yield np.asarray(scene.raw), np.asarray(scene.labels)


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


def evaluate(
    model_name: str,
    images: int,
    size: int,
    corrections: int = 3,
    max_objects: int = 25,
    prompt_views: int | None = None,
    first_seed: int = EVAL_SEED,
) -> dict:
    from napari_segany.automatic import segment

    model = load_model(model_name, device="cpu")
    predictor = Predictor(model, prompt_views=prompt_views)
    scores = {k: [] for k in ("point", "box", "corrected", "base_point", "base_box")}
    auto_base, auto_model = [], []
    for image, labels in held_out_images(images, size, first_seed):
        predictor.set_image(image)
        base = classical_instances(image)
        auto_base.append(matching_accuracy(labels, base))
        if model.has_instance_head:
            auto_model.append(matching_accuracy(labels, segment(image, model).labels))
        objects = np.unique(labels)[1:]
        if len(objects) > max_objects:  # dense fields: a fixed random subset of the objects
            objects = np.random.default_rng(len(scores["point"])).choice(
                objects, max_objects, replace=False
            )
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
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result["base_auto"] = float(np.mean(auto_base))
    result["auto"] = float(np.mean(auto_model)) if auto_model else float("nan")
    result["objects"] = len(scores["point"])
    result["prompt_views"] = predictor.prompt_views
    return result


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
    args = parser.parse_args()
    start = time.perf_counter()
    r = evaluate(
        args.model,
        args.images,
        args.size,
        max_objects=args.max_objects,
        prompt_views=args.prompt_views,
        first_seed=args.first_seed,
    )
    print(
        f"synthetic images from the held-out bands: {args.images} of {args.size}² from seed "
        f"{args.first_seed}, {r['objects']} prompted "
        f"objects (at most {args.max_objects} per image), prompt views: {r['prompt_views']}"
    )
    print("| prompt | model mIoU | classical baseline |")
    print("| --- | --- | --- |")
    print(f"| one click at the centre | {r['point']:.3f} | {r['base_point']:.3f} |")
    print(f"| one box | {r['box']:.3f} | {r['base_box']:.3f} |")
    print(f"| click + up to 3 corrections | {r['corrected']:.3f} | – |")
    print(f"| automatic, TP/(TP+FP+FN) at IoU 0.5 | {r['auto']:.3f} | {r['base_auto']:.3f} |")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
