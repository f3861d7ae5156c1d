"""The annotator's Qt-free model: prompts, the current object, stale decodes. No display needed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np

from napari_segany._qt.annotation import Annotation, Prompts, as_chosen


@dataclasses.dataclass
class _Prediction:
    masks: np.ndarray
    scores: np.ndarray
    best: int
    offset: tuple[int, int] = (0, 0)
    chosen: int | None = None


def _prediction(best=1) -> _Prediction:
    return _Prediction(np.zeros((3, 4, 4), bool), np.array([0.5, 0.9, 0.7]), best)


def _recorder(annotation: Annotation) -> list:
    events = []
    annotation.prediction_changed.connect(lambda p: events.append(("prediction", p)))
    annotation.candidate_changed.connect(lambda i: events.append(("candidate", i)))
    return events


def test_the_model_imports_neither_qt_nor_napari():
    code = (
        "import sys, napari_segany._qt.annotation\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari', 'vispy', 'torch'})\n"
        "print(bad)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_a_new_prediction_shows_its_best_candidate_and_n_cycles():
    annotation = Annotation()
    events = _recorder(annotation)
    prediction = _prediction(best=1)
    annotation.show(prediction)
    assert events == [("prediction", prediction), ("candidate", 1)]
    assert annotation.candidate == 1
    annotation.next_candidate()
    annotation.next_candidate()
    assert annotation.candidate == 0
    annotation.select(5)
    assert annotation.candidate == 2
    annotation.forget()
    assert annotation.prediction is None and events[-1] == ("prediction", None)
    events.clear()
    annotation.next_candidate()  # no prediction: nothing happens
    annotation.select(1)
    assert events == []


def test_refinement_feeds_back_the_candidate_shown():
    annotation = Annotation()
    one = Prompts(np.array([[5.0, 5.0]]), np.array([1]), None)
    two = Prompts(np.array([[5.0, 5.0], [6.0, 9.0]]), np.array([1, 0]), None)
    other = Prompts(np.array([[7.0, 5.0], [6.0, 9.0]]), np.array([1, 0]), None)
    ticket = annotation.ticket()
    assert annotation.accept(ticket, one, _prediction(best=1))
    assert annotation.refinement_base(two).chosen is None  # the best one is shown
    annotation.select(2)
    assert annotation.refinement_base(two).chosen == 2
    assert annotation.refinement_base(other) is None  # not one plus more points
    assert annotation.refinement_base(one) is None  # no more points


def test_decodes_of_cleared_prompts_or_another_session_are_stale():
    annotation = Annotation()
    session, prompts = object(), Prompts(np.array([[1.0, 1.0]]), np.array([1]), None)
    annotation.set_target(session, "plane", "layer")
    ticket = annotation.ticket()
    annotation.forget()  # the user cleared the prompts meanwhile
    assert not annotation.accept(ticket, prompts, _prediction())
    assert annotation.prediction is None and annotation.last_prompts is None
    ticket = annotation.ticket()
    annotation.set_target(object(), "another plane", "layer")
    assert not annotation.accept(ticket, prompts, _prediction())
    ticket = annotation.ticket()
    assert annotation.accept(ticket, prompts, _prediction())
    assert annotation.last_prompts is prompts


def test_prompts_extend_only_with_the_same_box_and_first_points():
    box = np.array([0.0, 0.0, 9.0, 9.0])
    boxed = Prompts(None, None, box)
    plus_point = Prompts(np.array([[3.0, 3.0]]), np.array([1]), box)
    assert Prompts(None, None, None).empty and not boxed.empty
    assert plus_point.extends(boxed)
    assert not plus_point.extends(Prompts(None, None, box + 1))
    assert not Prompts(np.array([[3.0, 3.0]]), np.array([1]), None).extends(boxed)
    assert not boxed.extends(plus_point)
    assert not plus_point.extends(None)


def test_as_chosen_marks_the_chosen_candidate():
    prediction = _prediction(best=1)
    assert as_chosen(prediction, 1) is prediction
    assert as_chosen(prediction, 0).chosen == 0
