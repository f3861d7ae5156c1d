"""The annotator's panel: its sub-widgets and buttons laid out, without behaviour.

The dock widget (:mod:`napari_segany._qt.widget`) connects the buttons to the annotator.
"""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from napari_segany._qt.candidates import CandidateButtons
from napari_segany._qt.model_controls import ModelControls
from napari_segany._qt.pickers import LayerPickers

#: width (pixels) the panel asks for when docked; the user can widen the dock
PREFERRED_WIDTH = 280
#: characters a drop-down list shows at its narrowest (longer names are cut, in full on hover)
COMBO_CHARS = 12

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
    ("] / [", "Review: next / previous object"),
    ("Shift + A / Shift + X", "Review: accept / delete the object (prompts + C replace it)"),
)


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row


class AnnotatorPanel(QWidget):
    """Layer pickers, model controls, actions, status line, candidates and the shortcuts.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose layers the pickers list.
    """

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.pickers = LayerPickers(viewer)
        self.model_controls = ModelControls()
        layout.addWidget(self.pickers)
        layout.addWidget(self.model_controls)

        self.compute_button = QPushButton("Compute embeddings")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        layout.addLayout(_row(self.compute_button, self.cancel_button))

        self.status = QLabel("Choose an image and compute its embeddings.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.candidates = CandidateButtons()
        layout.addWidget(self.candidates)

        self.overwrite_check = QCheckBox("Overwrite other objects")
        self.overwrite_check.setToolTip("Let a new object take pixels of objects already committed")
        layout.addWidget(self.overwrite_check)
        self.commit_button = QPushButton("Commit (C)")
        self.clear_button = QPushButton("Clear (Shift+C)")
        layout.addLayout(_row(self.commit_button, self.clear_button))
        self.segment_all_button = QPushButton("Segment all")
        self.segment_all_button.setToolTip(
            "Segment every object of the image (after computing embeddings)"
        )
        self.segment_all_button.setEnabled(False)
        self.review_button = QPushButton("Review")
        self.review_button.setCheckable(True)
        self.review_button.setToolTip(
            "Step through the segmentation's objects, least confident first: accept, delete, "
            "or fix each with prompts"
        )
        self.previous_button = QPushButton("[")
        self.accept_button = QPushButton("Accept")
        self.delete_button = QPushButton("Delete")
        self.next_button = QPushButton("]")
        for button in (self.previous_button, self.next_button):
            button.setFixedWidth(button.fontMetrics().horizontalAdvance("[") * 4)
        self.review_controls = (
            self.previous_button, self.accept_button, self.delete_button, self.next_button,
        )  # fmt: skip
        layout.addLayout(_row(self.segment_all_button, self.review_button))
        layout.addLayout(_row(*self.review_controls))
        self.set_reviewing(False)

        self.shortcuts = QLabel("<br>".join(f"<b>{key}</b>: {what}" for key, what in SHORTCUTS))
        self.shortcuts.setWordWrap(True)
        self.shortcuts.setTextFormat(Qt.RichText)
        layout.addWidget(self.shortcuts)
        layout.addStretch(1)
        self._narrow_combos()

    def add_section(self, widget: QWidget, *, expanded: bool = False) -> QCollapsible:
        """Add a section (e.g. the training panel) above the shortcuts, folded under its title
        (a group box's title moves to the fold's header) so the annotator stays in view."""
        title = widget.title() if isinstance(widget, QGroupBox) else ""
        if title:
            widget.setTitle("")
        section = QCollapsible(title, self, expandedIcon="▾", collapsedIcon="▸")
        section.addWidget(widget)
        # no indent under the header: the dock stays as narrow as the annotator above
        section.layout().setContentsMargins(0, 0, 0, 0)
        section.content().layout().setContentsMargins(0, 0, 0, 0)
        section.setDuration(0)  # no animation: unfolding answers at once
        if expanded:
            section.expand(animate=False)
        else:
            section.collapse(animate=False)
        layout = self.layout()
        layout.insertWidget(layout.indexOf(self.shortcuts), section)
        self._narrow_combos()
        return section

    def _narrow_combos(self) -> None:
        """Let the drop-down lists shrink: sized to their longest entry (a layer or model
        name, a checkpoint path), they would make the dock as wide as napari's canvas."""
        for combo in self.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(COMBO_CHARS)

    def sizeHint(self) -> QSize:
        """At most :data:`PREFERRED_WIDTH` wide (wrapped text would ask for more), so that the
        dock leaves napari's canvas most of a default-sized window."""
        hint = super().sizeHint()
        width = max(self.minimumSizeHint().width(), PREFERRED_WIDTH)
        return QSize(min(hint.width(), width), hint.height())

    def say(self, text: str) -> None:
        """Show ``text`` in the status line."""
        self.status.setText(text)

    def set_reviewing(self, reviewing: bool) -> None:
        """The review buttons work while reviewing."""
        self.review_button.setChecked(reviewing)
        for button in self.review_controls:
            button.setEnabled(reviewing)

    def set_running(self, running: bool) -> None:
        """Cancel while a job runs, Compute embeddings when none does."""
        self.cancel_button.setEnabled(running)
        self.compute_button.setEnabled(not running)
