"""Names of label files: what napari-segany chooses ends in ``.labels.<format>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_segany.cli.segment import output_paths
from napari_segany.labels_io import (
    is_labels_file_name,
    labels_file_name,
    labels_stem,
    save_labels,
    table_path,
)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("cells.labels.tif", "cells"),
        ("cells.labels.tiff", "cells"),
        ("cells.tif", "cells"),
        ("cells.ome.zarr", "cells"),
        ("cells.labels.zarr", "cells"),
        ("cells.labels.ome.zarr", "cells"),
        ("a.b.tif", "a.b"),
        ("x.labels", "x"),
        (".labels.tif", ".labels"),  # nothing to strip the tag from
    ],
)
def test_labels_stem(name, stem):
    assert labels_stem(Path("/data") / name) == stem


def test_names_napari_opens_as_labels():
    assert labels_file_name("cells") == "cells.labels.tif"
    assert labels_file_name("cells", ".zarr") == "cells.labels.zarr"
    assert is_labels_file_name("/x/Cells.Labels.TIFF")
    assert not is_labels_file_name("cells.tif") and not is_labels_file_name("labels.tif")


def test_the_table_of_a_labels_tif_drops_the_tag(tmp_path):
    assert table_path(tmp_path / "cells.labels.tif") == tmp_path / "cells_objects.csv"
    saved = save_labels(tmp_path / "cells.labels.tif", np.eye(4, dtype=np.uint8))
    assert saved.paths == [tmp_path / "cells.labels.tif", tmp_path / "cells_objects.csv"]


def test_cli_names_its_outputs_labels_tif(tmp_path):
    folder = tmp_path / "out"
    assert output_paths(["a.tif", "b.ome.zarr"], str(folder), "tif") == [
        folder / "a.labels.tif",
        folder / "b.labels.tif",
    ]
    assert output_paths(["a.tif"], str(folder), "zarr") == [folder / "a.labels.zarr"]
    # a file name given by the user is kept
    assert output_paths(["a.tif"], str(tmp_path / "mine.tif"), "tif") == [tmp_path / "mine.tif"]
