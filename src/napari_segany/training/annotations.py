"""A user's annotations as training data: checked inputs, training areas, a validation part,
and augmented crops.

* Every image goes through the same 8-bit conversion as at inference
  (:func:`napari_segany.image.source.open_image`, then
  :func:`napari_segany.image.prep.to_rgb_uint8` with the image's own intensity ranges).
* The training area of an image is where the user annotated: the union of the bounding boxes of
  the labelled objects, each grown by ``margin`` pixels (or an area the caller gives). Unlabelled
  pixels inside it are background; pixels outside it teach nothing.
* A validation part is held out: whole images when there are enough of them, else a strip at
  the end of each image's area (cut where it crosses the fewest objects).
* Training crops are square, centred on a random pixel of an area, scaled, flipped, rotated by
  multiples of 90° and changed in gain, gamma and noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_segany.image.prep import to_rgb_uint8
from napari_segany.training.data import Scene
from napari_segany.training.train_embedded import SceneBatch

__all__ = [
    "AnnotatedImage",
    "ValidationPart",
    "annotated_area",
    "prepare_annotations",
    "sample_batch",
    "sample_crop",
    "split_validation",
]

#: Objects smaller than this (pixels, in a crop) are not prompted.
MIN_PROMPT_PIXELS = 16


@dataclass
class AnnotatedImage:
    """One image with its labels, as training uses it.

    Attributes
    ----------
    name : str
        File name or ``"image <i>"``.
    rgb : ndarray, shape (H, W, 3), uint8
        The image as the model sees it.
    labels : ndarray, shape (H, W), int64
        Instance IDs, 0 background.
    area : ndarray, shape (H, W), bool
        Where training learns (the annotated area less the validation part).
    sha256 : str
        Hash of the image's and the labels' values, for provenance.
    """

    name: str
    rgb: np.ndarray
    labels: np.ndarray
    area: np.ndarray
    sha256: str


@dataclass
class ValidationPart:
    """A held-out box of one image: (row, col) slices into :class:`AnnotatedImage` arrays,
    and the annotated pixels inside it, shape (box rows, box cols), bool."""

    image: int
    rows: slice
    cols: slice
    area: np.ndarray


def _hash(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _check_labels(labels, shape: tuple[int, int], name: str) -> np.ndarray:
    """Labels as int64 (H, W), or a ValueError that says what is wrong and what to do."""
    labels = np.asarray(labels)
    while labels.ndim > 2 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim != 2 or labels.shape != shape:
        raise ValueError(
            f"the labels of {name} have shape {labels.shape}, the image is {shape} (rows, cols): "
            "give one label image per image, of the image's size, in the same order"
        )
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"the labels of {name} are {labels.dtype}, not integer: give an instance label "
            "image (one integer ID per object, 0 for background), such as a napari Labels layer"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"the labels of {name} have negative values: IDs must be ≥ 0")
    return labels.astype(np.int64, copy=False)


def annotated_area(labels: np.ndarray, margin: int) -> np.ndarray:
    """Where a user annotated: the union of the objects' bounding boxes grown by ``margin``.

    Parameters
    ----------
    labels : ndarray, shape (H, W), int
    margin : int
        Pixels added on every side of each box (clipped to the image).

    Returns
    -------
    ndarray, shape (H, W), bool
    """
    area = np.zeros(labels.shape, bool)
    for box in ndi.find_objects(labels):
        if box is None:
            continue
        rows, cols = box
        area[
            max(0, rows.start - margin) : rows.stop + margin,
            max(0, cols.start - margin) : cols.stop + margin,
        ] = True
    return area


def prepare_annotations(
    images: Sequence,
    labels: Sequence,
    *,
    channel_axis: int | None = None,
    areas: Sequence | None = None,
    margin: int = 8,
) -> list[AnnotatedImage]:
    """Check images and labels and convert them for training.

    Parameters
    ----------
    images : sequence
        Arrays (2D plane, RGB or with ``channel_axis``; any dtype), image files or
        :class:`~napari_segany.image.source.ImageSource` objects.
    labels : sequence
        One instance label image (H, W) per image, integer, 0 for background; may cover a part
        of the image only.
    channel_axis : int, optional
        Axis of channels of the images given as arrays or files.
    areas : sequence of ndarray (H, W) bool, optional
        Where each image is annotated; default :func:`annotated_area` of its labels.
    margin : int
        See :func:`annotated_area`.

    Raises
    ------
    ValueError
        With what is wrong and what to do: counts or shapes that differ, labels that are not
        integer, an image without labels, fewer than 2 objects in all.
    """
    from napari_segany.image.source import open_image

    if len(images) != len(labels):
        raise ValueError(
            f"{len(images)} image(s) but {len(labels)} label image(s): give one label image "
            "per image, in the same order"
        )
    if not images:
        raise ValueError("no images given: give at least one image and its labels")
    if areas is not None and len(areas) != len(images):
        raise ValueError(f"{len(areas)} area(s) for {len(images)} image(s)")
    prepared, objects = [], 0
    for i, (image, label_image) in enumerate(zip(images, labels, strict=True)):
        source = open_image(image, channel_axis=channel_axis)
        name = source.name if source.name != "image" else f"image {i + 1}"
        label_array = _check_labels(label_image, source.shape, name)
        count = len(np.unique(label_array)) - (1 if (label_array == 0).any() else 0)
        if count == 0:
            raise ValueError(f"{name} has no labels: annotate some objects in it, or leave it out")
        objects += count
        pixels = source.read_all()
        rgb = to_rgb_uint8(pixels, source.prep_channel_axis)
        if areas is None:
            area = annotated_area(label_array, margin)
        else:
            area = np.asarray(areas[i], bool)
            if area.shape != source.shape:
                raise ValueError(f"the area of {name} has shape {area.shape}, not {source.shape}")
        digest = _hash(np.asarray(pixels), label_array)
        prepared.append(AnnotatedImage(name, rgb, label_array, area, digest))
    if objects < 2:
        raise ValueError(
            f"only {objects} object is annotated: training needs at least 2 (a few dozen "
            "give a clearly better model)"
        )
    return prepared


def _cut(labels: np.ndarray, area: np.ndarray, fraction: float) -> tuple[int, int]:
    """Where to cut the last ``fraction`` of an area along its longer axis: (axis, index),
    among positions near that fraction the one crossing the fewest objects."""
    rows, cols = np.nonzero(area)
    axis = 0 if np.ptp(rows) >= np.ptp(cols) else 1
    coords = rows if axis == 0 else cols
    lo, hi = int(coords.min()), int(coords.max()) + 1
    target = hi - fraction * (hi - lo)
    window = max(1, int(0.05 * (hi - lo)))
    candidates = np.arange(int(target) - window, int(target) + window + 1)
    candidates = candidates[(candidates > lo) & (candidates < hi)]
    if len(candidates) == 0:
        return axis, round(target)
    moved = np.moveaxis(labels, axis, 0)
    crossing = [np.intersect1d(moved[c - 1], moved[c]).size - 1 for c in candidates]
    best = np.flatnonzero(np.array(crossing) == min(crossing))
    return axis, int(candidates[best[np.argmin(np.abs(candidates[best] - target))]])


def split_validation(
    images: list[AnnotatedImage], fraction: float, seed: int = 0
) -> list[ValidationPart]:
    """Hold out ``fraction`` of the annotations for validation; their pixels leave the images'
    training ``area`` (in place).

    With at least ``1 / fraction`` images, whole images are held out (chosen with ``seed``);
    otherwise a strip at the end of each image's annotated area (rows or columns, its longer
    axis) holding ``fraction`` of it.

    Raises
    ------
    ValueError
        The training or the validation part would hold no object.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation must be a fraction between 0 and 1, got {fraction}")
    if fraction == 0:
        return []
    parts = []
    if len(images) >= 1 / fraction:
        count = max(1, round(fraction * len(images)))
        held = np.random.default_rng(seed).choice(len(images), count, replace=False)
        for i in sorted(int(j) for j in held):
            image = images[i]
            parts.append(ValidationPart(i, slice(0, None), slice(0, None), image.area.copy()))
            image.area = np.zeros_like(image.area)
    else:
        for i, image in enumerate(images):
            axis, cut = _cut(image.labels, image.area, fraction)
            box = [slice(0, None), slice(0, None)]
            box[axis] = slice(cut, None)
            held = np.zeros_like(image.area)
            held[tuple(box)] = image.area[tuple(box)]
            rows, cols = np.nonzero(held)
            if len(rows) == 0:
                continue
            rows_s, cols_s = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
            parts.append(ValidationPart(i, rows_s, cols_s, held[rows_s, cols_s]))
            image.area = image.area & ~held
    train_objects = sum(len(np.unique(im.labels[im.area & (im.labels > 0)])) for im in images)
    held_objects = sum(
        len(np.unique(images[p.image].labels[p.rows, p.cols][p.area])) - 1 for p in parts
    )
    if train_objects == 0 or held_objects <= 0:
        raise ValueError(
            f"holding out {fraction:.0%} for validation leaves {train_objects} object(s) to "
            f"train on and {max(0, held_objects)} to validate on: annotate more objects, or "
            "pass validation=0 (--validation 0) to train on all of them without validation"
        )
    return parts


