"""Workers of the annotator: one slot per kind of job, a progress bar, cancelling.

Every job runs in a napari thread worker; its results reach the main thread through the
worker's signals, so layers are only touched there. Long jobs ("blocking": loading a model,
encoding, segmenting all) share one progress bar in napari's activity dock and make the
annotator busy; a preview decode is not blocking and has no bar.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QObject, Signal


class Jobs(QObject):
    """The running workers, by slot name.

    Signals
    -------
    running_changed(bool)
        A blocking job started (True), or the last one finished (False).
    message(str)
        A line for the user (progress, errors).
    """

    running_changed = Signal(bool)
    message = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._workers: dict[str, object] = {}
        self._blocking: set[str] = set()
        self._pbar = None

    def worker(self, slot: str):
        """The worker running in ``slot``, or None."""
        return self._workers.get(slot)

    def busy(self) -> bool:
        """Whether a blocking job runs."""
        return any(slot in self._blocking for slot in self._workers)

    def start(
        self,
        slot: str,
        job: Callable,
        *,
        yielded: Callable | None = None,
        returned: Callable | None = None,
        aborted: Callable | None = None,
        errored: Callable | None = None,
        finished: Callable | None = None,
        progress: str | None = None,
        total: int = 0,
        blocking: bool = True,
    ):
        """Run ``job`` (a function, or a generator function that yields progress) in a worker.

        Parameters
        ----------
        slot : str
            Name of the job; :meth:`worker` returns it while it runs.
        yielded, returned, aborted, errored : callable, optional
            Connected to the worker's signals; errors default to :meth:`failed`.
        finished : callable, optional
            Called without arguments after the worker finished and left its slot.
        progress : str, optional
            Opens a progress bar with this description and ``total`` steps (0: unknown).
        blocking : bool
            Counts for :meth:`busy` and :attr:`running_changed`.
        """
        from napari.qt.threading import create_worker

        worker = create_worker(job, _start_thread=False, _ignore_errors=True)
        # a plain function's worker has no yielded or aborted signal
        for name, callback in (("yielded", yielded), ("returned", returned), ("aborted", aborted)):
            if callback is not None:
                getattr(worker, name).connect(callback)
        worker.errored.connect(errored or self.failed)
        worker.finished.connect(lambda w=worker: self._finished(slot, w, finished))
        self._workers[slot] = worker
        if blocking:
            self._blocking.add(slot)
            self.running_changed.emit(True)
        else:
            self._blocking.discard(slot)
        if progress is not None:  # once in its slot: showing the bar processes Qt events
            self.open_progress(total, progress)
        worker.start()
        return worker

    def release(self, slot: str) -> None:
        """Forget the worker of ``slot`` before it finished (it delivered its result)."""
        self._workers.pop(slot, None)

    def _finished(self, slot: str, worker, finished: Callable | None) -> None:
        blocking = slot in self._blocking
        if self._workers.get(slot) is worker:
            del self._workers[slot]
        if finished is not None:
            finished()  # may start the next job in this slot
        if blocking and not self.busy():
            self.close_progress()
            self.running_changed.emit(False)

    def cancel(self) -> None:
        """Ask every blocking job to stop at its next step."""
        for slot, worker in list(self._workers.items()):
            if slot in self._blocking:
                worker.quit()

    def failed(self, exc: Exception) -> None:
        self.close_progress()
        self.message.emit(f"{type(exc).__name__}: {exc}")

    # -- progress bar -------------------------------------------------------------------------
    def open_progress(self, total: int, description: str) -> None:
        """Show a progress bar, or reuse the one shown (a new bar costs napari a redraw of its
        activity dock, a few hundred ms on the main thread)."""
        from napari.utils import progress

        if self._pbar is None:
            self._pbar = progress(total=total, desc=description)
            return
        pbar = self._pbar  # it may close meanwhile
        pbar.set_description(description)
        pbar.total = total
        pbar.update(-pbar.n)

    def show_progress(self, report, what: str, describe: bool = False) -> None:
        """Advance the bar to ``report`` (a :class:`napari_segany.progress.Progress`); with
        ``describe``, the bar's description shows the report's message (e.g. loss, score)."""
        # the message first: updating the bar processes Qt events, and with them the job's
        # end ("Cancelled", the result), whose message must stay
        self.message.emit(
            f"{what}: {report.done}/{report.total}. {report.message}".rstrip(". ") + "."
        )
        pbar = self._pbar  # it may close meanwhile
        if pbar is not None:
            if pbar.total != report.total:
                pbar.total = report.total
            if describe and report.message:
                pbar.set_description(f"{what}: {report.message}")
            pbar.update(report.done - pbar.n)

    def close_progress(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
