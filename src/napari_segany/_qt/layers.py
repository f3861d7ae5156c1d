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
#: metadata key of the output Labels layer: name of the Image layer it segments (the writer's
#: object table takes its mean intensity from that image)
IMAGE_KEY = "napari_segany_image"
#: pause between two layers added by :meth:`AnnotatorLayers.ensure_soon` (ms): long enough
#: that an event loop run from inside napari (its progress bar processes events) does not add
#: them all at once
STEP_MS = 25


def same_layer(a, b) -> bool:
    """Whether two layers are the same, also through napari's plugin proxies."""
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def plane_transform(image_layer, channel_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(scale, translate) of ``image_layer`` without its channel axis."""
    axes = [a for a in range(image_layer.ndim) if a != channel_axis]
    return np.asarray(image_layer.scale)[axes], np.asarray(image_layer.translate)[axes]


def current_object_layer(scale, translate):
    """The Labels layer that shows the current object's mask, yellow, over the image.

    Its data is the mask alone, placed by ``translate`` (the mask's offset in the plane).
    """
    from napari.layers import Labels
    from napari.utils.colormaps import DirectLabelColormap

    return Labels(
        np.zeros((1, 1), dtype=np.uint8),
        name=CURRENT_NAME,
        opacity=0.6,
        scale=scale,
        translate=translate,
        colormap=DirectLabelColormap(
            color_dict={None: "transparent", 0: "transparent", 1: CURRENT_COLOR}
        ),
    )


def _set_units(layer, units) -> None:
    """Give a 2D layer the plane's units (its last two; napari's "pixel" when it has none)."""
    wanted = tuple(units[-2:]) if units else ("pixel", "pixel")
    if layer is not None and tuple(str(u) for u in layer.units) != wanted:
        layer.units = wanted


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
    parent : QObject, optional
        Owner of the timer of :meth:`ensure_soon` (the dock widget): once it is deleted, with
        the viewer, no layer is added any more.
    """

    def __init__(
        self,
        viewer,
        prompts_changed: Callable[[], None],
        keys: dict[str, Callable[[], None]],
        point_keys: dict[str, Callable[[], None]],
        negative_mode: Callable[[], bool],
        say: Callable[[str], None],
        parent=None,
    ) -> None:
        from qtpy.QtCore import QTimer

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
        self._stepping = None  # what ensure_soon still has to do
        self._step_timer = QTimer(parent)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(STEP_MS)
        self._step_timer.timeout.connect(self._step)

    def alive(self, layer) -> bool:
        return layer is not None and layer in self.viewer.layers

    # -- creating -----------------------------------------------------------------------------
    def ensure(self, plane, scale, translate, chosen=None) -> bool:
        """Create (or re-create, if the user deleted them) the layers for ``plane`` now.

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
        self._stepping = None
        added_any = added_labels = False
        while (added := self._add_missing(plane, scale, translate, chosen)) is not None:
            added_any = True
            added_labels |= added == SEGMENTATION_NAME
        self._fit(plane, scale, translate, select=added_any)
        return added_labels

    def ensure_soon(self, plane, scale, translate, chosen, done: Callable[[bool], None]) -> None:
        """:meth:`ensure`, one layer per turn of the event loop, then ``done(added_labels)``;
        the points layer ends up selected.

        Adding a layer costs napari 0.1–0.2 s on the main thread (its controls, its vispy
        visual, a first draw); one at a time, :data:`STEP_MS` apart, the window keeps answering
        in between. A later
        :meth:`ensure` finishes the work at once.
        """
        self._stepping = (plane, scale, translate, chosen, done, [False])
        self._step_timer.start()

    def _step(self) -> None:
        if self._stepping is None:
            return
        plane, scale, translate, chosen, done, added_labels = self._stepping
        added = self._add_missing(plane, scale, translate, chosen)
        if added is not None:
            added_labels[0] |= added == SEGMENTATION_NAME
            self._step_timer.start()
            return
        self._stepping = None
        self._fit(plane, scale, translate, select=True)
        done(added_labels[0])

    def adding(self) -> bool:
        """Whether :meth:`ensure_soon` is still adding layers."""
        return self._stepping is not None

    def _add_missing(self, plane, scale, translate, chosen) -> str | None:
        """Add the first missing layer, bottom to top; its name, or None if none was missing."""
        label_shape = tuple(plane.label_shape)
        if chosen is not None and self.alive(chosen) and not same_layer(chosen, self.labels_layer):
            if tuple(chosen.data.shape) == label_shape:
                self.labels_layer = chosen
            else:
                self.say(
                    f"{chosen.name!r} has shape {tuple(chosen.data.shape)}, the image needs "
                    f"{label_shape}; choose a Labels layer of that shape."
                )
        plane_scale, plane_translate = scale[-2:], translate[-2:]
        if not self.alive(self.labels_layer) or tuple(self.labels_layer.data.shape) != label_shape:
            self.labels_layer = self._segmentation_layer(label_shape, scale, translate, plane.units)
            return SEGMENTATION_NAME
        if not self.alive(self.current_layer):
            self.current_layer = self._current_layer(plane_scale, plane_translate, plane.units)
            return CURRENT_NAME
        if not self.alive(self.box_layer):
            self.box_layer = prompt_layers.make_box_layer(plane_scale, plane_translate)
            _set_units(self.box_layer, plane.units)
            self._add_on_top(self.box_layer, prompt_layers.BOX_MODE)
            self.box_layer.events.data.connect(self._box_event)
            self._bind(self.box_layer, self.keys)
            return prompt_layers.BOX_NAME
        if not self.alive(self.points_layer):
            self.points_layer = prompt_layers.make_points_layer(
                plane_scale, plane_translate, self.negative_mode
            )
            _set_units(self.points_layer, plane.units)
            self._add_on_top(self.points_layer, prompt_layers.POINTS_MODE)
            self.points_layer.events.data.connect(self._points_event)
            self._bind(self.points_layer, {**self.keys, **self.point_keys})
            return prompt_layers.POINTS_NAME
        return None

    def _add_on_top(self, layer, mode: str) -> None:
        self.viewer.add_layer(layer)
        layer.mode = mode  # after adding, so that the layer controls show it

    def _fit(self, plane, scale, translate, select: bool) -> None:
        """Keep the layers on the image's plane and on top; ``select`` the points layer (the
        user is about to click; a layer napari just added would be the selected one)."""
        plane_scale, plane_translate = scale[-2:], translate[-2:]
        for layer in (self.box_layer, self.points_layer):  # the image may have moved
            if not (
                np.allclose(layer.scale, plane_scale)
                and np.allclose(layer.translate, plane_translate)
            ):
                layer.scale, layer.translate = plane_scale, plane_translate
        if not np.allclose(self.current_layer.scale, plane_scale):
            self.current_layer.scale = plane_scale
        for layer in (self.current_layer, self.box_layer, self.points_layer):
            _set_units(layer, plane.units)  # the image may have other units now
        self.keep_on_top()
        if select:
            self.select_points()

    def select_points(self) -> None:
        """Make the points layer the active one, so a click on the canvas adds a prompt."""
        if self.alive(self.points_layer):
            self.viewer.layers.selection.active = self.points_layer

    def keep_on_top(self) -> None:
        """Move the preview and prompt layers above every other layer (images added later
        would hide them), keeping their order: current object, box, points on top."""
        layers = self.viewer.layers
        ours = [x for x in (self.current_layer, self.box_layer, self.points_layer) if self.alive(x)]
        top = len(layers) - len(ours)
        if all(same_layer(layers[top + i], x) for i, x in enumerate(ours)):
            return
        for layer in ours:
            layers.move(layers.index(layer), len(layers))

    def _segmentation_layer(self, label_shape, scale, translate, units=None):
        """The viewer's "segmentation" layer of this shape, or a new one (with the image's
        scale, translation and units, which the writer saves with the labels)."""
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
            **({"units": units} if units else {}),
        )

    def _current_layer(self, scale, translate, units=None):
        layer = current_object_layer(scale, translate)
        _set_units(layer, units)
        self.viewer.add_layer(layer)
        return layer

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
