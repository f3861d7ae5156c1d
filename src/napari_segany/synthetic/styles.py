"""Synthetic image styles the embedded model never saw in training, to test learning a new one.

The default generator ranges and the presets are what the embedded model was trained on; a
style here changes how those scenes look, so a model that was not trained on it does poorly and
training on a few annotated examples of it (``napari-segany train``) should help.
"""

from __future__ import annotations

import numpy as np

from .presets import DENSE_CLUSTERS
from .scene import generate_scene


def inverted_striped_nuclei(
    seed: int, shape: tuple[int, int] = (256, 512), held_out: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Dense fluorescent nuclei with their contrast inverted (dark nuclei) on a background of
    diagonal stripes (period 6 px).

    Parameters
    ----------
    seed : int
        Scene seed, as :func:`~napari_segany.synthetic.generate_scene`.
    shape : (int, int)
        (rows, cols) of the image.
    held_out : bool
        Use the held-out parameter bands and seed stream.

    Returns
    -------
    image : ndarray, shape ``shape``, uint16
    labels : ndarray, shape ``shape``, int
    """
    scene = generate_scene(shape, DENSE_CLUSTERS, seed=seed, held_out=held_out)
    image = np.asarray(scene.image, np.float64)
    rows, cols = np.indices(shape)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (rows + cols) / 6)
    span = np.percentile(image, 99.5) - np.percentile(image, 0.5)
    styled = (image.max() - image) + 0.35 * span * stripes
    styled = (styled - styled.min()) / (styled.max() - styled.min())
    return np.rint(styled * 60000).astype(np.uint16), np.asarray(scene.labels)
