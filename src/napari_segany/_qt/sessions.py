"""Loading models and creating tiled sessions for the annotator (called in worker threads).

No Qt here: these functions run inside napari thread workers and return their result.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# loaded models, shared by all widgets: (name or path, device) -> SamModel
_MODELS: dict[tuple[str, str], object] = {}


def load_model_cached(spec: str, device: str):
    """Load a model once per (name or path, device)."""
    key = (spec, device)
    model = _MODELS.get(key)
    if model is None:
        from napari_segany.models.loading import load_model

        model = load_model(spec, device=device)
        _MODELS[key] = model
    return model


def default_session_factory(plane, model, tile_size, halo, cache=None):
    """Create the tiled session for one image plane.

    Parameters
    ----------
    plane : napari_segany._qt.image_source.Plane
    model : SamModel
    tile_size, halo : int or None
        None for automatic.
    cache : Path, optional
        A ``.zarr`` embeddings store to create or resume (one made for other pixels, model or
        tiling is replaced); None keeps embeddings in memory.
    """
    from napari_segany.tiled.session import SegmentationSession

    return SegmentationSession(
        plane.data,
        model,
        channel_axis=plane.channel_axis,
        channel=plane.channel,
        tile_size=tile_size,
        halo=halo,
        cache=cache,
        overwrite_cache=True,
    )


def embeddings_cache_path(layer, plane, spec: str, tile, halo) -> Path | None:
    """Where the embeddings of an image opened from a file are kept between napari sessions.

    ``<user cache>/napari-segany/embeddings/<hash>.zarr`` (``NAPARI_SEGANY_EMBEDDINGS`` overrides
    the folder), keyed by the file, plane, channel axis, model and tiling; the session checks
    the pixels themselves against the store's signature. None for images not read from a file.
    """
    source = getattr(getattr(layer, "source", None), "path", None)
    if not source:
        return None
    folder = os.environ.get("NAPARI_SEGANY_EMBEDDINGS")
    if not folder:
        import platformdirs

        folder = Path(platformdirs.user_cache_dir("napari-segany", appauthor=False)) / "embeddings"
    key = repr((str(Path(source).resolve()), plane.key[1:], spec, tile, halo))
    return Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.zarr"
