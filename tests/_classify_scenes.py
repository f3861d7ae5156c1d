"""Synthetic scenes with two kinds of objects, for the object-class tests."""

from __future__ import annotations

import numpy as np

from napari_segany.synthetic import SceneParams, generate_scene


def mitosis_scene(seed: int, shape=(320, 320)):
    """Fluorescent nuclei, about a third drawn as bright compact mitotic figures, with debris."""
    params = SceneParams(
        n_objects=45,
        radius_mean=11.0,
        radius_spread=0.35,
        radius_limits=(5.0, 25.0),
        mitotic_fraction=0.3,
        debris_density=3.0,
    )
    return generate_scene(shape, params, seed=seed)


def truth(scene, by: str) -> dict[int, str]:
    """Object ID → true class: ``"kind"`` (nucleus/mitotic), or ``"brightness"``/``"size"``
    split at the scene's terciles (the middle third left out)."""
    if by == "kind":
        return {o.label: o.kind for o in scene.objects}
    values = {o.label: o.brightness if by == "brightness" else o.area for o in scene.objects}
    low, high = np.quantile(list(values.values()), [1 / 3, 2 / 3])
    return {i: "high" if v > high else "low" for i, v in values.items() if v > high or v < low}


def pick_examples(classes: dict[int, str], per_class: int, seed: int) -> dict[int, str]:
    """``per_class`` random example objects of each class."""
    rng = np.random.default_rng(seed)
    examples = {}
    for name in sorted(set(classes.values())):
        ids = sorted(i for i, c in classes.items() if c == name)
        examples.update({int(i): name for i in rng.choice(ids, per_class, replace=False)})
    return examples


def accuracy(predicted: dict[int, str], classes: dict[int, str], skip=()) -> float:
    """Share of the objects of ``classes`` (but ``skip``) predicted right."""
    judged = [i for i in classes if i not in skip]
    return float(np.mean([predicted[i] == classes[i] for i in judged]))
