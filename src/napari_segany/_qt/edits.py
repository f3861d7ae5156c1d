"""The annotator's edits of the output segmentation: commit, delete, undo and redo, segment all.

Each edit is one undo step of the Labels layer (see :mod:`napari_segany._qt.labels_edit`).
"""

from __future__ import annotations

from collections.abc import Callable

from napari_segany._qt import labels_edit
from napari_segany._qt.annotation import Annotation
from napari_segany._qt.layers import AnnotatorLayers
from napari_segany._qt.review import set_object_features


class SegmentationEdits:
    """Writes objects into :attr:`AnnotatorLayers.labels_layer`.

    Parameters
    ----------
    annotation : Annotation
        The plane and the current object.
    layers : AnnotatorLayers
    prepare_layers : callable () -> None
        Makes sure the layers exist (the user may have deleted the output).
    overwrite : callable () -> bool
        Whether new objects may take pixels of other objects.
    say : callable (str) -> None
    reviewing : callable () -> ReviewItem or None
        The object under review, which a commit replaces (see :mod:`napari_segany._qt.review`).
    """

    def __init__(
        self,
        annotation: Annotation,
        layers: AnnotatorLayers,
        prepare_layers: Callable[[], None],
        overwrite: Callable[[], bool],
        say: Callable[[str], None],
        reviewing: Callable[[], object] = lambda: None,
    ) -> None:
        self.annotation = annotation
        self.layers = layers
        self.prepare_layers = prepare_layers
        self.overwrite = overwrite
        self.say = say
        self.reviewing = reviewing

    def _has_output(self) -> bool:
        return self.layers.alive(self.layers.labels_layer)

    def commit(self) -> int:
        """Write the chosen candidate of the current object with the next free ID; 0 if no pixel
        was free, or if the preview is empty (e.g. no signal under the click): then nothing is
        written, not even an empty object ID."""
        a = self.annotation
        mask = a.prediction.masks[a.candidate]
        if not mask.any():
            self.say("Nothing to commit: the preview is empty.")
            return 0
        self.prepare_layers()
        reviewed = self.reviewing()
        if reviewed is not None:  # a fix of the object under review replaces it
            replaced = labels_edit.replace_object(
                self.layers.labels_layer,
                reviewed.label,
                reviewed.inside,
                mask,
                a.prediction.offset,
                a.plane.leading,
                overwrite=self.overwrite(),
            )
            if not replaced:
                self.say("The fix had no free pixels; the object is unchanged.")
                return 0
            self.say(f"Replaced object {reviewed.label}.")
            return reviewed.label
        label = labels_edit.commit_mask(
            self.layers.labels_layer,
            mask,
            a.prediction.offset,
            a.plane.leading,
            overwrite=self.overwrite(),
        )
        self.say(f"Committed object {label}." if label else "The object had no free pixels.")
        return label

    def delete(self, position=None) -> int:
        """Delete the object at plane ``position`` (default: under the cursor); its ID or 0."""
        if not self._has_output() or self.annotation.plane is None:
            return 0
        if position is None:
            position = self.layers.cursor_position()
        label = labels_edit.delete_object(
            self.layers.labels_layer, position, self.annotation.plane.leading
        )
        self.say(f"Deleted object {label}." if label else "No object under the cursor.")
        return label

    def undo(self) -> None:
        if self._has_output():
            self.layers.labels_layer.undo()

    def redo(self) -> None:
        if self._has_output():
            self.layers.labels_layer.redo()

    def write_instances(self, session, plane, result) -> None:
        """Add the objects of "segment all" (``result.labels``), unless the image changed.

        Without "Overwrite other objects" they are fitted around the objects already there
        (:func:`napari_segany.automatic.clip_to_free`), keeping the run's ``min_size``; when
        none is written, the status says why and what to try.
        """
        if session is not self.annotation.session:
            self.say("The image changed; automatic segmentation was not written.")
            return
        if not session.has_signal:
            self.say(
                "Segment all: the image has no signal (every pixel has the same value); "
                "check Image and Channels."
            )
            return
        from napari_segany.automatic import AutomaticParams

        self.prepare_layers()
        # a result without its settings was found with the defaults
        params = getattr(result, "params", None) or AutomaticParams()
        min_size = params.object_min_size(session.model)
        overwrite = self.overwrite()
        written = labels_edit.write_instances(
            self.layers.labels_layer,
            result.labels,
            plane.leading,
            overwrite=overwrite,
            min_size=min_size,
        )
        self._keep_scores(result, written.ids)
        self.say(
            labels_edit.segment_all_message(written.fitted, min_size=min_size, overwrite=overwrite)
        )

    def _keep_scores(self, result, ids: dict[int, int]) -> None:
        """The written objects' model scores as rows of the layer's features (for Review and the
        object table); ``ids`` maps the result's object IDs to the layer's."""
        if not ids or not hasattr(result, "named_scores"):
            return
        scores = result.named_scores()
        rows = {new: scores[old] for old, new in ids.items() if old in scores}
        set_object_features(self.layers.labels_layer, rows)
