"""Saving, loading and applying the Classes panel's classifier (a part of the panel).

:class:`ClassifierFiles` is mixed into :class:`~napari_segany._qt.classes_panel.ClassesPanel`:
Save… and Load… write and read a classifier file (with the class colours), Classify folder…
applies the classifier to every image of a folder with labels beside it, in a worker.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog

from napari_segany._qt.classes_state import ClassesState, classify_folder_job

#: The Jobs slot of the panel's workers (the panel's too).
CLASSES = "classes"


class ClassifierFiles:
    """Save, Load and Classify folder of the Classes panel (uses its state, jobs, messages)."""

    def save(self, path) -> Path | None:
        """Save the trained classifier (with the class colours)."""
        clf = self.state.classifier
        if clf is None:
            self._notify("Nothing to save yet: give examples of two classes first.")
            return None
        clf.colours = {c.name: list(c.colour) for c in self.state.classes}
        saved = clf.save(path)
        self._say(f"Classifier saved to {saved}.")
        return saved

    def load(self, path) -> None:
        """Load a classifier: its classes and colours; every object is classified at once."""
        from napari_segany.classify import ObjectClassifier

        try:
            clf = ObjectClassifier.load(path, device=self.annotator.panel.model_controls.device())
        except (ValueError, OSError) as exc:  # ClassifierFileError is a ValueError
            self._notify(str(exc))
            return
        self.base = clf
        self.state = ClassesState()
        for name in clf.classes:
            self.state.add_class(name, clf.colours.get(name))
        self.state.classifier = clf
        self._update_table()
        self._say(f"Classifier {Path(path).name} loaded: {', '.join(clf.classes)}.")
        self.retrain()

    def classify_folder(self, folder, output=None) -> None:
        """Classify every image of ``folder`` with labels beside it, in a worker; tables go to
        ``output`` (default: the folder)."""
        clf = self.state.classifier
        if clf is None:
            self._notify("Train or load a classifier first.")
            return
        jobs = self.annotator.jobs
        if jobs.worker(CLASSES) is not None or jobs.busy():
            self._say("Busy: wait or press Cancel.")
            return
        output = output or folder

        def run():
            return (yield from classify_folder_job(clf, folder, output))

        jobs.start(
            CLASSES,
            run,
            yielded=lambda report: jobs.show_progress(report, "Classify folder"),
            returned=lambda paths: self._say(f"{len(paths)} tables written to {output}."),
            errored=lambda exc: self._notify(f"Classify folder: {exc}"),
            progress="Segment Anything: classifying a folder",
        )

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save classifier", "", "Classifier (*.npz)")
        if path:
            self.save(path)

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load classifier", "", "Classifier (*.npz)")
        if path:
            self.load(path)

    def _folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images with labels")
        if folder:
            self.classify_folder(folder)
