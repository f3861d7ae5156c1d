"""Prompt validation and the one conversion between napari's (row, col) and SAM's (x, y).

napari (and numpy) index images as (row, col); SAM's prompt encoder takes (x, y) = (col, row).
Every prompt entering a model passes through :func:`to_model_frame`; nothing else in the package
swaps axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelPrompts:
    """Prompts for one image in the model's resized input frame, SAM's (x, y) order.

    Attributes
    ----------
    points : ndarray (N, 2) float32 of (x, y), or None
    labels : ndarray (N,) int64 of 1 (foreground) / 0 (background), or None
    box : ndarray (4,) float32 of (x0, y0, x1, y1), or None
    """

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None


def _as_float_array(name: str, value, shape_text: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric {shape_text}, got {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values: {array.tolist()}")
    return array


def _check_inside(name: str, coords_rc: np.ndarray, image_shape: tuple[int, int]) -> None:
    """Pixel (r, c) covers [r - 0.5, r + 0.5]; anything on the image is accepted."""
    h, w = image_shape
    outside = (
        (coords_rc[:, 0] < -0.5)
        | (coords_rc[:, 0] > h - 0.5)
        | (coords_rc[:, 1] < -0.5)
        | (coords_rc[:, 1] > w - 0.5)
    )
    if outside.any():
        bad = coords_rc[outside].tolist()
        raise ValueError(
            f"{name} outside the image of shape (rows, cols) = {(h, w)}: {bad}. "
            "Coordinates are (row, col) pixels of the image passed to set_image."
        )


def validate_prompts(
    image_shape: tuple[int, int],
    points=None,
    point_labels=None,
    box=None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Check prompts given in napari's (row, col) pixel convention.

    Parameters
    ----------
    image_shape : (int, int)
        (rows, cols) of the image.
    points : array-like (N, 2), optional
        (row, col) of each point.
    point_labels : array-like (N,), optional
        1 for foreground, 0 for background; all foreground when omitted.
    box : array-like (4,), optional
        (row0, col0, row1, col1), two opposite corners in any order.

    Returns
    -------
    points (N, 2) float64, labels (N,) int64, box (4,) float64 as (row_min, col_min, row_max,
    col_max); each None when not given.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, labels other than 0/1, or prompts outside the image.
    """
    pts = labels = bx = None
    if points is not None:
        pts = _as_float_array("points", points, "(N, 2) of (row, col)")
        if pts.ndim == 1 and pts.shape == (2,):
            pts = pts[None]
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
            raise ValueError(f"points must have shape (N, 2) of (row, col), got shape {pts.shape}")
        _check_inside("points", pts, image_shape)
        if point_labels is None:
            labels = np.ones(len(pts), dtype=np.int64)
        else:
            raw = np.asarray(point_labels).reshape(-1)
            if raw.shape[0] != pts.shape[0]:
                raise ValueError(
                    f"point_labels has {raw.shape[0]} entries for {pts.shape[0]} points"
                )
            if not np.isin(raw, (0, 1)).all():
                raise ValueError(
                    f"point_labels must be 1 (foreground) or 0 (background), got {raw.tolist()}"
                )
            labels = raw.astype(np.int64)
    elif point_labels is not None:
        raise ValueError("point_labels were given without points")
    if box is not None:
        b = _as_float_array("box", box, "(row0, col0, row1, col1)").reshape(-1)
        if b.shape != (4,):
            raise ValueError(f"box must be (row0, col0, row1, col1), got {b.size} values")
        corners = np.array([[b[0], b[1]], [b[2], b[3]]])
        _check_inside("box corners", corners, image_shape)
        bx = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    return pts, labels, bx


def to_model_frame(
    points_rc: np.ndarray | None,
    labels: np.ndarray | None,
    box_rc: np.ndarray | None,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
) -> ModelPrompts:
    """Convert validated (row, col) prompts to SAM's (x, y) in the resized input frame.

    Parameters
    ----------
    points_rc : ndarray (N, 2) or None
        (row, col) in original image pixels.
    labels : ndarray (N,) or None
    box_rc : ndarray (4,) or None
        (row0, col0, row1, col1).
    original_size : (int, int)
        (rows, cols) of the original image.
    input_size : (int, int)
        (rows, cols) of the image after resizing its longest side to the model size.
    """
    scale_xy = np.array(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]], dtype=np.float64
    )
    points = None
    if points_rc is not None:
        points = (points_rc[:, ::-1] * scale_xy).astype(np.float32)
    box = None
    if box_rc is not None:
        corners_xy = box_rc.reshape(2, 2)[:, ::-1] * scale_xy
        box = corners_xy.reshape(4).astype(np.float32)
    return ModelPrompts(points, labels, box)


def prompt_extent(
    points: np.ndarray | None, box: np.ndarray | None
) -> tuple[float, float, float, float] | None:
    """``(min0, min1, max0, max1)`` over all points and box corners, in their own axis order.

    For (row, col) prompts this is (row_min, col_min, row_max, col_max); for the model frame's
    (x, y) it is (x_min, y_min, x_max, y_max). None when there are neither points nor a box.
    """
    corners = [np.reshape(c, (-1, 2)) for c in (points, box) if c is not None]
    if not corners:
        return None
    coords = np.concatenate(corners)
    return (*coords.min(axis=0), *coords.max(axis=0))
