"""Automatic segmentation of a whole image, tile by tile, on the session's embeddings."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.stitching import TileStitcher
from napari_segany.automatic.tile import segment_encoded
from napari_segany.image.calibration import Calibration
from napari_segany.progress import Progress, run_with_progress


@dataclass
class AutomaticResult:
    """Every object found in an image.

    Attributes
    ----------
    labels : array, shape (H, W), uint32
        Instance labels 1..N, 0 background (numpy, or the ``out`` array that was passed).
    scores : dict
        Object ID → (score, stability); see
        :func:`napari_segany.automatic.tile.segment_encoded` for their meaning per method.
    method : str
        ``"instance_head"``, ``"decoder"`` or ``"point_grid"``.
    params : AutomaticParams, optional
        The settings that found the objects (their ``min_size`` also applies when the objects
        are later fitted around existing ones, see
        :func:`napari_segany.automatic.free_pixels.clip_to_free`).
    confidence : dict
        Object ID → how likely the object is right (correct rather than a merge, a fragment or
        a false object), 0–1: for ranking objects to review, lowest first. Instance head: a
        logistic scorer of the object's features (:mod:`napari_segany.automatic.confidence`);
        decoder: the mean foreground probability; point grid: the predicted IoU.
    calibration : Calibration, optional
        The image's physical pixel size and unit (from its file, or the pixel size given when
        it was opened); ``UNCALIBRATED`` (pixels) when none is known. Saving the labels with it
        keeps the image's scale.
    """

    labels: object
    scores: dict[int, tuple[float, float]]
    method: str
    params: AutomaticParams | None = None
    confidence: dict[int, float] = field(default_factory=dict)
    calibration: Calibration | None = None

    @property
    def count(self) -> int:
        """Number of objects."""
        return len(self.scores)

    def named_scores(self) -> dict[int, dict[str, float]]:
        """Scores as ID → {column: value}, with column names that say what they measure
        (``predicted_iou``/``stability`` for the point grid, ``foreground_probability``/
        ``stability`` for the instance head, then ``confidence`` when known), for the object
        table."""
        first = "predicted_iou" if self.method == "point_grid" else "foreground_probability"
        named = {i: {first: s[0], "stability": s[1]} for i, s in self.scores.items()}
        for i, value in self.confidence.items():
            if i in named:
                named[i]["confidence"] = value
        return named


def tile_labels(session, index: int, params: AutomaticParams, predictor=None):
    """Labels and scores of one tile's outer region, from the session's embedding of it.

    Returns
    -------
    labels : ndarray, shape (tile rows, tile cols), uint32
    scores : dict
        Tile object ID → (score, stability).
    confidence : dict
        Tile object ID → confidence.
    """
    from napari_segany.inference.predictor import Predictor

    predictor = predictor or Predictor(session.model, session.precision)
    predictor.set_embedding(session.tile_embedding(index))
    method = params.resolve_method(session.model)
    if method == "point_grid":
        needs_image = params.point_grid.crop_layers > 0
    else:
        needs_image = method == "instance_head" and params.flips > 1
    rgb = session.tile_image(index) if needs_image else None
    return segment_encoded(predictor, params, rgb)


def iter_segment(
    session, params: AutomaticParams | None = None, *, out=None, exemplars=None, **options
) -> Generator[Progress, None, AutomaticResult]:
    """Segment every object of a session's image; a job generator (see
    :mod:`napari_segany.progress`).

    Tiles are encoded on demand (or read from the session's embeddings cache), segmented on
    their whole outer region and stitched (see :mod:`napari_segany.automatic.stitching`):
    objects crossing seams come out whole, once, with IDs unique across the image. The result
    depends only on the image, the model and the settings, not on which tiles were cached.

    Parameters
    ----------
    session : napari_segany.tiled.session.SegmentationSession
    params : AutomaticParams, optional
        Settings; or give them as keyword ``options`` (``points_per_side=16, min_size=20``).
    out : array-like, shape (H, W), optional
        Zero-filled uint32 destination, e.g. a zarr array for images larger than memory;
        written one tile region at a time. Default: a new numpy array.
    exemplars : sequence, optional
        Find more like these: example objects as boxes ``(row0, col0, row1, col1)`` or points
        ``(row, col)``; only the objects that resemble them are kept, numbered 1..K (see
        :mod:`napari_segany.automatic.exemplars`).

    Yields
    ------
    Progress
        After each tile (with ``exemplars``, then after each tile measured).

    Returns
    -------
    AutomaticResult
    """
    from napari_segany.inference.predictor import Predictor

    if params is None:
        params = AutomaticParams.from_options(**options)
    elif options:
        raise ValueError("give either params or keyword options, not both")
    method = params.resolve_method(session.model)
    if out is None:
        out = np.zeros(session.shape, np.uint32)
    elif tuple(out.shape) != tuple(session.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, the image is {session.shape}")
    stitcher = TileStitcher(out)
    predictor = Predictor(session.model, session.precision)
    tiles = session.grid.tiles
    for done, tile in enumerate(tiles, start=1):
        stitcher.add(tile, *tile_labels(session, tile.index, params, predictor))
        yield Progress(done, len(tiles), f"segmenting tile {done}/{len(tiles)}")
    scores, confidence = stitcher.scores, stitcher.confidence
    if exemplars is not None:
        from napari_segany.automatic.exemplars import iter_select_like

        _, renumber = yield from iter_select_like(session, out, exemplars)
        scores = {renumber[i]: s for i, s in scores.items() if i in renumber}
        confidence = {renumber[i]: c for i, c in confidence.items() if i in renumber}
    return AutomaticResult(out, scores, method, params, confidence, session.calibration)


def segment(
    image,
    model=None,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    halo: int | None = None,
    cache=None,
    device: str = "auto",
    out=None,
    exemplars=None,
    progress: bool = False,
    **options,
) -> AutomaticResult:
    """Segment every object of an image.

    Parameters
    ----------
    image : array-like or path
        One 2D plane, grayscale, RGB or multichannel (``channel_axis``); numpy, dask, zarr or
        an image file.
    model : SamModel or str, optional
        A loaded model, a registry name or a checkpoint path; default the embedded model.
    tile_size, halo : int, optional
        Tiling; default from the model's input size.
    cache : path, optional
        Embeddings store to reuse or fill (``.zarr``).
    device : str
        For a model given by name.
    out : array-like, optional
        Destination labels (see :func:`iter_segment`).
    exemplars : sequence, optional
        "Find more like these": 1–3 example objects, boxes ``(row0, col0, row1, col1)``
        (half-open) or points ``(row, col)`` in pixels; only the objects that resemble them
        are returned (see :mod:`napari_segany.automatic.exemplars`).
    progress : bool
        Show a progress bar.
    **options
        :class:`AutomaticParams` fields, e.g. ``method="point_grid", points_per_side=16``, and
        :class:`~napari_segany.models.decoder_settings.DecoderSettings` fields for the decoder
        method, e.g. ``center_distance_threshold=0.4``.

    Returns
    -------
    AutomaticResult

    Examples
    --------
    >>> from napari_segany.automatic import segment
    >>> result = segment(image)  # doctest: +SKIP
    >>> result.labels.max(), result.count  # doctest: +SKIP
    """
    from napari_segany.models.loading import load_model
    from napari_segany.tiled.session import SegmentationSession

    if model is None or isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
        model = load_model(*(() if model is None else (model,)), device=device)
    session = SegmentationSession(
        image, model, channel_axis=channel_axis, tile_size=tile_size, halo=halo, cache=cache
    )
    params = AutomaticParams.from_options(**options)
    job = iter_segment(session, params, out=out, exemplars=exemplars)
    return run_with_progress(job, show=progress, description="segmenting")
