"""The "Segment Anything" dock widget: compute embeddings, prompt, preview, commit, undo.

A thin shell that wires its parts together:

* :class:`~napari_segany._qt.annotation.Annotation`: the model (plane, session, current object
  and its candidates), plain Python;
* :class:`~napari_segany._qt.panel.AnnotatorPanel`: the buttons, pickers and status line;
* :class:`~napari_segany._qt.layers.AnnotatorLayers`: the prompt, preview and output layers;
* :class:`~napari_segany._qt.jobs.Jobs`: the workers, the progress bar, cancelling;
* :class:`~napari_segany._qt.session_jobs.SessionJobs`: preparing sessions, encoding, segment all;
* :class:`~napari_segany._qt.preview.PreviewDecoder`: decoding the prompts into the preview;
* :class:`~napari_segany._qt.edits.SegmentationEdits`: commit, delete, undo/redo, segment all's
  result, in the output layer;
* :class:`~napari_segany._qt.training_panel.TrainingPanel`: "Train on my annotations".
* :class:`~napari_segany._qt.classes_panel.ClassesPanel`: "Object classes".

Heavy work runs in napari thread workers; layers are only touched on the main thread. The
segmentation itself is done by :class:`napari_segany.tiled.session.SegmentationSession` and
:mod:`napari_segany.automatic`. Shortcuts: see :data:`napari_segany._qt.panel.SHORTCUTS`.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from napari_segany._qt.annotation import Annotation, Prompts
from napari_segany._qt.classes_panel import ClassesPanel
from napari_segany._qt.edits import SegmentationEdits
from napari_segany._qt.image_source import ImageSourceError, current_plane
from napari_segany._qt.jobs import Jobs
from napari_segany._qt.layers import IMAGE_KEY, AnnotatorLayers, plane_transform, same_layer
from napari_segany._qt.panel import SHORTCUTS, AnnotatorPanel
from napari_segany._qt.preview import PreviewDecoder
from napari_segany._qt.review import Reviewer
from napari_segany._qt.session_jobs import SessionJobs
from napari_segany._qt.sessions import default_session_factory
from napari_segany._qt.training_panel import TrainingPanel
from napari_segany._qt.volume_panel import VolumePanel
from napari_segany._qt.warmup import warm_in_background

__all__ = ["SHORTCUTS", "SegmentAnythingWidget"]

PREVIEW_HINT = "Previewing a new object: C commits it, N shows the next candidate."
#: pause between the dock's first appearance and the start of the warm-up (ms)
WARM_UP_DELAY_MS = 300
#: how long the canvas keeps its size after docking before the image is fitted to it (ms)
FIT_DELAY_MS = 100


def _forward(part: str, name: str) -> property:
    """A read-only attribute of the widget: attribute ``name`` of its part ``part``."""
    return property(lambda self: getattr(getattr(self, part), name), doc=f"``{part}.{name}``")


class SegmentAnythingWidget(QWidget):
    """Dock widget of the annotator.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    #: creates a session from (plane, model, tile_size, halo); replaceable in tests
    session_factory = staticmethod(default_session_factory)

    session = _forward("annotation", "session")
    plane = _forward("annotation", "plane")
    image_layer = _forward("annotation", "image_layer")
    prediction = _forward("annotation", "prediction")
    candidate = _forward("annotation", "candidate")
    negative_mode = _forward("annotation", "negative_mode")
    points_layer = _forward("layers", "points_layer")
    box_layer = _forward("layers", "box_layer")
    current_layer = _forward("layers", "current_layer")
    labels_layer = _forward("layers", "labels_layer")

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.annotation = Annotation()
        self._previewing = False  # a current object is shown
        self.jobs = Jobs(self)
        self.panel = AnnotatorPanel(napari_viewer)
        self.layers = AnnotatorLayers(
            napari_viewer,
            prompts_changed=self.request_decode,
            keys={
                "c": self.commit,
                "Shift-C": self.clear_prompts,
                "n": self.next_candidate,
                "Shift-D": self.delete_under_cursor,
                "Control-Z": self.undo,
                "Control-Shift-Z": self.redo,
                "]": self.review_next,
                "[": self.review_previous,
                "Shift-A": self.review_accept,
                "Shift-X": self.review_delete,
            },
            point_keys={"t": self.toggle_negative},
            negative_mode=lambda: self.annotation.negative_mode,
            say=self._say,
            parent=self,
        )
        self.edits = SegmentationEdits(
            self.annotation,
            self.layers,
            prepare_layers=self._ensure_layers,
            overwrite=self.panel.overwrite_check.isChecked,
            say=self._say,
            reviewing=lambda: self.reviewer.current,
        )
        self.reviewer = Reviewer(napari_viewer, self.layers, self._plane_info, self._say)
        self.session_jobs = SessionJobs(
            napari_viewer,
            self.annotation,
            self.jobs,
            self._set_session,
            self.edits.write_instances,
            self,
        )
        self.preview = PreviewDecoder(self.annotation, self.jobs, self.current_prompts)
        self.training = TrainingPanel(self)
        self.panel.add_section(self.training)
        self.classes = ClassesPanel(self)
        self.panel.add_section(self.classes)
        self.volumes = VolumePanel(self)
        self.panel.add_section(self.volumes)
        scroll = QScrollArea()  # a short window keeps the whole panel within reach
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.panel)
        bar = scroll.verticalScrollBar().sizeHint().width()
        scroll.setMinimumWidth(self.panel.minimumSizeHint().width() + bar)
        self._scroll_bar_width = bar
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._fit_pending = True  # fit the image to the canvas once the dock has shrunk it
        self._expose_controls()
        self._connect()
        self._layers_changed()
        self.warm_up = None  # the warm-up thread, started once the dock is shown

    def _expose_controls(self) -> None:
        """The panel's controls as attributes of the widget, for tests and scripts."""
        panel, pickers, model = self.panel, self.panel.pickers, self.panel.model_controls
        self.image_combo, self.channel_combo = pickers.image_combo, pickers.channel_combo
        self.output_combo = pickers.output_combo
        self.model_controls, self.model_combo = model, model.model_combo
        self.device_combo, self.tile_spin, self.halo_spin = (
            model.device_combo, model.tile_spin, model.halo_spin,
        )  # fmt: skip
        self.compute_button, self.cancel_button = panel.compute_button, panel.cancel_button
        self.status, self.overwrite_check = panel.status, panel.overwrite_check
        self.candidate_buttons = panel.candidates.buttons
        self.commit_button, self.clear_button = panel.commit_button, panel.clear_button
        self.segment_all_button = panel.segment_all_button
        self.review_button, self.accept_button = panel.review_button, panel.accept_button
        self.delete_button = panel.delete_button

    def _connect(self) -> None:
        panel = self.panel
        panel.model_controls.message.connect(self._say)
        panel.pickers.selection_changed.connect(self._plane_changed)
        panel.compute_button.clicked.connect(self.compute_embeddings)
        panel.cancel_button.clicked.connect(self.cancel)
        panel.candidates.chosen.connect(self.select_candidate)
        panel.commit_button.clicked.connect(self.commit)
        panel.clear_button.clicked.connect(self.clear_prompts)
        panel.segment_all_button.clicked.connect(self.segment_all)
        panel.review_button.clicked.connect(self.toggle_review)
        panel.previous_button.clicked.connect(self.review_previous)
        panel.next_button.clicked.connect(self.review_next)
        panel.accept_button.clicked.connect(self.review_accept)
        panel.delete_button.clicked.connect(self.review_delete)
        self.jobs.message.connect(self._say)
        self.jobs.running_changed.connect(self._set_running)
        self.annotation.prediction_changed.connect(self._prediction_changed)
        self.annotation.candidate_changed.connect(self._candidate_changed)
        viewer = self.viewer
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)
        scene = getattr(viewer, "scene", None)
        camera = scene.camera if scene is not None else viewer.camera
        camera.events.center.connect(self.session_jobs.view_moved)
        camera.events.zoom.connect(self.session_jobs.view_moved)
        viewer.dims.events.current_step.connect(self._plane_changed)

    def _say(self, text: str) -> None:
        self.panel.say(text)

    def _set_running(self, running: bool) -> None:
        self.panel.set_running(running)
        self._update_segment_all()

    def ready(self) -> bool:
        """Whether the user can prompt: a session is set, its layers are in place and no long
        job runs."""
        return self.annotation.session is not None and not (
            self.jobs.busy() or self.layers.adding()
        )

    def _update_segment_all(self) -> None:
        enabled = self.annotation.session is not None and not self.jobs.busy()
        self.panel.segment_all_button.setEnabled(enabled)

    # -- image, plane and session -------------------------------------------------------------
    def _output_hints(self) -> dict:
        labels = self.layers.labels_layer
        return {
            "exclude": self.layers.current_layer,
            "prefer": labels if self.layers.alive(labels) else None,
        }

    def _layers_changed(self, event=None) -> None:
        self.panel.pickers.refresh(**self._output_hints())
        self.training.refresh()
        if event is not None and event.type == "inserted" and not self.layers.adding():
            # a layer added by the user must not hide the prompts and the preview
            QTimer.singleShot(0, self.layers.keep_on_top)

    def selected_plane(self):
        """The plane to segment, from the image picker, channel choice and viewer.dims."""
        pickers = self.panel.pickers
        layer = pickers.image_layer()
        if layer is None:
            raise ImageSourceError("Open or add an image layer first.")
        return layer, current_plane(
            layer, self.viewer.dims.point, pickers.channel_axis(), pickers.channel()
        )

    def _plane_changed(self, *args) -> None:
        """The image, channel or plane changed: use its session if one exists."""
        try:
            layer, plane = self.selected_plane()
        except ImageSourceError as exc:
            self._set_session(None, None, None)
            self._say(str(exc))
            return
        a = self.annotation
        if a.plane is not None and plane.key == a.plane.key and same_layer(layer, a.image_layer):
            return
        session = self.session_jobs.sessions.get(self._session_key(plane))
        self._set_session(session, plane if session else None, layer if session else None)
        if session is None:
            self._say("Compute embeddings to start segmenting this image.")

    def _session_key(self, plane) -> tuple:
        return (*plane.key, *self.panel.model_controls.key())

    def set_checkpoint(self, path: str) -> None:
        """Use a local checkpoint file as the model (what "From file…" does)."""
        self.panel.model_controls.set_checkpoint(path)

    def model_spec(self) -> str:
        """Registry name or checkpoint path of the chosen model."""
        return self.panel.model_controls.model_spec()

    def _set_session(self, session, plane, layer) -> None:
        if session is not self.annotation.session:
            self.clear_prompts()  # prompts belong to the plane they were placed on
        self.annotation.set_target(session, plane, layer)
        if session is not None:
            scale, translate = self._transform()
            chosen = self.panel.pickers.output_layer()
            self.layers.ensure_soon(plane, scale, translate, chosen, self._layers_ready)
        self._update_segment_all()

    def _transform(self):
        return plane_transform(self.annotation.image_layer, self.panel.pickers.channel_axis())

    def _ensure_layers(self) -> None:
        """Make sure the layers exist now (the user may have deleted one)."""
        scale, translate = self._transform()
        chosen = self.panel.pickers.output_layer()
        self._layers_ready(self.layers.ensure(self.annotation.plane, scale, translate, chosen))

    def _layers_ready(self, added_labels: bool) -> None:
        labels, image = self.layers.labels_layer, self.annotation.image_layer
        if image is not None and self.layers.alive(labels):
            # the writer's object table takes the mean intensity from this image
            labels.metadata[IMAGE_KEY] = image.name
        if added_labels:
            self.panel.pickers.refresh_outputs(**self._output_hints())
            self.training.refresh()  # ticks the new segmentation layer

    def toggle_negative(self) -> None:
        """Plain clicks add negative points, or positive ones again (shortcut T)."""
        negative = self.annotation.toggle_negative()
        self._say("Negative mode: clicks add negative points." if negative
                  else "Positive mode: clicks add positive points.")  # fmt: skip

    # -- jobs ---------------------------------------------------------------------------------
    def compute_embeddings(self) -> None:
        """Load the model, create the session and encode its tiles, all in workers."""
        if self.jobs.busy() or self.layers.adding():
            self._say("Busy: wait or press Cancel.")
            return
        try:
            layer, plane = self.selected_plane()
            spec = self.model_spec()
        except (ImageSourceError, ValueError) as exc:
            self._say(str(exc))
            return
        controls = self.panel.model_controls
        key = self._session_key(plane)
        args = (controls.device(), controls.tile_size(), controls.halo(), self.session_factory)

        def start(added_labels: bool) -> None:
            self._layers_ready(added_labels)
            self.session_jobs.compute(key, layer, plane, spec, *args)

        # the layers first, while no worker competes with napari for the main thread
        scale, translate = plane_transform(layer, self.panel.pickers.channel_axis())
        chosen = self.panel.pickers.output_layer()
        self.layers.ensure_soon(plane, scale, translate, chosen, start)

    def visible_region(self):
        """(row, col) slices of the plane shown on the canvas, or None."""
        return self.session_jobs.visible_region()

    def segment_all(self, **params) -> None:
        """Run automatic segmentation in a worker and add its objects as one undo step."""
        self.session_jobs.segment_all(**params)

    def cancel(self) -> None:
        """Stop encoding or automatic segmentation at the next tile; finished work stays."""
        self.session_jobs.cancel()
        self._say("Cancelling…")

    # -- prompts and preview ------------------------------------------------------------------
    def current_prompts(self) -> Prompts:
        """The prompts on the prompt layers, in (row, col) of the plane."""
        return self.layers.read_prompts(self.annotation.plane.shape)

    def request_decode(self) -> None:
        """Decode the current prompts in a worker; while one runs, only the newest waits."""
        self.preview.request()

    def _prediction_changed(self, prediction) -> None:
        scores = None if prediction is None else np.asarray(prediction.scores)
        self.panel.candidates.show_scores(scores)
        if prediction is None:
            self.layers.clear_mask()
        empty = getattr(prediction, "reason", None)  # an empty answer, e.g. no signal there
        if empty:
            self._say(empty)
        elif prediction is not None and not self._previewing:
            self._say(PREVIEW_HINT)  # a new object: the last line (e.g. "Committed") is old news
        self._previewing = prediction is not None and not empty

    def _candidate_changed(self, index: int) -> None:
        self.panel.candidates.check(index)
        prediction = self.annotation.prediction
        if self.layers.alive(self.layers.current_layer):
            scale, translate = self._transform()
            self.layers.show_mask(prediction.masks[index], prediction.offset, scale, translate)

    def select_candidate(self, index: int) -> None:
        """Show candidate mask ``index`` (0–2) as the current object."""
        self.annotation.select(index)

    def next_candidate(self) -> None:
        """Cycle to the next candidate mask (shortcut N)."""
        self.annotation.next_candidate()

    def clear_prompts(self) -> None:
        """Remove all prompts and the current object (shortcut Shift+C)."""
        self.layers.clear_prompts()
        self.preview.drop_pending()
        self.annotation.forget()

    # -- edits of the segmentation ------------------------------------------------------------
    def commit(self) -> int:
        """Write the current object into the segmentation with the next free ID (shortcut C).

        Returns the new ID, or 0 if there was nothing to commit.
        """
        if self.annotation.prediction is None or self.preview.running():
            self._say("Nothing to commit yet: add a prompt and wait for the preview.")
            return 0
        reviewing = self.reviewer.active
        label = self.edits.commit()
        self.clear_prompts()
        if reviewing and label:
            self.reviewer.relocate()
            self.reviewer.mark()  # the fix is the review of this object
            self.panel.set_reviewing(self.reviewer.active)
        return label

    def delete_under_cursor(self, position=None) -> int:
        """Delete the object under the cursor (or at plane ``position``) (shortcut Shift+D)."""
        return self.edits.delete(position)

    def undo(self) -> None:
        """Undo the last edit of the segmentation (Ctrl+Z)."""
        self.edits.undo()

    def redo(self) -> None:
        """Redo the last undone edit of the segmentation (Ctrl+Shift+Z)."""
        self.edits.redo()

    # -- review -------------------------------------------------------------------------------
    def _plane_info(self):
        scale, translate = self._transform()
        return self.annotation.plane.leading, scale, translate

    def toggle_review(self) -> None:
        """Start reviewing the segmentation's objects, least confident first, or stop."""
        if self.reviewer.active or self.annotation.plane is None:
            self.reviewer.stop()
            if self.annotation.plane is None:
                self._say("Compute embeddings first, then Segment all, then Review.")
        else:
            self.clear_prompts()
            self.reviewer.start()
        self.panel.set_reviewing(self.reviewer.active)

    def _review_step(self, step) -> None:
        if self.reviewer.active:
            self.clear_prompts()
            step()
            self.panel.set_reviewing(self.reviewer.active)

    def review_next(self) -> None:
        """Review: the next object (shortcut ])."""
        self._review_step(self.reviewer.next)

    def review_previous(self) -> None:
        """Review: the previous object (shortcut [)."""
        self._review_step(self.reviewer.previous)

    def review_accept(self) -> None:
        """Review: keep the object as it is, mark it reviewed, go on (shortcut Shift+A)."""
        self._review_step(self.reviewer.mark)

    def review_delete(self) -> None:
        """Review: delete the object (one undo step), mark it, go on (shortcut Shift+X)."""
        self._review_step(self.reviewer.delete)

    # -- docking -----------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        hint = self.panel.sizeHint()  # with room for the scroll bar beside the panel
        return QSize(hint.width() + self._scroll_bar_width, hint.height())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.warm_up is None:  # after the dock has been drawn, not during
            QTimer.singleShot(WARM_UP_DELAY_MS, self._start_warm_up)
        if self._fit_pending:
            self._fit_pending = False
            # the dock takes its width from the canvas; fit the image to what is left, once
            # the layout has settled (after the canvas' last resize)
            self._fit_timer = QTimer(self, singleShot=True, interval=FIT_DELAY_MS)
            self._fit_timer.timeout.connect(self._fit_view)
            self.viewer.canvas.events.size.connect(self._canvas_resized)
            self._fit_timer.start()

    def _start_warm_up(self) -> None:
        if self.warm_up is None:
            self.warm_up = warm_in_background()

    def _canvas_resized(self, event=None) -> None:
        self._fit_timer.start()

    def _fit_view(self) -> None:
        self.viewer.canvas.events.size.disconnect(self._canvas_resized)
        if len(self.viewer.layers):
            self.viewer.reset_view()

    # -- teardown -----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.cancel()
        self.jobs.close_progress()
        super().closeEvent(event)
