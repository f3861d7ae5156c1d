"""The prompt layers: a Points layer for clicks and a Shapes layer for one box.

Left click adds a positive point (green); Shift + left click, or any click while the negative
toggle is on, adds a negative point (magenta). The box layer keeps only the last rectangle drawn.
Prompts are read back in the layer's data coordinates, (row, col) of the image plane.
"""

from __future__ import annotations

import numpy as np

POSITIVE_COLOR = (0.2, 1.0, 0.2, 1.0)
NEGATIVE_COLOR = (1.0, 0.0, 1.0, 1.0)
BOX_COLOR = (1.0, 0.85, 0.0, 1.0)
NEGATIVE_MODIFIER = "Shift"

POINTS_NAME = "prompts"
BOX_NAME = "box prompt"


def _colormap():
    from napari.utils.colormaps import Colormap

    return Colormap(
        colors=np.array([NEGATIVE_COLOR, POSITIVE_COLOR]), name="segany prompts", display_name=""
    )


#: the modes the prompt layers work in, set once they are in the viewer (napari's layer
#: controls only follow a mode's change event, so a mode set before adding is not shown)
POINTS_MODE = "add"
BOX_MODE = "add_rectangle"


def make_points_layer(scale, translate, negative_toggle) -> object:
    """A 2D Points layer whose clicks carry a ``label`` feature (1.0 or 0.0); add it to the
    viewer, then set its mode to :data:`POINTS_MODE`.

    Parameters
    ----------
    scale, translate : sequence of 2 floats
        The image layer's plane scale and translate, so data coordinates match the image.
    negative_toggle : callable () -> bool
        Tells whether the negative toggle key is on.
    """
    from napari.layers import Points

    layer = Points(
        np.empty((0, 2)),
        ndim=2,
        name=POINTS_NAME,
        features={"label": np.empty(0, dtype=float)},
        feature_defaults={"label": 1.0},
        face_color="label",
        face_colormap=_colormap(),
        face_contrast_limits=(0, 1),
        border_color="white",
        size=10,
        scale=scale,
        translate=translate,
    )

    def choose_label(layer, event):
        negative = NEGATIVE_MODIFIER in event.modifiers or negative_toggle()
        layer.feature_defaults = {"label": 0.0 if negative else 1.0}
        yield

    layer.mouse_drag_callbacks.insert(0, choose_label)
    return layer


def make_box_layer(scale, translate) -> object:
    """A 2D Shapes layer for the box prompt; add it, then set its mode to :data:`BOX_MODE`."""
    from napari.layers import Shapes

    layer = Shapes(
        ndim=2,
        name=BOX_NAME,
        edge_color=[BOX_COLOR],
        face_color=[(0, 0, 0, 0)],
        edge_width=2,
        scale=scale,
        translate=translate,
    )
    layer.current_edge_color = BOX_COLOR
    layer.current_face_color = (0, 0, 0, 0)
    return layer


def read_points(layer, shape: tuple[int, int]):
    """Points inside the plane and their labels.

    Returns
    -------
    points : ndarray (N, 2) float or None
        (row, col) of the points that lie inside ``shape``.
    labels : ndarray (N,) int or None
        1 positive, 0 negative.
    """
    if layer is None or len(layer.data) == 0:
        return None, None
    points = np.asarray(layer.data, dtype=float)[:, -2:]
    if "label" in layer.features:
        labels = np.asarray(layer.features["label"], dtype=int)
    else:
        labels = np.ones(len(points), dtype=int)
    inside = np.all((points >= 0) & (points <= np.asarray(shape) - 1), axis=1)
    if not inside.any():
        return None, None
    return points[inside], labels[inside]


def read_box(layer, shape: tuple[int, int]):
    """The last shape as a box (row0, col0, row1, col1), clipped to ``shape``; None if none."""
    if layer is None or len(layer.data) == 0:
        return None
    vertices = np.asarray(layer.data[-1], dtype=float)[:, -2:]
    low = np.clip(vertices.min(axis=0), 0, np.asarray(shape) - 1)
    high = np.clip(vertices.max(axis=0), 0, np.asarray(shape) - 1)
    if np.any(high - low < 1):
        return None
    return np.array([low[0], low[1], high[0], high[1]])
