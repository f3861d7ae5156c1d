"""Segment a 2D image of any size: tiled embeddings, encoded in the background, prompts anywhere.

A :class:`SegmentationSession` holds one 2D plane (numpy, dask or zarr; never loaded whole), a
model and a :class:`~napari_segany.image.tiling.TileGrid` chosen from the model's input size. Tiles are
encoded by :meth:`SegmentationSession.encode`, a generator that yields a
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xxhash

from napari_segany.image.prep import intensity_range as _intensity_range
from napari_segany.image.prep import to_rgb_uint8
from napari_segany.image.source import ImageSource, open_image
from napari_segany.models.sam import SamModel
from napari_segany.inference.predictor import ImageEmbedding, Predictor, resize_for_model
from napari_segany.progress import Progress
from napari_segany.inference.prompts import validate_prompts
from napari_segany.image.tiling import Region, Tile, TileGrid

__all__ = ["RegionPrediction", "SegmentationSession", "content_hash", "default_batch_size"]

#: Window embeddings kept in memory for prompts across seams.
WINDOW_CACHE_SIZE = 4
#: Windows (tiles or object windows) whose instance maps are kept for later clicks.
INSTANCE_MAP_WINDOWS = 8
#: Tile embeddings loaded from a zarr cache kept in memory.
TILE_CACHE_SIZE = 16
#: Pixels next to a window edge in which a mask runs into it (one stride-4 mask pixel).
_EDGE_BAND = 4


def default_batch_size(model: SamModel) -> int:
    """Tiles encoded together by :meth:`SegmentationSession.encode` for this model.

    4 for the embedded convolutional model (measured: 0.71 s per 1024² tile alone, 0.46 s in
    pairs, 0.385 s in fours on the 2-core CI CPU); 1 for the ViT encoders, whose attention
    activations take gigabytes per image.
    """
    return 4 if model.architecture == "segany_cells" else 1


def content_hash(pixels: np.ndarray) -> str:
    """xxh3-128 hex digest of an array's shape, dtype and bytes (an image tile's identity)."""
    h = xxhash.xxh3_128()
    h.update(f"{pixels.shape}|{pixels.dtype.str}|".encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


@dataclass
class RegionPrediction:
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
    offset : (int, int)
        Image (row, col) of ``masks[:, 0, 0]``.
    window : tuple
        The embedding the masks were decoded on: ``("tile", index)`` or
        ``("window", row0, col0, row1, col1)``.
    chosen : int, optional
        Candidate picked by other evidence than the predicted IoU (see :attr:`best`).
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray
    offset: tuple[int, int]
    window: tuple
    chosen: int | None = None

    @property
    def best(self) -> int:
        """Index of the mask to show: ``chosen`` when set (see
        :attr:`napari_segany.inference.predictor.Prediction.best`), else the highest predicted IoU."""
        if self.chosen is not None:
            return int(self.chosen)
        return int(np.argmax(self.scores))

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
        :func:`napari_segany.image.source.open_image`).
    model : SamModel
        From :func:`napari_segany.load_model` or :func:`napari_segany.build_model`.
    channel_axis : int, optional
        Axis of the channels in ``image``.
    tile_size, halo : int, optional
        Tiling (outer tile size and minimum halo in pixels). Default: the model's input size and
        :func:`napari_segany.image.tiling.default_halo`; an image that fits one input is one tile.
    cache : str or Path, optional
        A ``.zarr`` embeddings store, created, validated and resumed (see
        :class:`napari_segany.tiled.embedding_cache.EmbeddingCache`). None keeps embeddings in memory.
    precision : {"fp32", "bf16"}
        Encoder precision (see :class:`napari_segany.Predictor`).
    intensity_range : (low, high) or ndarray (C, 2), optional
        Scaling of the pixel values to 8 bits. Default: robust percentiles computed once on a
        subsample of the whole image, so every tile is scaled the same way.
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
    ) -> None:
        self.source: ImageSource = open_image(image, channel_axis=channel_axis, plane=plane)
        self.model = model
        self.precision = precision
        self._predictor = Predictor(model, precision, prompt_views)
        self.grid = TileGrid.for_model(self.source.shape, model.image_size, tile_size, halo)
        self._sample_hash: str | None = None
        self._ranges = self._resolve_ranges(intensity_range)
        self._lock = threading.RLock()
        self._tiles: dict[int, ImageEmbedding] | OrderedDict = OrderedDict()
        self._windows: OrderedDict[tuple, ImageEmbedding] = OrderedDict()
        self._constant: dict[tuple, torch.Tensor] = {}
        self._current: tuple | None = None
        # instance maps the predictor computed per window, kept while it decodes elsewhere
        self._instance_maps: OrderedDict[tuple, dict] = OrderedDict()
        self.cache = None
        if cache is not None:
            from napari_segany.tiled.embedding_cache import EmbeddingCache, session_signature

            signature = session_signature(self, cache_dtype)
            self.cache = EmbeddingCache.open(
                cache, signature, len(self.grid), overwrite=overwrite_cache, dtype=cache_dtype
            )

    # -- properties --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the image plane."""
        return self.source.shape

    @property
    def prompt_views(self) -> int:
        """Views each prompt is decoded on by default (see :class:`napari_segany.Predictor`)."""
        return self._predictor.prompt_views

    @property
    def intensity_range(self) -> np.ndarray | None:
        """(C, 2) per-channel (low, high) used for every tile; None for 8-bit RGB (unchanged)."""
        return None if self._ranges is None else self._ranges.copy()

    @property
    def sample_hash(self) -> str:
        """Fingerprint of a fixed subsample of the image (part of a cache's signature)."""
        if self._sample_hash is None:
            self._sample_hash = content_hash(self.source.sample())
        return self._sample_hash

    def _resolve_ranges(self, given) -> np.ndarray | None:
        probe = self.source.read(slice(0, 1), slice(0, 1))
        from napari_segany.image.prep import channel_layout

        layout = channel_layout(probe, self.source.prep_channel_axis)
        if layout.passthrough:
            return None
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
        rgb = to_rgb_uint8(raw, channel_axis=self.source.prep_channel_axis, ranges=self._ranges)
        return raw, rgb

    def tile_image(self, index: int) -> np.ndarray:
        """The tile's outer pixels as the model sees them: (h, w, 3) uint8."""
        return self._rgb(self._tile(index).outer)[1]

    def _tile(self, index: int) -> Tile:
        if not 0 <= int(index) < len(self.grid):
            raise IndexError(f"tile index {index} out of range for {len(self.grid)} tiles")
        return self.grid.tiles[int(index)]

    def _embed_rgb(self, rgb: np.ndarray) -> ImageEmbedding:
        return self._embed_rgbs([rgb])[0]

    def _embed_rgbs(self, rgbs: list[np.ndarray]) -> list[ImageEmbedding]:
        """Encode (h, w, 3) uint8 images, those of one size in one batch.

        A constant image (empty background) always gives the same features: it is encoded once
        per value and size and reused.
        """
        model = self.model
        inputs = [resize_for_model(rgb, model.image_size, model.upscale_input) for rgb in rgbs]
        features: list[torch.Tensor | None] = [None] * len(rgbs)
        keys: list[tuple | None] = [None] * len(rgbs)
        for i, rgb in enumerate(rgbs):
            flat = rgb.reshape(-1, 3)
            if (flat == flat[0]).all():
                keys[i] = (tuple(int(v) for v in flat[0]), rgb.shape[:2])
                features[i] = self._constant.get(keys[i])
        groups: dict[tuple, list[int]] = {}
        copies: dict[int, int] = {}  # constant image -> an identical one encoded in this call
        first_of_key: dict[tuple, int] = {}
        for i, x in enumerate(inputs):
            if features[i] is not None:
                continue
            if keys[i] is not None:
                if keys[i] in first_of_key:
                    copies[i] = first_of_key[keys[i]]
                    continue
                first_of_key[keys[i]] = i
            groups.setdefault(tuple(x.shape), []).append(i)
        for members in groups.values():
            batch = torch.cat([inputs[i] for i in members]).to(model.device)
            out = self._predictor.encode(batch).cpu()
            for k, i in enumerate(members):
                features[i] = out[k : k + 1].clone()
                if keys[i] is not None:
                    self._constant[keys[i]] = features[i]
        for i, source in copies.items():
            features[i] = features[source]
        return [
            ImageEmbedding(
                features=f,
                original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                input_size=(int(x.shape[2]), int(x.shape[3])),
                architecture=model.architecture,
            )
            for f, rgb, x in zip(features, rgbs, inputs, strict=True)
        ]

    def _encode_tile(
        self, index: int, remember: bool = True, pixels: tuple | None = None
    ) -> ImageEmbedding:
        """Encode one tile and store it (in the zarr cache, if any, else in memory).

        With a zarr cache, ``remember=False`` keeps it out of the in-memory LRU, so a long
        background run does not grow memory or push out the tiles prompts are using.
        ``pixels`` is the tile's ``(raw, rgb)`` when already read.
        """
        raw, rgb = self._rgb(self._tile(index).outer) if pixels is None else pixels
        embedding = self._embed_rgb(rgb)
        self._store_tile(index, embedding, raw, remember)
        return embedding

    def _store_tile(self, index: int, embedding: ImageEmbedding, raw, remember: bool) -> None:
        with self._lock:
            if self.cache is not None:
                self.cache.write(index, embedding, content_hash(raw))
            if remember or self.cache is None:
                self._remember_tile(index, embedding)

    def _cached_tile(self, index: int) -> ImageEmbedding | None:
        """The zarr cache's embedding of a tile, verified against the tile's pixels, or None."""
        if self.cache is None or not self.cache.is_done(index):
            return None
        raw = self.source.read(*self._tile(index).outer)
        return self.cache.read(index, content_hash(raw))

    def _remember_tile(self, index: int, embedding: ImageEmbedding) -> None:
        self._tiles[index] = embedding
        if self.cache is not None:
            self._tiles.move_to_end(index)
            while len(self._tiles) > TILE_CACHE_SIZE:
                self._tiles.popitem(last=False)

    def _available(self, index: int) -> bool:
        return index in self._tiles or (self.cache is not None and self.cache.is_done(index))

    def is_encoded(self, region: Region | None = None) -> bool:
        """True when every tile meeting ``region`` (default: the whole image) is available."""
        return all(self._available(i) for i in self.grid.tiles_meeting(region))

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
            Tiles encoded together. Default :func:`default_batch_size`: 4 for the embedded
            model, whose encoder runs 1.8× faster per tile in batches of 4 on a 2-core CPU,
            1 for the ViTs, whose activations are large.

        Yields
        ------
        Progress
            ``done`` counts all available tiles (also those cached earlier), ``total`` all tiles.

        Closing the generator cancels between tiles; tiles finished so far stay available (and
        written to the zarr cache, if any), so a later ``encode()`` resumes.
        """
        size = default_batch_size(self.model) if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
        total = len(self.grid)
        order = self.grid.order(priority)
        if verify and self.cache is not None:
            for index in order:
                if self.cache.is_done(index) and self._cached_tile(index) is None:
                    self.cache.forget(index)
        todo = [i for i in order if not self._available(i)]
        done = total - len(todo)
        if not todo:
            return
        batches = [todo[k : k + size] for k in range(0, len(todo), size)]

        def read(batch: list[int]) -> list[tuple]:
            return [self._rgb(self.grid.tiles[i].outer) for i in batch]

        # The next batch is read and scaled in a thread while this one is encoded (torch
        # releases the GIL), so reading the image costs (almost) no time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as reader:
            upcoming = reader.submit(read, batches[0])
            for k, batch in enumerate(batches):
                pixels = upcoming.result()
                if k + 1 < len(batches):
                    upcoming = reader.submit(read, batches[k + 1])
                # a prompt may have encoded some meanwhile
                needed = [j for j, i in enumerate(batch) if not self._available(i)]
                embeddings = self._embed_rgbs([pixels[j][1] for j in needed])
                for j, embedding in zip(needed, embeddings, strict=True):
                    self._store_tile(batch[j], embedding, pixels[j][0], remember=False)
                for _ in batch:
                    done += 1
                    yield Progress(done, total, f"encoding tile {done}/{total}")

    def tile_embedding(self, index: int) -> ImageEmbedding:
        """The embedding of one tile, loaded from the cache or encoded now if needed."""
        self._tile(index)
        with self._lock:
            embedding = self._tiles.get(index)
            if embedding is not None:
                if self.cache is not None:
                    self._tiles.move_to_end(index)
                return embedding
        embedding = self._cached_tile(index)
        if embedding is not None:
            with self._lock:
                self._remember_tile(index, embedding)
            return embedding
        return self._encode_tile(index)

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
            that crosses tile seams), with its offset in the image.
        """
        pts, labels, bx = validate_prompts(self.shape, points, point_labels, box)
        if pts is None and bx is None:
            raise ValueError("Give at least one prompt: points or a box.")
        extent = _extent(pts, bx)
        prompts = (pts, labels, bx, prompt_views)
        window = None
        if previous is not None and self._holds(previous.window, extent):
            window = previous.window
        elif len(self.grid) == 1:
            window = ("tile", 0)
        else:
            tile = self.grid.tile_at((extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2)
            if self._holds(("tile", tile.index), extent):
                window = ("tile", tile.index)
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
            window = self._centred_window(_union(extent, _mask_extent(result)))
        return result

    def _window_bounds(self, window: tuple) -> tuple[int, int, int, int]:
        if window[0] == "tile":
            if not 0 <= window[1] < len(self.grid):
                return (0, 0, 0, 0)
            rows, cols = self.grid.tiles[window[1]].outer
            return rows.start, cols.start, rows.stop, cols.stop
        return tuple(window[1:5])

    def _holds(self, window, extent) -> bool:
        """The window contains the prompts' extent (pixel centres)."""
        if not isinstance(window, tuple) or len(window) < 2:
            return False
        r0, c0, r1, c1 = self._window_bounds(window)
        return r0 <= extent[0] and c0 <= extent[1] and extent[2] <= r1 - 1 and extent[3] <= c1 - 1

    def _is_cut(self, result: RegionPrediction) -> bool:
        """The best mask runs into an edge of its window that is not the image border.

        An edge counts when the mask, within ``_EDGE_BAND`` pixels of it, covers at least
        ``max(4, 0.05 * sqrt(area))`` of its pixels: a few stray pixels touching the edge are
        not a cut object, and an object poking out by less than that has lost a negligible
        sliver (a chord of 0.05 × its diameter hides about 0.1 % of its radius). The band
        allows for models that stop a mask a pixel or two before where their input ends.
        """
        mask = result.masks[result.best]
        area = int(mask.sum())
        if area == 0:
            return False
        need = max(4.0, 0.05 * np.sqrt(area))
        h, w = mask.shape
        r, c = result.offset
        H, W = self.shape
        band = _EDGE_BAND
        edges = (
            (r > 0, mask[:band].any(axis=0)),
            (r + h < H, mask[-band:].any(axis=0)),
            (c > 0, mask[:, :band].any(axis=1)),
            (c + w < W, mask[:, -band:].any(axis=1)),
        )
        return any(inside and int(line.sum()) >= need for inside, line in edges)

    def _centred_window(self, span) -> tuple:
        """A window of the tile size (larger if ``span`` needs it) centred on ``span``.

        ``span`` is (row0, col0, row1, col1) in image pixels. The window keeps a margin of the
        halo around it (at least 16 px) where the image allows. A window already in the LRU that
        holds the span with half that margin is reused; otherwise the new window's corner is
        snapped to a grid of half the margin, so nearby prompts share windows.
        """
        H, W = self.shape
        margins = [max(m, 16) for m in self.grid.halo]
        for cached in reversed(self._windows):
            r0, c0, r1, c1 = cached[1:5]
            if all(
                (start == 0 or start <= lo - m // 2) and (stop == size or hi + 1 + m // 2 <= stop)
                for start, stop, lo, hi, m, size in (
                    (r0, r1, span[0], span[2], margins[0], H),
                    (c0, c1, span[1], span[3], margins[1], W),
                )
            ):
                return cached
        bounds = []
        for lo, hi, size, tile, margin in (
            (span[0], span[2], H, self.grid.tile_size[0], margins[0]),
            (span[1], span[3], W, self.grid.tile_size[1], margins[1]),
        ):
            snap = max(1, margin // 2)
            need = int(np.ceil(hi - lo)) + 1 + 2 * margin + snap
            side = min(size, max(tile, need))
            start = snap * round(((lo + hi) / 2 - side / 2) / snap)
            start = min(max(start, 0), size - side)
            bounds.append((start, start + side))
        (r0, r1), (c0, c1) = bounds
        return ("window", r0, c0, r1, c1)

    def _window_embedding(self, window: tuple) -> ImageEmbedding:
        if window[0] == "tile":
            return self.tile_embedding(window[1])
        with self._lock:
            embedding = self._windows.get(window)
            if embedding is not None:
                self._windows.move_to_end(window)
                return embedding
        r0, c0, r1, c1 = window[1:5]
        embedding = self._embed_rgb(self._rgb((slice(r0, r1), slice(c0, c1)))[1])
        with self._lock:
            self._windows[window] = embedding
            while len(self._windows) > WINDOW_CACHE_SIZE:
                self._windows.popitem(last=False)
        return embedding

    def _decode(self, window, prompts, previous, multimask) -> RegionPrediction:
        pts, labels, bx, views = prompts
        embedding = self._window_embedding(window)
        r0, c0 = self._window_bounds(window)[:2]
        if self._current != window:

            def read_rgb(row, col, rows, cols):  # window pixels → the crop the model sees
                return self._rgb(
                    (slice(r0 + row, r0 + row + rows), slice(c0 + col, c0 + col + cols))
                )[1]

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
            offset=(int(r0), int(c0)),
            window=window,
            chosen=prediction.chosen,
        )


def _extent(pts, bx) -> tuple[float, float, float, float]:
    """(row_min, col_min, row_max, col_max) of all prompt coordinates."""
    coords = []
    if pts is not None:
        coords.append(pts)
    if bx is not None:
        coords.append(bx.reshape(2, 2))
    allc = np.concatenate(coords)
    return (*allc.min(axis=0).tolist(), *allc.max(axis=0).tolist())


def _mask_extent(result: RegionPrediction) -> tuple[int, int, int, int]:
    mask = result.masks[result.best]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r, c = result.offset
    return (r + rows[0], c + cols[0], r + rows[-1], c + cols[-1])


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
