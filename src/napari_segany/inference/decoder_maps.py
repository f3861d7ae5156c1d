"""micro-sam's instance-segmentation decoder, from an image embedding to instance labels.

The maps (:func:`decoder_maps`) are the decoder's output over the padded model input, cropped to
the resized image and resized to the image's original size, as micro-sam does. The labels
(:func:`labels_from_distances`) follow micro-sam's post-processing: smooth the maps, seed one
object per connected region that is both near a centre and away from a border, flood the
foreground from the seeds over the boundary distances, drop small objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_segany.models.decoder_settings import DecoderSettings

# Smoothing as micro-sam's (vigra-style) Gaussian: a kernel of radius ceil(3 sigma) (scipy's own
# rounds), the image mirrored at the border without repeating the edge pixel.
_GAUSS_TRUNCATE = 3.0
_GAUSS_MODE = "mirror"


@dataclass(frozen=True)
class DecoderMaps:
    """A decoder's maps of one image, at the image's original size.

    Attributes
    ----------
    foreground : ndarray, shape (H, W), float32
        Probability that a pixel belongs to an object.
    center_distances : ndarray, shape (H, W), float32
        Distance to the object's centre, normalised (0 at the centre).
    boundary_distances : ndarray, shape (H, W), float32
        Distance to the object's boundary, inverted and normalised (0 deep inside, 1 at the
        border).
    """

    foreground: np.ndarray
    center_distances: np.ndarray
    boundary_distances: np.ndarray


def decoder_maps(model, embedding) -> DecoderMaps:
    """The instance decoder's maps of an encoded image.

    Parameters
    ----------
    model : SamModel
        With an instance decoder (``model.instance_decoder``).
    embedding : napari_segany.inference.embedding.ImageEmbedding
        The image's embedding by ``model``.

    Returns
    -------
    DecoderMaps
    """
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        maps = model.instance_decoder_maps(embedding.features.to(model.device)).float()
        rows, cols = embedding.input_size
        maps = maps[..., :rows, :cols]
        if tuple(embedding.original_size) != (rows, cols):
            maps = F.interpolate(
                maps, size=tuple(embedding.original_size), mode="bilinear", align_corners=False
            )
        maps = maps[0].cpu().numpy()
    return DecoderMaps(maps[0], maps[1], maps[2])


def labels_from_distances(maps: DecoderMaps, settings: DecoderSettings) -> np.ndarray:
    """Instance labels from a decoder's maps, with micro-sam's post-processing.

    Parameters
    ----------
    maps : DecoderMaps
        Foreground, centre-distance and boundary-distance maps, each (H, W).
    settings : DecoderSettings
        Thresholds, smoothing and smallest object size.

    Returns
    -------
    ndarray, shape (H, W), uint32
        Objects 1..N, 0 background. Foreground that no seed reaches stays background.
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
        image = np.asarray(image, np.float32)
        if sigma <= 0:
            return image
        radius = int(np.ceil(_GAUSS_TRUNCATE * sigma))
        return ndimage.gaussian_filter(image, sigma, mode=_GAUSS_MODE, radius=radius)

    foreground = smooth(maps.foreground, settings.foreground_smoothing)
    centers = smooth(maps.center_distances, settings.distance_smoothing)
    boundaries = smooth(maps.boundary_distances, settings.distance_smoothing)
    mask = foreground > settings.foreground_threshold
    seeds = (
        mask
        & (centers < settings.center_distance_threshold)
        & (boundaries < settings.boundary_distance_threshold)
    )
    markers, count = ndimage.label(seeds, structure=np.ones((3, 3), bool))
    if count == 0:
        return np.zeros(mask.shape, np.uint32)
    labels = watershed(boundaries, markers=markers, mask=mask, connectivity=1)
    return _drop_small(labels, settings.min_size)


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Objects with fewer than ``min_size`` pixels become background; IDs renumbered 1..N in
    order."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    lookup = np.zeros(sizes.size, np.uint32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return lookup[labels]
