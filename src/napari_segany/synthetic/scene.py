"""Whole synthetic scenes: objects, labels at half maximum, debris, background and camera.

Pipeline of :func:`generate_scene`:

1. draw the scene's parameters (:func:`~.config.sample_config`) unless given;
2. place objects (:func:`~.layout.place_objects`); in touching scenes, overlaps are split so
   neighbours share a border (:func:`~.layout.partition`) and each object's signal is cut there;
3. draw each object in its window (signal and smooth envelope) and blur both with the object's
   own blur (optics plus defocus); its label is where the blurred envelope is at least half its
   maximum;
4. resolve overlaps: in overlapping scenes the object drawn later (on top) owns the overlap, in
   touching scenes the one whose normalised (uncut) envelope is higher, which puts the shared
   border along the intensity valley between the two;
5. drop objects that are not visible (fewer than ``min_area`` pixels in the image, or a mean
   signal over the label -- over its edge pixels for brightfield cells -- below
   ``max(min_contrast, min_snr * noise std at the mean background)`` or of the wrong sign); the
   others are resolved again, until all labelled objects pass. Objects dropped in the first two
   rounds are removed from the image too (later, rare, drops only lose their label);
6. add unlabelled debris, the uneven background and illumination, noise, optional inversion and
   quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import add_noise, background, illumination, noise_std, quantise
from .config import SceneConfig, SceneParams, sample_config
from .debris import DebrisInfo, add_debris
from .filters import blur_window
from .layout import Placed, partition, place_objects
from .objects import RENDERERS, RIM_KINDS

_MAX_ROUNDS = 2  # rounds that remove dropped objects from the image; later ones only unlabel


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one labelled object (image coordinates, (row, col)).

    Attributes
    ----------
    label : int
        Its id in ``Scene.labels`` (1..N).
    kind : str
        One of ``objects.KINDS``.
    centre : (float, float)
        Centre of the drawn shape; may lie outside the image or under another object.
    centroid : (float, float)
        Mean (row, col) of the label's pixels.
    bbox : (int, int, int, int)
        (row0, col0, row1, col1) of the label, half-open.
    area : int
        Pixels in the label.
    radius : float
        Equivalent radius of the drawn shape before blur, pixels.
    brightness : float
        Signed amplitude as drawn (peak for fluorescence, rim for brightfield/phase), negated
        when the image is inverted.
    contrast : float
        Mean of (clean - background) from the labelled objects over the label (over its edge
        pixels for brightfield cells), negated when the image is inverted.
    """

    label: int
    kind: str
    centre: tuple[float, float]
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int]
    area: int
    radius: float
    brightness: float
    contrast: float


@dataclass(frozen=True, eq=False)
class Scene:
    """One synthetic image with its instance labels.

    Attributes
    ----------
    image : ndarray, shape (H, W), float32
        Noisy image in [0, 1] before quantisation.
    raw : ndarray, shape (H, W), uint8 or uint16
        ``image`` quantised to ``params.bit_depth`` bits (0..255, 0..4095 or 0..65535).
    labels : ndarray, shape (H, W), uint32
        0 = background, 1..N = objects, consecutive, in drawing order.
    objects : tuple of ObjectInfo
        ``objects[i]`` describes label ``i + 1``.
    debris : tuple of DebrisInfo
        Unlabelled clutter.
    params : SceneParams
    clean : ndarray, shape (H, W), float32
        Noise-free image in [0, 1] (inverted like ``image``).
    background : ndarray, shape (H, W), float32
        Noise-free image without objects or debris (inverted like ``image``).
    """

    image: np.ndarray
    raw: np.ndarray
    labels: np.ndarray
    objects: tuple[ObjectInfo, ...]
    debris: tuple[DebrisInfo, ...]
    params: SceneParams
    clean: np.ndarray
    background: np.ndarray


@dataclass(eq=False)
class _Drawn:
    """An object drawn and blurred in its window (canvas slices)."""

    slices: tuple[slice, slice]
    signal: np.ndarray  # (h, w) float32, blurred
    mask: np.ndarray  # (h, w) bool, blurred envelope >= half its maximum
    score: np.ndarray  # (h, w) float32, blurred envelope / its maximum


