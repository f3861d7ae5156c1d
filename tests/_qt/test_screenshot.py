"""scripts/screenshot_widget.py, which makes the README's picture, still works.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_widget.py"


def test_screenshot_shows_napari_with_the_annotator(tmp_path, qapp):
    spec = importlib.util.spec_from_file_location("screenshot_widget", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = tmp_path / "annotator.png"
    shot = script.screenshot(path, show=False)
    assert path.is_file()
    assert shot.shape[1] >= 600 and shot.shape[0] >= 400  # napari's default window
    dock = shot[:, -250:, :3]  # the widget's side of the window
    assert dock.std() > 10 and shot[..., :3].std() > 10, "the screenshot is not blank"
