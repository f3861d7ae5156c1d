"""The annotator's napari layers: prompts, box, current object and the output segmentation.

Creates them when the first embeddings are ready (again if the user deleted one), keeps them on
the image's plane (scale, translate), binds the annotator's keys on the prompt layers, reads
the prompts back and draws the chosen candidate mask.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_segany._qt import prompt_layers
from napari_segany._qt.annotation import Prompts

CURRENT_NAME = "current object"
CURRENT_COLOR = "yellow"
SEGMENTATION_NAME = "segmentation"


def same_layer(a, b) -> bool:
    """Whether two layers are the same, also through napari's plugin proxies."""
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def plane_transform(image_layer, channel_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(scale, translate) of ``image_layer`` without its channel axis."""
    axes = [a for a in range(image_layer.ndim) if a != channel_axis]
    return np.asarray(image_layer.scale)[axes], np.asarray(image_layer.translate)[axes]


class AnnotatorLayers:
    """The four layers of the annotator in ``viewer``.

    Parameters
    ----------
    viewer : napari.Viewer
    prompts_changed : callable () -> None
        Called when the user adds, moves or removes a prompt.
    keys : dict of str to callable () -> None
        Key bindings of both prompt layers (napari key names, e.g. ``"Shift-C"``).
    point_keys : dict of str to callable () -> None
        More key bindings of the points layer only.
    negative_mode : callable () -> bool
        Whether plain clicks add negative points.
    say : callable (str) -> None
        Shows a line to the user.
    """

    def __init__(
        self,
        viewer,
        prompts_changed: Callable[[], None],
        keys: dict[str, Callable[[], None]],
        point_keys: dict[str, Callable[[], None]],
        negative_mode: Callable[[], bool],
        say: Callable[[str], None],
    ) -> None:
        self.viewer = viewer
        self.prompts_changed = prompts_changed
        self.keys = keys
        self.point_keys = point_keys
        self.negative_mode = negative_mode
        self.say = say
        self.points_layer = None
        self.box_layer = None
        self.current_layer = None
        self.labels_layer = None
        self._clearing = False  # prompt layers are being cleared: no decode

    def alive(self, layer) -> bool:
        return layer is not None and layer in self.viewer.layers

    # -- creating -----------------------------------------------------------------------------
    def ensure(self, plane, scale, translate, chosen=None) -> bool:
        """Create (or re-create, if the user deleted them) the layers for ``plane``.

        Parameters
        ----------
        plane : napari_segany._qt.image_source.Plane
        scale, translate : ndarray
            The image's :func:`plane_transform`.
        chosen : napari.layers.Labels, optional
            The output the user picked; used when it fits the image, else a message says why.

        Returns
        -------
        bool
            Whether a segmentation layer was found or added (the output list should show it).
        """
        label_shape = tuple(plane.label_shape)
        if chosen is not None and self.alive(chosen) and not same_layer(chosen, self.labels_layer):
            if tuple(chosen.data.shape) == label_shape:
                self.labels_layer = chosen
            else:
                self.say(
                    f"{chosen.name!r} has shape {tuple(chosen.data.shape)}, the image needs "
                    f"{label_shape}; choose a Labels layer of that shape."
                )
        added_labels = False
        if not self.alive(self.labels_layer) or tuple(self.labels_layer.data.shape) != label_shape:
            self.labels_layer = self._segmentation_layer(label_shape, scale, translate)
            added_labels = True
        plane_scale, plane_translate = scale[-2:], translate[-2:]
        if not self.alive(self.current_layer):
            self.current_layer = self._current_layer(plane_scale, plane_translate)
        if not self.alive(self.box_layer):
            self.box_layer = prompt_layers.make_box_layer(plane_scale, plane_translate)
            self.viewer.add_layer(self.box_layer)
            self.box_layer.events.data.connect(self._box_event)
            self._bind(self.box_layer, self.keys)
        created = not self.alive(self.points_layer)
        if created:
            self.points_layer = prompt_layers.make_points_layer(
                plane_scale, plane_translate, self.negative_mode
            )
            self.viewer.add_layer(self.points_layer)
            self.points_layer.events.data.connect(self._points_event)
            self._bind(self.points_layer, {**self.keys, **self.point_keys})
        for layer in (self.box_layer, self.points_layer):  # the image may have moved
            if not (
                np.allclose(layer.scale, plane_scale)
                and np.allclose(layer.translate, plane_translate)
            ):
                layer.scale, layer.translate = plane_scale, plane_translate
        if not np.allclose(self.current_layer.scale, plane_scale):
            self.current_layer.scale = plane_scale
        if created:
            self.viewer.layers.selection.active = self.points_layer
        return added_labels

    def _segmentation_layer(self, label_shape, scale, translate):
        """The viewer's "segmentation" layer of this shape, or a new one."""
        from napari.layers import Labels

        for layer in self.viewer.layers:
            if (
                layer.name == SEGMENTATION_NAME
                and isinstance(layer, Labels)
                and tuple(layer.data.shape) == label_shape
            ):
                return layer
        return self.viewer.add_labels(
            np.zeros(label_shape, dtype=np.uint32),
            name=SEGMENTATION_NAME,
            scale=scale,
            translate=translate,
        )

    def _current_layer(self, scale, translate):
        from napari.utils.colormaps import DirectLabelColormap

        return self.viewer.add_labels(
            np.zeros((1, 1), dtype=np.uint8),
            name=CURRENT_NAME,
            opacity=0.6,
            scale=scale,
            translate=translate,
            colormap=DirectLabelColormap(
                color_dict={None: "transparent", 0: "transparent", 1: CURRENT_COLOR}
            ),
        )

    def _bind(self, layer, keys: dict[str, Callable[[], None]]) -> None:
        for key, action in keys.items():
            layer.bind_key(key, lambda _layer, action=action: action(), overwrite=True)

    # -- prompts ------------------------------------------------------------------------------
    def _points_event(self, event) -> None:
        if event.action in ("added", "removed", "changed") and not self._clearing:
            self.prompts_changed()

    def _box_event(self, event) -> None:
        if self._clearing or event.action not in ("added", "removed", "changed"):
            return
        if event.action == "added" and len(self.box_layer.data) > 1:
            self._clearing = True  # keep only the newest box
            try:
                self.box_layer.data = [self.box_layer.data[-1]]
            finally:
                self._clearing = False
        self.prompts_changed()

    def read_prompts(self, shape: tuple[int, int]) -> Prompts:
        """The prompts inside a plane of ``shape``, in its (row, col)."""
        points, labels = prompt_layers.read_points(self.points_layer, shape)
        return Prompts(points, labels, prompt_layers.read_box(self.box_layer, shape))

    def clear_prompts(self) -> None:
        """Remove all points and boxes (without asking for a decode)."""
        self._clearing = True
        try:
            if self.alive(self.points_layer):
                self.points_layer.data = np.empty((0, 2))
            if self.alive(self.box_layer):
                self.box_layer.data = []
        finally:
            self._clearing = False

    # -- current object -----------------------------------------------------------------------
    def show_mask(self, mask: np.ndarray, offset, scale, translate) -> None:
        """Draw ``mask`` (bool, its [0, 0] at plane ``offset``) as the current object."""
        if not self.alive(self.current_layer):
            return
        where = translate[-2:] + np.asarray(offset, dtype=float) * scale[-2:]
        if not np.allclose(self.current_layer.translate, where):
            self.current_layer.translate = where
        self.current_layer.data = mask.view(np.uint8)

    def clear_mask(self) -> None:
        if self.alive(self.current_layer):
            self.current_layer.data = np.zeros((1, 1), dtype=np.uint8)

    def cursor_position(self) -> tuple[float, float]:
        """Plane (row, col) of the mouse cursor in the segmentation layer."""
        position = np.asarray(self.viewer.cursor.position, dtype=float)
        layer = self.labels_layer
        data = np.asarray(layer.world_to_data(position[-layer.ndim :]), dtype=float)
        return tuple(data[-2:])
