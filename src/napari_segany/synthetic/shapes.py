"""Star-convex object shapes and their footprints in a local window.

A shape is an ellipse whose boundary radius is modulated by a few angular harmonics:
``R(phi) = ellipse(phi) * (1 + sum_k a_k cos(k phi) + b_k sin(k phi))``. Everything is (row, col)
with pixel centres at integer coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Shape:
    """A star-convex shape.

    Attributes
    ----------
    centre : (float, float)
        (row, col) of the centre.
    semi_axes : (float, float)
        Ellipse semi-axes (a, b) in pixels; ``a`` lies along ``angle``.
    angle : float
        Direction of the ``a`` axis in radians, measured from the row axis towards the col axis.
    harmonics : ndarray, shape (K, 2)
        Cosine and sine amplitudes of harmonics k = 2 .. K + 1 (relative radius change).
    """

    centre: tuple[float, float]
    semi_axes: tuple[float, float]
    angle: float
    harmonics: np.ndarray

    @property
    def radius(self) -> float:
        """Equivalent radius ``sqrt(a * b)`` in pixels."""
        return float(np.sqrt(self.semi_axes[0] * self.semi_axes[1]))

    @property
    def extent(self) -> float:
        """Upper bound of the distance from the centre to the boundary, in pixels."""
        return max(self.semi_axes) * (1.0 + float(np.abs(self.harmonics).sum()))

    def moved(self, centre: tuple[float, float]) -> Shape:
        """The same shape at another centre (row, col)."""
        return Shape(centre, self.semi_axes, self.angle, self.harmonics)


def _harmonics(rng: np.random.Generator, irregularity: np.ndarray, n_harmonics: int):
    """(n, K, 2) harmonic amplitudes ~ irregularity / k, each shape's total capped at 0.6."""
    orders = np.arange(2, n_harmonics + 2, dtype=np.float64)[None, :, None]
    harmonics = rng.normal(size=(irregularity.size, n_harmonics, 2)) * (
        irregularity[:, None, None] / orders
    )
    total = np.abs(harmonics).sum(axis=(1, 2), keepdims=True)
    return harmonics * np.minimum(1.0, 0.6 / np.maximum(total, 1e-12))


def random_shapes(
    rng: np.random.Generator,
    radius: np.ndarray,
    aspect: np.ndarray,
    irregularity: np.ndarray,
    n_harmonics: int = 4,
) -> list[Shape]:
    """Draw shapes of given equivalent radii and axis ratios, centred at (0, 0).

    Parameters
    ----------
    rng : numpy.random.Generator
    radius, aspect, irregularity : ndarray, shape (n,)
        Equivalent radius ``sqrt(a * b)`` in pixels; axis ratio ``a / b`` (>= 1); typical
        relative amplitude of the boundary harmonics (0 = ellipse). The sum of each shape's
        amplitudes is kept below 0.6 so it stays star-convex around its centre.
    n_harmonics : int
        Number of harmonics (orders 2 .. n_harmonics + 1), at most 8.

    Returns
    -------
    list of Shape
    """
    radius, aspect = np.asarray(radius, dtype=np.float64), np.asarray(aspect, dtype=np.float64)
    harmonics = _harmonics(rng, np.asarray(irregularity, dtype=np.float64), n_harmonics)
    angles = rng.uniform(0, np.pi, size=radius.size)
    root = np.sqrt(aspect)
    return [
        Shape((0.0, 0.0), (float(r * q), float(r / q)), float(t), h)
        for r, q, t, h in zip(radius, root, angles, harmonics, strict=True)
    ]


def random_shape(
    rng: np.random.Generator,
    radius: float,
    aspect: float,
    irregularity: float,
    n_harmonics: int = 4,
    centre: tuple[float, float] = (0.0, 0.0),
) -> Shape:
    """Draw one shape (see :func:`random_shapes`) centred at ``centre`` (row, col)."""
    shape = random_shapes(rng, [radius], [aspect], [irregularity], n_harmonics)[0]
    return shape.moved(centre)


@dataclass(eq=False)
class Footprint:
    """A shape rasterised in a local window of a canvas.

    Attributes
    ----------
    box : (int, int, int, int)
        (row0, col0, row1, col1) of the window in canvas coordinates, half-open.
    dr, dc : ndarray, shapes (h, 1) and (1, w), float32
        Row and column offsets of the window's pixels from the shape centre.
    rho : ndarray, shape (h, w), float32
        Normalised radius: 0 at the centre, 1 on the boundary.
    distance : ndarray, shape (h, w), float32
        Signed distance to the boundary along the ray from the centre, pixels, positive inside.
    coverage : ndarray, shape (h, w), float32
        Anti-aliased fraction of each pixel inside the shape.
    """

    box: tuple[int, int, int, int]
    dr: np.ndarray
    dc: np.ndarray
    rho: np.ndarray
    distance: np.ndarray
    coverage: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice]:
        """Slices of the window in the canvas."""
        r0, c0, r1, c1 = self.box
        return slice(r0, r1), slice(c0, c1)

    @property
    def inside(self) -> np.ndarray:
        """Boolean mask of pixel centres inside the shape, shape (h, w)."""
        return self.rho <= 1.0


