"""Instance labels from an instance head's foreground, object-centre and boundary maps (seeded
watershed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Numbers of flipped views whose instance maps can be averaged (see ``InstanceSeeding``).
FLIPS = (1, 4, 8)


@dataclass(frozen=True)
class InstanceSeeding:
    """How an instance head's maps become objects (defaults chosen on validation images with
    ``benchmarks/tune_automatic.py``; see docs/history.md).

    Attributes
    ----------
    min_size : int
        Objects with fewer pixels are dropped.
    fill_holes : bool
        Fill holes enclosed by one object.
    foreground_threshold, seed_threshold : float
        Foreground probability above which a pixel is inside an object, and centre value above
        which pixels seed an object.
    centre_sigma : float
        Gaussian smoothing of the centre map (pixels) before seeding.
    boundary_weight : float
        How much of the boundary map (borders between touching objects) is subtracted from the
        centre map before seeding and flooding (0: the boundary map is not used).
    boundary_threshold : float
        Boundary probabilities up to this are ignored; above it they count from 0 to 1 (faint
        boundary values inside large objects would otherwise cut them into pieces).
    split_solidity : float
        Objects whose solidity (area ÷ convex hull area) is below this are split along their
        necks, e.g. two touching nuclei seeded as one (0: never).
    peak_prominence : float
        A seed holding two or more maxima of the (smoothed) centre map that rise at least this
        much above the saddles around them is split into those maxima, e.g. two touching
        nuclei whose centres are joined above the seed threshold (0: never split).
    flips : {1, 4, 8}
        The maps are averaged over this many flipped views of the image, each encoded on its
        own: 1 the image as it is, 4 with its up-down, left-right and both flips, 8 with the
        same four of its transpose. More flips cost more encodings and smooth out the model's
        mistakes (measured accuracy in docs/benchmarks.md).
    """

    min_size: int = 10
    fill_holes: bool = True
    foreground_threshold: float = 0.5
    seed_threshold: float = 0.3
    centre_sigma: float = 2.0
    boundary_weight: float = 1.5
    boundary_threshold: float = 0.3
    split_solidity: float = 0.95
    peak_prominence: float = 0.0
    flips: int = 4

    def __post_init__(self) -> None:
        if self.min_size < 0:
            raise ValueError(f"min_size must be ≥ 0, got {self.min_size}")
        for name in ("foreground_threshold", "seed_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("centre_sigma", "boundary_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if not 0 <= self.boundary_threshold < 1:
            raise ValueError(
                f"boundary_threshold must be ≥ 0 and below 1, got {self.boundary_threshold}"
            )
        for name in ("split_solidity", "peak_prominence"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.flips not in FLIPS:
            raise ValueError(f"flips must be one of {FLIPS}, got {self.flips!r}")

    def labels(
        self, foreground: np.ndarray, centre: np.ndarray, boundary: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`labels_from_maps` with these settings; (H, W) uint32."""
        return labels_from_maps(
            foreground,
            centre,
            boundary,
            boundary_weight=self.boundary_weight,
            boundary_threshold=self.boundary_threshold,
            foreground_threshold=self.foreground_threshold,
            seed_threshold=self.seed_threshold,
            min_size=self.min_size,
            fill_holes=self.fill_holes,
            centre_sigma=self.centre_sigma,
            split_solidity=self.split_solidity,
            peak_prominence=self.peak_prominence,
        )


