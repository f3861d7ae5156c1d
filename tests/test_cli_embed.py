"""``napari-segany embed``: embeddings cache from the command line, errors users can act on."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_segany import build_model
from napari_segany.cli import main
from napari_segany.tiled.embedding_cache import EmbeddingCache
from napari_segany.tiled.session import SegmentationSession


@pytest.fixture(scope="module")
def small_models():
    return {
        "small": build_model("segany_cells", img_size=128, seed=3),
        "other": build_model("segany_cells", img_size=128, seed=4),
    }


@pytest.fixture
def fake_load(monkeypatch, small_models):
    """Serve fast random models for the names "small" and "other"."""
    from napari_segany.models import loading

    real = loading.load_model

    def load(name, device="auto"):
        return small_models[name] if name in small_models else real(name, device=device)

    monkeypatch.setattr(loading, "load_model", load)
    return small_models


@pytest.fixture
def tif(tmp_path, rng):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, rng.integers(0, 4000, size=(220, 200), dtype=np.uint16))
    return path


def test_embed_with_the_default_model_then_reuse(tmp_path, rng, capsys):
    image = rng.integers(0, 255, size=(180, 160), dtype=np.uint8)
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, image)
    out = tmp_path / "small.zarr"
    assert main(["embed", str(path), "-o", str(out), "--quiet", "--device", "cpu"]) == 0
    assert "1/1 tiles" in capsys.readouterr().out
    from napari_segany import load_model

    session = SegmentationSession(image, load_model(device="cpu"), cache=out)
    assert session.is_encoded()
    assert session.predict(points=[[90, 80]]).masks.shape == (3, 180, 160)


def test_rerun_reuses_and_interrupted_run_resumes(tmp_path, tif, fake_load, capsys, monkeypatch):
    out = tmp_path / "emb.zarr"
    args = ["embed", str(tif), "-o", str(out), "--model", "small", "--quiet"]
    original = EmbeddingCache.write
    calls = []

    def interrupt_after_two(self, index, *rest, **kwargs):  # Ctrl+C while the third tile is saved
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(index)
        return original(self, index, *rest, **kwargs)

    monkeypatch.setattr(EmbeddingCache, "write", interrupt_after_two)
    assert main(args) == 130
    assert "2/4 tiles are saved" in capsys.readouterr().err
    monkeypatch.setattr(EmbeddingCache, "write", original)
    assert main(args) == 0
    assert "4/4 tiles" in (text := capsys.readouterr().out) and "2 encoded now, 2 reused" in text
    assert main(args) == 0
    assert "0 encoded now, 4 reused" in capsys.readouterr().out


def test_cache_for_another_image_or_model_is_refused_unless_overwrite(
    tmp_path, tif, fake_load, rng, capsys
):
    out = tmp_path / "emb.zarr"
    assert main(["embed", str(tif), "-o", str(out), "--model", "small", "--quiet"]) == 0
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, rng.integers(0, 4000, size=(220, 200), dtype=np.uint16))
    assert main(["embed", str(other), "-o", str(out), "--model", "small", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "different image" in err and "--overwrite" in err
    assert main(["embed", str(tif), "-o", str(out), "--model", "other", "--quiet"]) == 1
    assert "different model" in capsys.readouterr().err
    assert main(["embed", str(tif), "-o", str(out), "--model", "small", "--tile", "96"]) == 1
    assert "tile size" in capsys.readouterr().err
    args = ["embed", str(other), "-o", str(out), "--model", "small", "--quiet", "--overwrite"]
    assert main(args) == 0
    assert "4 encoded now, 0 reused" in capsys.readouterr().out


def test_output_that_is_not_a_cache_is_left_alone(tmp_path, tif, fake_load, capsys):
    out = tmp_path / "data.zarr"
    zarr.create_array(str(out), shape=(3,), dtype="u1")[:] = 5
    args = ["embed", str(tif), "-o", str(out), "--model", "small", "--quiet", "--overwrite"]
    assert main(args) == 1
    assert "not a napari-segany embeddings cache" in capsys.readouterr().err
    assert (zarr.open_array(str(out), mode="r")[:] == 5).all()


def test_unreadable_and_missing_files(tmp_path, fake_load, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"this is not a tiff")
    assert main(["embed", str(bad), "-o", str(tmp_path / "a.zarr"), "--model", "small"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "broken.tif" in err and "Traceback" not in err
    missing = tmp_path / "missing.tif"
    assert main(["embed", str(missing), "-o", str(tmp_path / "b.zarr"), "--model", "small"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


def test_stacks_need_a_plane(tmp_path, fake_load, rng, capsys):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path, rng.integers(0, 4000, size=(3, 100, 90), dtype=np.uint16), photometric="minisblack"
    )
    out = tmp_path / "stack.zarr"
    assert main(["embed", str(path), "-o", str(out), "--model", "small", "--quiet"]) == 1
    assert "--plane" in capsys.readouterr().err
    args = ["embed", str(path), "-o", str(out), "--model", "small", "--quiet", "--plane", "2"]
    assert main(args) == 0
    with pytest.raises(SystemExit):
        main(["embed", str(path), "-o", str(out), "--plane", "two"])
