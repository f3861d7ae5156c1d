"""SAM's way of finding every object: decode a grid of single-point prompts and keep the good masks.

Works with every model of the registry. Per batch of grid points the decoder returns three
candidates each; candidates are kept when their predicted IoU and their stability (how little
the mask changes when the logit threshold moves) are high, duplicates are removed by box
non-maximum suppression, and the survivors are painted into one instance label image.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from napari_segany.geometry import Rect
from napari_segany.inference.instance_labels import fill_object_holes, relabel_sequential


@dataclass(frozen=True)
class PointGridParams:
    """Settings of the point-grid method (SAM's automatic mask generator defaults in brackets).

    Attributes
    ----------
    points_per_side : int
        Grid of ``points_per_side²`` prompts over the tile [32].
    points_per_batch : int
        Prompts decoded together; larger batches are faster and use more memory [64].
    pred_iou_threshold : float
        Minimum predicted IoU of a kept mask [0.88].
    stability_threshold : float
        Minimum stability score, IoU of the masks thresholded at ±``stability_offset`` [0.95].
    stability_offset : float
        Logit offset of the stability score [1.0].
    box_nms_threshold : float
        Boxes overlapping a better mask's box with more IoU than this are dropped [0.7].
    max_area_fraction : float
        Masks covering more than this share of the tile (usually the background) are dropped.
    crop_layers : int
        Extra passes on zoomed-in crops [0]: layer ``k`` cuts the tile into ``2**k × 2**k``
        overlapping crops, encodes each one (models that scale inputs up see small cells larger)
        and decodes a grid of ``points_per_side // 2**k`` per side on it. Masks cut by a crop's
        edge are dropped; box NMS then merges all layers.
    crop_overlap : float
        Overlap of neighbouring crops as a fraction of the crop size [512/1500].
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_threshold: float = 0.8
    stability_threshold: float = 0.9
    stability_offset: float = 1.0
    box_nms_threshold: float = 0.7
    max_area_fraction: float = 0.5
    crop_layers: int = 0
    crop_overlap: float = 512 / 1500


@dataclass
class MaskCandidate:
    """One kept mask, stored inside its bounding box.

    ``mask`` (h, w) bool covers the image pixels of ``box``.
    """

    mask: np.ndarray
    box: Rect
    predicted_iou: float
    stability: float

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def grid_points(points_per_side: int, shape: tuple[int, int]) -> np.ndarray:
    """Centres of a ``points_per_side`` × ``points_per_side`` grid over an image.

    Returns
    -------
    ndarray, shape (points_per_side², 2), float64
        (row, col) pixel coordinates, row-major.
    """
    if points_per_side < 1:
        raise ValueError(f"points_per_side must be at least 1, got {points_per_side}")
    offsets = (np.arange(points_per_side) + 0.5) / points_per_side
    rows, cols = np.meshgrid(offsets * shape[0], offsets * shape[1], indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def stability_scores(logits, threshold: float, offset: float):
    """IoU between masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    logits: Tensor (..., H, W) → Tensor (...); 0 for masks empty at the low threshold.
    """
    high = (logits > threshold + offset).flatten(-2).sum(-1).float()
    low = (logits > threshold - offset).flatten(-2).sum(-1).float()
    return high / low.clamp(min=1)


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Parameters
    ----------
    boxes : ndarray, shape (N, 4)
        (row0, col0, row1, col1), end-exclusive.
    scores : ndarray, shape (N,)
    threshold : float
        A box is dropped when its IoU with a kept, better-scoring box exceeds this.

    Returns
    -------
    ndarray of int
        Indices of kept boxes, best score first (ties broken by index).
    """
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
    boxes = np.asarray(boxes, np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        r0 = np.maximum(boxes[i, 0], boxes[:, 0])
        c0 = np.maximum(boxes[i, 1], boxes[:, 1])
        r1 = np.minimum(boxes[i, 2], boxes[:, 2])
        c1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(r1 - r0, 0, None) * np.clip(c1 - c0, 0, None)
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        suppressed |= iou > threshold
    return np.array(keep, dtype=np.int64)


def crop_boxes(shape: tuple[int, int], layer: int, overlap: float) -> list[Rect]:
    """Crops of one layer: ``2**layer`` per side, overlapping, covering the image.

    Returns
    -------
    list of Rect
        Row-major.
    """
    n = 2**layer
    boxes_per_axis = []
    for length in shape:
        size = int(np.ceil((length + (n - 1) * overlap * length / n) / n))
        size = min(length, max(size, 1))
        starts = [round(i * (length - size) / (n - 1)) if n > 1 else 0 for i in range(n)]
        boxes_per_axis.append([(s, s + size) for s in starts])
    return [Rect(r0, c0, r1, c1) for r0, r1 in boxes_per_axis[0] for c0, c1 in boxes_per_axis[1]]


def crop_layer_candidates(
    model, rgb: np.ndarray, params: PointGridParams, precision: str = "fp32"
) -> list[MaskCandidate]:
    """Candidates of crop layers 1..``params.crop_layers`` on an (H, W, 3) uint8 image.

    Each crop is encoded on its own; boxes are returned in the image's coordinates. Masks that
    touch a crop edge lying inside the image are dropped (the object continues outside the crop).
    """
    from dataclasses import replace

    from napari_segany.inference.predictor import Predictor

    h, w = rgb.shape[:2]
    found: list[MaskCandidate] = []
    predictor = Predictor(model, precision)
    for layer in range(1, params.crop_layers + 1):
        layer_params = replace(params, points_per_side=max(1, params.points_per_side // 2**layer))
        for crop in crop_boxes((h, w), layer, params.crop_overlap):
            predictor.set_rgb_image(np.ascontiguousarray(rgb[crop.slices]))
            crop_found = point_grid_candidates(predictor, layer_params, nms=False)
            found += place_crop_candidates(crop_found, crop, (h, w))
    return found


def place_crop_candidates(
    candidates: list[MaskCandidate], crop: Rect, shape: tuple[int, int]
) -> list[MaskCandidate]:
    """Move a crop's candidates into image coordinates, dropping those cut by the crop.

    A mask touching a crop edge that lies inside the image continues beyond the crop, so it is
    dropped; edges on the image border do not cut.
    """
    placed = []
    for c in candidates:
        b = c.box
        cut = (
            (b.row0 == 0 and crop.row0 > 0)
            or (b.col0 == 0 and crop.col0 > 0)
            or (b.row1 == crop.rows and crop.row1 < shape[0])
            or (b.col1 == crop.cols and crop.col1 < shape[1])
        )
        if not cut:
            box = b.shifted(crop.row0, crop.col0)
            placed.append(MaskCandidate(c.mask, box, c.predicted_iou, c.stability))
    return placed


def point_grid_candidates(
    predictor, params: PointGridParams, nms: bool = True
) -> list[MaskCandidate]:
    """Decode the point grid on the predictor's current image and keep the good masks.

    Parameters
    ----------
    predictor : napari_segany.inference.predictor.Predictor
        With an image or embedding set.
    params : PointGridParams

    nms : bool
        Apply box NMS (False when the caller merges several passes first).

    Returns
    -------
    list of MaskCandidate
        After the IoU, stability, area and (with ``nms``) box-NMS filters, best first.
    """
    import torch

    from napari_segany.inference.prompts import to_model_frame

    emb = predictor.get_embedding()
    model = predictor.model
    h, w = emb.original_size
    points = grid_points(params.points_per_side, (h, w))
    found: list[MaskCandidate] = []
    threshold = model.mask_threshold
    context = predictor.decoder_context  # computed once when the embedding was set
    for start in range(0, len(points), params.points_per_batch):
        batch = points[start : start + params.points_per_batch]
        ones = np.ones(len(batch), np.int64)
        prompts = to_model_frame(batch, ones, None, emb.original_size, emb.input_size)
        with torch.inference_mode():
            coords = torch.from_numpy(prompts.points)[:, None].to(predictor.device)
            labels = torch.from_numpy(prompts.labels)[:, None].to(predictor.device)
            logits, iou = model.decode(emb.features, coords, labels, context=context)
            logits, iou = logits.flatten(0, 1).float(), iou.flatten().float()
            stability = stability_scores(logits, threshold, params.stability_offset)
            good = (iou > params.pred_iou_threshold) & (stability > params.stability_threshold)
            if not bool(good.any()):
                continue
            masks = predictor.upscale_masks(logits[good], emb).cpu().numpy()
        for mask, score, stab in zip(
            masks, iou[good].cpu().numpy(), stability[good].cpu().numpy(), strict=True
        ):
            candidate = _crop_candidate(mask, float(score), float(stab))
            if candidate is not None and candidate.area <= params.max_area_fraction * h * w:
                found.append(candidate)
    return suppress_duplicates(found, params.box_nms_threshold) if nms else found


def suppress_duplicates(found: list[MaskCandidate], threshold: float) -> list[MaskCandidate]:
    """Box NMS over candidates by predicted IoU; best first."""
    if not found:
        return []
    boxes = np.array([astuple(c.box) for c in found])
    scores = np.array([c.predicted_iou for c in found])
    return [found[i] for i in box_nms(boxes, scores, threshold)]


def _crop_candidate(mask: np.ndarray, score: float, stability: float) -> MaskCandidate | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    box = Rect(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return MaskCandidate(mask[box.slices].copy(), box, score, stability)


def paint_candidates(
    candidates: list[MaskCandidate], shape: tuple[int, int], min_size: int, fill_holes: bool = True
) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Resolve overlaps and write candidates into one label image.

    Larger masks are painted first and smaller ones over them, so a cell inside a wrongly
    merged cluster mask keeps its own ID.

    Returns
    -------
    labels : ndarray, shape ``shape``, uint32
        Objects 1..N (sequential), 0 background.
    scores : dict
        Object ID → (predicted IoU, stability) of the mask it came from.
    """
    labels = np.zeros(shape, np.uint32)
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i].area, i))
    for value, i in enumerate(order, start=1):
        c = candidates[i]
        window = labels[c.box.slices]
        window[c.mask] = value
    if fill_holes:
        labels = fill_object_holes(labels)
    areas = np.bincount(labels.ravel(), minlength=len(order) + 1)
    keep = areas >= max(min_size, 1)
    keep[0] = False
    labels = np.where(keep[labels], labels, 0).astype(np.uint32)
    # relabel_sequential keeps the order of IDs, so the k-th kept ID becomes k
    scores = {}
    for new, old in enumerate(np.flatnonzero(keep), start=1):
        c = candidates[order[old - 1]]
        scores[new] = (c.predicted_iou, c.stability)
    return relabel_sequential(labels), scores
