"""Shared fixtures.

The reference implementation (Meta's ``segment-anything``, a test-only dependency) imports
torchvision at module level for image resizing and box NMS, which these tests never call and which
cannot be installed here. A stub package stands in for it, only inside the test session.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest


def _install_torchvision_stub() -> None:
    if "torchvision" in sys.modules:
        return

    def _unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is stubbed out in the tests")

    modules = {
        "torchvision": {},
        "torchvision.ops": {},
        "torchvision.ops.boxes": {"batched_nms": _unavailable, "box_area": _unavailable},
        "torchvision.transforms": {},
        "torchvision.transforms.functional": {"resize": _unavailable, "to_pil_image": _unavailable},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


@pytest.fixture(scope="session")
def reference_sam():
    """The ``segment_anything`` package (reference implementation)."""
    _install_torchvision_stub()
    return pytest.importorskip("segment_anything")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Point NAPARI_SEGANY_CACHE at a fresh folder and forget hashes verified earlier."""
    from napari_segany.models import download

    folder = tmp_path / "cache"
    monkeypatch.setenv("NAPARI_SEGANY_CACHE", str(folder))
    monkeypatch.setattr(download, "_VERIFIED", {})
    return folder
