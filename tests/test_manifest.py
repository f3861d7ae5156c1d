"""The npe2 manifest: valid, importable, registered through the package's entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2")

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_is_registered_by_the_installed_distribution():
    manifest = npe2.PluginManifest.from_distribution("napari-segany")
    assert manifest.name == "napari-segany"
    assert manifest.contributions.sample_data
    # every python_name in the manifest imports and resolves to a callable, without Qt
    manifest.validate_imports()


def test_packaged_manifest_is_the_repository_manifest():
    import napari_segany

    packaged = Path(napari_segany.__file__).parent / "napari.yaml"
    assert packaged.read_text() == (ROOT / "napari.yaml").read_text()


def test_npe2_validate_command():
    exe = shutil.which("npe2") or str(Path(sys.executable).parent / "npe2")
    result = subprocess.run(
        [exe, "validate", "napari-segany", "--imports"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower()


def test_sample_data_returns_an_image_and_ground_truth():
    from napari_segany._sample_data import make_nuclei_sample

    (image, image_meta, image_kind), (labels, _, labels_kind) = make_nuclei_sample()
    assert (image_kind, labels_kind) == ("image", "labels")
    assert image.shape == labels.shape == (512, 512)
    assert image.dtype == np.uint16 and labels.dtype == np.uint32
    n_objects = len(np.unique(labels)) - 1
    assert n_objects >= 40
    # nuclei are bright against the background
    assert image[labels > 0].mean() > 2 * image[labels == 0].mean()
    assert image_meta["name"]
