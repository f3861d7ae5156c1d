"""Turn microscopy images of any dtype and channel layout into SAM's 8-bit RGB input.

SAM was trained on 8-bit RGB photographs. An 8-bit RGB image is passed through unchanged, exactly as
SAM expects. Everything else (grayscale, 16-bit, float, multichannel fluorescence) is scaled per
channel between robust percentiles, so one hot pixel or a NaN does not wash out the image.
Intensity ranges can be computed once on a whole (large) image and applied tile by tile.

One channel can be read as a grayscale image instead (``channel=``: an index, or ``"mean"`` of
the colour channels). An RGB image whose signal is in one channel only (a DAPI image saved as
RGB) is read as grayscale of that channel without being asked: see
:func:`napari_segany.image.channels.grayscale_channel`.
The choice depends only on the intensity ranges, so a tile is read as its whole image is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from napari_segany.image.channels import MEAN, colour_count, grayscale_channel, grayscale_range

#: Percentiles mapped to 0 and 255 when an image is rescaled.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.8
#: Percentiles are estimated on at most this many pixels per channel (a regular subsample).
_PERCENTILE_SAMPLE = 2**22


@dataclass(frozen=True)
class ChannelLayout:
    """How the channels of an image become SAM's three input channels.

    Attributes
    ----------
    channel_axis : int or None
        Axis of the channels in the original array, None for a 2D grayscale image.
    passthrough : bool
        The image is 8-bit RGB(A) and goes to the model unchanged.
    rgb : bool
        The channels are the colours of an RGB(A) image: a last axis of length 3 or 4 given
        without ``channel_axis`` (napari's ``rgb=True`` layers).
    """

    channel_axis: int | None
    passthrough: bool
    rgb: bool = False


def channel_layout(image: np.ndarray, channel_axis: int | None = None) -> ChannelLayout:
    """Decide how to read the channels of a 2D image.

    Parameters
    ----------
    image : array, shape (H, W) or (H, W, C) or with channels on ``channel_axis``
    channel_axis : int, optional
        Axis holding channels. Without it, a 3D image whose last axis has length 3 or 4 is taken
        as RGB(A); any other 3D image needs ``channel_axis``.

    Raises
    ------
    ValueError
        For images that are not 2D (plus channels), or an ambiguous layout.
    """
    ndim = image.ndim
    if channel_axis is not None:
        if ndim != 3:
            raise ValueError(
                f"channel_axis={channel_axis} needs a 3D array (two spatial axes and channels), "
                f"got shape {image.shape}"
            )
        if not -ndim <= channel_axis < ndim:
            raise ValueError(f"channel_axis={channel_axis} is out of range for shape {image.shape}")
        axis = channel_axis % ndim
        # 8-bit with three channels is RGB whatever the axis; four only as trailing RGBA
        rgb = image.dtype == np.uint8 and (
            image.shape[axis] == 3 or (axis == 2 and image.shape[axis] == 4)
        )
        return ChannelLayout(axis, passthrough=rgb)
    if ndim == 2:
        return ChannelLayout(None, passthrough=False)
    if ndim == 3 and image.shape[-1] in (3, 4):
        return ChannelLayout(2, passthrough=image.dtype == np.uint8, rgb=True)
    if ndim == 3:
        raise ValueError(
            f"Cannot tell the channels of an image of shape {image.shape}: pass channel_axis "
            "(e.g. channel_axis=0 for a (C, H, W) multichannel image). Stacks and time series "
            "are segmented one 2D plane at a time: pass image[z]."
        )
    raise ValueError(
        f"Expected a 2D image, RGB(A) or multichannel, got {ndim} dimensions {image.shape}. "
        "Pass one 2D plane (and channel_axis for channels)."
    )


def _channels_last(image: np.ndarray, layout: ChannelLayout) -> np.ndarray:
    if layout.channel_axis is None:
        return image[..., None]
    return np.moveaxis(image, layout.channel_axis, -1)


def _channel_choice(count: int, rgba: bool) -> list[int | None]:
    """Which source channel feeds each of SAM's 3 inputs (None: left empty).

    Gray is repeated, 2 channels get an empty third, alpha is dropped, and of more than three
    channels the first three are used (with a warning).
    """
    if count == 1:
        return [0, 0, 0]
    if count == 2:
        return [0, 1, None]
    if count > 3 and not rgba:
        warnings.warn(
            f"The image has {count} channels; SAM sees three, so channels 0, 1 and 2 are used. "
            "Pass a 3-channel view (e.g. image[..., [0, 2, 5]]) to choose others.",
            stacklevel=3,
        )
    return [0, 1, 2]


def intensity_range(image: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """Robust per-channel intensity range of an image, ignoring NaN and infinities.

    Parameters
    ----------
    image : array
        2D image, RGB(A) or multichannel (see :func:`channel_layout`). Large images are
        subsampled on a regular grid, so this is cheap even for dask/zarr arrays.
    channel_axis : int, optional

    Returns
    -------
    ndarray, shape (C, 2)
        (low, high) per channel at the 0.5th and 99.8th percentiles; ``high > low`` unless the
        channel is constant.
    """
    layout = channel_layout(image, channel_axis)
    channels = _channels_last(image, layout)
    h, w = channels.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / _PERCENTILE_SAMPLE))))
    sample = np.asarray(channels[::step, ::step]).reshape(-1, channels.shape[-1])
    ranges = np.zeros((sample.shape[1], 2), dtype=np.float64)
    for c in range(sample.shape[1]):
        values = sample[:, c].astype(np.float64, copy=False)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low, high = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
        if high <= low:  # nearly constant channel with a few outliers: fall back to min/max
            low, high = values.min(), values.max()
        ranges[c] = low, high
    return ranges


def to_rgb_uint8(
    image: np.ndarray,
    channel_axis: int | None = None,
    ranges: np.ndarray | None = None,
    channel: int | str | None = None,
) -> np.ndarray:
    """Convert a 2D image to SAM's (H, W, 3) uint8 RGB input.

    Parameters
    ----------
    image : array
        (H, W) grayscale, (H, W, 3|4) RGB(A), or multichannel with ``channel_axis``. Any integer
        or float dtype; NaN and infinities are allowed.
    channel_axis : int, optional
        See :func:`channel_layout`.
    ranges : ndarray, shape (C, 2), optional
        Per-channel (low, high) from :func:`intensity_range`, e.g. computed once on a whole large
        image so that every tile is scaled, and its channels chosen, the same way. Computed from
        ``image`` when not given.
    channel : int or "mean", optional
        Read this channel (or the mean of the colour channels) as a grayscale image. Default:
        every channel, except that an RGB image with signal in one channel only is read as
        grayscale of that channel (see :func:`napari_segany.image.channels.grayscale_channel`,
        decided from ``ranges``).

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        8-bit RGB images read whole are returned unchanged (alpha dropped); other images are
        scaled so ``low → 0`` and ``high → 255`` per channel, NaN → 0. Constant channels become
        0. A grayscale read is scaled the same way and repeated in the three channels.
    """
    layout = channel_layout(image, channel_axis)
    channels = np.asarray(_channels_last(image, layout))
    if layout.passthrough and not layout.rgb and channel is None:
        return np.ascontiguousarray(channels[..., :3])  # explicit channel axis: no choice to make
    if ranges is None:
        ranges = intensity_range(image, channel_axis)
    ranges = np.asarray(ranges, dtype=np.float64)
    if ranges.shape != (channels.shape[-1], 2):
        raise ValueError(
            f"ranges must have shape ({channels.shape[-1]}, 2) for this image, got {ranges.shape}"
        )
    choice = grayscale_channel(ranges, layout.rgb, channel)
    if choice is not None:
        gray = _scale_channel(
            _grayscale(channels, layout.rgb, choice), *grayscale_range(ranges, layout.rgb, choice)
        )
        return np.repeat(gray[..., None], 3, axis=-1)
    if layout.passthrough:
        return np.ascontiguousarray(channels[..., :3])
    rgba = layout.rgb and channels.shape[-1] == 4
    out = np.zeros((*channels.shape[:2], 3), dtype=np.uint8)
    for i, c in enumerate(_channel_choice(channels.shape[-1], rgba)):
        if c is not None:
            out[..., i] = _scale_channel(channels[..., c], *ranges[c])
    return out


def _grayscale(channels: np.ndarray, rgb: bool, choice) -> np.ndarray:
    """Channel ``choice`` of (H, W, C) ``channels``, or for the mean of the colour channels
    their sum (scaled between the sums of the channels' ranges, it is the same image, and an
    RGB image with one channel with signal gives exactly that channel's values)."""
    if choice != MEAN:
        return channels[..., int(choice)]
    colours = channels[..., : colour_count(channels.shape[-1], rgb)]
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf → NaN → 0, as a NaN pixel
        return colours.sum(axis=-1, dtype=np.float64)


def _scale_channel(channel: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:  # constant (or entirely non-finite) channel: 0, without inf * 0 warnings
        return np.zeros(channel.shape, dtype=np.uint8)
    # A range that is tiny next to outliers overflows float32: ±inf then maps to 255 / 0, which is
    # the right answer, so the overflow is not worth a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        scale = 255.0 / (high - low)
        values = (channel.astype(np.float32) - np.float32(low)) * np.float32(scale)
    np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    np.clip(values, 0.0, 255.0, out=values)
    return np.rint(values).astype(np.uint8)
