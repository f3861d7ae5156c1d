"""The annotator's edits of the output segmentation: commit, delete, undo and redo, segment all.

Each edit is one undo step of the Labels layer (see :mod:`napari_segany._qt.labels_edit`).
"""

from __future__ import annotations

from collections.abc import Callable

from napari_segany._qt import labels_edit
from napari_segany._qt.annotation import Annotation
from napari_segany._qt.layers import AnnotatorLayers


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
    """

    def __init__(
        self,
        annotation: Annotation,
        layers: AnnotatorLayers,
        prepare_layers: Callable[[], None],
        overwrite: Callable[[], bool],
        say: Callable[[str], None],
    ) -> None:
        self.annotation = annotation
        self.layers = layers
        self.prepare_layers = prepare_layers
        self.overwrite = overwrite
        self.say = say

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
        overwrite = self.overwrite()
        written = labels_edit.write_instances(
            self.layers.labels_layer,
            result.labels,
            plane.leading,
            overwrite=overwrite,
            min_size=params.min_size,
        )
        self.say(
            labels_edit.segment_all_message(written, min_size=params.min_size, overwrite=overwrite)
        )
