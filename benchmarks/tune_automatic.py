"""Choose the instance-head post-processing settings on validation images.

Validation images come from the held-out parameter bands but with their own seeds (``--seed``,
default 555000), so the settings are not tuned on the evaluation images of
``eval_embedded.py`` / ``bench_automatic.py``. Prints the mean accuracy TP/(TP+FP+FN) at IoU 0.5
of every combination, best last.

Usage::

    python benchmarks/tune_automatic.py [--model PATH] [--images 16] [--size 512] [--flips 4]

The maps are averaged over ``--flips`` flipped views as in ``AutomaticParams.flips``.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from napari_segany import Predictor, load_model
from napari_segany.automatic.metrics import matching_accuracy
from napari_segany.image.prep import to_rgb_uint8
from napari_segany.inference.instance_labels import FLIPS, labels_from_maps
from napari_segany.inference.instance_maps import instance_probabilities


def main() -> None:
    from napari_segany.synthetic import generate_scene

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segany_cells")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=555_000)
    parser.add_argument("--flips", type=int, default=4, choices=FLIPS)
    args = parser.parse_args()
    predictor = Predictor(load_model(args.model, device="cpu"))
    maps = []
    for i in range(args.images):
        scene = generate_scene((args.size, args.size), seed=args.seed + i, held_out=True)
        raw = np.asarray(scene.raw)
        predictor.set_image(raw)
        probabilities = instance_probabilities(
            predictor.model, predictor.get_embedding(), to_rgb_uint8(raw), args.flips
        )
        maps.append((*probabilities, np.asarray(scene.labels)))
    grid = itertools.product((0.4, 0.5, 0.6), (0.3, 0.4, 0.5), (0.0, 1.0, 2.0), (0.0, 0.95))
    results = []
    for fg_t, seed_t, sigma, split in grid:
        scores = [
            matching_accuracy(
                truth,
                labels_from_maps(
                    fg,
                    centre,
                    foreground_threshold=fg_t,
                    seed_threshold=seed_t,
                    centre_sigma=sigma,
                    split_solidity=split,
                ),
            )
            for fg, centre, truth in maps
        ]
        results.append((float(np.mean(scores)), fg_t, seed_t, sigma, split))
    for score, fg_t, seed_t, sigma, split in sorted(results):
        print(
            f"foreground {fg_t}  seed {seed_t}  centre_sigma {sigma}  split_solidity {split}:  "
            f"{score:.3f}"
        )


if __name__ == "__main__":
    main()
