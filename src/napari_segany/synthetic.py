"""Synthetic fluorescence microscopy images with exact instance labels.

Used for the sample data and for tests. Objects are drawn as ellipses with internal texture on an
unevenly lit background, blurred by the optics and photon/readout noise is added; the label image
marks each object where its blurred intensity is above half its maximum, where an annotator would
draw the edge.
"""

from __future__ import annotations

import numpy as np


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2D float image with reflected borders.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    sigma : float
        Standard deviation in pixels; 0 returns a copy.
    """
    if sigma <= 0:
        return image.astype(np.float64, copy=True)
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    out = np.asarray(image, dtype=np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        for i, weight in enumerate(kernel):
            index = [slice(None), slice(None)]
            index[axis] = slice(i, i + out.shape[axis])
            acc += weight * padded[tuple(index)]
        out = acc
    return out


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
        Number of nuclei to try to place (overlapping placements are skipped).
    radius_range : (float, float)
        Range of the nuclei's semi-axes in pixels.
    seed : int
        Random seed; the same seed gives the same image.
    dtype : numpy dtype
        ``np.uint16`` (12-bit range used) or ``np.uint8``.

    Returns
    -------
    image : ndarray, shape ``shape``, ``dtype``
    labels : ndarray, shape ``shape``, uint32
        0 = background, 1..N = nuclei.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    signal = np.zeros(shape)
    labels = np.zeros(shape, dtype=np.uint32)
    occupied = np.zeros(shape, dtype=bool)
    next_id = 1
    for _ in range(n_objects):
        a, b = rng.uniform(*radius_range), rng.uniform(*radius_range)
        r0, c0 = rng.uniform(a, h - a), rng.uniform(b, w - b)
        theta = rng.uniform(0, np.pi)
        # work in a window around the object: its footprint plus room for the blur
        margin = int(max(a, b)) + 6
        top, left = max(0, int(r0) - margin), max(0, int(c0) - margin)
        bottom, right = min(h, int(r0) + margin + 1), min(w, int(c0) + margin + 1)
        window = (slice(top, bottom), slice(left, right))
        rows, cols = np.mgrid[top:bottom, left:right].astype(np.float64)
        dr, dc = rows - r0, cols - c0
        u = (dr * np.cos(theta) + dc * np.sin(theta)) / a
        v = (-dr * np.sin(theta) + dc * np.cos(theta)) / b
        footprint = u**2 + v**2 <= 1.0
        if (footprint & occupied[window]).sum() > 0.05 * footprint.sum():
            continue
        brightness = rng.uniform(0.3, 1.0)
        texture = 1.0 + 0.25 * gaussian_blur(rng.normal(size=footprint.shape), 1.5) * footprint
        blurred = gaussian_blur(footprint * brightness * texture, 1.2)
        edge = (blurred > 0.5 * blurred.max()) & (labels[window] == 0)
        labels[window][edge] = next_id
        occupied[window] |= footprint
        signal[window] += blurred
        next_id += 1
    rows, cols = np.mgrid[:h, :w].astype(np.float64)
    background = 0.08 + 0.05 * (cols / w) + 0.03 * (rows / h)
    peak = 4095.0 if np.dtype(dtype) == np.uint16 else 255.0
    expected = (signal + background) * 0.8 * peak
    noisy = rng.poisson(np.maximum(expected, 0) / 4.0) * 4.0 + rng.normal(0, 0.01 * peak, shape)
    image = np.clip(noisy, 0, np.iinfo(dtype).max).astype(dtype)
    return image, labels
