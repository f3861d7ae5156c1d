"""Per-object confidence of the instance-head method: how likely an object is right.

The objects of an instance head's maps are described by a few cheap features (how sure and how
consistent the maps are inside the object, how many centre peaks it holds, its shape and size
relative to the image's other objects), and a logistic scorer turns them into a probability that
the object is correct rather than a merge, a fragment or a false object (see
:func:`napari_segany.automatic.metrics.object_errors`). The scorer's numbers are fitted on
synthetic scenes by ``scripts/fit_confidence.py`` and ship as JSON next to the model's weights;
inference needs numpy and scipy only.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

#: The packaged scorer fitted for the embedded model's instance head.
SCORER_FILE = "segany_cells_v7_confidence.json"

#: Features, in the scorer's order (see :func:`object_features`).
FEATURES = (
    "foreground_mean",
    "stability",
    "foreground_spread",
    "centre_max",
    "centre_mean",
    "centre_peaks",
    "log_relative_area",
    "solidity",
    "log_elongation",
    "touching",
    "boundary_inside",
)

#: Pixels at least this far (chessboard, pixels) inside an object's outline are its interior,
#: where a predicted boundary means the object holds a border between two objects.
INTERIOR_DEPTH = 3

#: Centre value above which a connected region counts as one centre peak: above the seed
#: threshold, so two nuclei seeded as one (their centres joined by a saddle) show two peaks.
PEAK_LEVEL = 0.7


@dataclass(frozen=True)
class ConfidenceScorer:
    """A logistic scorer on standardised features.

    ``confidence = 1 / (1 + exp(-(intercept + coef · (x - mean) / scale)))``.

    Attributes
    ----------
    features : tuple of str
        Feature names, in column order.
    mean, scale, coef : ndarray, shape (F,)
    intercept : float
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, data: dict) -> ConfidenceScorer:
        """From the JSON layout written by ``scripts/fit_confidence.py``."""
        arrays = [np.asarray(data[k], np.float64) for k in ("mean", "scale", "coef")]
        features = tuple(data["features"])
        if any(a.shape != (len(features),) for a in arrays):
            raise ValueError("scorer arrays must have one value per feature")
        return cls(features, *arrays, float(data["intercept"]))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Confidence of each row of ``features`` (N, F), columns in :data:`FEATURES` order;
        (N,) in [0, 1]."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))


@cache
def packaged_scorer() -> ConfidenceScorer:
    """The scorer shipped in ``napari_segany/weights`` (read once)."""
    text = resources.files("napari_segany.weights").joinpath(SCORER_FILE).read_text("utf-8")
    scorer = ConfidenceScorer.from_dict(json.loads(text))
    if scorer.features != FEATURES:
        raise ValueError(f"{SCORER_FILE} scores {scorer.features}, expected {FEATURES}")
    return scorer


