"""Segment a 2D image of any size: tiled embeddings, encoded in the background, prompts anywhere.

A :class:`SegmentationSession` holds one 2D plane (numpy, dask or zarr; never loaded whole), a
model and a :class:`~napari_segany.image.tiling.TileGrid` chosen from the model's input size.
Tiles are encoded by :meth:`SegmentationSession.encode`, a generator that yields a
:class:`~napari_segany.progress.Progress` per tile (run it in a napari worker, or with
:func:`~napari_segany.progress.run_with_progress`), or on demand when a prompt needs them.
Embeddings live in memory or in a zarr store (:mod:`napari_segany.tiled.embedding_cache`).

Prompts are (row, col) image pixels. A prompt is decoded on the tile whose inner region holds
it. When the prompts do not fit in that tile, or the mask it gives runs into the tile's edge
inside the image (the object is cut by the tile), it is decoded again on a *window* centred on
the prompts and the mask, encoded on demand and kept in a small in-memory LRU. So an object that
crosses a seam comes back whole, in image coordinates.

>>> session = SegmentationSession(big_image, load_model())  # doctest: +SKIP
>>> run_with_progress(session.encode())  # doctest: +SKIP
>>> result = session.predict(points=[[12000, 3050]])  # doctest: +SKIP
>>> labels[result.region()] |= result.masks[result.best]  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_segany.image.calibration import Calibration
from napari_segany.image.channels import grayscale_channel, has_signal
from napari_segany.image.prep import channel_layout, to_rgb_uint8
from napari_segany.image.prep import intensity_range as _intensity_range
from napari_segany.image.source import ImageSource, open_image
from napari_segany.image.tiling import Region, TileGrid
from napari_segany.inference.embedding import ImageEmbedding
from napari_segany.inference.predictor import Prediction, Predictor
from napari_segany.inference.prompts import prompt_extent, validate_prompts
from napari_segany.models.sam import SamModel
from napari_segany.progress import Progress
from napari_segany.tiled.tile_store import TileStore, content_hash
from napari_segany.tiled.windows import (
    Window,
    centred_window,
    is_cut,
    mask_extent,
    union_extent,
)

__all__ = ["RegionPrediction", "SegmentationSession", "Window", "content_hash"]

#: :attr:`RegionPrediction.reason` of a prompt on an image without signal (constant after
#: preprocessing, e.g. all zero), and on a window of the image that is constant.
NO_SIGNAL_IMAGE = "No signal under the click: this image is empty."
NO_SIGNAL_HERE = "No signal under the click: this part of the image is empty."

#: Windows (tiles or object windows) whose instance maps are kept for later clicks.
INSTANCE_MAP_WINDOWS = 8


@dataclass
class RegionPrediction(Prediction):
    """Masks for one prompt, on the part of the image they were decoded on.

    Attributes
    ----------
    masks : ndarray, shape (K, h, w), bool
        K = 3 candidates with ``multimask`` else 1; pixel [k, i, j] is image pixel
        (offset[0] + i, offset[1] + j).
    scores : ndarray, shape (K,)
        Predicted IoU of each mask.
    logits : ndarray, shape (K, 256, 256)
        Low-resolution logits, fed back by ``SegmentationSession.predict(previous=...)``.
    chosen : int, optional
        Candidate picked by other evidence than the predicted IoU (see :attr:`best`).
    offset : (int, int)
        Image (row, col) of ``masks[:, 0, 0]``.
    window : Window
        The embedding the masks were decoded on: a tile's or a window across seams.
    """

    offset: tuple[int, int] = field(kw_only=True)
    window: Window = field(kw_only=True)

    def region(self) -> tuple[slice, slice]:
        """Image (row_slice, col_slice) where the masks sit: ``image[region()]`` ↔ ``masks[k]``."""
        h, w = self.masks.shape[-2:]
        r, c = self.offset
        return slice(r, r + h), slice(c, c + w)


class SegmentationSession:
    """Prompted segmentation of one 2D image of any size, with tiled, cached embeddings.

    Parameters
    ----------
    image : array-like, path or ImageSource
        One 2D plane, (H, W), (H, W, 3|4) or multichannel with ``channel_axis``; numpy, dask or
        zarr (read tile by tile, never whole), or a file path (see
        :func:`napari_segany.image.source.open_image`; the file's pixel size is kept as
        :attr:`calibration`).
    model : SamModel
        From :func:`napari_segany.load_model` or :func:`napari_segany.build_model`.
    channel_axis : int, optional
        Axis of the channels in ``image``.
    tile_size, halo : int, optional
        Tiling (outer tile size and minimum halo in pixels). Default: the model's input size and
        :func:`napari_segany.image.tiling.default_halo`; an image that fits one input is one tile.
    cache : str or Path, optional
        A ``.zarr`` embeddings store, created, validated and resumed (see
        :class:`napari_segany.tiled.embedding_cache.EmbeddingCache`). None keeps embeddings in
        memory.
    precision : {"fp32", "bf16"}
        Encoder precision (see :class:`napari_segany.Predictor`).
    intensity_range : (low, high) or ndarray (C, 2), optional
        Scaling of the pixel values to 8 bits. Default: robust percentiles computed once on a
        subsample of the whole image, so every tile is scaled the same way.
    channel : int or "mean", optional
        Segment this channel alone (0, 1, 2 = R, G, B for RGB) or the mean of the colour
        channels, as a grayscale image. Default: all channels, except that an RGB image with
        signal in one channel only is read as grayscale of that channel (decided once from the
        intensity ranges; see :func:`napari_segany.image.channels.grayscale_channel`).
    plane : int or sequence of int, optional
        Plane of a stack to segment (see :class:`napari_segany.image.source.ImageSource`).
    overwrite_cache : bool
        Replace a ``cache`` made for another image, model or tiling instead of raising
        :class:`~napari_segany.tiled.embedding_cache.CacheMismatchError`.
    cache_dtype : {"float16", "float32"}
        How a zarr cache stores features (float16 halves the size; masks match float32 within
        IoU 0.99, see tests/test_embedding_cache.py).
    prompt_views : {1, 3, 6}, optional
        Views each point or box prompt is decoded on (see :class:`napari_segany.Predictor`);
        default: the model's.
    """

    def __init__(
        self,
        image,
        model: SamModel,
        *,
        channel_axis: int | None = None,
        tile_size: int | None = None,
        halo: int | None = None,
        cache: str | Path | None = None,
        precision: str = "fp32",
        intensity_range=None,
        plane=None,
        overwrite_cache: bool = False,
        cache_dtype: str = "float16",
        prompt_views: int | None = None,
        channel: int | str | None = None,
    ) -> None:
        self.source: ImageSource = open_image(image, channel_axis=channel_axis, plane=plane)
        self.model = model
        self.precision = precision
        self._predictor = Predictor(model, precision, prompt_views)
        self.grid = TileGrid.for_model(self.source.shape, model.image_size, tile_size, halo)
        self._sample_hash: str | None = None
        probe = self.source.read(slice(0, 1), slice(0, 1))
        self._layout = channel_layout(probe, self.source.prep_channel_axis)
        self._ranges = self._resolve_ranges(intensity_range)
        self._channel = grayscale_channel(self._ranges, self._layout.rgb, channel)
        self._current: Window | None = None
        # instance maps the predictor computed per window, kept while it decodes elsewhere
        self._instance_maps: OrderedDict[Window, dict] = OrderedDict()
        self._predicting = threading.Lock()
        self.cache = None
        if cache is not None:
            from napari_segany.tiled.embedding_cache import EmbeddingCache, session_signature

            signature = session_signature(self, cache_dtype)
            self.cache = EmbeddingCache.open(
                cache, signature, len(self.grid), overwrite=overwrite_cache, dtype=cache_dtype
            )
        self.store = TileStore(
            model,
            precision,
            self.grid,
            self._rgb,
            lambda region: self.source.read(*region),
            self.cache,
        )

    # -- properties --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the image plane."""
        return self.source.shape

    @property
    def calibration(self) -> Calibration:
        """The image's pixel size and units (from its file, or given to
        :func:`~napari_segany.image.source.open_image`), for saving labels in physical units."""
        return self.source.calibration

    @property
    def prompt_views(self) -> int:
        """Views each prompt is decoded on by default (see :class:`napari_segany.Predictor`)."""
        return self._predictor.prompt_views

    @property
    def intensity_range(self) -> np.ndarray | None:
        """(C, 2) per-channel (low, high) used for every tile; None for 8-bit RGB read unchanged."""
        if self._layout.passthrough and self._channel is None:
            return None
        return self._ranges.copy()

    @property
    def channel(self) -> int | str | None:
        """The channel read as a grayscale image (an index or ``"mean"``), chosen or found as the
        only one with signal; None when all channels are read."""
        return self._channel

    @property
    def has_signal(self) -> bool:
        """False when the model input is constant (e.g. an all-zero image): no object anywhere."""
        return has_signal(self._ranges, self._layout.rgb, self._channel)

    @property
    def sample_hash(self) -> str:
        """Fingerprint of a fixed subsample of the image (part of a cache's signature)."""
        if self._sample_hash is None:
            self._sample_hash = content_hash(self.source.sample())
        return self._sample_hash

    def _resolve_ranges(self, given) -> np.ndarray:
        """Per-channel ranges, from ``given`` or the sample: they also decide which channels
        carry signal (also for 8-bit RGB, which is otherwise not scaled)."""
        count = 1 if self.source.channels is None else self.source.channels
        if given is not None:
            ranges = np.asarray(given, dtype=np.float64)
            if ranges.shape == (2,):
                ranges = np.tile(ranges, (count, 1))
            if ranges.shape != (count, 2) or not np.isfinite(ranges).all():
                raise ValueError(
                    f"intensity_range must be (low, high) or ({count}, 2) finite values for "
                    f"this image with {count} channel(s), got {np.asarray(given).tolist()}"
                )
            return ranges
        sample = self.source.sample()
        self._sample_hash = content_hash(sample)
        return _intensity_range(sample, self.source.prep_channel_axis)

    # -- pixels and encoding -----------------------------------------------------------------
    def _rgb(self, region: Region) -> tuple[np.ndarray, np.ndarray]:
        raw = self.source.read(*region)
        rgb = to_rgb_uint8(
            raw, self.source.prep_channel_axis, ranges=self._ranges, channel=self._channel
        )
        return raw, rgb

    def tile_image(self, index: int) -> np.ndarray:
        """The tile's outer pixels as the model sees them: (h, w, 3) uint8."""
        return self._rgb(self.store.tile(index).outer)[1]

    def is_encoded(self, region: Region | None = None) -> bool:
        """True when every tile meeting ``region`` (default: the whole image) is available."""
        return all(self.store.available(i) for i in self.grid.tiles_meeting(region))

    def encode(
        self,
        priority: Region | None = None,
        *,
        verify: bool = False,
        batch_size: int | None = None,
    ) -> Generator[Progress, None, None]:
        """Encode every tile not available yet, yielding progress after each tile.

        Parameters
        ----------
        priority : (slice, slice), optional
            Image (row, col) region (the current view, a prompt) whose tiles are encoded first,
            then the others nearest first.
        verify : bool
            With a zarr cache, also check the tiles it already holds (checksum of their data and
            hash of their image pixels) and recompute damaged or stale ones. Without it, cached
            tiles are checked only when a prompt uses them.
        batch_size : int, optional
            Tiles encoded together. Default: the model's ``inference.encode_batch_size`` (4 for
            the embedded model, whose encoder runs faster per tile in batches; 1 for the ViTs,
            whose activations are large).

        Yields
        ------
        Progress
            ``done`` counts all available tiles (also those cached earlier), ``total`` all tiles.

        Closing the generator cancels between tiles; tiles finished so far stay available (and
        written to the zarr cache, if any), so a later ``encode()`` resumes.
        """
        size = self.model.inference.encode_batch_size if batch_size is None else int(batch_size)
        return self.store.encode(priority, verify, size)

    def tile_embedding(self, index: int) -> ImageEmbedding:
        """The embedding of one tile, loaded from the cache or encoded now if needed."""
        return self.store.tile_embedding(index)

    # -- prompts -----------------------------------------------------------------------------
    def predict(
        self,
        points=None,
        point_labels=None,
        box=None,
        previous: RegionPrediction | None = None,
        multimask: bool = True,
        prompt_views: int | None = None,
    ) -> RegionPrediction:
        """Masks for point and/or box prompts anywhere on the image.

        Parameters
        ----------
        points : array-like, shape (N, 2), optional
            (row, col) image pixels.
        point_labels : array-like, shape (N,), optional
            1 foreground, 0 background (default all 1).
        box : array-like, shape (4,), optional
            (row0, col0, row1, col1) image pixels.
        previous : RegionPrediction, optional
            An earlier result to refine: its best low-resolution logits are the mask prompt when
            it was decoded on the window used now (it is then reused if it holds the prompts);
            otherwise it is ignored.
        multimask : bool
            Three candidate masks (True) or one.
        prompt_views : {1, 3, 6}, optional
            Views for this prompt (default: :attr:`prompt_views`); 1 gives a fast first answer.

        Returns
        -------
        RegionPrediction
            Masks of the window they were decoded on (a tile, or a window around an object
            that crosses tile seams), with its offset in the image. Empty, with a ``reason``
            (:data:`NO_SIGNAL_IMAGE`, :data:`NO_SIGNAL_HERE`), when the image or the window
            under the prompts has no signal (is constant after preprocessing).
        """
        pts, labels, bx = validate_prompts(self.shape, points, point_labels, box)
        if pts is None and bx is None:
            raise ValueError("Give at least one prompt: points or a box.")
        # one answer at a time: the predictor holds the window being decoded on
        with self._predicting:
            return self._predict(pts, labels, bx, previous, multimask, prompt_views)

    def prepare_prompting(self, region: Region | None = None) -> None:
        """Compute now what the first click near the centre of ``region`` needs.

        The first click on a window sets the predictor up for it and computes the window's
        instance maps (from the embedding for the fast answer, and over the model's guide flips,
        which encodes the window again, for the averaged one): on the CPU that makes the first
        click several times slower than the next ones. Answering a click at the centre of
        ``region`` (default: the whole image), and forgetting the answer, pays it in advance,
        e.g. in the worker that computed the embeddings. Does nothing where a tile is missing.

        Parameters
        ----------
        region : (slice, slice), optional
            (rows, cols) of the image, e.g. the part on screen.
        """
        rows, cols = region if region is not None else (slice(0, None), slice(0, None))
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        if r1 <= r0 or c1 <= c0:
            return
        centre = ((r0 + r1 - 1) / 2, (c0 + c1 - 1) / 2)
        tile = self.grid.tile_at(*centre)
        if not self.store.available(tile.index):
            return
        for views in dict.fromkeys((1, self.prompt_views)):
            self.predict(points=[centre], prompt_views=views)

    def _predict(self, pts, labels, bx, previous, multimask, prompt_views) -> RegionPrediction:
        extent = tuple(float(v) for v in prompt_extent(pts, bx))
        prompts = (pts, labels, bx, prompt_views)
        tile = self.grid.tile_at((extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2)
        tile_window = self.store.tile_window(tile.index)
        if not self.has_signal:  # nothing to encode or decode
            return self._empty(tile_window, multimask, NO_SIGNAL_IMAGE)
        window = None
        if previous is not None and previous.window.rect.holds(extent):
            window = previous.window
        elif len(self.grid) == 1 or tile_window.rect.holds(extent):
            window = tile_window
        result = None
        if window is not None:
            result = self._decode(window, prompts, previous, multimask)
            if not self._is_cut(result):
                return result
        # The prompts span tiles or the object runs out of the tile: decode on a window
        # centred on the prompts; if the object is still cut, on one centred on the prompts and
        # the mask so far (larger if needed).
        window = self._centred_window(extent)
        for _ in range(2):
            if result is not None and window == result.window:
                break
            result = self._decode(window, prompts, previous, multimask)
            if not self._is_cut(result):
                break
            best = result.masks[result.best]
            window = self._centred_window(union_extent(extent, mask_extent(best, result.offset)))
        return result

    def _empty(self, window: Window, multimask: bool, reason: str) -> RegionPrediction:
        size = self.model.prompt_encoder.mask_input_size
        rect = window.rect
        return RegionPrediction.empty(
            rect.shape, multimask, size, reason, offset=rect.origin, window=window
        )

    def _is_cut(self, result: RegionPrediction) -> bool:
        return is_cut(result.masks[result.best], result.offset, self.shape)

    def _centred_window(self, span) -> Window:
        return centred_window(
            span, self.shape, self.grid.tile_size, self.grid.halo, self.store.recent_windows
        )

    def _decode(self, window: Window, prompts, previous, multimask) -> RegionPrediction:
        pts, labels, bx, views = prompts
        embedding = self.store.window_embedding(window)
        r0, c0 = window.rect.origin
        if self._current != window:

            def read_rgb(rect):  # window pixels → the crop the model sees
                return self._rgb(rect.shifted(r0, c0).slices)[1]

            if self._current is not None:
                self._instance_maps[self._current] = self._predictor.instance_maps
                self._instance_maps.move_to_end(self._current)
                while len(self._instance_maps) > INSTANCE_MAP_WINDOWS:
                    self._instance_maps.popitem(last=False)
            maps = self._instance_maps.get(window)
            self._predictor.set_embedding(embedding, read_rgb, instance_maps=maps)
            self._current = window
        offset = np.array([r0, c0], dtype=np.float64)
        mask_input = None
        if previous is not None and previous.window == window:
            mask_input = previous.logits[previous.best]
        prediction = self._predictor.predict(
            points=None if pts is None else pts - offset,
            point_labels=labels,
            box=None if bx is None else bx - np.tile(offset, 2),
            mask_input=mask_input,
            multimask=multimask,
            prompt_views=views,
        )
        return RegionPrediction(
            masks=prediction.masks,
            scores=prediction.scores,
            logits=prediction.logits,
            chosen=prediction.chosen,
            # the predictor sees only the window: it is that part of the image that is empty
            reason=None if prediction.reason is None else NO_SIGNAL_HERE,
            offset=(int(r0), int(c0)),
            window=window,
        )
