"""Synthetic z-stacks and time series with exact labels, for tests and benchmarks (numpy/scipy).

- :func:`touching_ellipsoids`: a (Z, H, W) stack of nuclei-like ellipsoids of varying size that
  touch each other, sampled with a z step ``anisotropy`` times the pixel size.
- :func:`moving_cells`: a (T, H, W) time series of round cells drifting a few pixels per frame,
  some of which divide into two daughters, with the true lineage.

Arrays are indexed (z or t, row, col). Images are uint16 with a dark background, bright objects
whose intensity varies from object to object, a dim seam where two objects touch, blur and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["SyntheticStack", "SyntheticTracks", "moving_cells", "touching_ellipsoids"]


@dataclass
class SyntheticStack:
    """A synthetic volume.

    Attributes
    ----------
    image : ndarray, shape (Z, H, W), uint16
    labels : ndarray, shape (Z, H, W), uint32
        Object IDs 1..N, 0 background.
    centres : ndarray, shape (N, 3), float
        (z, row, col) centre of object i + 1.
    anisotropy : float
        z step / pixel size.
    """

    image: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    anisotropy: float


@dataclass
class SyntheticTracks:
    """A synthetic time series.

    Attributes
    ----------
    image : ndarray, shape (T, H, W), uint16
    labels : ndarray, shape (T, H, W), uint32
        Track IDs: a cell keeps its ID over frames; daughters get new IDs.
    parents : dict
        Daughter ID → mother ID.
    """

    image: np.ndarray
    labels: np.ndarray
    parents: dict[int, int]


def _render(labels: np.ndarray, rng: np.random.Generator, blur) -> np.ndarray:
    """Bright objects of varying intensity with dim seams, blurred, noisy → uint16."""
    n = int(labels.max())
    levels = np.concatenate([[0.0], rng.uniform(0.55, 1.0, n)])
    clean = levels[labels]
    # a dim seam where two objects touch (as nuclear envelopes look in a stack)
    grown = ndimage.grey_dilation(labels, size=(1,) * (labels.ndim - 2) + (3, 3))
    seam = (labels > 0) & (grown != labels)
    clean[seam] *= 0.45
    clean = ndimage.gaussian_filter(clean, blur)
    image = 200 + 2400 * clean + rng.normal(0, 60, labels.shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


def touching_ellipsoids(
    shape: tuple[int, int, int] = (16, 128, 128),
    radius: tuple[float, float] = (11.0, 16.0),
    anisotropy: float = 2.0,
    elongation: float = 0.25,
    seed: int = 0,
) -> SyntheticStack:
    """Ellipsoids of varying size packed so that neighbours touch.

    Parameters
    ----------
    shape : (Z, H, W)
    radius : (min, max)
        In-plane radius range in pixels; each object gets its own, and its z radius is that
        divided by ``anisotropy`` (in slices).
    anisotropy : float
        z step over pixel size (2: a slice every 2 pixels' worth of depth).
    elongation : float
        Up to this relative difference between the two in-plane semi-axes.
    seed : int

    Returns
    -------
    SyntheticStack
    """
    rng = np.random.default_rng(seed)
    z, h, w = shape
    step = 1.7 * np.mean(radius)
    rows = np.arange(step / 2, h - step / 3, step)
    cols = np.arange(step / 2, w - step / 3, step)
    centres, radii = [], []
    for k, r0 in enumerate(rows):
        for c0 in cols + (step / 2 if k % 2 else 0):
            if c0 > w - step / 3:
                continue
            r = rng.uniform(*radius)
            e = 1 + rng.uniform(-elongation, elongation)
            zc = rng.uniform(0.25, 0.75) * (z - 1)
            centres.append((zc, r0 + rng.uniform(-2, 2), c0 + rng.uniform(-2, 2)))
            radii.append((r / anisotropy, r * e, r / e))
    centres, radii = np.array(centres), np.array(radii)
    zz, rr, cc = np.meshgrid(np.arange(z), np.arange(h), np.arange(w), indexing="ij")
    best = np.full(shape, np.inf)
    labels = np.zeros(shape, np.uint32)
    for i, (c, rad) in enumerate(zip(centres, radii, strict=True), start=1):
        d = ((zz - c[0]) / rad[0]) ** 2 + ((rr - c[1]) / rad[1]) ** 2 + ((cc - c[2]) / rad[2]) ** 2
        take = (d < 1) & (d < best)
        labels[take] = i
        best = np.minimum(best, np.where(d < 1, d, np.inf))
    present = np.unique(labels[labels > 0])
    remap = np.zeros(len(centres) + 1, np.uint32)
    remap[present] = np.arange(1, len(present) + 1)
    labels = remap[labels]
    image = _render(labels, rng, (0.6, 1.0, 1.0))
    return SyntheticStack(image, labels, centres[present - 1], float(anisotropy))


def moving_cells(
    frames: int = 6,
    shape: tuple[int, int] = (128, 128),
    count: int = 9,
    drift: float = 3.0,
    divide: int = 1,
    radius: tuple[float, float] = (9.0, 12.0),
    seed: int = 0,
) -> SyntheticTracks:
    """Round cells drifting over frames; ``divide`` of them split in two half-way through.

    Parameters
    ----------
    frames : int
    shape : (H, W)
    count : int
        Cells in the first frame (on a jittered grid, apart from each other).
    drift : float
        Pixels each cell moves per frame (a random direction per cell, plus a common drift).
    divide : int
        Cells that divide at frame ``frames // 2``: the mother's ID ends, two daughters with new
        IDs appear on either side of where she was.
    radius : (min, max)
    seed : int

    Returns
    -------
    SyntheticTracks
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    side = int(np.ceil(np.sqrt(count)))
    gy, gx = h / side, w / side
    cells = []  # [id, row, col, radius, vrow, vcol]
    for k in range(count):
        r, c = (k // side + 0.5) * gy, (k % side + 0.5) * gx
        angle = rng.uniform(0, 2 * np.pi)
        v = 0.5 * drift * np.array([np.sin(angle), np.cos(angle)]) + 0.5 * drift * np.ones(2)
        start = (r - drift * frames / 4, c - drift * frames / 4)
        cells.append([k + 1, *start, rng.uniform(*radius), *v])
    next_id = count + 1
    parents: dict[int, int] = {}
    labels = np.zeros((frames, h, w), np.uint32)
    rr, cc = np.mgrid[:h, :w]
    dividing = set(rng.choice(count, size=min(divide, count), replace=False).tolist())
    for t in range(frames):
        if t == frames // 2 and dividing:
            new = []
            for k, cell in enumerate(cells):
                if k not in dividing:
                    new.append(cell)
                    continue
                ident, r, c, rad, vr, vc = cell
                angle = rng.uniform(0, np.pi)
                off = 0.75 * rad * np.array([np.sin(angle), np.cos(angle)])
                for sign in (1, -1):
                    parents[next_id] = ident
                    new.append([next_id, r + sign * off[0], c + sign * off[1], 0.72 * rad, vr, vc])
                    next_id += 1
            cells = new
            dividing = set()
        best = np.full((h, w), np.inf)
        for ident, r, c, rad, _, _ in cells:
            d = ((rr - r) ** 2 + (cc - c) ** 2) / rad**2
            take = (d < 1) & (d < best)
            labels[t][take] = ident
            best = np.minimum(best, np.where(d < 1, d, np.inf))
        for cell in cells:
            cell[1] += cell[4]
            cell[2] += cell[5]
    image = _render(labels, rng, (0.0, 1.0, 1.0))
    present = set(np.unique(labels).tolist())
    parents = {d: m for d, m in parents.items() if d in present}
    return SyntheticTracks(image, labels, parents)