def _draw(rng, item: Placed, params: SceneParams, own: np.ndarray | None) -> _Drawn:
    """Render, restrict the signal to the pixels the object owns (touching scenes), blur, and
    cut the label at half the blurred envelope's maximum.

    The envelope is not restricted: touching neighbours' labels then overlap a little and are
    split where their normalised envelopes are equal, along the intensity valley between them,
    so they share a border as annotators draw it.
    """
    signal, envelope = RENDERERS[item.spec.kind](rng, item.footprint, item.spec, params)
    if own is not None:
        signal = signal * own
    signal, envelope = blur_window(np.stack([signal, envelope]), item.spec.sigma)
    peak = float(envelope.max())
    score = envelope / np.float32(peak) if peak > 0 else envelope
    return _Drawn(item.footprint.slices, signal, score >= 0.5, score)


def _draw_all(rng, placed: list[Placed], params: SceneParams, canvas_shape) -> list[_Drawn]:
    owner = partition(placed, canvas_shape) if params.touching else None
    drawn = []
    for index, item in enumerate(placed, start=1):
        own = None
        if owner is not None:
            window = owner[item.footprint.slices]
            own = ((window == index) | (window == 0)).astype(np.float32)
        drawn.append(_draw(rng, item, params, own))
    return drawn


def _resolve(drawn: list[_Drawn], keep: np.ndarray, canvas_shape, touching: bool) -> np.ndarray:
    """Label canvas (int32, 1-based index into ``drawn``): on top wins, or the higher score."""
    labels = np.zeros(canvas_shape, dtype=np.int32)
    best = np.zeros(canvas_shape, dtype=np.float32)
    for index, item in enumerate(drawn, start=1):
        if not keep[index - 1]:
            continue
        if touching:
            take = item.mask & (item.score > best[item.slices])
            best[item.slices][take] = item.score[take]
        else:
            take = item.mask
        labels[item.slices][take] = index
    return labels


