"""The long jobs on a tiled session: preparing it, encoding its tiles, segmenting all objects.

Preparing loads the model and creates the :class:`~napari_segany.tiled.session.SegmentationSession`
of a plane (once per plane, model and tiling; the sessions are kept). Encoding starts with the
tiles under the view, and when the user pans or zooms while it runs, restarts with the tiles
under the new view once the view rests. "Segment all" runs :mod:`napari_segany.automatic`.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QObject, QTimer

from napari_segany._qt.annotation import Annotation
from napari_segany._qt.image_source import visible_region
from napari_segany._qt.jobs import Jobs
from napari_segany._qt.sessions import embeddings_cache_path, load_model_cached

PREPARE, ENCODE, SEGMENT_ALL = "prepare", "encode", "segment all"

#: how long the view must rest before encoding follows it (ms)
VIEW_REST_MS = 300


class SessionJobs(QObject):
    """Starts the session jobs in :class:`~napari_segany._qt.jobs.Jobs` slots.

    Parameters
    ----------
    viewer : napari.Viewer
    annotation : Annotation
        Tells the current session and plane.
    jobs : Jobs
    use_session : callable (session, plane, image_layer) -> None
        Makes a prepared session the current one.
    write_instances : callable (session, plane, result) -> None
        Receives the result of "segment all" (on the main thread).
    """

    def __init__(
        self,
        viewer,
        annotation: Annotation,
        jobs: Jobs,
        use_session: Callable,
        write_instances: Callable,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.annotation = annotation
        self.jobs = jobs
        self.use_session = use_session
        self.write_instances = write_instances
        #: prepared sessions by (plane key, model choices)
        self.sessions: dict[tuple, object] = {}
        self._restart = False
        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(VIEW_REST_MS)
        self._view_timer.timeout.connect(self._follow_view)

    def _say(self, text: str) -> None:
        self.jobs.message.emit(text)

    # -- preparing and encoding ---------------------------------------------------------------
    def compute(self, key: tuple, layer, plane, spec: str, device, tile, halo, factory) -> None:
        """Encode ``plane`` of ``layer`` with model ``spec``; prepare its session first if needed.

        ``factory(plane, model, tile, halo[, cache=path])`` creates a session (in the worker).
        """
        session = self.sessions.get(key)
        if session is not None:
            self.use_session(session, plane, layer)
            self.encode()
            return
        cache = embeddings_cache_path(layer, plane, spec, tile, halo)

        def prepare():
            model = load_model_cached(spec, device)
            if cache is None:
                return factory(plane, model, tile, halo)
            return factory(plane, model, tile, halo, cache=cache)

        self._say(f"Loading {spec} and preparing {layer.name!r}…")
        self.jobs.start(
            PREPARE,
            prepare,
            returned=lambda s: self._prepared(key, s, plane, layer),
            progress=f"Segment Anything: loading {spec}",
        )

    def _prepared(self, key, session, plane, layer) -> None:
        self.jobs.release(PREPARE)  # its progress bar goes on with the encoding
        self.sessions[key] = session
        self.use_session(session, plane, layer)
        self.encode()

    def visible_region(self):
        """(row, col) slices of the plane shown on the canvas, or None."""
        a = self.annotation
        if a.image_layer is None or a.plane is None:
            return None
        return visible_region(self.viewer, a.image_layer, a.plane.shape)

    def encode(self) -> None:
        """Encode the current session's tiles, those under the view first."""
        session = self.annotation.session
        priority = self.visible_region()
        total = len(session.grid.tiles)

        def encode():
            job = session.encode(priority=priority)
            try:
                yield from job
            finally:
                job.close()
            # so that the first click answers as fast as the next ones
            session.prepare_prompting(priority)

        self._say(f"Computing embeddings ({total} tiles); prompting works on finished tiles.")
        self.jobs.start(
            ENCODE,
            encode,
            yielded=lambda report: self.jobs.show_progress(report, "Computing embeddings"),
            returned=lambda _: self._say("Embeddings ready: click to segment."),
            aborted=self._encode_aborted,
            finished=self._encode_finished,
            progress="Segment Anything: computing embeddings",
            total=total,
        )

    def _encode_aborted(self) -> None:
        if not self._restart:
            self._say("Cancelled; finished tiles stay usable.")

    def _encode_finished(self) -> None:
        if self._restart and self.annotation.session is not None:
            self._restart = False
            if not self.jobs.busy():
                self.encode()

    def view_moved(self, event=None) -> None:
        """The camera moved: follow it once it rests, if tiles are encoding."""
        if self.jobs.worker(ENCODE) is not None:
            self._view_timer.start()

    def _follow_view(self) -> None:
        """While encoding, re-order the remaining tiles to start under the new view."""
        worker = self.jobs.worker(ENCODE)
        session = self.annotation.session
        if worker is None or session is None:
            return
        region = self.visible_region()
        if region is None or session.is_encoded(region):
            return
        self._restart = True
        worker.quit()

    def cancel(self) -> None:
        """Stop encoding or segmenting at the next tile (finished work stays)."""
        self._restart = False
        self.jobs.cancel()

    # -- segment all --------------------------------------------------------------------------
    def segment_all(self, **params) -> None:
        """Run :func:`napari_segany.automatic.iter_segment` on the current session."""
        session, plane = self.annotation.session, self.annotation.plane
        if session is None:
            self._say("Compute embeddings first.")
            return
        if self.jobs.busy():
            return
        from napari_segany.automatic import iter_segment

        def run():
            job = iter_segment(session, **params)
            try:
                result = yield from job
            finally:
                job.close()
            return result

        self._say("Segmenting all objects…")
        self.jobs.start(
            SEGMENT_ALL,
            run,
            yielded=lambda report: self.jobs.show_progress(report, "Segment all"),
            returned=lambda result: self.write_instances(session, plane, result),
            aborted=lambda: self._say("Segment all cancelled; nothing was written."),
            progress="Segment Anything: segmenting all objects",
        )