def labels_from_maps(
    foreground: np.ndarray,
    centre: np.ndarray,
    boundary: np.ndarray | None = None,
    *,
    boundary_weight: float = 1.0,
    boundary_threshold: float = 0.0,
    foreground_threshold: float = 0.5,
    seed_threshold: float = 0.5,
    min_size: int = 10,
    fill_holes: bool = True,
    centre_sigma: float = 0.0,
    split_solidity: float = 0.0,
    peak_prominence: float = 0.0,
) -> np.ndarray:
    """Split the foreground into objects, one per region of high centre value.

    Parameters
    ----------
    foreground : ndarray, shape (H, W), float
        Probability that a pixel belongs to any object (0–1).
    centre : ndarray, shape (H, W), float
        Predicted distance to the object border, normalised per object (0 at the border, 1 at
        the centre); see :func:`napari_segany.training.instance_targets.centre_map`.
    boundary : ndarray, shape (H, W), float, optional
        Probability that a pixel lies on a border between two touching objects (see
        :func:`napari_segany.training.instance_targets.touching_border_map`).
    boundary_weight : float
        ``boundary_weight`` × boundary is subtracted from the centre map (after smoothing), so a
        border the head sees cuts the seeds and the flooding apart even where the centre map
        barely dips.
    boundary_threshold : float
        Boundary values up to it count as 0, those above it are rescaled to 0–1 first.
    foreground_threshold : float
        Pixels above it are foreground.
    seed_threshold : float
        Connected regions of foreground pixels whose centre value is above it seed one object
        each. Lower values merge touching objects, higher values split elongated ones.
        Foreground not reached from any seed stays background.
    min_size : int
        Objects with fewer pixels are removed (and their pixels left as background).
    fill_holes : bool
        Fill holes inside each object.
    centre_sigma : float
        Gaussian smoothing (pixels) of the centre map before seeding; removes small noisy
        peaks that would split one object into several.
    split_solidity : float
        Objects less convex than this are split along their necks
        (:func:`split_concave_objects`); 0 never splits.
    peak_prominence : float
        Seeds holding two or more centre maxima at least this high above the saddles around
        them are split into those maxima (:func:`split_seeds_at_peaks`); 0 never splits.

    Returns
    -------
    ndarray, shape (H, W), uint32
        Instance labels 1..N in raster order of their seeds, 0 background.
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    foreground = np.asarray(foreground, np.float32)
    centre = np.asarray(centre, np.float32)
    shapes = {foreground.shape, centre.shape}
    if boundary is not None:
        boundary = np.asarray(boundary, np.float32)
        shapes.add(boundary.shape)
    if len(shapes) > 1 or foreground.ndim != 2:
        raise ValueError(f"the instance maps must be 2D and of one shape, got {sorted(shapes)}")
    if centre_sigma > 0:
        centre = ndimage.gaussian_filter(centre, centre_sigma)
    if boundary is not None and boundary_weight > 0:
        excess = np.clip((boundary - boundary_threshold) / (1 - boundary_threshold), 0, None)
        centre = centre - boundary_weight * excess
    mask = foreground > foreground_threshold
    seeds, n_seeds = ndimage.label(mask & (centre > seed_threshold))
    if n_seeds == 0:
        return np.zeros(mask.shape, np.uint32)
    if peak_prominence > 0:
        seeds = split_seeds_at_peaks(seeds, centre, peak_prominence)
    # foreground regions without a seed are left out: they were mostly background patches
    # next to objects, and keeping them lowered accuracy (docs/history.md)
    labels = watershed(-centre, markers=seeds, mask=mask)
    if fill_holes:
        labels = fill_object_holes(labels)
    if split_solidity > 0:
        labels = split_concave_objects(labels, split_solidity)
    return relabel_sequential(remove_small_objects(labels, min_size))


def split_seeds_at_peaks(seeds: np.ndarray, centre: np.ndarray, prominence: float) -> np.ndarray:
    """Replace each seed holding two or more prominent centre maxima by those maxima.

    Parameters
    ----------
    seeds : ndarray, shape (H, W), integer
        Seed labels 1..N, 0 elsewhere.
    centre : ndarray, shape (H, W), float
        The centre map the seeds were thresholded from.
    prominence : float
        A maximum counts if it rises at least this much above every saddle that joins it to a
        higher one (scikit-image's ``h_maxima``).

    Returns
    -------
    ndarray, shape (H, W)
        Seeds with one or no maximum unchanged; the maxima of the others as new seeds (IDs
        after the largest), the rest of those seeds 0 (the watershed floods it).
    """
    from scipy import ndimage
    from skimage.morphology import h_maxima

    peaks, n_peaks = ndimage.label((h_maxima(centre, prominence) > 0) & (seeds > 0))
    if n_peaks < 2:
        return seeds
    owner = np.zeros(n_peaks + 1, np.int64)  # the seed holding each maximum
    owner[peaks.ravel()] = seeds.ravel()
    owner[0] = 0
    n_seeds = int(seeds.max())
    split = np.bincount(owner[1:], minlength=n_seeds + 1) >= 2
    split[0] = False
    out = np.where(split[seeds], 0, seeds)
    moved = split[owner[peaks]] & (peaks > 0)
    out[moved] = peaks[moved] + n_seeds
    return out


def split_concave_objects(
    labels: np.ndarray,
    max_solidity: float,
    separation: float = 1.0,
    max_neck: float = 0.8,
    min_area: int = 30,
) -> np.ndarray:
    """Split objects that are clearly not convex (two touching nuclei taken for one) at necks.

    An object whose solidity (area ÷ area of its convex hull) is below ``max_solidity`` is cut
    by a watershed of its distance transform, seeded at the transform's peaks that lie at least
    ``separation`` × its largest inscribed radius apart. Two parts stay separate only if the
    neck between them is narrow: the largest distance to the border along their interface is
    below ``max_neck`` × the smaller of their own largest distances. So a convex object, or an
    elongated one whose distance transform has a flat ridge, stays whole.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Instance labels, 0 background.
    max_solidity : float
        Objects with a lower solidity are candidates for splitting (0–1).
    separation : float
        Minimum distance between the seeds of two parts, in units of the object's largest
        inscribed radius.
    max_neck : float
        Largest neck half-width, relative to the thinner part's inscribed radius, at which two
        parts are kept apart (0–1).
    min_area : int
        Smaller objects are never split.

    Returns
    -------
    ndarray, shape (H, W)
        The labels with new IDs (after the largest) for the split-off parts.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.measure import regionprops
    from skimage.segmentation import watershed

    out = labels.copy()
    next_id = int(labels.max()) + 1
    for region in regionprops(labels):
        if region.area < min_area or region.solidity >= max_solidity:
            continue
        mask = region.image
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        peaks = peak_local_max(
            depth,
            min_distance=max(2, int(separation * depth.max())),
            labels=mask.astype(np.uint8),
            exclude_border=False,
        )
        if len(peaks) < 2:
            continue
        markers = np.zeros(mask.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        parts = _merge_wide_necks(watershed(-depth, markers, mask=mask), depth, max_neck)
        view = out[region.slice]
        for part in np.unique(parts[parts > 0])[1:]:  # the first part keeps the object's ID
            view[parts == part] = next_id
            next_id += 1
    return out


def _merge_wide_necks(parts: np.ndarray, depth: np.ndarray, max_neck: float) -> np.ndarray:
    """Join neighbouring parts (labels ≥ 1 of one object) whose interface is not a narrow neck."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = int(parts.max())
    peak = np.zeros(n + 1)
    np.maximum.at(peak, parts.ravel(), depth.ravel())
    saddle = np.zeros((n + 1, n + 1))  # deepest interface pixel between two parts
    neighbours = (
        (parts[1:], parts[:-1], depth[1:], depth[:-1]),  # vertical pairs
        (parts[:, 1:], parts[:, :-1], depth[:, 1:], depth[:, :-1]),  # horizontal pairs
    )
    for a, b, depth_a, depth_b in neighbours:
        touching = (a != b) & (a > 0) & (b > 0)
        shallower = np.minimum(depth_a, depth_b)[touching]
        np.maximum.at(saddle, (a[touching], b[touching]), shallower)
    saddle = np.maximum(saddle, saddle.T)
    wide = (saddle > 0) & (saddle >= max_neck * np.minimum.outer(peak, peak))
    _, component = connected_components(csr_matrix(wide), directed=False)
    return component[parts]  # background (0) touches no part, so it stays component 0


def fill_object_holes(labels: np.ndarray) -> np.ndarray:
    """Fill background holes that lie entirely inside one object.

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer

    Returns
    -------
    ndarray, same shape and dtype; a background region enclosed by a single object takes its ID.
    """
    from scipy import ndimage

    background, n = ndimage.label(labels == 0)
    if n <= 1:
        return labels
    out = labels.copy()
    # background regions touching the image edge are not holes
    edge = np.unique(
        np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    )
    slices = ndimage.find_objects(background)
    for region, sl in enumerate(slices, start=1):
        if sl is None or region in edge:
            continue
        grown = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
        window = background[grown] == region
        ring = ndimage.binary_dilation(window) & ~window
        around = np.unique(labels[grown][ring])
        if len(around) == 1 and around[0] != 0:
            out[grown][window] = around[0]
    return out


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than ``min_size`` pixels to 0 (labels (H, W), integer)."""
    if min_size <= 1 or not labels.any():
        return labels
    areas = np.bincount(labels.ravel())
    small = areas < min_size
    small[0] = False
    return np.where(small[labels], 0, labels)


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber objects 1..N keeping their order; (H, W) integer → (H, W) uint32."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lookup = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.uint32)
    lookup[ids] = np.arange(1, len(ids) + 1, dtype=np.uint32)
    return lookup[labels]