def _augment_intensity(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random gain, gamma and Gaussian noise on an (S, S, 3) uint8 image (half of the calls)."""
    if rng.random() < 0.5:
        return rgb
    values = rgb.astype(np.float32) / 255
    gain = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    gamma = np.exp(rng.uniform(np.log(0.7), np.log(1.4)))
    values = np.clip(values * gain, 0, 1) ** gamma
    values += rng.normal(0, rng.uniform(0, 0.04), values.shape).astype(np.float32)
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)


def sample_crop(
    image: AnnotatedImage,
    size: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.8, 1.25),
) -> tuple[Scene, np.ndarray]:
    """One augmented square crop around a random pixel of the image's training area.

    Parameters
    ----------
    image : AnnotatedImage
    size : int
        Side S of the crop (a multiple of 16).
    rng : Generator
    scale_range : (float, float)
        Zoom factors drawn log-uniformly (> 1 makes objects larger).

    Returns
    -------
    scene : Scene
        S × S; an image smaller than the crop fills its top-left part and the rest is
        ``padding``, as at inference.
    valid : ndarray, shape (S, S), bool
        Pixels inside the training area (False in the padding).
    """
    h, w = image.labels.shape
    zoom = float(np.exp(rng.uniform(*np.log(scale_range))))
    side = int(np.ceil(size / zoom))
    centre = np.unravel_index(rng.choice(np.flatnonzero(image.area)), (h, w))
    r0 = int(np.clip(centre[0] - side // 2, 0, max(0, h - side)))
    c0 = int(np.clip(centre[1] - side // 2, 0, max(0, w - side)))
    window = (slice(r0, r0 + side), slice(c0, c0 + side))
    rgb, labels, valid = image.rgb[window], image.labels[window], image.area[window]
    if zoom != 1:
        out = [min(size, round(n * zoom)) for n in labels.shape]
        factors = [o / n for o, n in zip(out, labels.shape, strict=True)]
        rgb = ndi.zoom(rgb, (*factors, 1), order=1, grid_mode=True, mode="grid-constant")
        labels = ndi.zoom(labels, factors, order=0, grid_mode=True, mode="grid-constant")
        valid = ndi.zoom(
            valid.view(np.uint8), factors, order=0, grid_mode=True, mode="grid-constant"
        ).astype(bool)
    turns = int(rng.integers(4))
    rgb, labels, valid = (np.rot90(a, turns) for a in (rgb, labels, valid))
    if rng.random() < 0.5:
        rgb, labels, valid = (a[:, ::-1] for a in (rgb, labels, valid))
    rgb = _augment_intensity(np.ascontiguousarray(rgb), rng)
    pad = (size - labels.shape[0], size - labels.shape[1])
    full_rgb = np.zeros((size, size, 3), np.uint8)
    full_labels = np.zeros((size, size), np.int64)
    full_valid = np.zeros((size, size), bool)
    full_rgb[: labels.shape[0], : labels.shape[1]] = rgb
    full_labels[: labels.shape[0], : labels.shape[1]] = labels
    full_valid[: labels.shape[0], : labels.shape[1]] = valid
    return Scene(full_rgb, full_labels, pad), full_valid


def _whole_objects(labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """IDs of the objects of a crop that lie wholly in its valid pixels and are big enough."""
    ids, counts = np.unique(labels, return_counts=True)
    outside = np.unique(labels[~valid])
    keep = (ids > 0) & (counts >= MIN_PROMPT_PIXELS) & ~np.isin(ids, outside)
    return ids[keep]


def sample_batch(
    images: list[AnnotatedImage],
    size: int,
    scenes: int,
    objects_per_scene: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.8, 1.25),
) -> SceneBatch:
    """Crops of the images' training areas (images chosen by area size) and their objects to
    prompt (only objects wholly inside the area), with the crops' valid pixels."""
    sizes = np.array([im.area.sum() for im in images], dtype=np.float64)
    chosen_scenes, valid, masks, scene_of = [], [], [], []
    for _ in range(scenes * 20):
        image = images[rng.choice(len(images), p=sizes / sizes.sum())]
        scene, ok = sample_crop(image, size, rng, scale_range)
        ids = _whole_objects(scene.labels, ok)
        if len(ids) == 0:
            continue
        picked = rng.choice(ids, size=min(objects_per_scene, len(ids)), replace=False)
        masks += [scene.labels == i for i in picked]
        scene_of += [len(chosen_scenes)] * len(picked)
        chosen_scenes.append(scene)
        valid.append(ok)
        if len(chosen_scenes) == scenes:
            break
    if not chosen_scenes:
        raise ValueError(
            "no crop of the training area holds a whole object: annotate objects smaller than "
            f"the crop ({size} pixels) or more of them"
        )
    return SceneBatch(chosen_scenes, masks, np.array(scene_of), np.stack(valid))
