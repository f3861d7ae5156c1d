"""The model cache folder: where downloaded and trained model files are kept (import-light)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["CACHE_ENV_VAR", "cache_dir"]

#: Environment variable that overrides the cache folder.
CACHE_ENV_VAR = "NAPARI_SEGANY_CACHE"


def cache_dir() -> Path:
    """Return the folder that holds downloaded model files.

    Returns
    -------
    pathlib.Path
        ``$NAPARI_SEGANY_CACHE`` (``~`` expanded) if set and not empty, else
        ``platformdirs.user_cache_dir("napari-segany") / "models"``. It is not created here.
    """
    override = os.environ.get(CACHE_ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("napari-segany")) / "models"
