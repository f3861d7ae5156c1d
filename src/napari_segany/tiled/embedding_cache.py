"""A zarr store of per-tile image embeddings that is never reused for the wrong image or model.

Layout of a cache (a zarr v3 group, e.g. ``cells.embeddings.zarr``)::

    zarr.json            attributes["napari_segany_embeddings"] = {"version", "signature"}
    features/            (n_tiles, 256, h, w) float16 or float32, one chunk per tile
    records/             (n_tiles, 8) uint64, one chunk per tile:
                         [MAGIC, image hash hi, image hash lo, features checksum,
                          original rows, original cols, input rows, input cols]

The **signature** describes everything an embedding depends on: the image (shape, dtype,
channels, plane and a hash of a fixed subsample), the model (architecture, input size, a hash of
its weights), the tiling (tile size, halo) and the preprocessing (intensity ranges, encoder
precision, storage dtype). Opening a cache with another signature raises
:class:`CacheMismatchError` naming what differs, or, with ``overwrite=True``, replaces it.

Each tile also records the hash of its own image pixels, checked when the tile is read (an edit
the subsample missed makes that tile stale, so it is recomputed), and a checksum of its features
(a damaged or unreadable chunk is detected and recomputed). A tile's record is written only after
its features, and zarr writes each chunk to a temporary file that is then renamed: a run that is
interrupted or cancelled leaves every finished tile valid, and the next run resumes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch
import xxhash

from napari_segany.inference.embedding import ImageEmbedding

__all__ = [
    "CacheMismatchError",
    "EmbeddingCache",
    "EmbeddingCacheError",
    "model_weights_hash",
    "session_signature",
]

ATTRIBUTE = "napari_segany_embeddings"
VERSION = 1
MAGIC = 0x5E6A_CAC4E_0001
DTYPES = ("float16", "float32")
_RECORD = 8


class EmbeddingCacheError(ValueError):
    """A path that is not a usable embeddings cache."""


class CacheMismatchError(EmbeddingCacheError):
    """An embeddings cache made for another image, model, tiling or preprocessing.

    Attributes
    ----------
    differences : list of str
        Dotted names of the signature entries that differ (``"image.sample_hash"``, ...).
    """

    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = differences


def model_weights_hash(model: torch.nn.Module) -> str:
    """xxh3-128 hex digest of a model's state dict (names, dtypes, shapes and values)."""
    h = xxhash.xxh3_128()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def session_signature(session, dtype: str = "float16") -> dict:
    """The signature of a :class:`~napari_segany.tiled.session.SegmentationSession`'s embeddings."""
    model = session.model
    source = session.source
    ranges = session.intensity_range
    return {
        "image": {
            "shape": list(source.shape),
            "dtype": source.dtype.str,
            "channels": source.channels,
            "plane": list(source.plane),
            "sample_hash": session.sample_hash,
        },
        "model": {
            "architecture": model.architecture,
            "image_size": model.image_size,
            "upscale_input": bool(model.upscale_input),
            "weights_hash": model_weights_hash(model),
            "feature_shape": feature_shape(model),
        },
        "tiling": {
            "tile_size": list(session.grid.tile_size),
            "halo": list(session.grid.halo),
            "tiles": len(session.grid),
        },
        "preprocessing": {
            "intensity_range": None if ranges is None else ranges.tolist(),
            "channel_axis": source.prep_channel_axis,
            # None (all channels) matches stores written before channels could be chosen
            "channel": session.channel,
            "encoder_precision": session.precision,
            "storage_dtype": dtype,
        },
    }


def feature_shape(model) -> list[int]:
    """(channels, rows, cols) of one embedding of ``model``."""
    return [
        int(model.prompt_encoder.embed_dim),
        *map(int, model.prompt_encoder.image_embedding_size),
    ]


