"""Make napari open the plugin's label files with the plugin, without asking.

napari's builtin reader claims ``*.tif``, so ``cells.labels.tif`` matches two readers (napari's
and ours) and napari would ask which one to use. A reader preference in napari's settings
(``plugins.extension2reader``, Preferences > Plugins) settles it: napari matches the keys against
the file's real path with :func:`fnmatch.fnmatch` and uses the most specific match.

:func:`register_reader_preference` adds ``*.labels.tif`` and ``*.labels.tiff`` → napari-segany
when they are absent. It never changes a preference that exists (the user's choice), nor any
other pattern (``*.tif`` stays napari's or whatever the user chose). It runs when napari activates
the plugin (the manifest's ``on_activate``) and whenever the reader or the writer runs; it is
idempotent and never raises into napari.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["PLUGIN_NAME", "READER_PATTERNS", "activate", "register_reader_preference"]

PLUGIN_NAME = "napari-segany"

READER_PATTERNS = ("*.labels.tif", "*.labels.tiff")
"""The manifest reader's ``filename_patterns``, which napari's builtin ``*.tif`` also matches."""

_log = logging.getLogger(__name__)


def register_reader_preference() -> bool:
    """Prefer napari-segany for ``*.labels.tif``/``*.labels.tiff`` in napari's settings.

    Adds only the patterns that have no preference yet. The new keys are placed first: napari
    breaks ties between equally specific patterns (``*.tif`` and ``*.labels.tif`` score the
    same) by their order in the settings, so a ``*.tif`` preference the user saved earlier does
    not take the plugin's label files away from it.

    Returns
    -------
    bool
        True if the settings changed (napari saves them to its settings file).
    """
    if "napari" not in sys.modules:
        return False  # outside napari there is no reader to prefer
    try:
        from napari.settings import get_settings

        plugins = get_settings().plugins
        current = dict(plugins.extension2reader)
        missing = {p: PLUGIN_NAME for p in READER_PATTERNS if p not in current}
        if not missing:
            return False
        plugins.extension2reader = {**missing, **current}
    except Exception:  # a settings problem must not break opening or saving a file
        _log.warning("could not register napari-segany's reader preference", exc_info=True)
        return False
    _log.info("napari opens %s with %s from now on", ", ".join(missing), PLUGIN_NAME)
    return True


def activate(context: Any = None) -> None:
    """npe2 ``on_activate`` hook: called once when napari first uses one of our contributions."""
    register_reader_preference()
