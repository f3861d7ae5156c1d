"""Reviewing the segmentation object by object, least confident first (after Segment all).

The objects of the output Labels layer are visited in order of their score in the layer's
features table (``confidence``, else ``foreground_probability`` or ``predicted_iou``, lowest
first; objects without a score last, by ID). Each is centred on the canvas and drawn as the
current object. The user accepts it, deletes it, or fixes it with prompts: committing the fix
replaces the object under the same ID, one undo step. Every reviewed object gets ``reviewed`` =
1 in the features table, which the writer saves with the labels (object table, OME-Zarr
properties).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from napari_segany._qt import labels_edit

#: score columns of the features table, in order of preference
SCORE_COLUMNS = ("confidence", "foreground_probability", "predicted_iou")
REVIEWED = "reviewed"
#: the reviewed object spans about this share of the canvas' smaller side
VIEW_SHARE = 0.3


@dataclass(frozen=True)
class ReviewItem:
    """One object to review: its ID, its bounding box and one of its pixels, (row, col)."""

    label: int
    box: tuple[slice, slice]
    inside: tuple[int, int]
    score: float


def features_frame(layer):
    """The layer's features as a pandas DataFrame with an integer ``index`` column (label IDs)."""
    import pandas as pd

    frame = pd.DataFrame(layer.features).copy()
    if "index" not in frame.columns:
        frame["index"] = np.arange(len(frame), dtype=np.int64)  # napari's row = label default
    return frame


def set_object_features(layer, rows: dict[int, dict[str, float]]) -> None:
    """Write per-object values into the layer's features (one row per label ID).

    Parameters
    ----------
    layer : napari.layers.Labels
    rows : dict
        Label ID → {column: value}; existing rows of these IDs are updated, others added.
    """
    import pandas as pd

    if not rows:
        return
    frame = features_frame(layer).set_index("index")
    update = pd.DataFrame.from_dict(rows, orient="index")
    update.index = update.index.astype(np.int64)
    frame = frame.reindex(frame.index.union(update.index))
    for column in update.columns:
        if column not in frame.columns:  # empty, of the new values' type (text or numbers)
            frame[column] = pd.Series(index=frame.index, dtype=update[column].dtype)
        frame.loc[update.index, column] = update[column].to_numpy()
    layer.features = frame.rename_axis("index").reset_index()


def review_order(plane: np.ndarray, frame) -> tuple[list[ReviewItem], str | None]:
    """The objects of ``plane`` in review order, and the score column that ordered them.

    Parameters
    ----------
    plane : ndarray, shape (H, W), integer
        The labels of the plane being annotated.
    frame : pandas.DataFrame
        :func:`features_frame` of the layer.
    """
    from scipy import ndimage

    column = next((c for c in SCORE_COLUMNS if c in frame.columns), None)
    scores = {}
    if column is not None:
        values = frame[["index", column]].dropna()
        scores = dict(zip(values["index"].astype(int), values[column].astype(float), strict=True))
    items = [
        _item(plane, index + 1, box, scores.get(index + 1, np.inf))
        for index, box in enumerate(ndimage.find_objects(plane))
        if box is not None
    ]
    items.sort(key=lambda item: (item.score, item.label))
    return items, column


def _item(plane: np.ndarray, label: int, box: tuple[slice, slice], score: float) -> ReviewItem:
    """Object ``label`` of ``plane`` within its bounding ``box``, with one of its pixels."""
    rows, cols = np.nonzero(plane[box] == label)
    return ReviewItem(label, box, (int(rows[0]) + box[0].start, int(cols[0]) + box[1].start), score)


