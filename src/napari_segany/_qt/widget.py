"""The "Segment Anything" dock widget: compute embeddings, prompt, preview, commit, undo.

All heavy work (loading a model, encoding tiles, decoding prompts, automatic segmentation) runs
in napari thread workers; layers are only touched on the main thread, from the workers'
``yielded`` / ``returned`` signals. The segmentation itself is done by
:class:`napari_segany.tiled.session.SegmentationSession` and :mod:`napari_segany.automatic`.

Shortcuts (on the prompt layers): see :data:`SHORTCUTS`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_segany._qt import labels_edit, prompt_layers
from napari_segany._qt.image_source import ImageSourceError, channel_axes, current_plane
from napari_segany._qt.image_source import visible_region as _visible_region
from napari_segany._qt.model_controls import ModelControls
from napari_segany._qt.sessions import (
    default_session_factory,
    embeddings_cache_path,
    load_model_cached,
)

#: (key, what it does), shown in the widget and the README.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("click", "add a positive point (prompts layer, add mode)"),
    ("Shift + click", "add a negative point"),
    ("T", "toggle negative mode: plain clicks add negative points"),
    ("R (box prompt layer)", "draw a box"),
    ("N", "next candidate mask"),
    ("C", "commit the current object to the segmentation"),
    ("Shift + C", "clear the prompts"),
    ("Shift + D", "delete the object under the cursor"),
    ("Ctrl + Z / Ctrl + Shift + Z", "undo / redo in the segmentation"),
)

CURRENT_NAME = "current object"
CURRENT_COLOR = "yellow"
SEGMENTATION_NAME = "segmentation"


def automatic_available() -> bool:
    """True when :mod:`napari_segany.automatic` (automatic segmentation) is installed."""
    try:
        return importlib.util.find_spec("napari_segany.automatic") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class _Prompts:
    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None

    @property
    def empty(self) -> bool:
        return self.points is None and self.box is None

    def extends(self, other: _Prompts | None) -> bool:
        """True when these prompts are ``other`` plus more points (refinement)."""
        if other is None or other.empty or self.points is None:
            return False
        if (self.box is None) != (other.box is None):
            return False
        if self.box is not None and not np.array_equal(self.box, other.box):
            return False
        n = 0 if other.points is None else len(other.points)
        return (
            len(self.points) > n
            and (n == 0 or np.array_equal(self.points[:n], other.points))
            and (n == 0 or np.array_equal(self.labels[:n], other.labels))
        )


class SegmentAnythingWidget(QWidget):
    """Dock widget of the annotator.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    #: creates a session from (plane, model, tile_size, halo); replaceable in tests
    session_factory = staticmethod(default_session_factory)

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = None
        self.plane = None
        self.image_layer = None
        self.points_layer = None
        self.box_layer = None
        self.current_layer = None
        self.labels_layer = None
        self.prediction = None
        self.candidate = 0
        self.negative_mode = False
        self._sessions: dict[tuple, object] = {}
        self._prepare_worker = None
        self._encode_worker = None
        self._auto_worker = None
        self._decode_worker = None
        self._decode_pending = False
        self._generation = 0  # bumped when prompts are cleared: late decodes are dropped
        self._last_prompts: _Prompts | None = None
        self._pbar = None
        self._clearing = False
        self._restart_encoding = False
        # the view moved while encoding: wait until it rests, then re-prioritise the tiles
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(300)
        self._view_timer.timeout.connect(self._follow_view)
        self._build_ui()
        self._connect_viewer()
        self._refresh_image_layers()

    # -- UI -----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("Image layer to segment (for stacks: the plane shown)")
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("Axis holding channels of a multichannel image")
        self.output_combo = QComboBox()
        self.output_combo.setToolTip(
            "Labels layer that receives committed objects (a new one by default; any Labels "
            "layer of the image's size, also a large zarr-backed one)"
        )
        form.addRow("Image", self.image_combo)
        form.addRow("Channels", self.channel_combo)
        form.addRow("Output", self.output_combo)
        layout.addLayout(form)
        self.model_controls = ModelControls(self)
        self.model_controls.message.connect(self._say)
        layout.addWidget(self.model_controls)
        # the controls, for tests and scripts
        self.model_combo = self.model_controls.model_combo
        self.device_combo = self.model_controls.device_combo
        self.tile_spin = self.model_controls.tile_spin
        self.halo_spin = self.model_controls.halo_spin

        row = QHBoxLayout()
        self.compute_button = QPushButton("Compute embeddings")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.compute_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)

        self.status = QLabel("Choose an image and compute its embeddings.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        box = QGroupBox("Candidates (N cycles)")
        candidates = QHBoxLayout(box)
        self.candidate_group = QButtonGroup(self)
        self.candidate_buttons = []
        for i in range(3):
            button = QPushButton(f"{i + 1}: –")
            button.setCheckable(True)
            button.setEnabled(False)
            self.candidate_group.addButton(button, i)
            candidates.addWidget(button)
            self.candidate_buttons.append(button)
        layout.addWidget(box)

        self.overwrite_check = QCheckBox("Overwrite other objects")
        self.overwrite_check.setToolTip("Let a new object take pixels of objects already committed")
        layout.addWidget(self.overwrite_check)
        row = QHBoxLayout()
        self.commit_button = QPushButton("Commit (C)")
        self.clear_button = QPushButton("Clear (Shift+C)")
        row.addWidget(self.commit_button)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        self.segment_all_button = QPushButton("Segment all")
        layout.addWidget(self.segment_all_button)
        self._update_segment_all()

        help_text = "<br>".join(f"<b>{key}</b>: {what}" for key, what in SHORTCUTS)
        shortcuts = QLabel(help_text)
        shortcuts.setWordWrap(True)
        shortcuts.setTextFormat(Qt.RichText)
        layout.addWidget(shortcuts)
        layout.addStretch(1)

        self.image_combo.currentIndexChanged.connect(self._image_changed)
        self.channel_combo.currentIndexChanged.connect(self._plane_changed)
        self.compute_button.clicked.connect(self.compute_embeddings)
        self.cancel_button.clicked.connect(self.cancel)
        self.candidate_group.idClicked.connect(self.select_candidate)
        self.commit_button.clicked.connect(self.commit)
        self.clear_button.clicked.connect(self.clear_prompts)
        self.segment_all_button.clicked.connect(self.segment_all)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # -- viewer and layers --------------------------------------------------------------------
    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        events.inserted.connect(self._refresh_image_layers)
        events.removed.connect(self._refresh_image_layers)
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.events.center.connect(self._view_moved)
        camera.events.zoom.connect(self._view_moved)
        self.viewer.dims.events.current_step.connect(self._plane_changed)

    def _refresh_output_layers(self) -> None:
        from napari.layers import Labels

        current = self.output_combo.currentData()
        self.output_combo.blockSignals(True)
        self.output_combo.clear()
        self.output_combo.addItem(f"{SEGMENTATION_NAME} (new layer)", None)
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and not _same(layer, self.current_layer):
                self.output_combo.addItem(layer.name, layer)
        index = self.output_combo.findData(current) if current is not None else -1
        if index < 0 and self._alive(self.labels_layer):
            index = self.output_combo.findData(self.labels_layer)
        self.output_combo.setCurrentIndex(max(index, 0))
        self.output_combo.blockSignals(False)

    def _refresh_image_layers(self, *args) -> None:
        self._refresh_output_layers()
        current = self.image_combo.currentData()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        from napari.layers import Image

        images = [layer for layer in self.viewer.layers if isinstance(layer, Image)]
        for layer in images:
            self.image_combo.addItem(layer.name, layer)
        index = next((i for i, layer in enumerate(images) if _same(layer, current)), 0)
        self.image_combo.setCurrentIndex(index if images else -1)
        self.image_combo.blockSignals(False)
        if not _same(self.image_combo.currentData(), current):
            self._image_changed()
        elif not images:
            self._fill_channels(None)

    def _fill_channels(self, layer) -> None:
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        self.channel_combo.addItem("none (grayscale or RGB)", None)
        if layer is not None:
            for axis in channel_axes(layer):
                self.channel_combo.addItem(f"axis {axis} ({layer.data.shape[axis]})", axis)
        self.channel_combo.setEnabled(self.channel_combo.count() > 1)
        self.channel_combo.blockSignals(False)

    def _image_changed(self, *args) -> None:
        self._fill_channels(self.image_combo.currentData())
        self._plane_changed()

    def selected_plane(self):
        """The plane to segment, from the image picker, channel choice and viewer.dims."""
        layer = self.image_combo.currentData()
        if layer is None:
            raise ImageSourceError("Open or add an image layer first.")
        return layer, current_plane(layer, self.viewer.dims.point, self.channel_combo.currentData())

    def _plane_changed(self, *args) -> None:
        """The image, channel or plane changed: use its session if one exists."""
        try:
            layer, plane = self.selected_plane()
        except ImageSourceError as exc:
            self._set_session(None, None, None)
            self._say(str(exc))
            return
        if (
            self.plane is not None
            and plane.key == self.plane.key
            and _same(layer, self.image_layer)
        ):
            return
        session = self._sessions.get(self._session_key(plane))
        self._set_session(session, plane if session else None, layer if session else None)
        if session is None:
            self._say("Compute embeddings to start segmenting this image.")

    def _session_key(self, plane) -> tuple:
        return (*plane.key, *self.model_controls.key())

    def set_checkpoint(self, path: str) -> None:
        """Use a local checkpoint file as the model (what "From file…" does)."""
        self.model_controls.set_checkpoint(path)

    def model_spec(self) -> str:
        """Registry name or checkpoint path of the chosen model."""
        return self.model_controls.model_spec()

    def _set_session(self, session, plane, layer) -> None:
        if session is not self.session:
            self.clear_prompts()  # prompts belong to the plane they were placed on
        self.session, self.plane, self.image_layer = session, plane, layer
        self._last_prompts = None
        self._show_prediction(None)
        if session is not None:
            self._ensure_layers()
        self._update_segment_all()

    def _plane_transform(self):
        layer = self.image_layer
        axes = [a for a in range(layer.ndim) if a != self.channel_combo.currentData()]
        scale = np.asarray(layer.scale)[axes]
        translate = np.asarray(layer.translate)[axes]
        return scale, translate

    def _alive(self, layer) -> bool:
        return layer is not None and layer in self.viewer.layers

    def _ensure_layers(self) -> None:
        """Create (or re-create, if the user deleted them) the annotator's layers."""
        scale, translate = self._plane_transform()
        chosen = self.output_combo.currentData()
        if chosen is not None and self._alive(chosen) and not _same(chosen, self.labels_layer):
            if tuple(chosen.data.shape) == tuple(self.plane.label_shape):
                self.labels_layer = chosen
            else:
                self._say(
                    f"{chosen.name!r} has shape {tuple(chosen.data.shape)}, the image needs "
                    f"{tuple(self.plane.label_shape)}; choose a Labels layer of that shape."
                )
        if not self._alive(self.labels_layer) or (
            tuple(self.labels_layer.data.shape) != tuple(self.plane.label_shape)
        ):
            from napari.layers import Labels

            existing = next(
                (
                    lyr
                    for lyr in self.viewer.layers
                    if lyr.name == SEGMENTATION_NAME
                    and isinstance(lyr, Labels)
                    and tuple(lyr.data.shape) == tuple(self.plane.label_shape)
                ),
                None,
            )
            if existing is None:
                existing = self.viewer.add_labels(
                    np.zeros(self.plane.label_shape, dtype=np.uint32),
                    name=SEGMENTATION_NAME,
                    scale=scale,
                    translate=translate,
                )
            self.labels_layer = existing
            self._refresh_output_layers()
        if not self._alive(self.current_layer):
            from napari.utils.colormaps import DirectLabelColormap

            self.current_layer = self.viewer.add_labels(
                np.zeros((1, 1), dtype=np.uint8),
                name=CURRENT_NAME,
                opacity=0.6,
                scale=scale[-2:],
                translate=translate[-2:],
                colormap=DirectLabelColormap(
                    color_dict={None: "transparent", 0: "transparent", 1: CURRENT_COLOR}
                ),
            )
        if not self._alive(self.box_layer):
            self.box_layer = prompt_layers.make_box_layer(scale[-2:], translate[-2:])
            self.viewer.add_layer(self.box_layer)
            self.box_layer.events.data.connect(self._box_event)
            self._bind_keys(self.box_layer)
        created = not self._alive(self.points_layer)
        if created:
            self.points_layer = prompt_layers.make_points_layer(
                scale[-2:], translate[-2:], lambda: self.negative_mode
            )
            self.viewer.add_layer(self.points_layer)
            self.points_layer.events.data.connect(self._points_event)
            self._bind_keys(self.points_layer)
            self.points_layer.bind_key("t", self._toggle_negative, overwrite=True)
        for layer in (self.box_layer, self.points_layer):  # the image may have moved
            if not (
                np.allclose(layer.scale, scale[-2:])
                and np.allclose(layer.translate, translate[-2:])
            ):
                layer.scale, layer.translate = scale[-2:], translate[-2:]
        if not np.allclose(self.current_layer.scale, scale[-2:]):
            self.current_layer.scale = scale[-2:]
        if created:
            self.viewer.layers.selection.active = self.points_layer

    def _bind_keys(self, layer) -> None:
        layer.bind_key("c", lambda _: self.commit(), overwrite=True)
        layer.bind_key("Shift-C", lambda _: self.clear_prompts(), overwrite=True)
        layer.bind_key("n", lambda _: self.next_candidate(), overwrite=True)
        layer.bind_key("Shift-D", lambda _: self.delete_under_cursor(), overwrite=True)
        layer.bind_key("Control-Z", lambda _: self.undo(), overwrite=True)
        layer.bind_key("Control-Shift-Z", lambda _: self.redo(), overwrite=True)

    def _toggle_negative(self, _layer=None) -> None:
        self.negative_mode = not self.negative_mode
        self._say("Negative mode: clicks add negative points." if self.negative_mode
                  else "Positive mode: clicks add positive points.")  # fmt: skip

    # -- embeddings ---------------------------------------------------------------------------
    def compute_embeddings(self) -> None:
        """Load the model, create the session and encode its tiles, all in workers."""
        if self._busy():
            self._say("Busy: wait or press Cancel.")
            return
        try:
            layer, plane = self.selected_plane()
            spec = self.model_controls.model_spec()
        except (ImageSourceError, ValueError) as exc:
            self._say(str(exc))
            return
        key = self._session_key(plane)
        session = self._sessions.get(key)
        if session is not None:
            self._set_session(session, plane, layer)
            self._start_encoding()
            return
        from napari.qt.threading import create_worker

        controls = self.model_controls
        device, tile, halo = controls.device(), controls.tile_size(), controls.halo()
        factory = self.session_factory
        cache = embeddings_cache_path(layer, plane, spec, tile, halo)

        def prepare():
            model = load_model_cached(spec, device)
            if cache is None:
                return factory(plane, model, tile, halo)
            return factory(plane, model, tile, halo, cache=cache)

        self._say(f"Loading {spec} and preparing {layer.name!r}…")
        self._open_progress(0, f"Segment Anything: loading {spec}")
        worker = create_worker(prepare, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda s: self._prepared(key, s, plane, layer))
        worker.errored.connect(self._failed)
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._prepare_worker = worker
        self._set_running(True)
        worker.start()

    def _prepared(self, key, session, plane, layer) -> None:
        self._prepare_worker = None
        self._close_progress()
        self._sessions[key] = session
        self._set_session(session, plane, layer)
        self._start_encoding()

    def visible_region(self):
        """(row, col) slices of the plane shown on the canvas, or None."""
        if self.image_layer is None or self.plane is None:
            return None
        return _visible_region(self.viewer, self.image_layer, self.plane.shape)

    def _start_encoding(self) -> None:
        from napari.qt.threading import create_worker

        session = self.session
        priority = self.visible_region()
        total = len(session.grid.tiles)

        def encode():
            job = session.encode(priority=priority)
            try:
                yield from job
            finally:
                job.close()

        self._open_progress(total, "Segment Anything: computing embeddings")
        worker = create_worker(encode, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._encode_progress)
        worker.returned.connect(lambda _: self._say("Embeddings ready: click to segment."))
        worker.aborted.connect(
            lambda: (
                None
                if self._restart_encoding
                else self._say("Cancelled; finished tiles stay usable.")
            )
        )
        worker.errored.connect(self._failed)
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._encode_worker = worker
        self._set_running(True)
        self._say(f"Computing embeddings ({total} tiles); prompting works on finished tiles.")
        worker.start()

    def _encode_progress(self, report) -> None:
        self._show_progress(report, "Computing embeddings")

    def _show_progress(self, report, what: str) -> None:
        if self._pbar is not None:
            if self._pbar.total != report.total:
                self._pbar.total = report.total
            self._pbar.update(report.done - self._pbar.n)
        self._say(f"{what}: {report.done}/{report.total}. {report.message}".rstrip(". ") + ".")

    def _open_progress(self, total: int, description: str) -> None:
        from napari.utils import progress

        self._close_progress()
        self._pbar = progress(total=total, desc=description)

    def _close_progress(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None

    def _busy(self) -> bool:
        return any(w is not None for w in (self._prepare_worker, self._encode_worker,
                                           self._auto_worker))  # fmt: skip

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.compute_button.setEnabled(not running)
        self._update_segment_all()

    def _view_moved(self, event=None) -> None:
        if self._encode_worker is not None:
            self._view_timer.start()

    def _follow_view(self) -> None:
        """While encoding, re-order the remaining tiles to start under the new view."""
        if self._encode_worker is None or self.session is None:
            return
        region = self.visible_region()
        if region is None or self.session.is_encoded(region):
            return
        self._restart_encoding = True
        self._encode_worker.quit()

    def _worker_done(self, worker) -> None:
        for name in ("_prepare_worker", "_encode_worker", "_auto_worker"):
            if getattr(self, name) is worker:
                setattr(self, name, None)
        if self._restart_encoding and worker is not None and self.session is not None:
            self._restart_encoding = False
            if not self._busy():
                self._start_encoding()
                return
        if not self._busy():
            self._close_progress()
            self._set_running(False)

    def _failed(self, exc: Exception) -> None:
        self._close_progress()
        self._say(f"{type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        """Stop encoding or automatic segmentation at the next tile; finished work stays."""
        self._restart_encoding = False
        for worker in (self._prepare_worker, self._encode_worker, self._auto_worker):
            if worker is not None:
                worker.quit()
        self._say("Cancelling…")

    # -- prompts and preview ------------------------------------------------------------------
    def _points_event(self, event) -> None:
        if event.action in ("added", "removed", "changed") and not self._clearing:
            self.request_decode()

    def _box_event(self, event) -> None:
        if self._clearing or event.action not in ("added", "removed", "changed"):
            return
        if event.action == "added" and len(self.box_layer.data) > 1:
            self._clearing = True  # keep only the newest box
            try:
                self.box_layer.data = [self.box_layer.data[-1]]
            finally:
                self._clearing = False
        self.request_decode()

    def current_prompts(self) -> _Prompts:
        shape = self.plane.shape
        points, labels = prompt_layers.read_points(self.points_layer, shape)
        box = prompt_layers.read_box(self.box_layer, shape)
        return _Prompts(points, labels, box)

    def request_decode(self) -> None:
        """Decode the current prompts in a worker; while one runs, only the newest waits."""
        if self.session is None:
            self._say("Compute embeddings first.")
            return
        if self._decode_worker is not None:
            self._decode_pending = True
            return
        prompts = self.current_prompts()
        if prompts.empty:
            self._last_prompts = None
            self._show_prediction(None)
            return
        from napari.qt.threading import create_worker

        previous = None
        if prompts.extends(self._last_prompts) and self.prediction is not None:
            previous = _as_chosen(self.prediction, self.candidate)
        session, generation = self.session, self._generation

        def decode():
            kwargs = dict(
                points=prompts.points,
                point_labels=prompts.labels,
                box=prompts.box,
                previous=previous,
                multimask=True,
            )
            if session.prompt_views == 1:
                yield session.predict(**kwargs)
                return
            # the embedding's own answer at once, then the average over the prompt views,
            # unless newer prompts (a dragged point) already wait
            yield session.predict(**kwargs, prompt_views=1)
            if not self._decode_pending:
                yield session.predict(**kwargs)

        worker = create_worker(decode, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda result: self._decoded(session, generation, prompts, result))
        worker.errored.connect(lambda exc: self._say(f"{type(exc).__name__}: {exc}"))
        worker.finished.connect(self._decode_finished)
        self._decode_worker = worker
        worker.start()

    def _decoded(self, session, generation, prompts, result) -> None:
        if session is not self.session or generation != self._generation:
            return  # stale: the image changed or the prompts were cleared meanwhile
        # shown even if newer prompts wait (a dragged point): the newest follows at once
        self._last_prompts = prompts
        self._show_prediction(result)

    def _decode_finished(self) -> None:
        self._decode_worker = None
        if self._decode_pending:
            self._decode_pending = False
            self.request_decode()

    def _show_prediction(self, prediction) -> None:
        self.prediction = prediction
        if prediction is None:
            for i, button in enumerate(self.candidate_buttons):
                button.setText(f"{i + 1}: –")
                button.setEnabled(False)
            if self._alive(self.current_layer):
                self.current_layer.data = np.zeros((1, 1), dtype=np.uint8)
            return
        scores = np.asarray(prediction.scores)
        for i, button in enumerate(self.candidate_buttons):
            ok = i < len(scores)
            button.setEnabled(ok)
            button.setText(f"{i + 1}: IoU {scores[i]:.2f}" if ok else f"{i + 1}: –")
        self.select_candidate(int(prediction.best))

    def select_candidate(self, index: int) -> None:
        """Show candidate mask ``index`` (0–2) as the current object."""
        if self.prediction is None:
            return
        index = int(index) % len(self.prediction.scores)
        self.candidate = index
        self.candidate_buttons[index].setChecked(True)
        if self._alive(self.current_layer):
            scale, translate = self._plane_transform()
            offset = np.asarray(self.prediction.offset, dtype=float)
            where = translate[-2:] + offset * scale[-2:]
            if not np.allclose(self.current_layer.translate, where):
                self.current_layer.translate = where
            self.current_layer.data = self.prediction.masks[index].view(np.uint8)

    def next_candidate(self) -> None:
        """Cycle to the next candidate mask (shortcut N)."""
        if self.prediction is not None:
            self.select_candidate(self.candidate + 1)

    def clear_prompts(self) -> None:
        """Remove all prompts and the current object (shortcut Shift+C)."""
        self._clearing = True
        try:
            if self._alive(self.points_layer):
                self.points_layer.data = np.empty((0, 2))
            if self._alive(self.box_layer):
                self.box_layer.data = []
        finally:
            self._clearing = False
        self._generation += 1
        self._decode_pending = False
        self._last_prompts = None
        self._show_prediction(None)

    # -- edits of the segmentation ------------------------------------------------------------
    def commit(self) -> int:
        """Write the current object into the segmentation with the next free ID (shortcut C).

        Returns the new ID, or 0 if there was nothing to commit.
        """
        if self.prediction is None or self._decode_worker is not None:
            self._say("Nothing to commit yet: add a prompt and wait for the preview.")
            return 0
        self._ensure_layers()
        label = labels_edit.commit_mask(
            self.labels_layer,
            self.prediction.masks[self.candidate],
            self.prediction.offset,
            self.plane.leading,
            overwrite=self.overwrite_check.isChecked(),
        )
        self.clear_prompts()
        self._say(f"Committed object {label}." if label else "The object had no free pixels.")
        return label

    def _cursor_plane_position(self):
        position = np.asarray(self.viewer.cursor.position, dtype=float)
        layer = self.labels_layer
        data = np.asarray(layer.world_to_data(position[-layer.ndim :]), dtype=float)
        return tuple(data[-2:])

    def delete_under_cursor(self, position=None) -> int:
        """Delete the object under the cursor (or at plane ``position``) (shortcut Shift+D)."""
        if not self._alive(self.labels_layer) or self.plane is None:
            return 0
        if position is None:
            position = self._cursor_plane_position()
        label = labels_edit.delete_object(self.labels_layer, position, self.plane.leading)
        self._say(f"Deleted object {label}." if label else "No object under the cursor.")
        return label

    def undo(self) -> None:
        if self._alive(self.labels_layer):
            self.labels_layer.undo()

    def redo(self) -> None:
        if self._alive(self.labels_layer):
            self.labels_layer.redo()

    # -- automatic segmentation ---------------------------------------------------------------
    def _update_segment_all(self) -> None:
        available = automatic_available()
        self.segment_all_button.setVisible(True)
        if not available:
            self.segment_all_button.setEnabled(False)
            self.segment_all_button.setToolTip(
                "Automatic segmentation is not part of this installation yet."
            )
            return
        self.segment_all_button.setToolTip(
            "Segment every object of the image (after computing embeddings)"
        )
        self.segment_all_button.setEnabled(self.session is not None and not self._busy())

    def segment_all(self, **params) -> None:
        """Run automatic segmentation in a worker and add its objects as one undo step."""
        if self.session is None:
            self._say("Compute embeddings first.")
            return
        if self._busy() or not automatic_available():
            return
        from napari.qt.threading import create_worker

        from napari_segany.automatic import iter_segment

        session, plane = self.session, self.plane

        def run():
            job = iter_segment(session, **params)
            try:
                result = yield from job
            finally:
                job.close()
            return result

        self._open_progress(0, "Segment Anything: segmenting all objects")
        worker = create_worker(run, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda report: self._show_progress(report, "Segment all"))
        worker.returned.connect(lambda result: self._write_automatic(session, plane, result))
        worker.aborted.connect(lambda: self._say("Segment all cancelled; nothing was written."))
        worker.errored.connect(self._failed)
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._auto_worker = worker
        self._set_running(True)
        self._say("Segmenting all objects…")
        worker.start()

    def _write_automatic(self, session, plane, result) -> None:
        if session is not self.session:
            self._say("The image changed; automatic segmentation was not written.")
            return
        self._ensure_layers()
        count = labels_edit.write_instances(
            self.labels_layer,
            result.labels,
            plane.leading,
            overwrite=self.overwrite_check.isChecked(),
        )
        self._say(f"Segment all: added {count} objects (Ctrl+Z undoes them).")

    # -- teardown -----------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.cancel()
        self._close_progress()
        super().closeEvent(event)


def _same(a, b) -> bool:
    """Whether two layers are the same, also through napari's plugin proxies."""
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def _as_chosen(prediction, index: int):
    """``prediction`` with candidate ``index`` as its best, so that the mask the user sees (not
    necessarily the highest-scored one) is the one fed back to refine."""
    if index == prediction.best or not dataclasses.is_dataclass(prediction):
        return prediction
    return dataclasses.replace(prediction, chosen=index)
