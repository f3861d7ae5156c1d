"""The simple fluorescent-nuclei image used for the sample data and tests."""

from __future__ import annotations

import math

import numpy as np

from .config import SceneParams
from .scene import generate_scene


def nuclei_params(n_objects: int, radius_range: tuple[float, float], bit_depth: int) -> SceneParams:
    """Fixed parameters of a plain, sparse fluorescent-nuclei scene.

    Parameters
    ----------
    n_objects : int
        Number of nuclei to place (see :func:`~.layout.target_count`).
    radius_range : (float, float)
        Range of the nuclei's equivalent radii in pixels.
    bit_depth : int
        8, 12 or 16.
    """
    low, high = radius_range
    return SceneParams(
        modality="nuclei",
        radius_mean=math.sqrt(low * high),
        radius_spread=math.log(high / low) / 4 if high > low else 0.0,
        radius_limits=(low, high),
        aspect_max=1.5,
        n_objects=n_objects,
        max_overlap=0.05,
        brightness=0.45,
        brightness_spread=0.35,
        background_level=0.08,
        photons=800.0,
        read_noise=0.004,
        bit_depth=bit_depth,
        debris_density=1.0,
    )


def generate_nuclei(
    shape: tuple[int, int] = (512, 512),
    n_objects: int = 60,
    radius_range: tuple[float, float] = (8.0, 20.0),
    seed: int = 0,
    dtype: type = np.uint16,
) -> tuple[np.ndarray, np.ndarray]:
    """Make a fluorescent-nuclei-like image and its instance labels.

    Parameters
    ----------
    shape : (int, int)
        (rows, cols) of the image.
    n_objects : int
        Number of nuclei to place; placements overlapping others are skipped, so crowded fields
        get fewer.
    radius_range : (float, float)
        Range of the nuclei's equivalent radii in pixels.
    seed : int
        Random seed; the same seed gives the same image.
    dtype : numpy dtype
        ``np.uint16`` (12-bit range used) or ``np.uint8``.

    Returns
    -------
    image : ndarray, shape ``shape``, ``dtype``
    labels : ndarray, shape ``shape``, uint32
        0 = background, 1..N = nuclei, labelled at half the maximum of each blurred nucleus.
    """
    kind = np.dtype(dtype)
    if kind not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"dtype must be uint8 or uint16, not {kind}")
    bit_depth = 12 if kind == np.uint16 else 8
    scene = generate_scene(shape, nuclei_params(n_objects, radius_range, bit_depth), seed)
    return scene.raw, scene.labels
