"""The annotator's "Train on my annotations" section.

A small widget composed into the annotator's dock (:mod:`napari_segany._qt.widget`). It lists
the Labels layers, each paired with the image it annotates (the annotator's segmentation and
image by default), and a name for the model. Train checks them on the main thread
(:func:`~napari_segany._qt.training_job.training_pair`), then runs
:class:`~napari_segany._qt.training_job.TrainingJob` in a worker of the annotator's
:class:`~napari_segany._qt.jobs.Jobs`: progress (loss, validation score) in napari's activity
dock, Cancel stops after the current step and keeps the best model so far. The model is
registered by name in the user's model folder and appears in the Model list; "Use it and
Segment all" switches to it, computes the embeddings and segments the image.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from napari_segany._qt.layers import IMAGE_KEY, SEGMENTATION_NAME, same_layer
from napari_segany._qt.training_job import (
    TrainingJob,
    default_model_name,
    training_base,
    training_pair,
)

TRAIN = "train"
#: rows of Labels layers the list shows without scrolling
LIST_ROWS = 3


def _key(layer) -> int:
    return id(getattr(layer, "__wrapped__", layer))


def _spatial_shape(layer) -> tuple[int, ...]:
    data = layer.data[0] if layer.multiscale else layer.data
    shape = tuple(int(s) for s in data.shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def _fits(labels, image) -> bool:
    return _spatial_shape(labels)[-2:] == _spatial_shape(image)[-2:]


class TrainingPanel(QGroupBox):
    """Labels layers and their images, model name, steps, Train, Cancel, Use it.

    Parameters
    ----------
    annotator : SegmentAnythingWidget
        Whose viewer, jobs, pickers, model controls and layers it uses.
    """

    def __init__(self, annotator, parent=None) -> None:
        super().__init__("Train on my annotations", parent)
        self.annotator = annotator
        self.viewer = annotator.viewer
        #: extra :class:`~napari_segany.training.FinetuneConfig` settings (e.g. ``crop``)
        self.options: dict = {}
        #: the last training job, and the name of the last model it trained
        self.job: TrainingJob | None = None
        self.trained_name: str | None = None
        self._checked: dict[int, bool] = {}  # the user's ticks, by labels layer
        self._images: dict[int, object] = {}  # the user's image choices, by labels layer
        self._name_edited = False
        self._segment_with: str | None = None  # Segment all once embeddings are ready
        self._build()
        self.refresh()

    def _build(self) -> None:
        self.setToolTip(
            "Train a model on the committed objects: it learns inside the annotated area (the "
            "objects' boxes plus a margin) and keeps the best of its checkpoints"
        )
        self.labels_list = QListWidget()
        self.labels_list.setToolTip("Labels layers to learn from (ticked), and their images")
        rows = self.labels_list.fontMetrics().height() + 6
        self.labels_list.setMaximumHeight(rows * LIST_ROWS + 8)
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The image annotated by the selected Labels layer")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip(
            "Name of the new model in the Model list (saved in your model folder)"
        )
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 100_000)
        self.steps_spin.setSingleStep(50)
        self.steps_spin.setSpecialValueText("default")
        self.steps_spin.setToolTip("Training steps (default: about 5 minutes on 2 CPU cores)")
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip(
            "Train the chosen Model (or the embedded one) on the ticked Labels layers"
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the best model so far stays")
        self.cancel_button.setEnabled(False)
        self.use_button = QPushButton("Use it and Segment all")
        self.use_button.setToolTip("Choose the trained model, compute embeddings, Segment all")
        self.use_button.setEnabled(False)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Labels", self.labels_list)
        form.addRow("Image", self.image_combo)
        form.addRow("Name", self.name_edit)
        form.addRow("Steps", self.steps_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.use_button)

        self.labels_list.itemChanged.connect(self._item_changed)
        self.labels_list.currentRowChanged.connect(lambda *_: self._show_image())
        self.image_combo.activated.connect(self._image_chosen)
        self.name_edit.textEdited.connect(self._name_typed)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self.use_and_segment_all)
        self.annotator.jobs.running_changed.connect(self._running_changed)
        self.annotator.panel.pickers.selection_changed.connect(self.refresh)

    # -- layers -------------------------------------------------------------------------------
    def _layers(self, kind) -> list:
        return [layer for layer in self.viewer.layers if isinstance(layer, kind)]

    def _labels_layers(self) -> list:
        from napari.layers import Labels

        current = self.annotator.layers.current_layer  # the object being previewed
        return [layer for layer in self._layers(Labels) if not same_layer(layer, current)]

    def _default_checked(self, labels) -> bool:
        annotator = self.annotator
        return (
            same_layer(labels, annotator.layers.labels_layer)
            or same_layer(labels, annotator.panel.pickers.output_layer())
            or IMAGE_KEY in labels.metadata  # written by the annotator
            or labels.name == SEGMENTATION_NAME  # the layer the annotator would write to
        )

    def is_checked(self, labels) -> bool:
        """Whether ``labels`` is ticked (by the user, else by default: the annotator's)."""
        return self._checked.get(_key(labels), self._default_checked(labels))

    def image_for(self, labels):
        """The Image layer paired with ``labels``: the user's choice, else the image the
        annotator wrote it for, the annotator's image, another image of its size."""
        from napari.layers import Image

        images = self._layers(Image)
        chosen = self._images.get(_key(labels))
        if any(same_layer(chosen, image) for image in images):
            return chosen
        named = labels.metadata.get(IMAGE_KEY)
        annotated = self.annotator.panel.pickers.image_layer()
        candidates = [i for i in images if i.name == named]
        candidates += [i for i in [annotated, *images] if i is not None and _fits(labels, i)]
        candidates += [annotated, *images]
        return next((image for image in candidates if image is not None), None)

    def refresh(self, *args) -> None:
        """List the viewer's Labels layers again, keeping the selection and the ticks."""
        current = self.labels_list.currentItem()
        selected = current.data(Qt.ItemDataRole.UserRole) if current is not None else None
        self.labels_list.blockSignals(True)
        self.labels_list.clear()
        row = -1
        for i, labels in enumerate(self._labels_layers()):
            item = QListWidgetItem(self._item_text(labels))
            item.setData(Qt.ItemDataRole.UserRole, labels)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = self.is_checked(labels)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.labels_list.addItem(item)
            if same_layer(labels, selected) or (row < 0 and checked):
                row = i
        self.labels_list.setCurrentRow(max(row, 0) if self.labels_list.count() else -1)
        self.labels_list.blockSignals(False)
        self._show_image()
        self._update_name()

    def _item_text(self, labels) -> str:
        image = self.image_for(labels)
        return f"{labels.name} → {image.name if image is not None else '(no image)'}"

    def _selected_labels(self):
        item = self.labels_list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _show_image(self) -> None:
        from napari.layers import Image

        labels = self._selected_labels()
        image = None if labels is None else self.image_for(labels)
        self.image_combo.clear()
        for layer in self._layers(Image):
            self.image_combo.addItem(layer.name, layer)
            if same_layer(layer, image):
                self.image_combo.setCurrentIndex(self.image_combo.count() - 1)
        self.image_combo.setEnabled(labels is not None and self.image_combo.count() > 0)

    def _image_chosen(self, index: int) -> None:
        labels = self._selected_labels()
        if labels is not None:
            self._images[_key(labels)] = self.image_combo.itemData(index)
            self.labels_list.currentItem().setText(self._item_text(labels))
            self._update_name()

    def _item_changed(self, item) -> None:
        labels = item.data(Qt.ItemDataRole.UserRole)
        self._checked[_key(labels)] = item.checkState() == Qt.CheckState.Checked
        self._update_name()

    def checked_labels(self) -> list:
        """The ticked Labels layers, in the list's order."""
        items = (self.labels_list.item(i) for i in range(self.labels_list.count()))
        return [
            item.data(Qt.ItemDataRole.UserRole)
            for item in items
            if item.checkState() == Qt.CheckState.Checked
        ]

    # -- name ---------------------------------------------------------------------------------
    def default_name(self) -> str:
        """``"<image>_cells"`` for the first ticked pair's image (or the annotator's), made
        unique among the registry's and the trained models."""
        from napari_segany.models.registry import MODELS
        from napari_segany.models.trained import trained_models

        checked = self.checked_labels()
        image = self.image_for(checked[0]) if checked else None
        image = image or self.annotator.panel.pickers.image_layer()
        return default_model_name(image.name if image else "my", [*MODELS, *trained_models()])

    def _name_typed(self, text: str) -> None:
        self._name_edited = bool(text.strip())

    def _update_name(self) -> None:
        if not self._name_edited:
            self.name_edit.setText(self.default_name())

    # -- training -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.annotator.jobs.message.emit(text)

    def _notify(self, text: str, warning: bool = False) -> None:
        """A line in the status and a napari notification (never a traceback)."""
        from napari.utils.notifications import show_info, show_warning

        self._say(text)
        (show_warning if warning else show_info)(text)

    def prepare(self) -> tuple[TrainingJob, str]:
        """The job the current choices describe, and a note on its base model.

        Raises
        ------
        ValueError
            Saying what is missing or wrong (nothing to train on, another shape, a bad name).
        """
        from napari_segany.models.registry import MODELS
        from napari_segany.models.trained import check_model_name, trained_model_path

        annotator = self.annotator
        pickers, controls = annotator.panel.pickers, annotator.panel.model_controls
        checked = self.checked_labels()
        if not checked:
            raise ValueError(
                "Nothing to train on: segment some objects and commit them (C), then train."
                if not self.labels_list.count()
                else "Tick the Labels layer(s) to train on."
            )
        pairs = []
        for labels in checked:
            image = self.image_for(labels)
            if image is None:
                raise ValueError(f"No image for {labels.name!r}: add the image it annotates.")
            own = same_layer(image, pickers.image_layer())
            axis, channel = (pickers.channel_axis(), pickers.channel()) if own else (None, None)
            pairs.append(training_pair(labels, image, self.viewer.dims.point, axis, channel))
        objects = sum(pair.objects for pair in pairs)
        if objects < 2:
            raise ValueError(
                "Only 1 object is committed: training needs at least 2 (a few dozen give a "
                "clearly better model)."
            )
        name = check_model_name(self.name_edit.text().strip() or self.default_name(), MODELS)
        if trained_model_path(name) is not None:
            raise ValueError(f"A model named {name!r} exists: choose another name.")
        base, note = training_base(controls.model_spec())
        options = dict(self.options)
        if self.steps_spin.value():
            options["steps"] = self.steps_spin.value()
        return TrainingJob(pairs, name, base, controls.device(), options), note

    def train(self) -> None:
        """Check the choices and start training in a worker (a message instead on bad input)."""
        jobs = self.annotator.jobs
        if jobs.busy() or self.annotator.layers.adding():
            self._say("Busy: wait or press Cancel.")
            return
        try:
            job, note = self.prepare()
        except ValueError as exc:  # ImageSourceError too
            self._notify(str(exc), warning=True)
            return
        self.job = job
        self._say(
            f"Training {job.name!r} from {job.base} on {job.objects} objects in "
            f"{len(job.pairs)} image(s){note}: the base model is scored first…"
        )
        worker = jobs.start(
            TRAIN,
            job.run,
            yielded=lambda report: jobs.show_progress(report, "Training", describe=True),
            finished=lambda: self._finished(job),
            progress="Segment Anything: training",
            total=job.options.get("steps", 0),
        )
        # closing the job where it runs, once it stopped: saving happens in the worker
        worker.aborted.connect(job.cancel, Qt.ConnectionType.DirectConnection)

    def cancel(self) -> None:
        """Stop training after the current step; the best model so far stays."""
        worker = self.annotator.jobs.worker(TRAIN)
        if worker is not None:
            worker.quit()
            self._say("Stopping training after the current step…")

    def _finished(self, job: TrainingJob) -> None:
        controls = self.annotator.panel.model_controls
        controls.refresh_models()
        if job.trained():
            self.trained_name = job.name
        if job.error is not None or job.trained() or job.cancelled:
            self._notify(job.summary(), warning=job.error is not None)
        self._update_name()

    def _running_changed(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.cancel_button.setEnabled(self.annotator.jobs.worker(TRAIN) is not None)
        self.use_button.setEnabled(not running and self.trained_name is not None)
        if not running and self._segment_with is not None:
            QTimer.singleShot(0, self._segment_if_ready)

    # -- using the model ----------------------------------------------------------------------
    def use_and_segment_all(self) -> None:
        """Choose the trained model, compute the embeddings and run Segment all."""
        annotator, name = self.annotator, self.trained_name
        controls = annotator.panel.model_controls
        if name is None or annotator.jobs.busy():
            return
        if not controls.select_model(name):
            controls.refresh_models()
            if not controls.select_model(name):
                self._say(f"The model {name!r} is gone from your model folder.")
                return
        if annotator.panel.pickers.image_layer() is None:
            self._say("Open or add an image layer first.")
            return
        self._segment_with = name
        annotator.compute_embeddings()

    def _segment_if_ready(self) -> None:
        name, self._segment_with = self._segment_with, None
        annotator = self.annotator
        session = annotator.session
        if session is None or annotator.jobs.busy() or annotator.model_spec() != name:
            return
        if session.is_encoded():
            annotator.segment_all()