class Reviewer:
    """Steps through the objects of the annotator's output layer.

    Parameters
    ----------
    viewer : napari.Viewer
    layers : AnnotatorLayers
        Its ``labels_layer`` is reviewed; its current-object layer shows the reviewed object.
    plane_info : callable () -> (leading, scale, translate)
        The plane being annotated: its indices in a stack and the image's plane transform.
    say : callable (str) -> None
    """

    def __init__(self, viewer, layers, plane_info: Callable, say: Callable[[str], None]) -> None:
        self.viewer = viewer
        self.layers = layers
        self.plane_info = plane_info
        self.say = say
        self.items: list[ReviewItem] = []
        self.position = -1
        self.column: str | None = None

    @property
    def active(self) -> bool:
        return self.position >= 0

    @property
    def current(self) -> ReviewItem | None:
        return self.items[self.position] if self.active else None

    def start(self) -> bool:
        """Review the output layer's objects from the least confident; False if it has none."""
        layer = self.layers.labels_layer
        if not self.layers.alive(layer):
            self.say("Nothing to review: there is no segmentation yet.")
            return False
        leading, _scale, _translate = self.plane_info()
        plane = np.asarray(layer.data[(*leading, slice(None), slice(None))])
        self.items, self.column = review_order(plane, features_frame(layer))
        if not self.items:
            self.say("Nothing to review: the segmentation has no objects.")
            return False
        self.show(0)
        return True

    def stop(self) -> None:
        self.items, self.position = [], -1
        self.layers.clear_mask()

    def show(self, position: int) -> None:
        """Centre the view on object ``position`` of the order and draw it as the current one."""
        if not self.items:
            return
        self.position = position % len(self.items)
        item = self.items[self.position]
        leading, scale, translate = self.plane_info()
        layer = self.layers.labels_layer
        window = np.asarray(layer.data[(*leading, *item.box)]) == item.label
        offset = (item.box[0].start, item.box[1].start)
        self.layers.show_mask(window, offset, scale, translate)
        self._centre(item, scale, translate)
        self.say(self._describe(item))

    def _centre(self, item: ReviewItem, scale, translate) -> None:
        scale, translate = np.asarray(scale[-2:], float), np.asarray(translate[-2:], float)
        low = np.array([item.box[0].start, item.box[1].start], float)
        high = np.array([item.box[0].stop, item.box[1].stop], float)
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(translate + (low + high) / 2 * scale)
        canvas = min(self.viewer.canvas.size)
        extent = float(np.max((high - low) * scale))
        if canvas > 0 and extent > 0:
            camera.zoom = VIEW_SHARE * canvas / extent

    def _describe(self, item: ReviewItem) -> str:
        score = "" if not np.isfinite(item.score) else f", {self.column} {item.score:.2f}"
        done = self._reviewed(item.label)
        return (
            f"Review {self.position + 1}/{len(self.items)}: object {item.label}{score}"
            f"{' (reviewed)' if done else ''}. Shift+A accepts, Shift+X deletes, prompts + C "
            "replace it; ] next, [ previous."
        )

    def _reviewed(self, label: int) -> bool:
        frame = features_frame(self.layers.labels_layer)
        if REVIEWED not in frame.columns:
            return False
        match = frame.loc[frame["index"] == label, REVIEWED]
        return bool(len(match) and match.iloc[0] == 1)

    def next(self) -> None:
        if self.active:
            self.show(self.position + 1)

    def previous(self) -> None:
        if self.active:
            self.show(self.position - 1)

    def relocate(self) -> None:
        """Find the current object again after it was replaced (its box and pixel changed)."""
        from scipy import ndimage

        item = self.current
        if item is None:
            return
        leading, _scale, _translate = self.plane_info()
        plane = np.asarray(self.layers.labels_layer.data[(*leading, slice(None), slice(None))])
        found = ndimage.find_objects((plane == item.label).view(np.uint8))
        if found:
            self.items[self.position] = _item(plane, item.label, found[0], item.score)

    def mark(self) -> None:
        """Mark the current object reviewed and go to the next one."""
        item = self.current
        if item is None:
            return
        set_object_features(self.layers.labels_layer, {item.label: {REVIEWED: 1.0}})
        if self.position + 1 < len(self.items):
            self.next()
        else:
            self.layers.clear_mask()
            self.say(f"Review done: {len(self.items)} objects.")
            self.position = -1

    def delete(self) -> int:
        """Delete the current object (one undo step), mark it and go on; its ID or 0."""
        item = self.current
        if item is None:
            return 0
        leading, _scale, _translate = self.plane_info()
        label = labels_edit.delete_object(self.layers.labels_layer, item.inside, leading)
        self.mark()
        return label
