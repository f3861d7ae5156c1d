"""The annotator's model: what is being annotated and the current object. Plain Python.

No Qt and no napari import here (``tests/_qt/test_annotation.py`` checks it): the dock widget's
parts listen to :class:`Annotation`'s emitters and draw it, as napari-animation's widgets draw its
``Animation`` model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class Emitter:
    """Callbacks called in order with the same arguments (a Qt-free signal)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> None:
        self._callbacks.append(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass
class Prompts:
    """The prompts of one object, in (row, col) of the image plane.

    Attributes
    ----------
    points : ndarray (N, 2) float or None
    labels : ndarray (N,) int or None
        1 positive, 0 negative.
    box : ndarray (4,) float or None
        (row0, col0, row1, col1).
    """

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None

    @property
    def empty(self) -> bool:
        return self.points is None and self.box is None

    def extends(self, other: Prompts | None) -> bool:
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


def as_chosen(prediction, index: int):
    """``prediction`` with candidate ``index`` as its best, so that the mask the user sees (not
    necessarily the highest-scored one) is the one fed back to refine."""
    if index == prediction.best or not dataclasses.is_dataclass(prediction):
        return prediction
    return dataclasses.replace(prediction, chosen=index)


class Annotation:
    """The plane being annotated, its session, and the current object's prediction.

    Attributes
    ----------
    session : SegmentationSession or None
        Embeddings of the plane; None until they are computed.
    plane : napari_segany._qt.image_source.Plane or None
    image_layer : the napari Image layer the plane comes from, or None
    prediction : RegionPrediction or None
        The latest decoded prompts: candidate masks (``masks``, ``scores``, ``best``, ``offset``).
    candidate : int
        The candidate mask shown (0–2).
    negative_mode : bool
        Plain clicks add negative points.
    generation : int
        Bumped when the prompts are cleared: decodes started before are stale.
    last_prompts : Prompts or None
        The prompts of :attr:`prediction` (a refinement feeds the prediction back).

    Events
    ------
    prediction_changed(prediction or None), then candidate_changed(index) for a new prediction;
    candidate_changed(index) when another candidate is chosen.
    """

    def __init__(self) -> None:
        self.session = None
        self.plane = None
        self.image_layer = None
        self.prediction = None
        self.candidate = 0
        self.negative_mode = False
        self.generation = 0
        self.last_prompts: Prompts | None = None
        self.prediction_changed = Emitter()
        self.candidate_changed = Emitter()

    def set_target(self, session, plane, image_layer) -> None:
        """Annotate ``plane`` of ``image_layer`` with ``session`` (all None: nothing)."""
        self.session, self.plane, self.image_layer = session, plane, image_layer
        self.last_prompts = None
        self.show(None)

    def show(self, prediction) -> None:
        """Make ``prediction`` the current object (None: no object), its best candidate chosen."""
        self.prediction = prediction
        self.prediction_changed.emit(prediction)
        if prediction is not None:
            self.select(int(prediction.best))

    def select(self, index: int) -> None:
        """Choose candidate ``index`` (taken modulo the number of candidates)."""
        if self.prediction is None:
            return
        self.candidate = int(index) % len(self.prediction.scores)
        self.candidate_changed.emit(self.candidate)

    def next_candidate(self) -> None:
        if self.prediction is not None:
            self.select(self.candidate + 1)

    def forget(self) -> None:
        """The prompts were cleared: no current object, and decodes under way become stale."""
        self.generation += 1
        self.last_prompts = None
        self.show(None)

    def toggle_negative(self) -> bool:
        self.negative_mode = not self.negative_mode
        return self.negative_mode

    # -- decoding -----------------------------------------------------------------------------
    def refinement_base(self, prompts: Prompts):
        """The prediction to refine when ``prompts`` add points to the shown ones, else None."""
        if self.prediction is None or not prompts.extends(self.last_prompts):
            return None
        return as_chosen(self.prediction, self.candidate)

    def ticket(self) -> tuple:
        """Marks a decode started now; see :meth:`accept`."""
        return self.session, self.generation

    def accept(self, ticket: tuple, prompts: Prompts, prediction) -> bool:
        """Show a decoded ``prediction`` unless the image changed or the prompts were cleared
        since ``ticket`` was taken; returns whether it was shown."""
        session, generation = ticket
        if session is not self.session or generation != self.generation:
            return False
        self.last_prompts = prompts
        self.show(prediction)
        return True
