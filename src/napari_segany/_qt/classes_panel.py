"""The annotator's "Object classes" section: classes, examples by clicking, live retraining.

A small widget composed into the annotator's dock (:mod:`napari_segany._qt.widget`) around a
Qt-free :class:`~napari_segany._qt.classes_state.ClassesState`. The user adds classes (name,
colour), picks a Labels layer and its image, turns on "Click objects to assign" and clicks
objects: each click makes the object an example of the selected class (Shift-click, or a
click with its own class, removes it). With examples of two classes the classifier trains in a
worker of the annotator's :class:`~napari_segany._qt.jobs.Jobs` and every object takes its
class colour (a direct colormap of the Labels layer; the layer's own colours come back when
"Show class colours" is off); the table counts examples and objects per class. Features are
measured once per labels version, tile by tile, from the annotator's cached embeddings when it
segments that image, so large tiled images are never loaded whole. Save and Load write and
read a classifier file; Classify applies the classifier to the chosen layers, Classify
folder… to every image of a folder with labels beside it. "Find more like these" runs Segment
all keeping only the objects like the ones under the point prompts (or the box): one undo step.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_segany._qt.classes_files import CLASSES, ClassifierFiles
from napari_segany._qt.classes_state import (
    ClassesState,
    object_at,
    train_job,
)
from napari_segany._qt.layers import same_layer

#: Numpy labels up to this many pixels are copied for the worker (larger ones are read lazily).
COPY_PIXELS = 50_000_000


class ClassesPanel(ClassifierFiles, QGroupBox):
    """Classes table, layers, assign mode, train/classify, save/load, folder, exemplars.

    Parameters
    ----------
    annotator : SegmentAnythingWidget
        Whose viewer, jobs, pickers, model controls and session it uses.
    """

    def __init__(self, annotator, parent=None) -> None:
        super().__init__("Object classes", parent)
        self.annotator = annotator
        self.viewer = annotator.viewer
        self.state = ClassesState()
        #: the classifier the examples are added to (a loaded one keeps its own examples)
        self.base = None
        self._layer = None  # the Labels layer whose objects the state describes
        self._colormap = None  # that layer's own colormap, while class colours are shown
        self._pending = False  # retrain once the running job ends
        self._build()
        self.refresh_layers()

    # -- widgets ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setToolTip("Give objects classes from a few clicked examples")
        self.image_combo, self.labels_combo = QComboBox(), QComboBox()
        self.labels_combo.setToolTip("The objects to classify (a Labels layer)")
        self.image_combo.setToolTip("The image those objects were segmented in")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "Examples", "Objects"])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(20)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumWidth(0)
        self.table.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.table.setMaximumHeight(120)
        self.table.setToolTip("Double-click a name to rename the class")
        self.add_button, self.colour_button = QPushButton("Add class"), QPushButton("Colour…")
        self.remove_button = QPushButton("Remove")
        self.assign_button = QPushButton("Click objects to assign")
        self.assign_button.setCheckable(True)
        self.assign_button.setToolTip(
            "Click an object: an example of the selected class; Shift-click: not an example"
        )
        self.show_check = QCheckBox("Show class colours")
        self.show_check.setChecked(True)
        self.classify_button = QPushButton("Classify")
        self.classify_button.setToolTip("Train on the examples and classify every object")
        self.save_button, self.load_button = QPushButton("Save…"), QPushButton("Load…")
        self.folder_button = QPushButton("Classify folder…")
        self.folder_button.setToolTip(
            "Classify every image of a folder that has <name>.labels.tif beside it"
        )
        self.like_button = QPushButton("Find more like these")
        self.like_button.setToolTip(
            "Put points (or a box) on 1–3 example objects: Segment all keeps the objects like them"
        )
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Labels", self.labels_combo)
        form.addRow("Image", self.image_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table)
        for row in (  # short rows: the dock stays narrow
            (self.add_button, self.colour_button, self.remove_button),
            (self.assign_button,),
            (self.show_check,),
            (self.classify_button, self.save_button, self.load_button),
            (self.folder_button,),
            (self.like_button,),
        ):
            line = QHBoxLayout()
            for widget in row:
                line.addWidget(widget)
            layout.addLayout(line)
        self.add_button.clicked.connect(lambda: self.add_class())
        self.colour_button.clicked.connect(self._choose_colour)
        self.remove_button.clicked.connect(self.remove_class)
        self.assign_button.toggled.connect(self._assign_toggled)
        self.show_check.toggled.connect(lambda *_: self.show_colours())
        self.classify_button.clicked.connect(lambda: self.retrain(force=True))
        self.save_button.clicked.connect(self._save_clicked)
        self.load_button.clicked.connect(self._load_clicked)
        self.folder_button.clicked.connect(self._folder_clicked)
        self.like_button.clicked.connect(self.find_more_like_these)
        self.table.itemChanged.connect(self._renamed)
        self.labels_combo.activated.connect(lambda *_: self._layer_chosen())
        self.viewer.layers.events.inserted.connect(self.refresh_layers)
        self.viewer.layers.events.removed.connect(self.refresh_layers)

    def _say(self, text: str) -> None:
        self.annotator.jobs.message.emit(text)

    def _notify(self, text: str) -> None:
        from napari.utils.notifications import show_warning

        self._say(text)
        show_warning(text)

    # -- layers -------------------------------------------------------------------------------
    def refresh_layers(self, *args) -> None:
        """List the viewer's Labels and Image layers, keeping the choices."""
        from napari.layers import Image, Labels

        current = self.annotator.layers.current_layer
        for combo, kind in ((self.labels_combo, Labels), (self.image_combo, Image)):
            chosen = combo.currentData()
            combo.clear()
            for layer in self.viewer.layers:
                if isinstance(layer, kind) and not same_layer(layer, current):
                    combo.addItem(layer.name, layer)
                    if same_layer(layer, chosen):
                        combo.setCurrentIndex(combo.count() - 1)
        if self.labels_combo.currentData() is None or not same_layer(
            self.labels_combo.currentData(), self._layer
        ):
            self._pick_defaults()
            self._layer_chosen()

    def _pick_defaults(self) -> None:
        for combo, layer in (
            (self.labels_combo, self.annotator.layers.labels_layer),
            (self.image_combo, self.annotator.panel.pickers.image_layer()),
        ):
            for i in range(combo.count()):
                if same_layer(combo.itemData(i), layer):
                    combo.setCurrentIndex(i)

    def labels_layer(self):
        return self.labels_combo.currentData()

    def image_layer(self):
        return self.image_combo.currentData()

    def _layer_chosen(self) -> None:
        layer = self.labels_layer()
        if same_layer(layer, self._layer):
            return
        self._detach()
        self._layer = layer
        self.state.examples, self.state.predicted, self.state.table = {}, {}, None
        if layer is not None:
            for name in ("data", "paint", "labels_update"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._labels_edited)
            if self.assign_button.isChecked():
                layer.mouse_drag_callbacks.append(self._clicked)
        self._update_table()

    def _detach(self) -> None:
        layer = self._layer
        if layer is None:
            return
        self._restore_colours()
        for name in ("data", "paint", "labels_update"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.disconnect(self._labels_edited)
        if self._clicked in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._clicked)

    def _labels_edited(self, event=None) -> None:
        self.state.table = None  # measured again at the next training

    def _labels_data(self):
        layer = self.labels_layer()
        data = layer.data[0] if layer.multiscale else layer.data
        if data.ndim != 2:
            raise ValueError(
                f"{layer.name!r} has {data.ndim} dimensions: classes work on 2D labels"
            )
        if isinstance(data, np.ndarray) and data.size <= COPY_PIXELS:
            return data.copy()  # the user may paint while the worker measures
        return data

    def _image_for_features(self):
        """The annotator's session when it segments this image (cached embeddings), else the
        image plane shown, read lazily."""
        from napari_segany._qt.image_source import current_plane
        from napari_segany.image.source import ImageSource

        annotator, image = self.annotator, self.image_layer()
        if image is None:
            raise ValueError("Add the image the objects were segmented in.")
        if same_layer(image, annotator.panel.pickers.image_layer()) and annotator.session:
            return annotator.session
        plane = current_plane(image, self.viewer.dims.point)
        return ImageSource(plane.data, plane.channel_axis, name=image.name)

    # -- classes ------------------------------------------------------------------------------
    def add_class(self, name: str | None = None, colour=None) -> None:
        try:
            self.state.add_class(name, colour)
        except ValueError as exc:
            self._notify(str(exc))
        self._update_table()
        self.table.selectRow(self.table.rowCount() - 1)

    def selected_class(self) -> str | None:
        row = self.table.currentRow()
        names = self.state.names()
        return names[row] if 0 <= row < len(names) else None

    def remove_class(self) -> None:
        name = self.selected_class()
        if name is not None:
            self.state.remove_class(name)
            self._update_table()
            self.retrain()

    def _choose_colour(self) -> None:
        row = self.table.currentRow()
        if not 0 <= row < len(self.state.classes):
            return
        colour = QColorDialog.getColor(QColor.fromRgbF(*self.state.classes[row].colour), self)
        if colour.isValid():
            self.set_colour(row, colour.getRgbF())

    def set_colour(self, row: int, rgba) -> None:
        self.state.classes[row].colour = tuple(float(c) for c in rgba)
        self._update_table()
        self.show_colours()

    def _renamed(self, item) -> None:
        if item.column() != 0 or item.row() >= len(self.state.classes):
            return
        old = self.state.classes[item.row()].name
        try:
            self.state.rename(old, item.text())
        except ValueError as exc:
            self._notify(str(exc))
        self._update_table()

    def _update_table(self) -> None:
        self.table.blockSignals(True)
        row = self.table.currentRow()
        counts = self.state.counts()
        self.table.setRowCount(len(self.state.classes))
        for i, cls in enumerate(self.state.classes):
            name = QTableWidgetItem(cls.name)
            name.setBackground(QColor.fromRgbF(*cls.colour))
            self.table.setItem(i, 0, name)
            for column, value in enumerate(counts[cls.name], start=1):
                item = QTableWidgetItem(str(value))
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(i, column, item)
        if 0 <= row < self.table.rowCount():
            self.table.selectRow(row)
        self.table.blockSignals(False)

    # -- examples -----------------------------------------------------------------------------
    def _assign_toggled(self, on: bool) -> None:
        layer = self.labels_layer()
        if layer is None:
            return
        if on and self._clicked not in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.append(self._clicked)
            layer.mode = "pan_zoom"
            self.viewer.layers.selection.active = layer
            if not self.state.classes:
                self.add_class()
                self.add_class()
        elif not on and self._clicked in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._clicked)

    def _clicked(self, layer, event) -> None:
        if event.type != "mouse_press":
            return
        position = layer.world_to_data(event.position)
        data = layer.data[0] if layer.multiscale else layer.data
        object_id = object_at(data, position[-2], position[-1])
        shift = any(m == "Shift" for m in event.modifiers)
        name = None if shift else self.selected_class()
        self.assign(object_id, name)

    def assign(self, object_id: int, name: str | None) -> None:
        """Make ``object_id`` an example of ``name`` (None: no example) and retrain."""
        if object_id == 0:
            self._say("No object there: click inside an object.")
            return
        if name is None and object_id not in self.state.examples:
            return
        if name is None and not self.state.classes:
            self._say("Add a class first.")
            return
        now = self.state.assign(object_id, name)
        self._say(f"Object {object_id}: " + (f"example of {name!r}." if now else "no example."))
        self._update_table()
        self.show_colours()
        self.retrain()

    # -- training and colours -----------------------------------------------------------------
    def _classifier(self):
        from napari_segany.classify import ObjectClassifier

        if self.base is None:
            controls = self.annotator.panel.model_controls
            self.base = ObjectClassifier(controls.model_spec(), device=controls.device())
        return self.base.copy()

    def retrain(self, force: bool = False) -> None:
        """Train on the examples and classify every object, in a worker (once the running
        job ended); with only a loaded classifier and no examples, classify."""
        jobs = self.annotator.jobs
        if jobs.worker(CLASSES) is not None:
            self._pending = True
            return
        loaded = self.base is not None and self.base.trained
        if not (self.state.trainable() or loaded):
            if force:
                self._say("Give examples of two classes (Click objects to assign).")
            return
        if self.labels_layer() is None:
            self._say("Choose the Labels layer to classify.")
            return
        try:
            labels, image = self._labels_data(), self._image_for_features()
        except ValueError as exc:  # ImageSourceError too
            self._notify(str(exc))
            return
        clf, examples, table = self._classifier(), dict(self.state.examples), self.state.table
        self._pending = False

        def run():
            return (yield from train_job(clf, image, labels, examples, table))

        measuring, layer = table is None, self.labels_layer()
        self._say("Measuring objects…" if measuring else "Training…")
        jobs.start(
            CLASSES,
            run,
            yielded=lambda report: jobs.show_progress(report, "Classes"),
            returned=lambda result: self._trained(layer, *result),
            errored=lambda exc: self._notify(f"Classes: {exc}"),
            finished=self._job_finished,
            progress="Segment Anything: measuring objects" if measuring else None,
            blocking=measuring,
        )

    def _trained(self, layer, table, classifier, predicted, probability) -> None:
        if not same_layer(layer, self.labels_layer()):
            return  # the user chose other labels meanwhile
        from napari_segany._qt.review import set_object_features

        rows = {i: {"class": c, "class_probability": probability[i]} for i, c in predicted.items()}
        set_object_features(layer, rows)  # the writer puts them into OME-Zarr properties
        state = self.state
        state.table, state.classifier, state.predicted = table, classifier, predicted
        for name in classifier.classes:
            if name not in state.names():
                state.add_class(name, classifier.colours.get(name))
        counts = state.counts()
        self._say("Classes: " + ", ".join(f"{n} {counts[n][1]}" for n in classifier.classes))
        self._update_table()
        self.show_colours()

    def _job_finished(self) -> None:
        if self._pending:
            self.retrain()

    def show_colours(self) -> None:
        """Colour every object of the Labels layer by its class (or restore its colours)."""
        from napari.utils.colormaps import DirectLabelColormap

        layer = self._layer
        if layer is None:
            return
        if not self.show_check.isChecked() or not (self.state.predicted or self.state.examples):
            self._restore_colours()
            return
        if self._colormap is None:
            self._colormap = layer.colormap
        colours = {None: (0.6, 0.6, 0.6, 0.5), 0: (0, 0, 0, 0), **self.state.colours()}
        layer.colormap = DirectLabelColormap(color_dict=colours)

    def _restore_colours(self) -> None:
        if self._colormap is not None and self._layer is not None:
            self._layer.colormap = self._colormap
        self._colormap = None

    # -- exemplars ----------------------------------------------------------------------------
    def find_more_like_these(self) -> None:
        """Segment all, keeping the objects like those under the positive points or the box."""
        annotator = self.annotator
        if annotator.session is None:
            self._say("Compute embeddings first.")
            return
        prompts = annotator.current_prompts()
        exemplars = []
        if prompts.points is not None:
            exemplars += [
                tuple(p) for p, k in zip(prompts.points, prompts.labels, strict=True) if k
            ]
        if prompts.box is not None:
            exemplars.append(tuple(prompts.box))
        if not exemplars:
            self._say("Put a point (or a box) on 1–3 example objects, then Find more like these.")
            return
        annotator.clear_prompts()
        annotator.segment_all(exemplars=exemplars)
