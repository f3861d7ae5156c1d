"""Training on a user's annotations: time per step, time of the defaults, accuracy before/after.

The user's images are a synthetic style the embedded model has never seen
(:func:`napari_segany.synthetic.styles.inverted_striped_nuclei`: dense nuclei, inverted, on a
striped background). One 512×256 image is
annotated whole and trained on with the defaults of
:class:`~napari_segany.training.finetune.FinetuneConfig` (``napari-segany train``'s); the base
and the trained model are then scored on held-out images of the same style:

* automatic accuracy (``Segment all``, TP / (TP + FP + FN) at IoU 0.5),
* one-click mIoU (one positive click at each object's centre, the mask shown for it).

Prints seconds per step (the training steps alone), the total time of the default run
(validation and saving included) and the scores, all measured in this one run.

Usage: python benchmarks/bench_training.py [--base segany_cells|PATH] [--images 3]
    [--steps N | --minutes M] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_segany import load_model
from napari_segany.synthetic.styles import inverted_striped_nuclei
from napari_segany.training import iter_finetune
from napari_segany.training.validation import centre_click


def scores(model, images) -> tuple[float, float]:
    """Automatic accuracy and one-click mIoU of ``model`` over (image, labels) pairs."""
    from napari_segany import Predictor
    from napari_segany.automatic import segment
    from napari_segany.automatic.metrics import matched_objects

    counts, ious = np.zeros(3), []
    predictor = Predictor(model)
    for image, truth in images:
        counts += matched_objects(truth, np.asarray(segment(image, model).labels), 0.5)
        predictor.set_image(image)
        for i in np.unique(truth[truth > 0]):
            mask = truth == i
            prediction = predictor.predict(points=[centre_click(mask)], point_labels=[1])
            shown = prediction.masks[prediction.best]
            ious.append(np.logical_and(shown, mask).sum() / np.logical_or(shown, mask).sum())
    return float(counts[0] / counts.sum()), float(np.mean(ious))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="model to start from (default: embedded)")
    parser.add_argument("--images", type=int, default=3, help="held-out test images")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None)
    budget.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    image, labels = inverted_striped_nuclei(seed=1)
    tests = [inverted_striped_nuclei(seed=100 + i, held_out=True) for i in range(args.images)]
    base = load_model(*([args.base] if args.base else []), device="cpu")
    before = scores(base, tests)
    options = {k: v for k, v in (("steps", args.steps), ("minutes", args.minutes)) if v}
    out = Path(tempfile.mkdtemp()) / "bench.pt"
    step_times, last, start = [], None, time.perf_counter()
    job = iter_finetune(image, labels, out, base=base, register=False, device="cpu", **options)
    try:
        while True:
            report = next(job)
            now = time.perf_counter()
            if last is not None and report.done == last[0] + 1 and report.score is None:
                step_times.append(now - last[1])  # a step without validation
            last = (report.done, now)
    except StopIteration as stop:
        result = stop.value
    total = time.perf_counter() - start
    after = scores(load_model(out, device="cpu"), tests)
    print(f"annotated: one {image.shape[0]}×{image.shape[1]} image, {labels.max()} objects")
    print(f"steps: {result.steps}, kept step {result.best_step}")
    print(f"time per step: {np.median(step_times):.2f} s (median of {len(step_times)})")
    print(f"total time of the run: {total:.0f} s")
    print(
        f"validation score: {result.base_score.score:.3f} → {result.score.score:.3f}"
        if result.score
        else "no validation"
    )
    print(f"held-out images ({len(tests)}) | base | trained")
    print(f"automatic accuracy @0.5 | {before[0]:.3f} | {after[0]:.3f}")
    print(f"one-click mIoU | {before[1]:.3f} | {after[1]:.3f}")


if __name__ == "__main__":
    main()
