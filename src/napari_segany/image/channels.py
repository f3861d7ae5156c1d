"""Which channels of an image carry signal, and which one is read as a grayscale image.

Decided once per image from its per-channel intensity ranges (the (low, high) percentiles of
:func:`napari_segany.image.prep.intensity_range`, computed on the whole image or, for a large one,
on the sample a tiled session reads once), never from a tile, which may be dark by chance. So a
tile is always read as its whole image is.

>>> ranges = [[0, 0], [0, 0], [12, 180]]  # an RGB image with signal in blue only
>>> grayscale_channel(ranges, rgb=True)
2
"""

from __future__ import annotations

import numpy as np

#: An RGB channel whose contrast (high - low) is below this fraction of the brightest channel's
#: carries no signal. napari shows an RGB image on one intensity scale, where such a channel
#: spans at most 13 of 255 grey levels: the user sees a one-colour image. Compression noise in
#: empty channels of 8-bit RGB files stays well below it.
NEGLIGIBLE_CONTRAST = 0.05
#: ``channel`` value that reads the mean of the colour channels as grayscale.
MEAN = "mean"


def _as_ranges(ranges) -> np.ndarray:
    return np.asarray(ranges, dtype=np.float64).reshape(-1, 2)


def colour_count(count: int, rgb: bool) -> int:
    """Channels that hold image content: all of them, but an RGBA image's alpha is not one."""
    return 3 if rgb and count == 4 else count


def channels_with_signal(ranges, rgb: bool = False) -> np.ndarray:
    """Which channels of an image carry signal, judged from their intensity ranges.

    A channel is empty when it is constant (``high == low``: all zero, or one value everywhere)
    or, in an RGB image, when its contrast ``high - low`` is below :data:`NEGLIGIBLE_CONTRAST`
    times the largest contrast of its channels.

    Parameters
    ----------
    ranges : array-like, shape (C, 2)
        Per-channel (low, high) of the whole image.
    rgb : bool
        The channels are colours shown on one scale (an RGB image, see
        :attr:`napari_segany.image.prep.ChannelLayout.rgb`). Channels of a multichannel image
        (fluorescence markers, each with its own brightness) are only empty when constant.

    Returns
    -------
    ndarray, shape (C,), bool
    """
    ranges = _as_ranges(ranges)
    contrast = ranges[:, 1] - ranges[:, 0]
    signal = contrast > 0
    if rgb and signal.any():
        signal &= contrast >= NEGLIGIBLE_CONTRAST * contrast.max()
    return signal


def grayscale_channel(ranges, rgb: bool = False, channel: int | str | None = None):
    """Which channel of an image is read as a grayscale image, if any.

    Parameters
    ----------
    ranges : array-like, shape (C, 2)
        Per-channel (low, high) of the whole image (see :func:`channels_with_signal`).
    rgb : bool
        The image is RGB(A) (see :func:`channels_with_signal`); alpha is never chosen.
    channel : int or "mean", optional
        The user's choice: a channel index (0, 1, 2 = R, G, B for RGB) or :data:`MEAN`, the
        mean of the colour channels (alpha excluded).

    Returns
    -------
    int, "mean" or None
        ``channel`` when given. Otherwise, for an RGB image with exactly one channel with
        signal (see :func:`channels_with_signal`), that channel: a DAPI image saved as RGB is
        read as the grayscale image it is. None: every channel is read as before (each scaled
        on its own, 8-bit RGB unchanged).

    Raises
    ------
    ValueError
        For a channel the image does not have.
    """
    ranges = _as_ranges(ranges)
    colours = colour_count(len(ranges), rgb)
    if channel is not None:
        return _checked(channel, colours)
    if not rgb:
        return None
    signal = np.flatnonzero(channels_with_signal(ranges[:colours], rgb=True))
    return int(signal[0]) if len(signal) == 1 else None


def _checked(channel, colours: int):
    if isinstance(channel, str) and channel == MEAN:
        return MEAN
    is_index = isinstance(channel, int | np.integer) and not isinstance(channel, bool)
    if not is_index or not 0 <= channel < colours:
        raise ValueError(
            f"channel must be a channel index 0..{colours - 1} or {MEAN!r}, got {channel!r}"
        )
    return int(channel)


def grayscale_range(ranges, rgb: bool, choice) -> tuple[float, float]:
    """(low, high) used to scale the grayscale read of ``choice`` (an index or "mean").

    For the mean of the colour channels, the sums of their lows and of their highs, which
    scale the sum of the channels (the same image as their mean, with exact values): the exact
    range when the channels rise together, or when all but one are constant.
    """
    ranges = _as_ranges(ranges)
    if choice == MEAN:
        low, high = ranges[: colour_count(len(ranges), rgb)].sum(axis=0)
    else:
        low, high = ranges[int(choice)]
    return float(low), float(high)


def has_signal(ranges, rgb: bool = False, channel: int | str | None = None) -> bool:
    """Whether the model input made from an image with these ranges varies at all.

    False when every channel read (the grayscale channel, or the up to three channels the model
    sees) is constant: the preprocessing then makes a constant image, without any object.

    Parameters
    ----------
    ranges : array-like, shape (C, 2)
    rgb : bool
    channel : int or "mean", optional
        See :func:`grayscale_channel`.
    """
    ranges = _as_ranges(ranges)
    choice = grayscale_channel(ranges, rgb, channel)
    if choice is not None:
        low, high = grayscale_range(ranges, rgb, choice)
        return high > low
    used = ranges[: min(colour_count(len(ranges), rgb), 3)]
    return bool((used[:, 1] > used[:, 0]).any())
