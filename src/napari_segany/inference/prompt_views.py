"""Answer a prompt from several views of the image around it and average their logits.

The embedded model (``segany_cells``) is trained on 256² crops at the data's pixel size. Its
masks come out at stride 4, so the edge of a 15-pixel nucleus is placed from about four mask
pixels, and each prediction carries the noise of one look at the image. A prompt can instead be
decoded on a few *views* of the image around it: the crop around the prompts, re-encoded after
zooming it (1.5×, 2×) and/or mirroring it left–right. The views' logits are mapped back onto the
image's pixels and averaged with the logits decoded from the image's own embedding; the mask is
where the mean is positive. Zooming gives small objects finer masks, and averaging views cancels
part of each view's error.

Each view costs one encoder pass on a 256² input (the training crop size) and one decoder pass;
all views of a prompt are encoded in one batch and decoded in one batch.

Measured with embedded model v6 on the validation images (``benchmarks/eval_embedded.py
--first-seed 555000``; the held-out images were not used to choose), one box mIoU: 0.871 with 1
view, 0.902 with 3, 0.909 with 6; one click 0.849 / 0.851 / 0.852. Six views are the default.
A mask prompt (refining a previous mask) is resampled into every view (:class:`MaskInput`);
that raised click + 3 corrections from 0.873 to 0.894 there.

Coordinates: prompts and regions are image (row, col) pixels; ``crop`` frames are (row, col)
pixels of a zoomed crop with its origin at the crop's top-left corner. The conversion to the
model's (x, y) happens in :func:`napari_segany.inference.prompts.to_model_frame`, as everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.inference.prompts import to_model_frame

#: Side of a view's model input in pixels: the crop size the embedded model was trained on
#: (its decoder window); models with a smaller input use their whole input.
VIEW_INPUT = 256
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
    """Side in pixels of a view's model input: the model's decoder window, at most its input."""
    tokens = min(model.decoder_window, model.image_size // 16)
    return 16 * tokens


def view_crop(
    extent: tuple[float, float, float, float],
    zoom: float,
    image_shape: tuple[int, int],
    side: int = VIEW_INPUT,
) -> tuple[int, int, int, int] | None:
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
    (row0, col0, rows, cols) or None
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
    return r0, c0, rows, cols


def _zoomed(rgb: np.ndarray, zoom: float, side: int) -> torch.Tensor:
    """(h, w, 3) uint8 → (1, 3, round(h·zoom), round(w·zoom)) float 0–255 (at most ``side``),
    bilinear, rounded to integers."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    size = (min(side, round(rgb.shape[0] * zoom)), min(side, round(rgb.shape[1] * zoom)))
    if size != tuple(rgb.shape[:2]):
        x = (
            F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            .round_()
            .clamp_(0, 255)
        )
    return x


def _to_view(coords_rc: np.ndarray, crop, scale: tuple[float, float], width: int, mirror: bool):
    """Image (row, col) → the view's zoomed (row, col); pixel centres map to pixel centres."""
    r0, c0 = crop[:2]
    out = (coords_rc.reshape(-1, 2) - (r0, c0) + 0.5) * scale - 0.5
    if mirror:
        out[:, 1] = width - 1 - out[:, 1]
    return out


@dataclass
class ViewLogits:
    """Averaged logits of a prompt's views over an image region.

    Attributes
    ----------
    region : (row0, col0, rows, cols)
        Image pixels covered by the views' crops.
    total : ndarray, shape (K, rows, cols), float32
        Sum of the views' logits at each pixel (K candidate masks).
    count : ndarray, shape (rows, cols), float32
        Number of views covering each pixel.
    scores : ndarray, shape (V, K), float32
        Predicted IoU of each view's candidates.
    """

    region: tuple[int, int, int, int]
    total: np.ndarray
    count: np.ndarray
    scores: np.ndarray


