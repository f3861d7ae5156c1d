"""The embedding window a crop-trained model's decoder attends to, and pasting its logits back.

Windows here are in embedding tokens of the model's input frame; they are
:class:`~napari_segany.geometry.Rect` like every rectangle in the package.
"""

from __future__ import annotations

import math

import torch

from napari_segany.geometry import Rect
from napari_segany.inference.prompts import ModelPrompts, prompt_extent

#: Tokens kept on each side of a large box in a decoder window.
WINDOW_MARGIN = 2


def decoder_window(
    prompts: ModelPrompts,
    side: int | None,
    grid: tuple[int, int],
    stride: float,
    input_size: tuple[int, int],
) -> Rect | None:
    """The embedding window the decoder attends to for ``prompts``.

    Models with a ``decoder_window`` (trained on crops) decode on a window of that many tokens
    centred on the prompts' extent, grown to hold a large box with a margin, and kept inside the
    image's part of the embedding where it fits.

    Parameters
    ----------
    prompts : ModelPrompts
        In the model's input frame, (x, y).
    side : int or None
        The model's decoder window in tokens (None: the whole embedding).
    grid : (int, int)
        (rows, cols) of the embedding.
    stride : float
        Input pixels per token.
    input_size : (int, int)
        (rows, cols) of the image inside the model input.

    Returns
    -------
    Rect or None
        In tokens; None (the whole embedding) for models without a window and when there are
        no point or box prompts.
    """
    extent = prompt_extent(prompts.points, prompts.box)
    if side is None or extent is None:
        return None
    valid = [math.ceil(n / stride) for n in input_size]
    window = []
    for axis in (1, 0):  # rows from y, cols from x
        low, high = extent[axis] / stride, extent[axis + 2] / stride
        first = math.floor(low) - WINDOW_MARGIN
        stop = math.floor(high) + 1 + WINDOW_MARGIN
        length = min(grid[1 - axis], max(side, stop - first))
        start = first if length == stop - first else round((low + high) / 2 - length / 2)
        limit = valid[1 - axis] if valid[1 - axis] >= length else grid[1 - axis]
        window.append((min(max(start, 0), limit - length), length))
    (r0, rows), (c0, cols) = window
    return Rect.from_size(r0, c0, rows, cols)


def paste_window(logits: torch.Tensor, window: Rect, full: tuple[int, int]) -> torch.Tensor:
    """Window logits (B, K, 4·rows, 4·cols) → (B, K, *full); outside, each mask's minimum."""
    low = logits.amin(dim=(-2, -1), keepdim=True)
    canvas = low.expand(*logits.shape[:2], *full).clone()
    canvas[..., 4 * window.row0 : 4 * window.row1, 4 * window.col0 : 4 * window.col1] = logits
    return canvas


def window_tuple(window: Rect | None) -> tuple[int, int, int, int] | None:
    """``(row0, col0, rows, cols)`` for :meth:`SamModel.decode`, the model layer's convention."""
    return None if window is None else (window.row0, window.col0, window.rows, window.cols)
