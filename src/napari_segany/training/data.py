"""Training scenes: synthetic crops converted like images at inference, and the model's input.

Both trainers draw the same scenes for the same seed (:func:`draw_scene`) and feed them to the
image encoder through :func:`model_input`, which applies the model's own pixel normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_segany.image.prep import to_rgb_uint8
from napari_segany.models.sam import SamModel


@dataclass
class Scene:
    """One training crop: RGB (H, W, 3) uint8 as the model sees it, and instance labels.

    ``padding`` (rows, cols) at the bottom and right are not image: the model input there is
    the padding an image smaller than the model input gets (0 after normalisation).
    """

    rgb: np.ndarray
    labels: np.ndarray
    padding: tuple[int, int] = (0, 0)


def draw_scene(
    seed: int,
    size: int,
    held_out: bool = False,
    dense_fraction: float = 0.0,
    dense_preset: str = "DENSE_CLUSTERS_ANY_SIZE",
) -> Scene:
    """Generate one synthetic scene of ``size`` × ``size`` pixels, converted to 8-bit RGB as an
    image at inference is (:func:`napari_segany.image.prep.to_rgb_uint8`).

    With probability ``dense_fraction`` (decided by ``seed`` alone, so a seed always gives the
    same scene) the scene is drawn from ``dense_preset``, a preset of
    :mod:`napari_segany.synthetic.presets` (default
    :data:`~napari_segany.synthetic.DENSE_CLUSTERS_ANY_SIZE`, dense clusters of touching nuclei
    of every size), instead of the default ranges of every modality.
    """
    from napari_segany.synthetic import generate_scene, presets

    if not 0 <= dense_fraction <= 1:
        raise ValueError(f"dense_fraction must be between 0 and 1, got {dense_fraction}")
    config = None
    if dense_fraction > 0 and np.random.default_rng([seed, 7]).random() < dense_fraction:
        config = getattr(presets, dense_preset, None)
        if not isinstance(config, presets.SceneConfig):
            raise ValueError(f"{dense_preset!r} is not a preset of napari_segany.synthetic.presets")
    scene = generate_scene((size, size), config, seed=seed, held_out=held_out)
    return Scene(to_rgb_uint8(scene.raw), np.asarray(scene.labels))


def pad_like_inference(scene: Scene, rng, probability: float, max_pad: int) -> Scene:
    """Turn the bottom/right strips of a crop into model-input padding, with ``probability``.

    Images smaller than the model input (and tiles at the image's bottom/right border) are
    padded; training on such crops teaches the model that objects end at the padding, so
    objects near those borders are segmented as well as elsewhere. Labels under the padding
    become background (objects there are cut, as in the real image).
    """
    if max_pad <= 0 or rng.random() >= probability:
        return scene
    pad_r, pad_c = (int(v) for v in rng.integers(0, max_pad + 1, size=2))
    labels = scene.labels.copy()
    if pad_r:
        labels[-pad_r:] = 0
    if pad_c:
        labels[:, -pad_c:] = 0
    return Scene(scene.rgb, labels, (pad_r, pad_c))


def model_input(model: SamModel, scenes: Sequence[Scene]) -> torch.Tensor:
    """The image encoder's input for square scenes of one size S: (B, 3, S, S) float32.

    Each scene's image part is normalised by :meth:`SamModel.normalize` and zero-padded to S
    over its ``padding``, exactly as an image smaller than the model input is at inference.
    """
    side = scenes[0].rgb.shape[0]
    batch = []
    for scene in scenes:
        if scene.rgb.shape[:2] != (side, side):
            raise ValueError(f"scenes must be square and of one size, got {scene.rgb.shape}")
        rows, cols = side - scene.padding[0], side - scene.padding[1]
        rgb = torch.as_tensor(scene.rgb[:rows, :cols], device=model.device)
        batch.append(model.normalize(rgb.permute(2, 0, 1)[None].float(), side=side))
    return torch.cat(batch)