def decode_views(
    model,
    read_rgb: Callable[[int, int, int, int], np.ndarray],
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
        ``read_rgb(row0, col0, rows, cols)`` returns that image crop as (rows, cols, 3) uint8,
        exactly as the model sees the image.
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
    corners = [c.reshape(-1, 2) for c in (points, box) if c is not None]
    allc = np.concatenate(corners)
    extent = (*allc.min(axis=0), *allc.max(axis=0))
    side = view_input_size(model)
    planned = []
    for view in views:
        crop = view_crop(extent, view.zoom, image_shape, side)
        if crop is not None:
            planned.append((view, crop))
    if not planned:
        return None
    inputs, prompts, geometry = [], [], []
    for view, (r0, c0, rows, cols) in planned:
        x = _zoomed(read_rgb(r0, c0, rows, cols), view.zoom, side)
        zh, zw = x.shape[-2:]
        scale = (zh / rows, zw / cols)
        x = (x - model.pixel_mean.cpu()) / model.pixel_std.cpu()
        if view.mirror:
            x = x.flip(-1)
        # padding at the bottom/right, as for any image smaller than the model input
        inputs.append(F.pad(x, (0, side - zw, 0, side - zh)))
        crop = (r0, c0, rows, cols)
        pts = None if points is None else _to_view(points, crop, scale, zw, view.mirror)
        bx = None
        if box is not None:
            ends = _to_view(box, crop, scale, zw, view.mirror)
            bx = np.concatenate([ends.min(axis=0), ends.max(axis=0)])
        prompts.append(to_model_frame(pts, labels, bx, (side, side), (side, side)))
        geometry.append((crop, scale, (zh, zw), view.mirror))
    device = model.device
    with torch.inference_mode():
        embeddings = model.encode_image(torch.cat(inputs).to(device))
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
    region = _union_region([g[0] for g in geometry])
    k = low_res.shape[1]
    total = np.zeros((k, region[2], region[3]), np.float32)
    count = np.zeros(region[2:], np.float32)
    for i, (crop, scale, zoomed_size, mirror) in enumerate(geometry):
        logits = _view_to_image(low_res[i], crop, scale, zoomed_size, mirror, side)
        r, c = crop[0] - region[0], crop[1] - region[1]
        total[:, r : r + crop[2], c : c + crop[3]] += logits
        count[r : r + crop[2], c : c + crop[3]] += 1
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
        ys = (centres / scale[0] + crop[0]) * self.frame_scale[0]
        xs = (xs / scale[1] + crop[1]) * self.frame_scale[1]
        return torch.from_numpy(_sample(self.logits, ys, xs, self.frame))


def _union_region(crops) -> tuple[int, int, int, int]:
    r0 = min(c[0] for c in crops)
    c0 = min(c[1] for c in crops)
    r1 = max(c[0] + c[2] for c in crops)
    c1 = max(c[1] + c[3] for c in crops)
    return r0, c0, r1 - r0, c1 - c0


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
    low_res: torch.Tensor, crop, scale, zoomed_size, mirror: bool, side: int = VIEW_INPUT
) -> np.ndarray:
    """A view's logits (K, h, w) over its ``side``² zoomed frame → (K, rows, cols) on the crop's
    pixels."""
    ys = _pixel_centres(0, crop[2], scale[0])
    xs = _pixel_centres(0, crop[3], scale[1])
    if mirror:
        xs = zoomed_size[1] - xs
    return _sample(low_res, ys, xs, side)


def frame_logits_on_image(
    low_res: torch.Tensor,
    region: tuple[int, int, int, int],
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    frame: int,
) -> np.ndarray:
    """Low-resolution logits of the whole model input → (K, rows, cols) on image ``region``.

    Parameters
    ----------
    low_res : Tensor, shape (K, h, w)
        Logits covering the ``frame``² model input.
    region : (row0, col0, rows, cols)
        Image pixels to sample.
    original_size, input_size : (int, int)
        The image's size and its size in the model input.
    frame : int
        Side of the model input.
    """
    r0, c0, rows, cols = region
    ys = _pixel_centres(r0, rows, input_size[0] / original_size[0])
    xs = _pixel_centres(c0, cols, input_size[1] / original_size[1])
    return _sample(low_res, ys, xs, frame)
