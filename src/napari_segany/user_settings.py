"""Annotator settings that persist between napari sessions (model, device, tiles, checkpoint).

Stored as a small JSON file in the user's config folder (``platformdirs.user_config_dir``, e.g.
``~/.config/napari-segany/annotator.json`` on Linux; the ``NAPARI_SEGANY_CONFIG_DIR`` environment
variable overrides the folder). Writes go to a temporary file that is then renamed over the old
one, so a crash never leaves a half-written file. A missing, unreadable or damaged file gives the
defaults; unknown keys are ignored and values of the wrong type fall back to their default.

This module is Qt-free; the dock widget reads and writes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from napari_segany.models.registry import DEFAULT_MODEL

__all__ = ["DEVICES", "AnnotatorSettings", "settings_path"]

#: Devices the annotator offers.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

_FILENAME = "annotator.json"


def settings_path() -> Path:
    """Path of the settings file (it may not exist yet)."""
    folder = os.environ.get("NAPARI_SEGANY_CONFIG_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_config_dir("napari-segany", appauthor=False)
    return Path(folder) / _FILENAME


@dataclass
class AnnotatorSettings:
    """What the annotator remembers.

    Attributes
    ----------
    model : str
        A registry name (``"segany_cells"``, ``"vit_b"``, ...) or ``"file"`` for `checkpoint`.
    device : str
        One of :data:`DEVICES`.
    tile_size : int
        Tile size in pixels; 0 = automatic (from the model's input size).
    halo : int
        Overlap added around each tile in pixels; 0 = automatic.
    checkpoint : str
        Last checkpoint file chosen with "from file…" ("" if none).
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    tile_size: int = 0
    halo: int = 0
    checkpoint: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> AnnotatorSettings:
        """Read the settings file; defaults for anything missing or unreadable."""
        path = Path(path) if path is not None else settings_path()
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(stored, dict):
            return cls()
        defaults = cls()
        values = {}
        for field in fields(cls):
            value = stored.get(field.name, getattr(defaults, field.name))
            default = getattr(defaults, field.name)
            if type(value) is not type(default):
                value = default
            values[field.name] = value
        settings = cls(**values)
        if settings.device not in DEVICES:
            settings.device = defaults.device
        settings.tile_size = max(0, settings.tile_size)
        settings.halo = max(0, settings.halo)
        return settings

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the settings atomically (temporary file, then rename); returns the path."""
        path = Path(path) if path is not None else settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(self), indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".annotator-", suffix=".json.tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
