"""The annotator's "Volumes and time series" section: propagate an object, segment a stack.

* **Propagate**: the object selected in the output Labels layer (its ``selected_label``), or
  every object of the slice ("all objects on this slice"),
  as it is on the slice under the sliders (commit it there first, or paint it), is propagated
  through the neighbouring slices in both directions (:class:`napari_segany.volume.
  VolumePropagator`), up to ``limit`` slices each way (0: until it ends). The slice is kept as
  the user's: propagating later from another slice stops before it, so corrections stick. One
  undo step.
* **Segment stack**: every slice segmented and linked into 3D objects (z-stack) or tracked
  (time series), into a new Labels layer; a time series also gets a Tracks layer (id, frame,
  parent). An image with four non-channel axes is a time series of z-stacks (``t, z, y, x``):
  its 3D objects are tracked over frames (propagation is not offered there).

The stack axis is the image layer's first axis (its other axes: rows, columns and, if chosen in
the pickers, channels); it is z or time as the layer's ``axis_labels`` say (``t``/``time``,
``z``; e.g. a layer opened from our 3D labels or an OME-Zarr), else as the panel's choice.
Slices are encoded lazily in a worker and kept for later propagations.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
)

__all__ = ["VolumePanel", "stack_axes"]

SLOT = "volume"


def stack_axes(ndim: int, along: str, channel_axis: int | None, rgb: bool) -> str:
    """Axes string of an image layer's data of ``ndim`` dimensions with its stack axis first.

    Four non-channel dimensions are a time series of z-stacks, ``t`` first (``"tzyx"``), as
    napari orders them.

    Raises ValueError when the layer is not one stack of 2D planes (plus channels) or a time
    series of such stacks.
    """
    spatial = ndim - (1 if channel_axis is not None or rgb else 0)
    if spatial not in (3, 4):
        raise ValueError(
            f"Propagation and stack segmentation need a 3D image (a z-stack or a time series of "
            f"2D planes) or a 4D time series of z-stacks; this image has {spatial} non-channel "
            "dimensions."
        )
    letters = ["t", "z", "y", "x"] if spatial == 4 else [along, "y", "x"]
    if rgb:
        letters.append("c")
    elif channel_axis is not None:
        letters.insert(channel_axis % ndim, "c")
    return "".join(letters)


class VolumePanel(QGroupBox):
    """Propagation and stack segmentation for the annotator ``annotator``."""

    def __init__(self, annotator, parent=None) -> None:
        super().__init__("Volumes and time series", parent)
        self.annotator = annotator
        self._editors: dict[tuple, object] = {}
        form = QFormLayout(self)
        self.axis_combo = QComboBox()
        self.axis_combo.addItem("z-stack (3D objects)", "z")
        self.axis_combo.addItem("time series (tracks)", "t")
        self.axis_combo.setToolTip("What the image's first axis is")
        form.addRow("First axis", self.axis_combo)
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 10_000)
        self.limit_spin.setSpecialValueText("no limit")
        self.limit_spin.setToolTip("Slices at most on each side (0: until the object ends)")
        self.propagate_button = QPushButton("Propagate")
        self.propagate_button.setToolTip(
            "Propagate the selected label from this slice through the stack"
        )
        row = QHBoxLayout()
        row.addWidget(self.limit_spin)
        row.addWidget(self.propagate_button)
        form.addRow("Limit", row)
        self.all_check = QCheckBox("all objects on this slice")
        self.all_check.setToolTip("Propagate every object of the current slice at once")
        form.addRow(self.all_check)
        self.segment_button = QPushButton("Segment stack")
        self.segment_button.setToolTip("Segment every slice and link the objects")
        form.addRow(self.segment_button)
        self.propagate_button.clicked.connect(self.propagate)
        self.segment_button.clicked.connect(self.segment_stack)

    # -- what to work on ----------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.annotator._say(text)

    def _image(self):
        """(image layer, its data, axes string) or raises ValueError."""
        pickers = self.annotator.panel.pickers
        layer = pickers.image_layer()
        if layer is None:
            raise ValueError("Open or add an image layer first.")
        data = layer.data[0] if layer.multiscale else layer.data
        named = str(next(iter(getattr(layer, "axis_labels", ("",))))).lower()
        if named in ("t", "time", "z"):  # the layer's dims say what its first axis is
            self.axis_combo.setCurrentIndex(self.axis_combo.findData(named[0]))
        along = self.axis_combo.currentData()
        return layer, data, stack_axes(data.ndim, along, pickers.channel_axis(), layer.rgb)

    def _model(self):
        from napari_segany._qt.sessions import load_model_cached

        controls = self.annotator.panel.model_controls
        return load_model_cached(self.annotator.model_spec(), controls.device())

    def _slice_index(self, layer) -> int:
        return round(float(layer.world_to_data(self.annotator.viewer.dims.point)[0]))

    def _ready_image(self):
        """(layer, data, axes) of the stack, or None (said why) while busy or without one."""
        if self.annotator.jobs.busy():
            self._say("Busy: wait or press Cancel.")
            return None
        try:
            return self._image()
        except ValueError as exc:
            self._say(str(exc))
            return None

    # -- propagate ----------------------------------------------------------------------------
    def propagate(self) -> None:
        """Propagate the selected label from the current slice (in a worker)."""
        jobs = self.annotator.jobs
        ready = self._ready_image()
        if ready is None:
            return
        layer, data, axes = ready
        if "t" in axes and "z" in axes:
            self._say(
                "Propagation runs through one z-stack: in a time series of z-stacks, use "
                "napari_segany.volume.propagate(..., fixed={'t': frame}) or Segment stack."
            )
            return
        labels_layer = self.annotator.labels_layer
        shape = tuple(data.shape[i] for i, a in enumerate(axes) if a != "c")
        if labels_layer is None or tuple(labels_layer.data.shape) != shape:
            self._say("Commit the object on this slice first (C): no segmentation of this stack.")
            return
        obj, z = int(labels_layer.selected_label), self._slice_index(layer)
        current = np.asarray(labels_layer.data)
        if not 0 <= z < shape[0]:
            self._say(f"Slice {z} is outside the stack.")
            return
        if self.all_check.isChecked():
            objects = [int(i) for i in np.unique(current[z]) if i]
            if not objects:
                self._say(f"No object on slice {z}: commit one here first.")
                return
        elif (current[z] == obj).any():
            objects = [obj]
        else:
            self._say(f"Label {obj} is not on slice {z}: select its label, or commit it here.")
            return
        key = (id(layer), id(labels_layer), axes, self.annotator.model_spec())
        limit = self.limit_spin.value() or None
        editor = self._editors.get(key)

        def job():
            nonlocal editor
            from napari_segany.volume import StackSessions, VolumePropagator

            if editor is None:
                sessions = StackSessions(data, self._model(), axes)
                editor = VolumePropagator(sessions, labels=current.copy())
            editor.labels = current.copy()  # the layer as the user left it
            for o in objects:
                editor.user_slices.setdefault(o, set()).add(z)
            yield from editor.iter_propagate(objects, z, limit)
            return editor

        def done(result) -> None:
            self._editors[key] = result
            self._write(labels_layer, result.labels)
            names = ", ".join(map(str, objects))
            self._say(f"Propagated label{'s' if len(objects) > 1 else ''} {names} from slice {z}.")

        jobs.start(
            SLOT,
            job,
            yielded=lambda report: jobs.show_progress(report, "propagating"),
            returned=done,
            progress="propagating",
        )

    @staticmethod
    def _write(labels_layer, new: np.ndarray) -> None:
        """Write the voxels that changed as one undo step."""
        old = np.asarray(labels_layer.data)
        changed = np.nonzero(new != old)
        if not len(changed[0]):
            return
        with labels_layer.block_history():
            labels_layer.data_setitem(changed, new[changed])

    # -- segment a stack ----------------------------------------------------------------------
    def segment_stack(self) -> None:
        """Segment every slice and link them, into a new Labels layer (in a worker)."""
        jobs = self.annotator.jobs
        ready = self._ready_image()
        if ready is None:
            return
        layer, data, axes = ready

        def job():
            from napari_segany.automatic.params import AutomaticParams
            from napari_segany.automatic.stack import iter_segment_stack
            from napari_segany.volume import StackSessions

            sessions = StackSessions(data, self._model(), axes, keep=2)
            return (yield from iter_segment_stack(sessions, AutomaticParams()))

        jobs.start(
            SLOT,
            job,
            yielded=lambda report: jobs.show_progress(report, "segmenting stack"),
            returned=lambda result: self._add_result(layer, result),
            progress="segmenting stack",
        )

    def _add_result(self, layer, result) -> None:
        viewer = self.annotator.viewer
        layer_axes = self._image()[2]
        if layer.rgb:
            layer_axes = layer_axes[:-1]  # napari's scale leaves the RGB axis out
        scale = tuple(s for s, a in zip(layer.scale, layer_axes, strict=True) if a != "c")
        kind = {"tyx": "tracked objects", "tzyx": "tracked 3D objects"}.get(
            result.axes, "3D objects"
        )
        viewer.add_labels(np.asarray(result.labels), name=f"{layer.name} {kind}", scale=scale)
        if result.tracks is not None and len(result.tracks):
            # id, frame, (z,) row, col
            tracks = result.tracks[:, [0, 1, *range(3, result.tracks.shape[1])]]
            graph = {int(d): [int(m)] for d, m in result.parents.items()}
            viewer.add_tracks(tracks, graph=graph, name=f"{layer.name} tracks", scale=scale)
        self._say(f"{result.count} {kind} in {layer.name!r}.")
