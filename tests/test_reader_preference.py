"""The reader preference napari-segany records in napari's settings for ``*.labels.tif``.

Each test gets its own napari settings file under ``tmp_path`` (napari saves on every change);
tests/conftest.py already keeps the whole run away from the user's settings.
"""

from __future__ import annotations

import sys

import pytest
import yaml

pytest.importorskip("napari")

from napari_segany._qt.reader_preference import (
    PLUGIN_NAME,
    READER_PATTERNS,
    activate,
    register_reader_preference,
)


@pytest.fixture
def napari_settings(tmp_path, monkeypatch):
    """Fresh napari settings saved to ``tmp_path / "settings.yaml"``."""
    from napari import settings
    from napari.settings import NapariSettings

    path = tmp_path / "settings.yaml"
    monkeypatch.setattr(NapariSettings.model_fields["config_path"], "default", path)
    monkeypatch.setattr(settings, "_SETTINGS", None)
    current = settings.get_settings()
    assert current.config_path == path
    return current


def _saved(settings) -> dict:
    return yaml.safe_load(settings.config_path.read_text())["plugins"]["extension2reader"]


def test_registers_the_label_patterns_once_and_saves_them(napari_settings):
    assert register_reader_preference() is True
    expected = dict.fromkeys(READER_PATTERNS, PLUGIN_NAME)
    assert napari_settings.plugins.extension2reader == expected
    assert _saved(napari_settings) == expected  # in napari's settings file
    assert register_reader_preference() is False  # idempotent
    activate(object())  # the npe2 on_activate hook does the same, with the plugin context
    assert napari_settings.plugins.extension2reader == expected


def test_keeps_every_choice_the_user_made(napari_settings):
    from napari.plugins.utils import get_preferred_reader

    users = {"*.tif": "napari", "*.labels.tiff": "another-plugin", "*.csv": "napari"}
    napari_settings.plugins.extension2reader = dict(users)
    register_reader_preference()
    prefs = napari_settings.plugins.extension2reader
    assert prefs == {"*.labels.tif": PLUGIN_NAME, **users}
    # *.tif and *.labels.tif are equally specific for napari: ours comes first, so it wins
    assert next(iter(prefs)) == "*.labels.tif"
    assert get_preferred_reader("/data/cells.labels.tif") == PLUGIN_NAME
    assert get_preferred_reader("/data/cells.tif") == "napari"
    assert get_preferred_reader("/data/cells.labels.tiff") == "another-plugin"


def test_never_raises_into_napari(napari_settings, monkeypatch, caplog):
    import napari.settings

    def broken():
        raise OSError("settings file not writable")

    monkeypatch.setattr(napari.settings, "get_settings", broken)
    assert register_reader_preference() is False
    assert "could not register" in caplog.text


def test_does_nothing_outside_napari(napari_settings, monkeypatch):
    monkeypatch.delitem(sys.modules, "napari")
    assert register_reader_preference() is False
    assert napari_settings.plugins.extension2reader == {}
