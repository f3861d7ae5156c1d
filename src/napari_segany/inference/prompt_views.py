"""Answer a prompt from several views of the image around it and average their logits.

The embedded model (``segany_cells``) is trained on 256² crops at the data's pixel size. Its
masks come out at stride 4, so the edge of a 15-pixel nucleus is placed from about four mask
pixels, and each prediction carries the noise of one look at the image. A prompt can instead be
decoded on a few *views* of the image around it: the crop around the prompts, re-encoded after
zooming it (1.5×, 2×) and/or mirroring it left–right. The views' logits are mapped back onto the
image's pixels and averaged with the logits decoded from the image's own embedding; the mask is
where the mean is positive. Zooming gives small objects finer masks, and averaging views cancels
part of each view's error.

Each view costs one encoder pass on the model's view input (its training crop size, see
:func:`view_input_size`) and one decoder pass; all views of a prompt are encoded in one batch and
decoded in one batch. A mask prompt (refining a previous mask) is resampled into every view
(:class:`MaskInput`). Measured accuracy per number of views: docs/model-card.md and
docs/history.md.

Coordinates: prompts are image (row, col) pixels and crops and regions are
:class:`~napari_segany.geometry.Rect` of image pixels; a view's frame is (row, col) pixels of a
zoomed crop with its origin at the crop's top-left corner. The conversion to the
model's (x, y) happens in :func:`napari_segany.inference.prompts.to_model_frame`, as everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.geometry import Rect
from napari_segany.inference.embedding import encode_inputs, resize_pixels
from napari_segany.inference.prompts import prompt_extent, to_model_frame

#: Zoomed pixels kept between the prompts' extent and the edge of a view's crop.
VIEW_MARGIN = 24


@dataclass(frozen=True)
class View:
    """One way of looking at the image around a prompt.

    Attributes
    ----------
    zoom : float
        Scale of the crop before encoding (1: the image's pixel size).
    mirror : bool
        Mirror the crop left–right before encoding.
    """

    zoom: float
    mirror: bool = False


#: View sets by their number of views; the first view is always the image's own embedding.
VIEW_SETS: dict[int, tuple[View, ...]] = {
    1: (),
    3: (View(1.5), View(2.0)),
    6: (View(1.0, True), View(1.5), View(1.5, True), View(2.0), View(2.0, True)),
}
PROMPT_VIEWS = tuple(VIEW_SETS)
"""Allowed numbers of views (1: the image's embedding only)."""


def view_input_size(model) -> int:
    """Side in pixels of a view's model input: the model's decoder window (the crop size it was
    trained on), at most its input."""
    tokens = min(model.decoder_window, model.image_size // 16)
    return 16 * tokens


def view_crop(
    extent: tuple[float, float, float, float],
    zoom: float,
    image_shape: tuple[int, int],
    side: int,
) -> Rect | None:
    """The image crop a view at ``zoom`` encodes for prompts spanning ``extent``.

    Parameters
    ----------
    extent : (row_min, col_min, row_max, col_max)
        Extent of the prompts (points and box corners) in image pixels.
    zoom : float
    image_shape : (rows, cols)
    side : int
        Side of the view's model input (:func:`view_input_size`).

    Returns
    -------
    Rect or None
        A crop of at most ``side / zoom`` pixels a side, centred on the prompts and moved
        inside the image; None when the prompts and a margin of ``VIEW_MARGIN`` zoomed pixels do
        not fit in it (the object is too large for this zoom).
    """
    span = max(extent[2] - extent[0], extent[3] - extent[1]) + 1
    if span * zoom + 2 * VIEW_MARGIN > side:
        return None
    crop = []
    for axis in (0, 1):
        length = min(int(side // zoom), image_shape[axis])
        centre = (extent[axis] + extent[axis + 2] + 1) / 2
        start = math.floor(centre - length / 2 + 0.5)
        crop.append((min(max(start, 0), image_shape[axis] - length), length))
    (r0, rows), (c0, cols) = crop
    return Rect.from_size(r0, c0, rows, cols)


def _zoomed(rgb: np.ndarray, zoom: float, side: int) -> torch.Tensor:
    """(h, w, 3) uint8 → (1, 3, round(h·zoom), round(w·zoom)) float 0–255 (at most ``side``)."""
    size = (min(side, round(rgb.shape[0] * zoom)), min(side, round(rgb.shape[1] * zoom)))
    return resize_pixels(rgb, size, antialias=False)


def _to_view(coords_rc: np.ndarray, crop: Rect, scale: tuple[float, float], width: int, mirror):
    """Image (row, col) → the view's zoomed (row, col); pixel centres map to pixel centres."""
    out = (coords_rc.reshape(-1, 2) - crop.origin + 0.5) * scale - 0.5
    if mirror:
        out[:, 1] = width - 1 - out[:, 1]
    return out


@dataclass
class ViewLogits:
    """Averaged logits of a prompt's views over an image region.

    Attributes
    ----------
    region : Rect
        Image pixels covered by the views' crops.
    total : ndarray, shape (K, rows, cols), float32
        Sum of the views' logits at each pixel (K candidate masks).
    count : ndarray, shape (rows, cols), float32
        Number of views covering each pixel.
    scores : ndarray, shape (V, K), float32
        Predicted IoU of each view's candidates.
    """

    region: Rect
    total: np.ndarray
    count: np.ndarray
    scores: np.ndarray


def decode_views(
    model,
    read_rgb: Callable[[Rect], np.ndarray],
    image_shape: tuple[int, int],
    points: np.ndarray | None,
    labels: np.ndarray | None,
    box: np.ndarray | None,
    views: Sequence[View],
    multimask: bool,
    mask_input: MaskInput | None = None,
) -> ViewLogits | None:
    """Decode one prompt on zoomed and mirrored crops of the image around it.

    Parameters
    ----------
    model : SamModel
        A model trained on crops at pixel size (``decoder_window`` set).
    read_rgb : callable
        ``read_rgb(rect)`` returns that image crop as (rows, cols, 3) uint8, exactly as the
        model sees the image.
    image_shape : (rows, cols)
    points : ndarray (N, 2) or None
        (row, col) image pixels.
    labels : ndarray (N,) or None
    box : ndarray (4,) or None
        (row0, col0, row1, col1) image pixels.
    views : sequence of View
    multimask : bool
        Three candidates per view (True) or one.
    mask_input : MaskInput, optional
        A previous mask's low-resolution logits, resampled into each view as its mask prompt.

    Returns
    -------
    ViewLogits or None
        None when no view's crop can hold the prompts.
    """
    extent = prompt_extent(points, box)
    side = view_input_size(model)
    planned = []
    for view in views:
        crop = view_crop(extent, view.zoom, image_shape, side)
        if crop is not None:
            planned.append((view, crop))
    if not planned:
        return None
    inputs, prompts, geometry = [], [], []
    for view, crop in planned:
        x = _zoomed(read_rgb(crop), view.zoom, side)
        zh, zw = x.shape[-2:]
        scale = (zh / crop.rows, zw / crop.cols)
        # padded at the bottom/right after mirroring, as any image smaller than the input
        inputs.append(x.flip(-1) if view.mirror else x)
        pts = None if points is None else _to_view(points, crop, scale, zw, view.mirror)
        bx = None
        if box is not None:
            ends = _to_view(box, crop, scale, zw, view.mirror)
            bx = np.concatenate([ends.min(axis=0), ends.max(axis=0)])
        prompts.append(to_model_frame(pts, labels, bx, (side, side), (side, side)))
        geometry.append((crop, scale, (zh, zw), view.mirror))
    # the views run in fp32 whatever the predictor's precision
    embeddings = encode_inputs(model, inputs, "fp32", input_side=side)
    device = model.device
    with torch.inference_mode():
        coords = lab = boxes = None
        if points is not None:
            coords = torch.from_numpy(np.stack([p.points for p in prompts])).to(device)
            lab = torch.from_numpy(np.stack([p.labels for p in prompts])).to(device)
        if box is not None:
            boxes = torch.from_numpy(np.stack([p.box for p in prompts])).to(device)
        grid = side // 16
        masks = None
        if mask_input is not None:
            masks = torch.stack([mask_input.in_view(*g, side) for g in geometry]).to(device)
        low_res, iou = model.decode(
            embeddings, coords, lab, boxes, masks, multimask, window=(0, 0, grid, grid)
        )
        low_res = low_res.float()
    region = geometry[0][0]
    for crop, *_ in geometry[1:]:
        region = region.union(crop)
    k = low_res.shape[1]
    total = np.zeros((k, *region.shape), np.float32)
    count = np.zeros(region.shape, np.float32)
    for i, (crop, scale, zoomed_size, mirror) in enumerate(geometry):
        logits = _view_to_image(low_res[i], crop, scale, zoomed_size, mirror, side)
        inside = crop.shifted(-region.row0, -region.col0).slices
        total[(slice(None), *inside)] += logits
        count[inside] += 1
    return ViewLogits(region, total, count, iou.float().cpu().numpy())


@dataclass(frozen=True)
class MaskInput:
    """A previous prediction's low-resolution logits, to be used as mask prompt in the views.

    Attributes
    ----------
    logits : Tensor, shape (1, h, w)
        Logits over the model's whole ``frame``² input (stride ``frame / w``).
    frame_scale : (float, float)
        Model-input pixels per image pixel along rows and columns.
    frame : int
        Side of the model input.
    """

    logits: torch.Tensor
    frame_scale: tuple[float, float]
    frame: int

    def in_view(self, crop, scale, zoomed_size, mirror: bool, side: int) -> torch.Tensor:
        """The logits resampled onto a view's low-resolution grid, (1, side/4, side/4)."""
        low = side // 4
        centres = (torch.arange(low, dtype=torch.float32) + 0.5) * (side / low)  # zoomed px
        xs = zoomed_size[1] - centres if mirror else centres
        ys = (centres / scale[0] + crop.row0) * self.frame_scale[0]
        xs = (xs / scale[1] + crop.col0) * self.frame_scale[1]
        return torch.from_numpy(_sample(self.logits, ys, xs, self.frame))


def _sample(low_res: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, frame: int) -> np.ndarray:
    """Bilinear samples of logits (K, h, w) covering a ``frame``² input at frame positions.

    ``ys`` (rows,) and ``xs`` (cols,) are continuous positions in input pixels (0 at the
    frame's top/left edge); returns (K, rows, cols).
    """
    # grid_sample's (x, y) in [-1, 1] span the whole frame (align_corners=False)
    gy = (2 * ys / frame - 1).to(low_res.device)
    gx = (2 * xs / frame - 1).to(low_res.device)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
    sampled = F.grid_sample(
        low_res[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled[0].cpu().numpy()


def _pixel_centres(start: int, length: int, scale: float) -> torch.Tensor:
    return (torch.arange(start, start + length, dtype=torch.float32) + 0.5) * scale


def _view_to_image(
    low_res: torch.Tensor, crop: Rect, scale, zoomed_size, mirror: bool, side: int
) -> np.ndarray:
    """A view's logits (K, h, w) over its ``side``² zoomed frame → (K, rows, cols) on the crop's
    pixels."""
    ys = _pixel_centres(0, crop.rows, scale[0])
    xs = _pixel_centres(0, crop.cols, scale[1])
    if mirror:
        xs = zoomed_size[1] - xs
    return _sample(low_res, ys, xs, side)


def frame_logits_on_image(
    low_res: torch.Tensor,
    region: Rect,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    frame: int,
) -> np.ndarray:
    """Low-resolution logits of the whole model input → (K, rows, cols) on image ``region``.

    Parameters
    ----------
    low_res : Tensor, shape (K, h, w)
        Logits covering the ``frame``² model input.
    region : Rect
        Image pixels to sample.
    original_size, input_size : (int, int)
        The image's size and its size in the model input.
    frame : int
        Side of the model input.
    """
    ys = _pixel_centres(region.row0, region.rows, input_size[0] / original_size[0])
    xs = _pixel_centres(region.col0, region.cols, input_size[1] / original_size[1])
    return _sample(low_res, ys, xs, frame)


def average_views(
    model,
    read_rgb: Callable[[Rect], np.ndarray],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    own: tuple[np.ndarray, np.ndarray, torch.Tensor],
    prompts: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    mask: torch.Tensor | None,
    multimask: bool,
    views: int,
) -> np.ndarray:
    """Replace a prediction's masks, in place, by the mean over ``views`` views of the prompt.

    Parameters
    ----------
    model : SamModel
    read_rgb : callable
        ``read_rgb(rect)`` → the image crop as (rows, cols, 3) uint8.
    original_size, input_size : (int, int)
        The image's size and its size in the model input.
    own : (masks, scores, logits)
        The prediction decoded from the image's own embedding, which counts as one view:
        masks (K, H, W) bool (changed in place), scores (K,), logits (K, h, w) over the input.
    prompts : (points, labels, box)
        Validated image (row, col) prompts.
    mask : Tensor (1, 1, h, w) or None
        The mask prompt.
    multimask : bool
    views : {1, 3, 6}

    Returns
    -------
    ndarray, shape (K,)
        The views' mean predicted IoU.
    """
    masks, scores, logits = own
    mask_input = None
    if mask is not None:
        frame_scale = tuple(i / o for i, o in zip(input_size, original_size, strict=True))
        mask_input = MaskInput(mask[0].float(), frame_scale, model.image_size)
    found = decode_views(
        model, read_rgb, original_size, *prompts, VIEW_SETS[views], multimask, mask_input
    )
    if found is None:
        return scores
    mine = frame_logits_on_image(logits, found.region, original_size, input_size, model.image_size)
    mean = (found.total + mine) / (found.count + 1)
    masks[(slice(None), *found.region.slices)] = mean > model.mask_threshold
    return (scores + found.scores.sum(axis=0)) / (1 + len(found.scores))
