"""Unlabelled clutter: bright or dark specks, out-of-focus blobs and fibres.

Debris is drawn into its own canvas and is never labelled, so a model trained on these scenes
learns to leave it out. All coordinates are (row, col).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .config import SceneParams
from .filters import blur_window
from .shapes import random_shape, rasterise, window_box

DEBRIS_KINDS = ("speck", "blob", "fibre")
_DEBRIS_WEIGHTS = (0.5, 0.35, 0.15)


@dataclass(frozen=True)
class DebrisInfo:
    """One piece of unlabelled debris.

    Attributes
    ----------
    kind : str
        One of :data:`DEBRIS_KINDS`.
    centre : (float, float)
        (row, col) in image coordinates.
    amplitude : float
        Signed peak amplitude before blur (after blur for specks).
    """

    kind: str
    centre: tuple[float, float]
    amplitude: float


def _box(centre: tuple[float, float], reach: float) -> tuple[int, int, int, int]:
    row, col = centre
    r0, c0 = int(np.floor(row - reach)), int(np.floor(col - reach))
    return r0, c0, int(np.ceil(row + reach)) + 1, int(np.ceil(col + reach)) + 1


def _offsets(box: tuple[int, int, int, int], centre: tuple[float, float]):
    """Row offsets (h, 1) and col offsets (1, w) of a window's pixels from ``centre``."""
    r0, c0, r1, c1 = box
    dr = (np.arange(r0, r1, dtype=np.float32) - np.float32(centre[0]))[:, None]
    dc = (np.arange(c0, c1, dtype=np.float32) - np.float32(centre[1]))[None, :]
    return dr, dc


def render_speck(rng: np.random.Generator, centre, amplitude: float, params: SceneParams):
    """A small Gaussian spot. Returns (box, window (h, w) float32)."""
    sigma = float(np.hypot(rng.uniform(0.3, 1.2), params.psf_sigma))
    box = _box(centre, 4.0 * sigma)
    dr, dc = _offsets(box, centre)
    return box, np.float32(amplitude) * np.exp((dr * dr + dc * dc) * np.float32(-0.5 / sigma**2))


def render_blob(rng: np.random.Generator, centre, amplitude: float, params: SceneParams):
    """An out-of-focus object: a nucleus-sized shape blurred far beyond the labelled objects.

    Returns (box, window (h, w) float32).
    """
    radius = min(params.radius_mean, 25.0) * rng.uniform(0.5, 1.3)
    sigma = radius * rng.uniform(0.35, 0.7) + 3.0
    shape = random_shape(rng, radius, rng.uniform(1.0, 1.6), 0.05, centre=centre)
    box = window_box(shape, 3.5 * sigma)
    window = rasterise(shape, box).coverage * np.float32(amplitude)
    return box, blur_window(window, sigma)


def _segment_distance2(dr, dc, start, end) -> np.ndarray:
    """Squared distance (h, w) from pixel offsets to the segment ``start``-``end`` (row, col)."""
    seg = np.subtract(end, start)
    length2 = max(float(seg @ seg), 1e-9)
    pr, pc = dr - np.float32(start[0]), dc - np.float32(start[1])
    t = np.clip((pr * np.float32(seg[0]) + pc * np.float32(seg[1])) / np.float32(length2), 0, 1)
    return (pr - t * np.float32(seg[0])) ** 2 + (pc - t * np.float32(seg[1])) ** 2


def render_fibre(rng: np.random.Generator, centre, amplitude: float, params: SceneParams):
    """A thin curved fibre (quadratic Bezier as 8 segments). Returns (box, window (h, w))."""
    half = rng.uniform(8.0, 45.0)
    direction = rng.uniform(0, 2 * np.pi)
    along = np.array([np.cos(direction), np.sin(direction)])
    across = np.array([-along[1], along[0]]) * rng.uniform(-0.5, 0.5) * half
    t = np.linspace(0.0, 1.0, 9)[:, None]
    # Bezier with control points -half*along, across, +half*along, relative to the centre
    points = (1 - t) ** 2 * (-half * along) + 2 * t * (1 - t) * across + t**2 * (half * along)
    sigma = float(np.hypot(rng.uniform(0.4, 1.0), params.psf_sigma))
    box = _box(centre, half + 4.0 * sigma)
    dr, dc = _offsets(box, centre)
    d2 = np.min([_segment_distance2(dr, dc, p, q) for p, q in itertools.pairwise(points)], 0)
    return box, np.float32(amplitude) * np.exp(d2 * np.float32(-0.5 / sigma**2))


_RENDERERS = {"speck": render_speck, "blob": render_blob, "fibre": render_fibre}
_GAIN = {"speck": (0.5, 2.5), "blob": (0.25, 0.8), "fibre": (0.3, 1.2)}


def _amplitude(rng: np.random.Generator, kind: str, params: SceneParams) -> float:
    """Signed amplitude relative to the scene's objects: bright in fluorescence, mostly dark
    in transmitted light."""
    if params.fluorescence:
        scale, sign = params.brightness, 1.0
    else:
        scale, sign = abs(params.rim), (-1.0 if rng.random() < 0.7 else 1.0)
    return sign * scale * rng.uniform(*_GAIN[kind])


def paste_add(canvas: np.ndarray, box: tuple[int, int, int, int], window: np.ndarray) -> None:
    """Add ``window`` (placed at ``box`` = (row0, col0, row1, col1)) to ``canvas``, clipped."""
    r0, c0, r1, c1 = box
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r1, canvas.shape[0]), min(c1, canvas.shape[1])
    if top < bottom and left < right:
        canvas[top:bottom, left:right] += window[top - r0 : bottom - r0, left - c0 : right - c0]


def add_debris(
    rng: np.random.Generator, canvas: np.ndarray, params: SceneParams
) -> list[DebrisInfo]:
    """Draw a Poisson number of debris items into ``canvas``.

    Parameters
    ----------
    rng : numpy.random.Generator
    canvas : ndarray, shape (H, W), float32
        Image-sized canvas, modified in place.
    params : SceneParams

    Returns
    -------
    list of DebrisInfo
        Centres in image coordinates (row, col).
    """
    h, w = canvas.shape
    n = int(rng.poisson(params.debris_density * h * w / 256**2))
    items = []
    for _ in range(n):
        kind = DEBRIS_KINDS[int(rng.choice(3, p=_DEBRIS_WEIGHTS))]
        centre = (float(rng.uniform(0, h)), float(rng.uniform(0, w)))
        amplitude = _amplitude(rng, kind, params)
        box, window = _RENDERERS[kind](rng, centre, amplitude, params)
        paste_add(canvas, box, window)
        items.append(DebrisInfo(kind, centre, float(amplitude)))
    return items
