"""The zarr embeddings cache: reuse, refusal on mismatch, resume, damaged tiles, float16."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_segany import Predictor, build_model
from napari_segany.tiled.embedding_cache import (
    CacheMismatchError,
    EmbeddingCache,
    EmbeddingCacheError,
    model_weights_hash,
)
from napari_segany.tiled.session import SegmentationSession, content_hash


def _count_encodes(session, monkeypatch) -> list:
    calls = []
    original = session.store.encode_batch

    def counting(x):
        calls.append(1)
        return original(x)

    monkeypatch.setattr(session.store, "encode_batch", counting)
    return calls


def test_same_signature_reuses_every_tile(tmp_path, random_cells_model, noise_image, monkeypatch):
    path = tmp_path / "emb.zarr"
    first = SegmentationSession(noise_image, random_cells_model, cache=path)
    assert len(list(first.encode())) == len(first.grid) > 1
    again = SegmentationSession(noise_image, random_cells_model, cache=path)
    calls = _count_encodes(again, monkeypatch)
    assert again.is_encoded()
    assert list(again.encode(verify=True)) == []
    for i in range(len(again.grid)):
        again.tile_embedding(i)
    assert calls == []  # nothing was encoded again
    fresh = SegmentationSession(noise_image, random_cells_model)
    torch.testing.assert_close(
        again.tile_embedding(3).features, fresh.tile_embedding(3).features, atol=2e-2, rtol=2e-3
    )


_PREPROCESSING = (
    "it was made with different intensity scaling, channels, precision or storage dtype"
)


@pytest.mark.parametrize(
    ("change", "fields", "reason"),
    [
        ("image", ["image.sample_hash"], "it was made for a different image (or plane)"),
        ("model", ["model.weights_hash"], "it was made with a different model or weights"),
        (
            "tile",
            ["tiling.halo", "tiling.tile_size", "tiling.tiles"],
            "it was made with a different tile size or halo",
        ),
        ("range", ["preprocessing.intensity_range"], _PREPROCESSING),
        ("channel", ["preprocessing.channel"], _PREPROCESSING),
        ("precision", ["preprocessing.encoder_precision"], _PREPROCESSING),
    ],
)
def test_any_mismatch_is_refused_then_recomputed_with_overwrite(
    tmp_path, random_cells_model, noise_image, change, fields, reason
):
    """The error names the differing signature entries and the one reason they share."""
    path = tmp_path / "emb.zarr"
    list(SegmentationSession(noise_image, random_cells_model, cache=path).encode())
    kwargs = {"cache": path}
    other_image, other_model = noise_image, random_cells_model
    if change == "image":
        other_image = noise_image.copy()
        other_image[10:20, 10:20] += 1
    elif change == "model":
        other_model = build_model("segany_cells", img_size=128, seed=4)
    elif change == "tile":
        kwargs.update(tile_size=96, halo=8)
    elif change == "range":
        kwargs.update(intensity_range=(0, 5000))
    elif change == "channel":
        kwargs.update(channel=0)  # of a grayscale image: the same pixels, still another read
    else:
        kwargs.update(precision="bf16")
    with pytest.raises(CacheMismatchError) as info:
        SegmentationSession(other_image, other_model, **kwargs)
    assert info.value.differences == fields
    assert f"cannot be reused: {reason} (differs: {', '.join(fields)})." in str(info.value)
    replaced = SegmentationSession(other_image, other_model, overwrite_cache=True, **kwargs)
    assert replaced.cache.done_count() == 0 and not replaced.is_encoded()


def test_a_path_that_is_not_a_cache_is_never_overwritten(tmp_path, random_cells_model, noise_image):
    import zarr

    path = tmp_path / "my_image.zarr"
    zarr.create_array(str(path), shape=(4, 4), dtype="u1")[:] = 7
    with pytest.raises(EmbeddingCacheError, match="not a napari-segany embeddings cache"):
        SegmentationSession(noise_image, random_cells_model, cache=path, overwrite_cache=True)
    assert (zarr.open_array(str(path), mode="r")[:] == 7).all()


def test_cancelled_run_keeps_finished_tiles_and_resumes(tmp_path, random_cells_model, noise_image):
    path = tmp_path / "emb.zarr"
    session = SegmentationSession(noise_image, random_cells_model, cache=path)
    job = session.encode(batch_size=1)
    for _ in range(3):
        next(job)
    job.close()
    resumed = SegmentationSession(noise_image, random_cells_model, cache=path)
    assert resumed.cache.done_count() == 3
    reports = list(resumed.encode())
    assert [r.done for r in reports] == list(range(4, len(resumed.grid) + 1))


def test_crash_between_data_and_record_leaves_the_tile_undone(
    tmp_path, random_cells_model, noise_image
):
    path = tmp_path / "emb.zarr"
    session = SegmentationSession(noise_image, random_cells_model, cache=path)
    records = session.cache._records_array

    class Crash(Exception):
        pass

    class Failing:
        def __setitem__(self, key, value):
            if np.any(value):  # the final record: crash after the features were written
                raise Crash
            records[key] = value

    session.cache._records_array = Failing()
    with pytest.raises(Crash):
        next(session.encode())
    reopened = SegmentationSession(noise_image, random_cells_model, cache=path)
    assert reopened.cache.done_count() == 0


def _chunk_files(path, index):
    return sorted((path / "features" / "c" / str(index)).rglob("*"))


@pytest.mark.parametrize("damage", ["garbage", "truncate", "delete"])
def test_damaged_tile_is_detected_and_recomputed(
    tmp_path, random_cells_model, noise_image, damage, monkeypatch
):
    path = tmp_path / "emb.zarr"
    list(SegmentationSession(noise_image, random_cells_model, cache=path).encode())
    chunk = next(f for f in _chunk_files(path, 2) if f.is_file())
    if damage == "garbage":
        data = bytearray(chunk.read_bytes())
        data[1000:1010] = b"0123456789"
        chunk.write_bytes(bytes(data))
    elif damage == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:5000])
    else:
        chunk.unlink()
    session = SegmentationSession(noise_image, random_cells_model, cache=path)
    calls = _count_encodes(session, monkeypatch)
    embedding = session.tile_embedding(2)
    assert calls == [1]  # only the damaged tile
    expected = SegmentationSession(noise_image, random_cells_model).tile_embedding(2)
    torch.testing.assert_close(embedding.features, expected.features, atol=2e-2, rtol=2e-3)
    assert session.cache.read(2, content_hash(noise_image[session.grid.tiles[2].outer])) is not None


def test_verify_repairs_damaged_tiles_in_the_background_run(
    tmp_path, random_cells_model, noise_image
):
    path = tmp_path / "emb.zarr"
    list(SegmentationSession(noise_image, random_cells_model, cache=path).encode())
    chunk = next(f for f in _chunk_files(path, 3) if f.is_file())
    chunk.write_bytes(b"broken")
    session = SegmentationSession(noise_image, random_cells_model, cache=path)
    assert session.is_encoded()  # records alone look fine
    reports = list(session.encode(verify=True))
    assert len(reports) == 1
    assert session.cache.read(3) is not None


def test_tile_with_changed_pixels_is_stale(tmp_path, random_cells_model, noise_image):
    path = tmp_path / "emb.zarr"
    session = SegmentationSession(noise_image, random_cells_model, cache=path)
    session.tile_embedding(0)
    tile = session.grid.tiles[0]
    changed = noise_image[tile.outer].copy()
    changed[0, 0] ^= 1
    assert session.cache.read(0, content_hash(noise_image[tile.outer])) is not None
    assert session.cache.read(0, content_hash(changed)) is None


def test_cache_metadata_is_plain_json(tmp_path, random_cells_model, noise_image):
    path = tmp_path / "emb.zarr"
    SegmentationSession(noise_image, random_cells_model, cache=path)
    meta = json.loads((path / "zarr.json").read_text())
    signature = meta["attributes"]["napari_segany_embeddings"]["signature"]
    assert signature["model"]["weights_hash"] == model_weights_hash(random_cells_model)
    assert signature["tiling"]["tile_size"] == [128, 128]
    assert signature["preprocessing"]["storage_dtype"] == "float16"


def test_float16_storage_keeps_masks(embedded_model):
    """Masks decoded from float16-stored features match float32 with IoU >= 0.99."""
    from napari_segany.synthetic import generate_scene

    ious = []
    for seed in (3, 4):  # cytoplasm-stained cells (8-bit), phase contrast (16-bit)
        scene = generate_scene((384, 384), seed=seed)
        predictor = Predictor(embedded_model)
        predictor.set_image(scene.raw)
        emb32 = predictor.get_embedding()
        emb16 = type(emb32)(
            emb32.features.to(torch.float16).to(torch.float32),
            emb32.original_size,
            emb32.input_size,
            emb32.architecture,
        )
        for obj in scene.objects[:4]:
            point = [[obj.centroid[0], obj.centroid[1]]]
            predictor.set_embedding(emb32)
            a = predictor.predict(points=point)
            predictor.set_embedding(emb16)
            b = predictor.predict(points=point)
            for k in range(3):
                union = (a.masks[k] | b.masks[k]).sum()
                if union:
                    ious.append((a.masks[k] & b.masks[k]).sum() / union)
    assert len(ious) >= 18
    assert min(ious) >= 0.99, sorted(ious)[:5]


def test_bad_dtype_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        EmbeddingCache.open(tmp_path / "x.zarr", {"tiling": {"tiles": 1}}, dtype="int8")
