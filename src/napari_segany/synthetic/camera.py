"""Background, illumination, noise and quantisation of a whole (H, W) field, (row, col)."""

from __future__ import annotations

import numpy as np

from .config import SceneParams
from .filters import blob_field

_POISSON_BELOW = 25.0  # expected photons under which shot noise is drawn exactly


def max_value(bit_depth: int) -> int:
    """Largest raw value of a bit depth (255, 4095 or 65535)."""
    return (1 << bit_depth) - 1


def raw_dtype(bit_depth: int) -> type:
    """``np.uint8`` for 8 bits, ``np.uint16`` for 12 and 16 bits."""
    return np.uint8 if bit_depth <= 8 else np.uint16


def background(rng: np.random.Generator, shape: tuple[int, int], params: SceneParams):
    """Uneven background: broad and medium blotches around the background level.

    The relative variation is ``background_variation`` in fluorescence (autofluorescence,
    out-of-focus haze) and a fifth of it in transmitted light (flat-field dust and unevenness).

    Returns
    -------
    ndarray, shape ``shape``, float32, >= 0
    """
    broad = blob_field(rng, shape, rng.uniform(100.0, 300.0))
    medium = blob_field(rng, shape, rng.uniform(15.0, 50.0))
    strength = params.background_variation * (1.0 if params.fluorescence else 0.2)
    variation = np.float32(strength) * (broad + np.float32(rng.uniform(0.2, 0.6)) * medium)
    return np.maximum(np.float32(params.background_level) * (1.0 + variation), 0.0)


def illumination(rng: np.random.Generator, shape: tuple[int, int], params: SceneParams):
    """Multiplicative illumination: a linear gradient times vignetting off a random centre.

    Returns
    -------
    ndarray, shape ``shape``, float32, in [0.2, 1.5]
    """
    side = float(max(shape))
    y = ((np.arange(shape[0], dtype=np.float32) - shape[0] / 2) / side)[:, None]
    x = ((np.arange(shape[1], dtype=np.float32) - shape[1] / 2) / side)[None, :]
    direction = rng.uniform(0, 2 * np.pi)
    # python floats keep the float32 arrays float32
    g_row = float(params.illumination_gradient * np.cos(direction))
    g_col = float(params.illumination_gradient * np.sin(direction))
    gradient = g_row * y + g_col * x
    y0, x0 = (float(v) for v in rng.uniform(-0.2, 0.2, size=2))
    vignette = float(2.0 * params.vignetting) * ((y - y0) ** 2 + (x - x0) ** 2)
    field = (1.0 + gradient) * (1.0 - vignette)
    return np.clip(field, 0.2, 1.5).astype(np.float32)


def noise_std(level: float, params: SceneParams) -> float:
    """Standard deviation of the camera noise at an intensity ``level`` (float units)."""
    return float(np.sqrt(max(level, 0.0) / params.photons + params.read_noise**2))


def add_noise(rng: np.random.Generator, clean: np.ndarray, params: SceneParams) -> np.ndarray:
    """Shot noise (Poisson, Gaussian approximation above 25 photons) plus Gaussian read noise.

    Parameters
    ----------
    rng : numpy.random.Generator
    clean : ndarray, shape (H, W), float32
        Noise-free intensities, >= 0.
    params : SceneParams
        ``photons`` (photons at intensity 1) and ``read_noise`` (std).

    Returns
    -------
    ndarray, shape (H, W), float32, not clipped
    """
    photons = np.float32(params.photons)
    std = np.sqrt(clean / photons + np.float32(params.read_noise**2))
    noisy = clean + std * rng.standard_normal(clean.shape, dtype=np.float32)
    low = clean * photons < _POISSON_BELOW
    if low.any():
        counts = rng.poisson(clean[low] * photons).astype(np.float32)
        read = np.float32(params.read_noise) * rng.standard_normal(counts.size, dtype=np.float32)
        noisy[low] = counts / photons + read
    return noisy


def quantise(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Round a [0, 1] float image to the integer range of a bit depth.

    Parameters
    ----------
    image : ndarray, shape (H, W), float
        Values are clipped to [0, 1] first.
    bit_depth : int
        8 (uint8), 12 or 16 (uint16; 12-bit data uses 0..4095).

    Returns
    -------
    ndarray, shape (H, W), uint8 or uint16
    """
    scaled = np.clip(image, 0.0, 1.0) * np.float32(max_value(bit_depth))
    return np.rint(scaled).astype(raw_dtype(bit_depth))