def _edge_pixels(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels with a 4-neighbour of another label, shape (H, W) bool."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels > 0)


def _label_means(labels: np.ndarray, values: np.ndarray, region: np.ndarray, n: int):
    """Mean of ``values`` over ``region`` for each label 1..n, shape (n,); 0 where empty."""
    ids = labels[region]
    sums = np.bincount(ids, weights=values[region], minlength=n + 1)[1:]
    counts = np.bincount(ids, minlength=n + 1)[1:]
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def _measure(labels: np.ndarray, signal: np.ndarray, halo: bool, n: int):
    """Area and mean signal (edge pixels for halo cells) of labels 1..n, arrays of shape (n,)."""
    area = np.bincount(labels.ravel(), minlength=n + 1)[1 : n + 1]
    region = _edge_pixels(labels) if halo else labels > 0
    return area, _label_means(labels, signal, region, n)


def _visible_labels(drawn, placed, params, pad, image_shape, illum, bg_level):
    """Drop invisible objects (see module docs). Returns (labels crop, keep, signal crop)."""
    h, w = image_shape
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    canvas_shape = (h + 2 * pad, w + 2 * pad)
    canvas = np.zeros(canvas_shape, dtype=np.float32)
    for item in drawn:
        canvas[item.slices] += item.signal
    n = len(drawn)
    keep = np.ones(n, dtype=bool)
    sign = np.sign([p.spec.amplitude for p in placed]) if n else np.zeros(0)
    halo = bool(n) and placed[0].spec.kind in RIM_KINDS
    threshold = max(params.min_contrast, params.min_snr * noise_std(bg_level, params))
    rounds = 0
    while True:  # ends: every round drops at least one object
        labels = _resolve(drawn, keep, canvas_shape, params.touching)[crop]
        area, contrast = _measure(labels, illum * canvas[crop], halo, n)
        bad = keep & ((area < params.min_area) | (contrast * sign < threshold))
        if not bad.any():
            break
        keep &= ~bad
        if rounds < _MAX_ROUNDS:  # remove them from the image; later rounds only unlabel
            for index in np.flatnonzero(bad):
                canvas[drawn[index].slices] -= drawn[index].signal
        rounds += 1
    return labels, keep, canvas[crop]


def _bboxes(labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) int array of (row0, col0, row1, col1) per label 1..n, half-open."""
    rows, cols = np.nonzero(labels)
    ids = labels[rows, cols]
    box = np.empty((4, n + 1), dtype=np.int64)
    box[:2] = np.iinfo(np.int64).max
    box[2:] = -1
    np.minimum.at(box[0], ids, rows)
    np.minimum.at(box[1], ids, cols)
    np.maximum.at(box[2], ids, rows + 1)
    np.maximum.at(box[3], ids, cols + 1)
    return box[:, 1:].T


def _metadata(labels, placed, signal, params, pad) -> tuple[ObjectInfo, ...]:
    """ObjectInfo for each label of the final (consecutive) label image."""
    n = len(placed)
    if n == 0:
        return ()
    halo = placed[0].spec.kind in RIM_KINDS
    area, contrast = _measure(labels, signal, halo, n)
    rows, cols = np.indices(labels.shape, dtype=np.float64)
    region = labels > 0
    centroid_r = _label_means(labels, rows, region, n)
    centroid_c = _label_means(labels, cols, region, n)
    flip = -1.0 if params.inverted else 1.0
    infos = []
    for i, (item, box) in enumerate(zip(placed, _bboxes(labels, n), strict=True)):
        row, col = item.spec.shape.centre
        infos.append(
            ObjectInfo(
                label=i + 1,
                kind=item.spec.kind,
                centre=(row - pad, col - pad),
                centroid=(float(centroid_r[i]), float(centroid_c[i])),
                bbox=tuple(int(v) for v in box),
                area=int(area[i]),
                radius=item.spec.shape.radius,
                brightness=flip * item.spec.amplitude,
                contrast=flip * float(contrast[i]),
            )
        )
    return tuple(infos)


def _consecutive(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Renumber kept labels 1..N in order; uint32."""
    lut = np.zeros(keep.size + 1, dtype=np.uint32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return lut[labels]


def _expose(rng, illum, bg, signal, params: SceneParams):
    """Noisy image, clean image and background, all (H, W) float32 in [0, 1].

    ``illum * (bg + signal)`` is the clean image; noise is added before clipping (saturation),
    and all three are inverted for inverted-contrast scenes.
    """
    clean = np.maximum(illum * (bg + signal), 0.0)
    image = np.clip(add_noise(rng, clean, params), 0.0, 1.0)
    clean, background_image = np.minimum(clean, 1.0), np.clip(illum * bg, 0.0, 1.0)
    if params.inverted:
        image, clean, background_image = 1.0 - image, 1.0 - clean, 1.0 - background_image
    return tuple(a.astype(np.float32) for a in (image, clean, background_image))


def _rng(seed: int, held_out: bool) -> np.random.Generator:
    """Generator for a seed; training and held-out scenes use different streams."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(held_out),)))


def generate_scene(
    shape: tuple[int, int] = (256, 256),
    config: SceneConfig | SceneParams | None = None,
    seed: int = 0,
    held_out: bool | None = None,
) -> Scene:
    """Generate one synthetic microscopy scene with instance labels.

    Parameters
    ----------
    shape : (int, int)
        (H, W) of the image, (rows, cols).
    config : SceneConfig or SceneParams, optional
        Ranges to draw this scene's parameters from (default ``SceneConfig()``), or the exact
        parameters to use.
    seed : int
        Non-negative seed; the same seed (and ``held_out``) gives an identical scene.
    held_out : bool, optional
        Use the held-out parameter bands and seed stream (see ``config`` module docs). Default:
        ``config.held_out`` for a SceneParams, else False.

    Returns
    -------
    Scene
    """
    if held_out is None:
        held_out = config.held_out if isinstance(config, SceneParams) else False
    rng = _rng(seed, held_out)
    if isinstance(config, SceneParams):
        params = config
    else:
        params = sample_config(rng, held_out=held_out, config=config)
    placed, pad = place_objects(rng, shape, params)
    canvas_shape = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    drawn = _draw_all(rng, placed, params, canvas_shape)
    illum = illumination(rng, shape, params)
    bg = background(rng, shape, params)
    bg_level = float(np.mean(illum * bg))
    labels, keep, signal = _visible_labels(drawn, placed, params, pad, shape, illum, bg_level)
    labels = _consecutive(labels, keep)
    kept = [item for item, k in zip(placed, keep, strict=True) if k]
    debris_canvas = np.zeros(shape, dtype=np.float32)
    debris = add_debris(rng, debris_canvas, params)
    objects = _metadata(labels, kept, illum * signal, params, pad)
    image, clean, background_image = _expose(rng, illum, bg, signal + debris_canvas, params)
    return Scene(
        image=image,
        raw=quantise(image, params.bit_depth),
        labels=labels,
        objects=objects,
        debris=tuple(debris),
        params=params,
        clean=clean,
        background=background_image,
    )
