"""napari starts on PyQt6 with our widget docked, without warning about its Qt binding.

napari 0.9 shows "napari support for the PyQt5 backend is deprecated" as a notification when
its window first shows on PyQt5; the project runs on PyQt6 (``QT_API=pyqt6``).
"""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

QT_PACKAGE = Path(__file__).resolve().parents[2] / "src" / "napari_segany" / "_qt"
BINDINGS = {"PyQt5", "PyQt6", "PySide2", "PySide6"}


def test_our_qt_code_imports_qt_only_through_qtpy():
    direct = []
    for path in sorted(QT_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            direct += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BINDINGS]
    assert direct == []


@pytest.mark.gui
def test_viewer_with_our_widget_starts_without_a_qt_binding_warning(make_napari_viewer, qtbot):
    import qtpy
    from napari.utils.notifications import notification_manager

    from napari_segany._widget import SegmentAnythingWidget

    assert qtpy.API_NAME == "PyQt6"
    notes = []
    notification_manager.notification_ready.connect(notes.append)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            viewer = make_napari_viewer(show=True)
            widget = SegmentAnythingWidget(viewer)
            viewer.window.add_dock_widget(widget, name="Segment Anything")
            qtbot.waitExposed(viewer.window._qt_window)
            qtbot.wait(50)
    finally:
        notification_manager.notification_ready.disconnect(notes.append)

    def about_qt(text: str) -> bool:
        return any(word in text for word in ("PyQt", "PySide", "Qt binding", "backend"))

    deprecations = [
        str(w.message)
        for w in caught
        if issubclass(w.category, DeprecationWarning | FutureWarning) and about_qt(str(w.message))
    ]
    assert deprecations == []
    assert [n.message for n in notes if about_qt(str(n.message))] == []
    assert "PyQt5" not in sys.modules
