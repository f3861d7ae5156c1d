"""Shared fixtures.

The reference implementations (Meta's ``segment-anything`` and micro-sam with torch-em, test-only
dependencies) import torchvision at module level, which cannot be installed here. A stub package
stands in for it, only inside the test session; it is the benchmarks' stub
(``benchmarks/_reference.py``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _reference import install_torchvision_stub

# napari saves its settings file on every change (make_napari_viewer resets the settings, the
# plugin adds reader preferences): point it at a throwaway file before anything imports
# napari.settings, so no test run reads or writes the user's own napari settings.
_NAPARI_CONFIG_DIR = tempfile.mkdtemp(prefix="napari-segany-tests-")
os.environ["NAPARI_CONFIG"] = str(Path(_NAPARI_CONFIG_DIR) / "settings.yaml")
atexit.register(shutil.rmtree, _NAPARI_CONFIG_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_sam():
    """The ``segment_anything`` package (reference implementation)."""
    install_torchvision_stub()
    return pytest.importorskip("segment_anything")


@pytest.fixture
def rng():
    """A fresh ``np.random.Generator`` seeded with 1234 for each test."""
    return np.random.default_rng(1234)


@pytest.fixture
def noise_image(rng):
    """Uniform noise, uint16 ``(220, 200)`` with values in ``[0, 4000)``: several 128 px tiles."""
    return rng.integers(0, 4000, size=(220, 200), dtype=np.uint16)


@pytest.fixture(scope="module")
def random_cells_model():
    """Randomly initialised (seed 3) ``segany_cells``-architecture SamModel with a 128 px input
    (8 x 8 embedding grid, ~15 ms per tile on a CPU); built once per test module."""
    from napari_segany import build_model

    return build_model("segany_cells", img_size=128, seed=3)


@pytest.fixture(scope="module")
def embedded_model():
    """The packaged ``segany_cells`` model with its trained weights (1024 px input), on the CPU;
    loaded once per test module."""
    from napari_segany import load_model

    return load_model(device="cpu")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Point NAPARI_SEGANY_CACHE at a fresh folder and forget hashes verified earlier."""
    from napari_segany.models import download

    folder = tmp_path / "cache"
    monkeypatch.setenv("NAPARI_SEGANY_CACHE", str(folder))
    monkeypatch.setattr(download, "_VERIFIED", {})
    return folder
