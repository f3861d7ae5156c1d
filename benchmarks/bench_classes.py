"""Object classes learned from a few examples, on synthetic scenes, with the embedded model.

Scenes of fluorescent nuclei (384², about 60 objects, a third drawn as bright compact mitotic
figures, with debris) and their true labels. For each scene and each way of splitting its
objects into two classes:

* ``brightness``/``size``, median split: above or below the scene's median brightness or area
  (every object is classified: the hard case);
* ``brightness``/``size``, thirds: the top against the bottom third (the middle third left out);
* ``kind``: mitotic figures against interphase nuclei;

an :class:`~napari_segany.classify.ObjectClassifier` is trained on ``--examples`` random objects
per class and predicts every other object of the same scene, and of the next scene with the
same classifier. A saved and reloaded classifier must give the same probabilities. Prints the
mean (and smallest) accuracy per split and the time to measure one scene's objects.

Usage: python benchmarks/bench_classes.py [--scenes 8] [--examples 4] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_segany import load_model
from napari_segany.classify import ObjectClassifier
from napari_segany.synthetic import SceneParams, generate_scene

SPLITS = ("brightness, median", "size, median", "kind", "brightness, thirds", "size, thirds")


def scene(seed: int):
    params = SceneParams(
        n_objects=60,
        radius_mean=11.0,
        radius_spread=0.35,
        radius_limits=(5.0, 25.0),
        brightness_spread=0.6,
        mitotic_fraction=0.33,
        debris_density=3.0,
    )
    return generate_scene((384, 384), params, seed=seed)


def classes(objects, split: str) -> dict[int, str]:
    """Object ID → true class for a split (objects left out by the split are absent)."""
    if split == "kind":
        return {o.label: o.kind for o in objects}
    by, how = split.split(", ")
    values = {o.label: (o.brightness if by == "brightness" else o.area) for o in objects}
    numbers = np.array(list(values.values()), dtype=float)
    if how == "median":
        middle = np.median(numbers)
        return {i: "high" if v > middle else "low" for i, v in values.items()}
    low, high = np.quantile(numbers, [1 / 3, 2 / 3])
    return {i: "high" if v > high else "low" for i, v in values.items() if v > high or v < low}


def examples(truth: dict[int, str], per_class: int, seed: int) -> dict[int, str]:
    rng = np.random.default_rng(seed)
    chosen = {}
    for name in sorted(set(truth.values())):
        ids = sorted(i for i, c in truth.items() if c == name)
        chosen.update({int(i): name for i in rng.choice(ids, per_class, replace=False)})
    return chosen


def accuracy(predicted: dict[int, str], truth: dict[int, str], skip) -> float:
    scored = [i for i in truth if i not in skip]
    return float(np.mean([predicted[i] == truth[i] for i in scored]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--examples", type=int, default=4, help="examples per class")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(device="cpu")
    scenes = [scene(9000 + k) for k in range(args.scenes)]
    measurer = ObjectClassifier(model)
    tables, seconds = [], []
    for s in scenes:
        start = time.perf_counter()
        tables.append(measurer.features(s.image, s.labels))
        seconds.append(time.perf_counter() - start)
    print(
        f"{args.scenes} scenes 384², {np.mean([len(t) for t in tables]):.0f} objects each; "
        f"measuring one scene {np.median(seconds):.2f} s (median)"
    )

    same_reload = True
    print("| classes | same image | other image |")
    print("| --- | --- | --- |")
    for split in SPLITS:
        own, other = [], []
        for k, s in enumerate(scenes):
            truth = classes(s.objects, split)
            chosen = examples(truth, args.examples, seed=k)
            clf = ObjectClassifier(model).fit_table(tables[k], chosen)
            own.append(accuracy(clf.predict_table(tables[k]), truth, chosen))
            nxt = (k + 1) % len(scenes)
            other.append(
                accuracy(clf.predict_table(tables[nxt]), classes(scenes[nxt].objects, split), ())
            )
            with tempfile.TemporaryDirectory() as folder:
                path = clf.save(Path(folder) / "c.npz")
                again = ObjectClassifier.load(path, model=model)
                same_reload &= np.array_equal(
                    again.probabilities(tables[k]), clf.probabilities(tables[k])
                )
        print(
            f"| {split} | {np.mean(own):.3f} (min {min(own):.2f}) | "
            f"{np.mean(other):.3f} (min {min(other):.2f}) |"
        )
    print(f"saved and reloaded classifiers give identical probabilities: {same_reload}")


if __name__ == "__main__":
    main()
