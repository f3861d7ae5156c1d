"""Embeddings of a tiled image: tiles in memory or in a zarr cache, windows in a small LRU.

:class:`TileStore` owns every embedding a :class:`~napari_segany.tiled.session.SegmentationSession`
has: it encodes tiles (in batches, in the background through :meth:`TileStore.encode`, or on
demand), stores them in memory or in an
:class:`~napari_segany.tiled.embedding_cache.EmbeddingCache`, and encodes windows across seams.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import xxhash

from napari_segany.geometry import Rect
from napari_segany.image.tiling import Region, Tile, TileGrid
from napari_segany.inference.embedding import ImageEmbedding, embed_rgbs, encode_inputs
from napari_segany.models.sam import SamModel
from napari_segany.progress import Progress
from napari_segany.tiled.windows import Window

#: Window embeddings kept in memory for prompts across seams.
WINDOW_CACHE_SIZE = 4
#: Tile embeddings loaded from a zarr cache kept in memory.
TILE_CACHE_SIZE = 16


def content_hash(pixels: np.ndarray) -> str:
    """xxh3-128 hex digest of an array's shape, dtype and bytes (an image tile's identity)."""
    h = xxhash.xxh3_128()
    h.update(f"{pixels.shape}|{pixels.dtype.str}|".encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


class TileStore:
    """Every embedding of one tiled image.

    Parameters
    ----------
    model : SamModel
    precision : {"fp32", "bf16"}
        Encoder precision.
    grid : TileGrid
    read : callable
        ``read(region)`` with an image ``(slice, slice)`` → ``(raw, rgb)``: the pixels as
        stored and as the model sees them, (h, w, 3) uint8.
    read_raw : callable
        ``read_raw(region)`` → the raw pixels only (to check a cached tile against them).
    cache : EmbeddingCache, optional
        Where tiles are stored; None keeps them in memory.
    """

    def __init__(
        self,
        model: SamModel,
        precision: str,
        grid: TileGrid,
        read: Callable[[Region], tuple[np.ndarray, np.ndarray]],
        read_raw: Callable[[Region], np.ndarray],
        cache=None,
    ) -> None:
        self.model = model
        self.precision = precision
        self.grid = grid
        self.cache = cache
        self._read = read
        self._read_raw = read_raw
        self._lock = threading.RLock()
        self._tiles: dict[int, ImageEmbedding] | OrderedDict = OrderedDict()
        self._windows: OrderedDict[Window, ImageEmbedding] = OrderedDict()
        self._constant: dict[tuple, torch.Tensor] = {}

    # -- encoding ----------------------------------------------------------------------------
    def encode_batch(self, inputs: torch.Tensor) -> torch.Tensor:
        """Encoder features of resized 0–255 inputs of one size, (B, 3, h, w) → (B, 256, ...)."""
        return encode_inputs(self.model, [inputs], self.precision)

    def embed(self, rgbs: list[np.ndarray]) -> list[ImageEmbedding]:
        """Embed (h, w, 3) uint8 images, those of one size in one batch; a constant image (empty
        background) is encoded once per value and size and reused."""
        return embed_rgbs(self.model, rgbs, self.precision, self._constant, self.encode_batch)

    def tile(self, index: int) -> Tile:
        if not 0 <= int(index) < len(self.grid):
            raise IndexError(f"tile index {index} out of range for {len(self.grid)} tiles")
        return self.grid.tiles[int(index)]

    def _encode_tile(self, index: int) -> ImageEmbedding:
        raw, rgb = self._read(self.tile(index).outer)
        embedding = self.embed([rgb])[0]
        self._store_tile(index, embedding, raw, remember=True)
        return embedding

    def _store_tile(self, index: int, embedding: ImageEmbedding, raw, remember: bool) -> None:
        """Store a tile's embedding (in the zarr cache, if any, else in memory).

        With a zarr cache, ``remember=False`` keeps it out of the in-memory LRU, so a long
        background run does not grow memory or push out the tiles prompts are using.
        """
        with self._lock:
            if self.cache is not None:
                self.cache.write(index, embedding, content_hash(raw))
            if remember or self.cache is None:
                self._remember_tile(index, embedding)

    def _cached_tile(self, index: int) -> ImageEmbedding | None:
        """The zarr cache's embedding of a tile, verified against the tile's pixels, or None."""
        if self.cache is None or not self.cache.is_done(index):
            return None
        raw = self._read_raw(self.tile(index).outer)
        return self.cache.read(index, content_hash(raw))

    def _remember_tile(self, index: int, embedding: ImageEmbedding) -> None:
        self._tiles[index] = embedding
        if self.cache is not None:
            self._tiles.move_to_end(index)
            while len(self._tiles) > TILE_CACHE_SIZE:
                self._tiles.popitem(last=False)

    def available(self, index: int) -> bool:
        """Whether a tile's embedding is in memory or in the cache."""
        return index in self._tiles or (self.cache is not None and self.cache.is_done(index))

    def encode(
        self, priority: Region | None, verify: bool, batch_size: int
    ) -> Generator[Progress, None, None]:
        """Encode every tile not available yet; see
        :meth:`napari_segany.tiled.session.SegmentationSession.encode`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
        total = len(self.grid)
        order = self.grid.order(priority)
        if verify and self.cache is not None:
            for index in order:
                if self.cache.is_done(index) and self._cached_tile(index) is None:
                    self.cache.forget(index)
        todo = [i for i in order if not self.available(i)]
        done = total - len(todo)
        if not todo:
            return
        batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]

        def read(batch: list[int]) -> list[tuple]:
            return [self._read(self.grid.tiles[i].outer) for i in batch]

        # The next batch is read and scaled in a thread while this one is encoded (torch
        # releases the GIL), so reading the image costs (almost) no time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as reader:
            upcoming = reader.submit(read, batches[0])
            for k, batch in enumerate(batches):
                pixels = upcoming.result()
                if k + 1 < len(batches):
                    upcoming = reader.submit(read, batches[k + 1])
                # a prompt may have encoded some meanwhile
                needed = [j for j, i in enumerate(batch) if not self.available(i)]
                embeddings = self.embed([pixels[j][1] for j in needed])
                for j, embedding in zip(needed, embeddings, strict=True):
                    self._store_tile(batch[j], embedding, pixels[j][0], remember=False)
                for _ in batch:
                    done += 1
                    yield Progress(done, total, f"encoding tile {done}/{total}")

    # -- lookup ------------------------------------------------------------------------------
    def tile_embedding(self, index: int) -> ImageEmbedding:
        """The embedding of one tile, loaded from the cache or encoded now if needed."""
        self.tile(index)
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

    def tile_window(self, index: int) -> Window:
        """The window of a tile's outer region."""
        return Window(Rect.from_slices(self.tile(index).outer), tile=int(index))

    @property
    def recent_windows(self) -> list[Window]:
        """Windows encoded on demand and still in memory, least recently used first."""
        return list(self._windows)

    def window_embedding(self, window: Window) -> ImageEmbedding:
        """The embedding of a tile's window or of a window across seams (encoded on demand)."""
        if window.is_tile:
            return self.tile_embedding(window.tile)
        with self._lock:
            embedding = self._windows.get(window)
            if embedding is not None:
                self._windows.move_to_end(window)
                return embedding
        embedding = self.embed([self._read(window.rect.slices)[1]])[0]
        with self._lock:
            self._windows[window] = embedding
            while len(self._windows) > WINDOW_CACHE_SIZE:
                self._windows.popitem(last=False)
        return embedding
