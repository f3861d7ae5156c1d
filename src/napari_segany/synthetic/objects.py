"""Appearance of labelled objects, drawn in their local window before blur.

Each renderer returns two (h, w) float32 windows: the object's ``signal`` (what the camera sees,
with texture, nucleoli, rims...) and its ``envelope``, the smooth intensity profile without
texture from which the label is cut at half of its blurred maximum, where an annotator would draw
the edge. Signals are signed amplitudes added to the background; all arrays are (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SceneParams
from .filters import smooth_noise
from .shapes import Footprint, Shape, random_shape, rasterise

KINDS = ("nucleus", "mitotic", "cell", "brightfield_cell", "phase_cell")
"""Kinds of labelled objects; the first two appear in nuclei scenes, then one per modality."""

HALO_KINDS = ("brightfield_cell", "phase_cell")
"""Kinds drawn with a rim and a halo."""

RIM_KINDS = ("brightfield_cell",)
"""Kinds seen only by their rim (body near background): contrast is measured on edge pixels."""


@dataclass(frozen=True, eq=False)
class ObjectSpec:
    """One object to draw.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    shape : Shape
        Geometry, centre (row, col) in canvas coordinates.
    amplitude : float
        Signed peak amplitude (fluorescence) or rim amplitude (transmitted light).
    sigma : float
        Total blur of this object: optics and its own defocus, pixels.
    """

    kind: str
    shape: Shape
    amplitude: float
    sigma: float

    def margin(self, params: SceneParams) -> float:
        """Pixels needed around the shape for blur and halos."""
        halo = params.rim_width + 4.0 * params.halo_width if self.kind in HALO_KINDS else 0.0
        return halo + 3.5 * self.sigma + 2.0


def dome(footprint: Footprint, gamma: float, radius: float) -> np.ndarray:
    """Profile ``(1 - rho^2)^gamma`` inside the shape (a projected ellipsoid for gamma = 0.5).

    Parameters
    ----------
    footprint : Footprint
    gamma : float
        0 = flat, 0.5 = dome.
    radius : float
        Equivalent radius in pixels; the profile of edge pixels is that half a pixel inside.

    Returns
    -------
    ndarray, shape (h, w), float32
    """
    if gamma <= 0:
        return footprint.coverage
    floor = np.float32(min(1.0, 1.0 / max(radius, 1.0)))
    base = np.clip(1.0 - footprint.rho * footprint.rho, floor, 1.0)
    return footprint.coverage * base ** np.float32(gamma)


def spots(
    rng: np.random.Generator, footprint: Footprint, shape: Shape, count: int, contrast: float
) -> np.ndarray:
    """Multiplicative factor with Gaussian nucleoli (contrast > 0) or holes (contrast < 0).

    Spots lie within 0.6 of the normalised radius; each has radius 8-22 % of the object's.

    Returns
    -------
    ndarray, shape (h, w), float32
    """
    factor = np.ones(footprint.rho.shape, dtype=np.float32)
    a, b = shape.semi_axes
    cos_t, sin_t = np.cos(shape.angle), np.sin(shape.angle)
    for _ in range(count):
        s, phi = 0.55 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        u, v = s * np.cos(phi) * a, s * np.sin(phi) * b
        row, col = u * cos_t - v * sin_t, u * sin_t + v * cos_t
        size = max(0.8, shape.radius * rng.uniform(0.08, 0.22))
        weight = np.float32(contrast * rng.uniform(0.5, 1.2))
        d2 = (footprint.dr - np.float32(row)) ** 2 + (footprint.dc - np.float32(col)) ** 2
        factor += weight * np.exp(d2 * np.float32(-0.5 / size**2))
    return factor


def texture(rng: np.random.Generator, footprint: Footprint, amplitude: float, scale: float):
    """Multiplicative texture ``1 + amplitude * smooth noise`` (chromatin, granules), (h, w)."""
    return 1.0 + np.float32(amplitude) * smooth_noise(rng, footprint.rho.shape, scale)


def render_nucleus(rng, footprint: Footprint, spec: ObjectSpec, params: SceneParams):
    """Textured nucleus with nucleoli or holes on a dome profile.

    Returns
    -------
    signal, envelope : ndarray, shape (h, w), float32
    """
    profile = dome(footprint, params.profile_gamma, spec.shape.radius)
    pattern = texture(rng, footprint, params.texture, params.texture_scale)
    count = int(rng.integers(0, params.nucleoli + 1))
    pattern *= spots(rng, footprint, spec.shape, count, params.nucleolus_contrast)
    signal = np.float32(spec.amplitude) * profile * np.maximum(pattern, np.float32(0.05))
    return signal, profile


def render_mitotic(rng, footprint: Footprint, spec: ObjectSpec, params: SceneParams):
    """Bright, compact, flat and coarsely textured mitotic chromatin.

    Returns
    -------
    signal, envelope : ndarray, shape (h, w), float32
    """
    profile = dome(footprint, 0.1, spec.shape.radius)
    pattern = np.maximum(texture(rng, footprint, 0.35, 0.8), np.float32(0.2))
    return np.float32(spec.amplitude) * profile * pattern, profile


def _nucleus_region(rng, footprint: Footprint, cell: Shape) -> np.ndarray:
    """Soft mask (h, w) of a nucleus-shaped region inside a cell, offset from its centre."""
    radius = cell.radius * rng.uniform(0.3, 0.5)
    offset, direction = cell.radius * rng.uniform(0.0, 0.25), rng.uniform(0, 2 * np.pi)
    centre = (
        cell.centre[0] + offset * np.cos(direction),
        cell.centre[1] + offset * np.sin(direction),
    )
    nucleus = random_shape(rng, radius, rng.uniform(1.0, 1.5), 0.03, centre=centre)
    inner = rasterise(nucleus, footprint.box)
    return np.clip(inner.distance / np.float32(1.5) + np.float32(0.5), 0.0, 1.0)


def render_cell(rng, footprint: Footprint, spec: ObjectSpec, params: SceneParams):
    """Cytoplasm-stained cell: granular texture and a darker or brighter nucleus region.

    The envelope is the cell body without the nucleus, so the label covers the whole cell.

    Returns
    -------
    signal, envelope : ndarray, shape (h, w), float32
    """
    profile = dome(footprint, params.profile_gamma * 0.6, spec.shape.radius)
    pattern = texture(rng, footprint, params.texture, params.texture_scale)
    factor = params.nucleus_factor * rng.uniform(0.85, 1.15)
    pattern *= 1.0 + np.float32(factor - 1.0) * _nucleus_region(rng, footprint, spec.shape)
    signal = np.float32(spec.amplitude) * profile * np.maximum(pattern, np.float32(0.05))
    return signal, profile


def _ring(distance: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Gaussian ring ``exp(-(d - centre)^2 / 2 width^2)`` over a signed-distance map."""
    return np.exp((distance - np.float32(centre)) ** 2 * np.float32(-0.5 / width**2))


