"""Automatic segmentation: accuracy on held-out synthetic images, seams, and speed.

Everything is measured in one run on this machine:

* accuracy TP/(TP+FP+FN) at IoU 0.5 of the embedded model's automatic segmentation on held-out
  generated images (parameter bands and seeds never used in training), next to the classical
  baseline (Otsu + distance-transform watershed) on the same images, with the instance head's
  maps averaged over 4 flips (the default) and over 1; optionally the point-grid method
  too (``--point-grid``, slow);
* a 1024² held-out image segmented untiled and with tiles of half its size: both scores, their
  difference, and how many true objects crossing a tile seam come out split in two or more
  predicted objects, next to how many of the same seam-crossing objects the untiled run splits
  (those are the model's errors, not the seam's);
* wall time to segment a 1024² image (encode + automatic segmentation) with the embedded model,
  with 4 flips and with 1 (median of 3 runs after a warm-up).

Usage::

    python benchmarks/bench_automatic.py [--model segany_cells|PATH] [--images 16] [--size 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _timing import median_seconds
from eval_embedded import classical_instances, held_out_images
from napari_segany import load_model
from napari_segany.automatic import matching_accuracy, segment
from napari_segany.tiled.session import SegmentationSession

FLIPS_COMPARED = (4, 1)


def accuracy(model, images: int, size: int, method: str, **options) -> tuple[float, float, float]:
    """Mean model accuracy, mean baseline accuracy and mean seconds per image."""
    model_scores, base_scores, seconds = [], [], []
    for image, labels in held_out_images(images, size):
        start = time.perf_counter()
        result = segment(image, model, method=method, **options)
        seconds.append(time.perf_counter() - start)
        model_scores.append(matching_accuracy(labels, result.labels))
        base_scores.append(matching_accuracy(labels, classical_instances(image)))
    return float(np.mean(model_scores)), float(np.mean(base_scores)), float(np.mean(seconds))


def split_at_seams(truth: np.ndarray, predicted: np.ndarray, session) -> tuple[int, int]:
    """(true objects crossing a tile seam, how many of them are split among predicted objects).

    An object counts as split when two or more predicted objects each cover at least 20% of it.
    """
    seams_r = sorted({t.inner[0].stop for t in session.grid.tiles} - {truth.shape[0]})
    seams_c = sorted({t.inner[1].stop for t in session.grid.tiles} - {truth.shape[1]})
    crossing = split = 0
    for obj in np.unique(truth)[1:]:
        rows, cols = np.nonzero(truth == obj)
        crosses = any(rows.min() < s <= rows.max() for s in seams_r) or any(
            cols.min() < s <= cols.max() for s in seams_c
        )
        if not crosses:
            continue
        crossing += 1
        ids, counts = np.unique(predicted[rows, cols], return_counts=True)
        big = counts[ids > 0] >= 0.2 * len(rows)
        split += int(big.sum() >= 2)
    return crossing, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segany_cells")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--point-grid", action="store_true", help="also score the point grid")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")

    print(f"held-out: {args.images} images of {args.size}²")
    print("| method | TP/(TP+FP+FN) at IoU 0.5 | s / image |")
    print("| --- | --- | --- |")
    for flips in FLIPS_COMPARED:
        acc, base, secs = accuracy(model, args.images, args.size, "instance_head", flips=flips)
        print(f"| embedded model, instance head, {flips} flip(s) | {acc:.3f} | {secs:.2f} |")
    if args.point_grid:
        pg, _, pg_secs = accuracy(model, args.images, args.size, "point_grid")
        print(f"| embedded model, point grid (32²) | {pg:.3f} | {pg_secs:.2f} |")
    print(f"| classical baseline (Otsu + watershed) | {base:.3f} | – |")

    from napari_segany.synthetic import generate_scene

    scene = generate_scene((1024, 1024), seed=123_456, held_out=True)
    image, truth = np.asarray(scene.raw), np.asarray(scene.labels)
    whole = segment(image, model)
    whole_secs = {
        flips: median_seconds(lambda f=flips: segment(image, model, flips=f))
        for flips in FLIPS_COMPARED
    }
    session = SegmentationSession(image, model, tile_size=512, halo=64)
    tiled = segment(image, model, tile_size=512, halo=64)
    a_whole = matching_accuracy(truth, whole.labels)
    a_tiled = matching_accuracy(truth, tiled.labels)
    crossing, split = split_at_seams(truth, tiled.labels, session)
    _, split_untiled = split_at_seams(truth, whole.labels, session)
    print(
        f"\n1024² held-out image ({len(np.unique(truth)) - 1} objects): untiled {a_whole:.3f}, "
        f"{len(session.grid)} tiles of 512² (halo 64) {a_tiled:.3f}, "
        f"difference {a_tiled - a_whole:+.3f}; objects crossing a seam: {crossing}, "
        f"split: {split} (the untiled run splits {split_untiled} of them)"
    )
    for flips, secs in whole_secs.items():
        print(f"time to segment a 1024² image (encode + automatic), {flips} flip(s): {secs:.2f} s")


if __name__ == "__main__":
    main()