def object_features(
    labels: np.ndarray,
    foreground: np.ndarray,
    centre: np.ndarray,
    spread: np.ndarray | None = None,
    stability: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of every object of an instance-head label image, one row per object.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Instance labels, 0 background.
    foreground, centre : ndarray, shape (H, W), float
        The head's (flip-averaged) maps the labels came from.
    spread : ndarray, shape (H, W), float, optional
        Foreground spread across flipped views (:class:`~napari_segany.inference.instance_maps.
        InstanceMaps`); zeros when not given.
    stability : ndarray, shape (max ID + 1,), optional
        Stability of each ID (index = ID); ones when not given.
    boundary : ndarray, shape (H, W), float, optional
        The head's boundary map (borders between touching objects); zeros when not given.

    Returns
    -------
    ids : ndarray, shape (N,)
        Object IDs present, ascending.
    features : ndarray, shape (N, F), float64
        Columns in :data:`FEATURES` order: mean foreground probability; stability; mean
        foreground spread; largest and mean centre value; number of centre regions above
        :data:`PEAK_LEVEL` (a merge holds two); log of the area over the image's median object
        area; solidity (area ÷ convex hull area); log of the ratio of the principal axes; share
        of the object's boundary pixels that touch another object.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    flat = labels.ravel()
    n = int(flat.max()) + 1 if flat.size else 1
    area = np.bincount(flat, minlength=n).astype(np.float64)
    ids = np.flatnonzero(area)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return ids, np.zeros((0, len(FEATURES)))

    def mean_of(values: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=values.ravel(), minlength=n)[ids] / area[ids]

    spread = np.zeros(labels.shape) if spread is None else spread
    boundary = np.zeros(labels.shape) if boundary is None else boundary
    stability = np.ones(n) if stability is None else np.asarray(stability)
    centre_max = np.asarray(ndimage.maximum(centre, labels, ids), np.float64)
    peaks = _regions_per_object(labels, centre > PEAK_LEVEL, n)[ids]
    rel_area = np.log(area[ids] / np.median(area[ids]))
    outline, touches = _boundary(labels)
    columns = [
        mean_of(foreground),
        stability[ids],
        mean_of(spread),
        centre_max,
        mean_of(centre),
        np.minimum(peaks, 3),
        rel_area,
        _solidity(labels, outline, ids, area),
        _log_elongation(labels, ids, area, n),
        _touching(labels, outline, touches, n)[ids],
        _interior_maximum(labels, outline, boundary, ids),
    ]
    return ids, np.stack(columns, axis=1)


def _regions_per_object(labels: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Number of connected regions of ``mask`` inside each object (index = ID), shape (n,)."""
    from scipy import ndimage

    regions, count = ndimage.label(mask & (labels > 0))
    if count == 0:
        return np.zeros(n)
    inside = regions > 0
    pairs = np.unique(labels[inside].astype(np.int64) * (count + 1) + regions[inside])
    return np.bincount(pairs // (count + 1), minlength=n).astype(np.float64)


def _solidity(
    labels: np.ndarray, outline: np.ndarray, ids: np.ndarray, area: np.ndarray
) -> np.ndarray:
    """Area ÷ convex hull area per object (1 for objects too small or flat for a hull);
    ``outline`` as from :func:`_boundary`."""
    from scipy.spatial import ConvexHull, QhullError

    # the hull of an object's pixels is the hull of its boundary pixels: far fewer points
    rows, cols = np.nonzero(outline & (labels > 0))
    owner = labels[rows, cols]
    order = np.argsort(owner, kind="stable")
    rows, cols, owner = rows[order], cols[order], owner[order]
    starts = np.searchsorted(owner, ids)
    stops = np.searchsorted(owner, ids, side="right")
    out = np.ones(len(ids))
    for k, (i, a, b) in enumerate(zip(ids, starts, stops, strict=True)):
        r, c = rows[a:b], cols[a:b]
        # pixel corners, so the hull of a pixel set holds every pixel whole
        corners = np.concatenate([np.stack([r + dr, c + dc], 1) for dr in (0, 1) for dc in (0, 1)])
        with suppress(QhullError):  # a degenerate hull: keep 1
            out[k] = min(1.0, area[i] / ConvexHull(corners).volume)
    return out


def _log_elongation(labels: np.ndarray, ids: np.ndarray, area: np.ndarray, n: int) -> np.ndarray:
    """log of sqrt(largest / smallest eigenvalue) of each object's pixel covariance."""
    rows, cols = np.nonzero(labels)  # object pixels only: background adds nothing
    owner = labels[rows, cols]
    r, c = rows.astype(np.float64), cols.astype(np.float64)

    def moment(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values, minlength=n)[ids] / area[ids]

    mr, mc = moment(r), moment(c)
    vrr = moment(r * r) - mr**2 + 1 / 12  # + a pixel's own variance: single pixels stay finite
    vcc = moment(c * c) - mc**2 + 1 / 12
    vrc = moment(r * c) - mr * mc
    half_gap = np.sqrt(((vrr - vcc) / 2) ** 2 + vrc**2)
    big, small = (vrr + vcc) / 2 + half_gap, (vrr + vcc) / 2 - half_gap
    return 0.5 * np.log(big / np.maximum(small, 1e-6))


def _boundary(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with a 4-neighbour of another value (image edge = background), and those of them
    next to another object; both (H, W) bool."""
    padded = np.pad(labels, 1)
    centre = padded[1:-1, 1:-1]
    boundary = np.zeros(labels.shape, bool)
    touches = np.zeros(labels.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        differs = neighbour != centre
        boundary |= differs
        touches |= differs & (neighbour > 0)
    return boundary, touches


def _interior_maximum(
    labels: np.ndarray, outline: np.ndarray, values: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """Largest value of each object's interior pixels (0 for objects too thin to have any);
    ``outline`` as from :func:`_boundary`."""
    from scipy import ndimage

    depth = ndimage.distance_transform_cdt((labels > 0) & ~outline, metric="chessboard")
    interior = np.where(depth >= INTERIOR_DEPTH, labels, 0)
    found = np.asarray(ndimage.maximum(values, interior, ids), np.float64)
    present = np.bincount(interior.ravel(), minlength=int(labels.max()) + 1)[ids] > 0
    return np.where(present, found, 0.0)


def _touching(labels: np.ndarray, outline: np.ndarray, touches: np.ndarray, n: int) -> np.ndarray:
    """Share of each object's boundary pixels (4-neighbourhood) next to another object;
    ``outline`` and ``touches`` as from :func:`_boundary`."""
    flat = labels.ravel()
    edge = np.bincount(flat, weights=outline.ravel(), minlength=n)
    return np.bincount(flat, weights=touches.ravel(), minlength=n) / np.maximum(edge, 1)


def head_confidence(
    labels: np.ndarray,
    foreground: np.ndarray,
    centre: np.ndarray,
    spread: np.ndarray | None,
    stability: dict[int, float],
    scorer: ConfidenceScorer | None = None,
    boundary: np.ndarray | None = None,
) -> dict[int, float]:
    """Object ID → confidence in [0, 1] for the objects of an instance-head label image.

    Parameters
    ----------
    labels, foreground, centre, spread, boundary
        As for :func:`object_features`.
    stability : dict of int to float
        Object ID → stability (:func:`napari_segany.automatic.tile.head_object_scores`).
    scorer : ConfidenceScorer, optional
        Default :func:`packaged_scorer`.
    """
    n = int(labels.max()) + 1 if labels.size else 1
    stable = np.ones(n)
    for i, value in stability.items():
        stable[i] = value
    ids, features = object_features(labels, foreground, centre, spread, stable, boundary)
    confidence = (scorer or packaged_scorer())(features)
    return {int(i): float(c) for i, c in zip(ids, confidence, strict=True)}