_TABLE_SIZE = 1024  # angular resolution of the boundary table
_MAX_HARMONICS = 8
_ANGLES = (np.arange(_TABLE_SIZE) + 0.5) * (2 * np.pi / _TABLE_SIZE)
_ORDERS = np.arange(2, _MAX_HARMONICS + 2)
_COS = np.cos(np.outer(_ANGLES, _ORDERS))  # (T, K): cos(k phi) for k = 2 .. K + 1
_SIN = np.sin(np.outer(_ANGLES, _ORDERS))


def _harmonic_factor(u: np.ndarray, v: np.ndarray, harmonics: np.ndarray) -> np.ndarray:
    """``1 + sum_k a_k cos(k phi) + b_k sin(k phi)`` with ``phi = atan2(v, u)``, shape (h, w).

    The factor is tabulated at 1024 angles and looked up per pixel.
    """
    k = len(harmonics)
    table = 1.0 + _COS[:, :k] @ harmonics[:, 0] + _SIN[:, :k] @ harmonics[:, 1]
    index = (np.arctan2(v, u) * np.float32(_TABLE_SIZE / (2 * np.pi))).astype(np.int32)
    index &= _TABLE_SIZE - 1  # wraps negative angles
    return table.astype(np.float32)[index]


def window_box(shape: Shape, margin: float) -> tuple[int, int, int, int]:
    """Window (row0, col0, row1, col1), half-open, reaching ``margin`` pixels beyond the shape.

    The reach along rows and cols is that of the rotated ellipse, scaled by the harmonics' bound.
    """
    row, col = shape.centre
    a, b = shape.semi_axes
    cos_t, sin_t = np.cos(shape.angle), np.sin(shape.angle)
    scale = 1.0 + float(np.abs(shape.harmonics).sum())
    reach_r = scale * float(np.hypot(a * cos_t, b * sin_t)) + margin
    reach_c = scale * float(np.hypot(a * sin_t, b * cos_t)) + margin
    r0, r1 = int(np.floor(row - reach_r)), int(np.ceil(row + reach_r)) + 1
    c0, c1 = int(np.floor(col - reach_c)), int(np.ceil(col + reach_c)) + 1
    return r0, c0, r1, c1


def ellipse_mask(shape: Shape, box: tuple[int, int, int, int]) -> np.ndarray:
    """Pixel centres inside the shape's ellipse (harmonics ignored), a quick footprint.

    Returns
    -------
    ndarray, shape (row1 - row0, col1 - col0), bool
    """
    r0, c0, r1, c1 = box
    dr = (np.arange(r0, r1, dtype=np.float32) - np.float32(shape.centre[0]))[:, None]
    dc = (np.arange(c0, c1, dtype=np.float32) - np.float32(shape.centre[1]))[None, :]
    cos_t, sin_t = np.float32(np.cos(shape.angle)), np.float32(np.sin(shape.angle))
    a, b = (np.float32(s) for s in shape.semi_axes)
    u = (dr * (cos_t / a) + dc * (sin_t / a)) ** 2
    u += (dc * (cos_t / b) - dr * (sin_t / b)) ** 2
    return u <= 1.0


def rasterise(shape: Shape, box: tuple[int, int, int, int]) -> Footprint:
    """Rasterise a shape in a window of a canvas.

    Parameters
    ----------
    shape : Shape
        Centre given in the coordinates of the canvas the window lives in.
    box : (int, int, int, int)
        (row0, col0, row1, col1) of the window, half-open (see :func:`window_box`).

    Returns
    -------
    Footprint
    """
    r0, c0, r1, c1 = box
    row, col = shape.centre
    dr = (np.arange(r0, r1, dtype=np.float32) - np.float32(row))[:, None]
    dc = (np.arange(c0, c1, dtype=np.float32) - np.float32(col))[None, :]
    cos_t, sin_t = np.float32(np.cos(shape.angle)), np.float32(np.sin(shape.angle))
    a, b = (np.float32(s) for s in shape.semi_axes)
    u = (dr * cos_t + dc * sin_t) / a
    v = (dc * cos_t - dr * sin_t) / b
    q = np.sqrt(u * u + v * v)
    rho = q / _harmonic_factor(u, v, shape.harmonics) if len(shape.harmonics) else q
    # distance to the boundary along the ray from the centre; the centre pixel gets a large value
    dist = np.maximum(np.sqrt(dr * dr + dc * dc), np.float32(1e-3))
    distance = dist / np.maximum(rho, np.float32(1e-6)) - dist
    coverage = np.clip(distance + np.float32(0.5), 0.0, 1.0)
    return Footprint(box, dr, dc, rho, distance, coverage)
