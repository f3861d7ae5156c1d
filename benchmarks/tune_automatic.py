"""Choose the instance-head post-processing settings on validation images.

Validation images come from the held-out parameter bands but with their own seeds, so the
settings are not tuned on the evaluation images of ``eval_embedded.py`` /
``bench_automatic.py``. Two suites, as in ``eval_embedded.py``:

* ``regular``: the default generator ranges, seeds from ``--seed`` (default 555000);
* ``dense``: dense clusters of touching nuclei (``DENSE_CLUSTERS``), seeds from
  ``--seed`` + ``DENSE_SEED_OFFSET`` (default 655000).

The model's maps are computed once per image (and kept in ``--cache`` when given); every
combination of the candidate settings is then scored on them. Prints, per combination and
suite, the mean accuracy TP/(TP+FP+FN) at IoU 0.5 and the merge rate (merges over predicted
objects, pooled over images, as ``eval_embedded.py``), best last (ranked by the mean accuracy
over the suites).

Usage::

    python benchmarks/tune_automatic.py [--model PATH] [--suite regular|dense|both]
        [--images 16] [--size 512] [--flips 4] [--cache DIR]
        [--foreground 0.4 0.5 0.6] [--seed-threshold ...] [--centre-sigma ...]
        [--boundary-weight 0 0.5 1] [--boundary-threshold 0 0.5] [--split-solidity ...]
        [--peak-prominence 0 0.1 0.15]

The maps are averaged over ``--flips`` flipped views as in ``AutomaticParams.flips``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from napari_segany.automatic.metrics import matching_accuracy, object_errors
from napari_segany.inference.instance_labels import FLIPS, labels_from_maps

SUITE_OFFSET = {"regular": 0, "dense": 100_000}  # as eval_embedded.DENSE_SEED_OFFSET


def suite_maps(args, suite: str, predictor_factory) -> list[tuple[np.ndarray, ...]]:
    """(foreground, centre, boundary, true labels) of each validation image of ``suite``."""
    from napari_segany.synthetic import DENSE_CLUSTERS, generate_scene

    first = args.seed + SUITE_OFFSET[suite]
    path = None
    if args.cache:
        name = f"{suite}_{first}_{args.images}x{args.size}_flips{args.flips}.npz"
        path = Path(args.cache) / name
        if path.exists():
            data = np.load(path)
            columns = ("fg", "centre", "boundary", "truth")
            return list(zip(*(data[c] for c in columns), strict=True))
    from napari_segany.image.prep import to_rgb_uint8
    from napari_segany.inference.instance_maps import instance_probabilities

    predictor = predictor_factory()
    config = DENSE_CLUSTERS if suite == "dense" else None
    maps = []
    for i in range(args.images):
        scene = generate_scene((args.size, args.size), config, seed=first + i, held_out=True)
        raw = np.asarray(scene.raw)
        predictor.set_image(raw)
        probabilities = instance_probabilities(
            predictor.model, predictor.get_embedding(), to_rgb_uint8(raw), args.flips
        )
        maps.append((*probabilities, np.asarray(scene.labels)))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fg, centre, boundary, truth = (np.stack(m) for m in zip(*maps, strict=True))
        np.savez_compressed(path, fg=fg, centre=centre, boundary=boundary, truth=truth)
    return maps


def candidate_labels(
    fg, centre, boundary, fg_t, seed_t, sigma, weight, boundary_t, split, prominence
) -> np.ndarray:
    """``labels_from_maps`` with these settings."""
    return labels_from_maps(
        fg,
        centre,
        boundary,
        boundary_weight=weight,
        boundary_threshold=boundary_t,
        foreground_threshold=fg_t,
        seed_threshold=seed_t,
        centre_sigma=sigma,
        split_solidity=split,
        peak_prominence=prominence,
    )


def score(maps, candidate) -> tuple[float, float]:
    """Mean accuracy and pooled merge rate of one candidate on one suite's maps."""
    accuracy, merges, predicted = [], 0, 0
    for fg, centre, boundary, truth in maps:
        labels = candidate_labels(fg, centre, boundary, *candidate)
        accuracy.append(matching_accuracy(truth, labels))
        kinds = list(object_errors(truth, labels).kinds.values())
        merges += kinds.count("merge")
        predicted += len(kinds)
    return float(np.mean(accuracy)), merges / max(predicted, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segany_cells")
    parser.add_argument("--suite", choices=("regular", "dense", "both"), default="regular")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=555_000, help="the regular suite's first")
    parser.add_argument("--flips", type=int, default=4, choices=FLIPS)
    parser.add_argument("--cache", default=None, help="folder keeping the maps between runs")
    parser.add_argument("--foreground", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    parser.add_argument("--seed-threshold", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    parser.add_argument("--centre-sigma", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--boundary-weight", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--boundary-threshold", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--split-solidity", type=float, nargs="+", default=[0.0, 0.95])
    parser.add_argument("--peak-prominence", type=float, nargs="+", default=[0.0, 0.1, 0.15])
    args = parser.parse_args()

    def predictor_factory():
        from napari_segany import Predictor, load_model

        return Predictor(load_model(args.model, device="cpu"))

    suites = ("regular", "dense") if args.suite == "both" else (args.suite,)
    start = time.perf_counter()
    maps = {suite: suite_maps(args, suite, predictor_factory) for suite in suites}
    print(f"maps of {args.images} images per suite: {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    grid = itertools.product(
        args.foreground,
        args.seed_threshold,
        args.centre_sigma,
        args.boundary_weight,
        args.boundary_threshold,
        args.split_solidity,
        args.peak_prominence,
    )
    results = []
    for candidate in grid:
        scores = [score(maps[suite], candidate) for suite in suites]
        results.append((float(np.mean([s[0] for s in scores])), candidate, scores))
    print(f"{len(results)} candidates scored: {time.perf_counter() - start:.0f} s")
    columns = " | ".join(f"{s} accuracy | {s} merges" for s in suites)
    names = (
        "foreground | seed | centre_sigma | boundary_weight | boundary_threshold | "
        "split_solidity | peak_prominence"
    )
    print(f"| {names} | {columns} |")
    print("| --- " * (7 + 2 * len(suites)) + "|")
    for _, candidate, scores in sorted(results, key=lambda r: r[0]):
        settings = " | ".join(str(v) for v in candidate)
        cells = " | ".join(f"{a:.4f} | {m:.3f}" for a, m in scores)
        print(f"| {settings} | {cells} |")


if __name__ == "__main__":
    main()
