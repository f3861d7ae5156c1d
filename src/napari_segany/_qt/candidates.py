"""The candidate masks of the current object: three buttons showing each one's predicted IoU."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QButtonGroup, QGroupBox, QHBoxLayout, QPushButton

N_CANDIDATES = 3


class CandidateButtons(QGroupBox):
    """One checkable button per candidate mask; the checked one is shown.

    Signals
    -------
    chosen(int)
        The user clicked candidate ``index``.
    """

    chosen = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__("Candidates (N cycles)", parent)
        row = QHBoxLayout(self)
        self.group = QButtonGroup(self)
        self.buttons: list[QPushButton] = []
        for i in range(N_CANDIDATES):
            button = QPushButton()
            button.setCheckable(True)
            self.group.addButton(button, i)
            row.addWidget(button)
            self.buttons.append(button)
        self.show_scores(None)
        self.group.idClicked.connect(self.chosen)

    def show_scores(self, scores) -> None:
        """Label the buttons with the candidates' predicted IoU (None: no candidates)."""
        n = 0 if scores is None else len(scores)
        for i, button in enumerate(self.buttons):
            button.setEnabled(i < n)
            button.setText(f"{i + 1}: IoU {scores[i]:.2f}" if i < n else f"{i + 1}: –")

    def check(self, index: int) -> None:
        self.buttons[index].setChecked(True)