def render_halo_cell(rng, footprint: Footprint, spec: ObjectSpec, params: SceneParams):
    """Brightfield or phase-contrast cell: a rim at the edge, a halo outside, a faint body.

    The rim is centred half its width inside the boundary and the halo just outside the rim;
    amplitudes scale with the object's rim amplitude (``spec.amplitude``).

    Returns
    -------
    signal, envelope : ndarray, shape (h, w), float32
    """
    scale = spec.amplitude / params.rim
    width = params.rim_width
    d = footprint.distance
    grain = texture(rng, footprint, 1.0, params.texture_scale) - np.float32(1.0)
    body = params.interior + 0.3 * abs(params.rim) * params.texture * grain
    signal = footprint.coverage * np.float32(scale) * body
    signal += np.float32(spec.amplitude) * _ring(d, 0.5 * width, width)
    halo_centre = -(width + params.halo_width)
    signal += np.float32(params.halo * scale) * _ring(d, halo_centre, params.halo_width)
    return signal.astype(np.float32), footprint.coverage


RENDERERS = {
    "nucleus": render_nucleus,
    "mitotic": render_mitotic,
    "cell": render_cell,
    "brightfield_cell": render_halo_cell,
    "phase_cell": render_halo_cell,
}
"""Renderer for each kind: ``(rng, footprint, spec, params) -> (signal, envelope)``."""