def _differences(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


_EXPLAIN = {
    "image": "it was made for a different image (or plane)",
    "model": "it was made with a different model or weights",
    "tiling": "it was made with a different tile size or halo",
    "preprocessing": (
        "it was made with different intensity scaling, channels, precision or storage dtype"
    ),
}


class EmbeddingCache:
    """Per-tile embeddings in a zarr store; use :meth:`open`.

    Attributes
    ----------
    path : Path
    signature : dict
    dtype : numpy dtype
        How features are stored.
    """

    def __init__(self, path: Path, group, signature: dict) -> None:
        self.path = path
        self.signature = signature
        self._features = group["features"]
        self._records_array = group["records"]
        self.dtype = np.dtype(self._features.dtype)
        self.n_tiles = int(self._features.shape[0])
        self._records = self._load_records()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        signature: dict,
        n_tiles: int | None = None,
        *,
        overwrite: bool = False,
        dtype: str = "float16",
    ) -> EmbeddingCache:
        """Open the cache at ``path`` for ``signature``, creating it if needed.

        Parameters
        ----------
        path : str or Path
            A ``.zarr`` folder. Created if missing.
        signature : dict
            From :func:`session_signature` (needs ``tiling.tiles`` and ``model.feature_shape``).
        n_tiles : int, optional
            Number of tiles (default: the signature's).
        overwrite : bool
            Replace an existing cache whose signature differs instead of raising.
        dtype : {"float16", "float32"}
            Storage dtype of a new cache.

        Raises
        ------
        CacheMismatchError
            The cache exists with another signature and ``overwrite`` is False.
        EmbeddingCacheError
            ``path`` exists but is not an embeddings cache (it is never overwritten), or
            cannot be read or written.
        """
        import zarr

        path = Path(path)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        signature = json.loads(json.dumps(signature))  # canonical, JSON-comparable
        n_tiles = int(signature["tiling"]["tiles"] if n_tiles is None else n_tiles)
        if path.exists():
            stored = cls._read_signature(path)
            if stored == signature:
                try:
                    return cls(path, zarr.open_group(str(path), mode="r+"), signature)
                except Exception as exc:
                    if not overwrite:
                        raise EmbeddingCacheError(
                            f"{path}: the embeddings cache is damaged ({exc}); delete it or "
                            "pass overwrite=True (--overwrite) to compute it again"
                        ) from exc
            elif not overwrite:
                diff = _differences(stored, signature)
                reasons = sorted({_EXPLAIN.get(d.split(".")[0], d) for d in diff})
                raise CacheMismatchError(
                    f"{path} cannot be reused: {'; '.join(reasons)} (differs: {', '.join(diff)}). "
                    "Use another cache path, or overwrite=True (--overwrite) to replace it.",
                    diff,
                )
        return cls._create(path, signature, n_tiles, dtype)

    @staticmethod
    def _read_signature(path: Path) -> dict:
        import zarr

        try:
            group = zarr.open_group(str(path), mode="r")
            meta = dict(group.attrs).get(ATTRIBUTE)
        except Exception:
            meta = None
        if not isinstance(meta, dict) or "signature" not in meta:
            raise EmbeddingCacheError(
                f"{path} exists and is not a napari-segany embeddings cache; it is left "
                "untouched. Choose another path for the cache."
            )
        if meta.get("version") != VERSION:
            return {"version": meta.get("version")}
        return meta["signature"]

    @classmethod
    def _create(cls, path: Path, signature: dict, n_tiles: int, dtype: str) -> EmbeddingCache:
        import zarr

        shape = tuple(signature["model"]["feature_shape"])
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            group.create_array(
                "features",
                shape=(n_tiles, *shape),
                chunks=(1, *shape),
                dtype=dtype,
                compressors=None,
                fill_value=0,
            )
            group.create_array(
                "records", shape=(n_tiles, _RECORD), chunks=(1, _RECORD), dtype="u8", fill_value=0
            )
            group.attrs[ATTRIBUTE] = {"version": VERSION, "signature": signature}
            if path.exists():  # replacing a stale cache (checked to be one of ours)
                old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise EmbeddingCacheError(f"cannot create the embeddings cache {path}: {exc}") from exc
        return cls(path, zarr.open_group(str(path), mode="r+"), signature)

    # -- records -----------------------------------------------------------------------------
    def _load_records(self) -> np.ndarray:
        try:
            return np.asarray(self._records_array[:], dtype=np.uint64)
        except Exception:  # a damaged chunk: read tile by tile, damaged records count as missing
            records = np.zeros((self.n_tiles, _RECORD), dtype=np.uint64)
            for i in range(self.n_tiles):
                with contextlib.suppress(Exception):
                    records[i] = self._records_array[i]
            return records

    def is_done(self, index: int) -> bool:
        """A record says tile ``index`` was written completely (not yet verified)."""
        return int(self._records[index, 0]) == MAGIC

    def done_count(self) -> int:
        """Number of tiles recorded as written."""
        return int((self._records[:, 0] == MAGIC).sum())

    def forget(self, index: int) -> None:
        """Mark tile ``index`` as not computed (its record is cleared first, then its data)."""
        self._records[index] = 0
        self._records_array[index] = np.zeros(_RECORD, dtype=np.uint64)

    # -- tiles -------------------------------------------------------------------------------
    def write(self, index: int, embedding: ImageEmbedding, image_hash: str) -> None:
        """Store one tile: features first, then its record (the tile counts as done only then).

        Parameters
        ----------
        index : int
        embedding : ImageEmbedding
            Features (1, C, h, w).
        image_hash : str
            32 hex digits, :func:`napari_segany.tiled.session.content_hash` of the tile's pixels.
        """
        data = embedding.features.detach().to("cpu", torch.float32).numpy()[0]
        stored = data.astype(self.dtype)
        if not np.isfinite(stored).all():
            raise EmbeddingCacheError(
                f"tile {index}: features do not fit in {self.dtype}; use a float32 cache"
            )
        self.forget(index)
        self._features[index] = stored
        record = np.array(
            [
                MAGIC,
                int(image_hash[:16], 16),
                int(image_hash[16:32], 16),
                xxhash.xxh3_64_intdigest(np.ascontiguousarray(stored).data),
                *embedding.original_size,
                *embedding.input_size,
            ],
            dtype=np.uint64,
        )
        self._records_array[index] = record
        self._records[index] = record

    def read(self, index: int, image_hash: str | None = None) -> ImageEmbedding | None:
        """Tile ``index``'s embedding, or None when it must be (re)computed.

        None when the tile was never written, its image pixels changed (``image_hash`` differs
        from the recorded one), or its data is damaged (unreadable chunk, checksum mismatch).
        """
        record = self._records[index]
        if int(record[0]) != MAGIC:
            return None
        if image_hash is not None and (
            int(record[1]) != int(image_hash[:16], 16)
            or int(record[2]) != int(image_hash[16:32], 16)
        ):
            self._records[index] = 0
            return None
        try:
            stored = np.asarray(self._features[index])
        except Exception:
            stored = None
        if stored is None or xxhash.xxh3_64_intdigest(stored.data) != int(record[3]):
            self._records[index] = 0  # damaged: recompute
            return None
        features = torch.from_numpy(stored.astype(np.float32))[None]
        return ImageEmbedding(
            features=features,
            original_size=(int(record[4]), int(record[5])),
            input_size=(int(record[6]), int(record[7])),
            architecture=self.signature["model"]["architecture"],
        )

    def __repr__(self) -> str:
        return (
            f"EmbeddingCache({str(self.path)!r}, {self.done_count()}/{self.n_tiles} tiles, "
            f"{self.dtype})"
        )
