"""Drawing objects' sizes and kinds, placing them, and sharing borders between touching ones.

Placement works on a padded canvas: canvas (row, col) = image (row, col) + ``pad``, with ``pad``
large enough that every object's window fits, so no window is ever clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import SceneParams
from .objects import ObjectSpec
from .shapes import Footprint, ellipse_mask, random_shapes, rasterise, window_box

_MODALITY_KIND = {
    "cytoplasm": "cell",
    "brightfield": "brightfield_cell",
    "phase": "phase_cell",
}


@dataclass(eq=False)
class Placed:
    """An object accepted into the scene: its spec (centre in canvas coordinates) and footprint."""

    spec: ObjectSpec
    footprint: Footprint


def target_count(image_shape: tuple[int, int], params: SceneParams) -> int:
    """Number of objects to place: ``params.n_objects`` when set, else from ``coverage`` and the
    mean object area, capped by ``max_density``. Up to ``placement_tries`` times as many are
    tried."""
    if params.n_objects is not None:
        return int(params.n_objects)
    area = image_shape[0] * image_shape[1]
    mean_area = math.pi * params.radius_mean**2 * math.exp(2 * params.radius_spread**2)
    wanted = params.coverage * area / mean_area
    return max(1, round(min(wanted, params.max_density * area / 1e6)))


def _kinds(rng: np.random.Generator, params: SceneParams, n: int) -> list[str]:
    if params.modality == "nuclei":
        mitotic = rng.random(n) < params.mitotic_fraction
        return ["mitotic" if m else "nucleus" for m in mitotic]
    return [_MODALITY_KIND[params.modality]] * n


def sample_specs(rng: np.random.Generator, params: SceneParams, n: int) -> list[ObjectSpec]:
    """Draw ``n`` objects' kinds, shapes (centred at the origin), amplitudes and blurs.

    Radii are log-normal around ``radius_mean`` and clipped to ``radius_limits``; mitotic figures
    are smaller, elongated, rough-edged and two to three times brighter. Cells get six boundary
    harmonics, nuclei four (see :func:`~.shapes.random_shape`).
    """
    kinds = _kinds(rng, params, n)
    mitotic = np.array([k == "mitotic" for k in kinds], dtype=bool)
    low, high = params.radius_limits
    radius = np.clip(
        params.radius_mean * np.exp(params.radius_spread * rng.normal(size=n)), low, high
    )
    aspect = rng.uniform(1.0, params.aspect_max, size=n)
    irregularity = params.irregularity * rng.uniform(0.3, 1.0, size=n)
    spread = np.exp(params.brightness_spread * rng.normal(size=n))
    # fluorescence: peak amplitude; transmitted light: rim amplitude (half the log-spread)
    amplitude = params.brightness * spread if params.fluorescence else params.rim * np.sqrt(spread)
    radius = np.where(mitotic, np.maximum(low, radius * rng.uniform(0.45, 0.75, size=n)), radius)
    aspect = np.where(mitotic, rng.uniform(1.3, 3.0, size=n), aspect)
    irregularity = np.where(mitotic, 0.15, irregularity)
    amplitude = np.where(mitotic, amplitude * rng.uniform(1.8, 3.5, size=n), amplitude)
    defocused = rng.random(n) < params.defocus_fraction
    defocus = params.defocus_sigma * rng.uniform(0.3, 1.0, size=n) * defocused
    sigma = np.hypot(params.psf_sigma, defocus)
    n_harmonics = 6 if params.modality == "cytoplasm" else 4
    shapes = random_shapes(rng, radius, aspect, irregularity, n_harmonics)
    return [
        ObjectSpec(kind, shape, float(a), float(s))
        for kind, shape, a, s in zip(kinds, shapes, amplitude, sigma, strict=True)
    ]


def _centre(
    rng: np.random.Generator,
    image_shape: tuple[int, int],
    spec: ObjectSpec,
    placed: list[Placed],
    params: SceneParams,
    pad: int,
) -> tuple[float, float]:
    """Canvas (row, col) for a new object: against a placed one (clustering) or uniform.

    Centres stay within 0.3 radius outside the image, so objects may be cut by its border.
    """
    slack = 0.3 * spec.shape.radius
    h, w = image_shape
    if placed and rng.random() < params.clustering:
        other = placed[int(rng.integers(len(placed)))].spec.shape
        distance = (other.radius + spec.shape.radius) * rng.uniform(0.8, 1.05)
        direction = rng.uniform(0, 2 * np.pi)
        row = other.centre[0] + distance * np.cos(direction)
        col = other.centre[1] + distance * np.sin(direction)
        if -slack <= row - pad <= h + slack and -slack <= col - pad <= w + slack:
            return float(row), float(col)
    return float(rng.uniform(-slack, h + slack) + pad), float(rng.uniform(-slack, w + slack) + pad)


def _fits(inside: np.ndarray, occupied: np.ndarray, areas: list[int], max_overlap: float) -> bool:
    """Whether a new footprint overlaps earlier objects by at most ``max_overlap`` of its own area
    (all together) and of each one's area. ``occupied`` holds earlier objects' ids (0 = free)."""
    area = int(inside.sum())
    if area == 0:
        return False
    ids = occupied[inside]
    ids = ids[ids > 0]
    if ids.size == 0:
        return True
    if ids.size > max_overlap * area:
        return False
    counts = np.bincount(ids)[1:]
    return not np.any(counts > max_overlap * np.asarray(areas[: counts.size]))


def place_objects(
    rng: np.random.Generator, image_shape: tuple[int, int], params: SceneParams
) -> tuple[list[Placed], int]:
    """Draw objects and place them one by one, rejecting those that overlap too much.

    Parameters
    ----------
    rng : numpy.random.Generator
    image_shape : (int, int)
        (H, W) of the image.
    params : SceneParams

    Returns
    -------
    placed : list of Placed
        In drawing order (later objects are on top).
    pad : int
        Canvas padding; the canvas is (H + 2 pad, W + 2 pad).
    """
    target = target_count(image_shape, params)
    specs = sample_specs(rng, params, int(target * params.placement_tries) + 2)
    # centres may lie 0.3 radius outside the image (see _centre)
    reach = max(s.shape.extent + s.margin(params) + 0.3 * s.shape.radius for s in specs)
    pad = math.ceil(reach) + 3
    occupied = np.zeros((image_shape[0] + 2 * pad, image_shape[1] + 2 * pad), dtype=np.int32)
    placed: list[Placed] = []
    areas: list[int] = []
    for spec in specs:
        if len(placed) >= target:
            break
        shape = spec.shape.moved(_centre(rng, image_shape, spec, placed, params, pad))
        r0, c0, r1, c1 = window_box(shape, 0.0)
        if not _fits(
            ellipse_mask(shape, (r0, c0, r1, c1)), occupied[r0:r1, c0:c1], areas, params.max_overlap
        ):
            continue
        footprint = rasterise(shape, window_box(shape, spec.margin(params)))
        inside = footprint.inside
        occupied[footprint.slices][inside] = len(placed) + 1
        areas.append(int(inside.sum()))
        placed.append(Placed(ObjectSpec(spec.kind, shape, spec.amplitude, spec.sigma), footprint))
    return placed, pad


def partition(placed: list[Placed], canvas_shape: tuple[int, int]) -> np.ndarray:
    """Share overlaps between touching objects: each pixel goes to the object it is deepest in
    (smallest normalised radius), which gives straight shared borders like confluent cells.

    Returns
    -------
    ndarray, shape ``canvas_shape``, int32
        1-based index into ``placed`` of each pixel's owner, 0 outside all objects.
    """
    depth = np.zeros(canvas_shape, dtype=np.float32)
    owner = np.zeros(canvas_shape, dtype=np.int32)
    for index, item in enumerate(placed, start=1):
        sl = item.footprint.slices
        mine = np.float32(1.0) - item.footprint.rho
        better = mine > depth[sl]
        depth[sl][better] = mine[better]
        owner[sl][better] = index
    return owner
