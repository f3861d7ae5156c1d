"""'Segment all' in the widget, the Python API and the command line give the same labels.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def test_widget_api_and_cli_agree(nuclei, make_annotator, tmp_path):
    import tifffile

    from napari_segany import load_model
    from napari_segany.automatic import matching_accuracy, segment
    from napari_segany.cli import main

    image_layer, truth = nuclei
    image = np.asarray(image_layer.data)
    ui = make_annotator()
    ui.compute()
    ui.widget.segment_all()
    ui.wait_idle()
    from_widget = ui.labels()

    from_api = segment(image, load_model(device="cpu")).labels
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    assert main(["segment", str(path), "-o", str(tmp_path / "out.tif"), "--quiet"]) == 0
    from_cli = tifffile.imread(tmp_path / "out.tif")

    np.testing.assert_array_equal(from_widget, from_api)
    np.testing.assert_array_equal(from_cli, from_api)
    # and the embedded model finds the sample's nuclei
    assert matching_accuracy(truth, from_api) > 0.6


def _commit_largest(ui, truth, count: int) -> np.ndarray:
    """Commit the ``count`` largest truth nuclei by a click at each centre; the labels."""
    ids, areas = np.unique(truth[truth > 0], return_counts=True)
    for target in ids[np.argsort(-areas)][:count]:
        rows, cols = np.nonzero(truth == target)
        i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        ui.widget.clear_prompts()
        ui.click((float(rows[i]), float(cols[i])))
        ui.wait_preview()
        assert ui.widget.commit() > 0
    return ui.labels()


def test_segment_all_after_commits_adds_no_slivers(nuclei, make_annotator):
    """Issue item 5: Segment all after a few commits added the 1-px crescents left around the
    committed nuclei (where the automatic mask of a nucleus is larger than the committed one)
    as objects of their own."""
    from scipy import ndimage as ndi

    from napari_segany import load_model
    from napari_segany.automatic import AutomaticParams, segment

    image_layer, truth = nuclei
    ui = make_annotator()
    ui.compute()
    manual = _commit_largest(ui, truth, 8)
    committed = int(manual.max())
    assert committed == 8
    ui.widget.segment_all()
    ui.wait_idle()
    data = ui.labels()
    # the same objects the widget found (test_widget_api_and_cli_agree checks they agree)
    auto = np.asarray(segment(np.asarray(image_layer.data), load_model(device="cpu")).labels)

    np.testing.assert_array_equal(data[manual > 0], manual[manual > 0])
    new_ids = np.unique(data[data > committed])
    auto_area = np.bincount(auto.ravel())
    min_size, square = AutomaticParams().min_size, np.ones((3, 3), bool)
    for i in new_ids:
        mask = data == i
        source = np.unique(auto[mask])
        assert len(source) == 1 and source[0] > 0, "each new object is part of one found"
        assert mask.sum() >= min_size
        assert mask.sum() >= 0.5 * auto_area[source[0]], "not the rest of a committed nucleus"
        assert ndi.label(mask, square)[1] == 1, "one piece"
        assert ndi.binary_erosion(mask, square).any(), "not a sliver: a 3x3 square fits in it"
    # the found objects clear of the committed ones are all written, whole
    touching = np.unique(auto[manual > 0])
    for j in np.setdiff1d(np.unique(auto[auto > 0]), touching):
        assert len(np.unique(data[auto == j])) == 1 and data[auto == j][0] > committed
    found, added = int(auto.max()), len(new_ids)
    assert found - added >= committed - 1, "the automatic twins of the commits are left out"
    assert ui.widget.status.text() == (
        f"Segment all: added {added} objects (Ctrl+Z undoes them); "
        f"{found - added} more lay on existing objects."
    )
    ui.widget.undo()
    np.testing.assert_array_equal(ui.labels(), manual)


def test_segment_all_says_why_nothing_was_written(nuclei, make_annotator, monkeypatch):
    """No objects found; all on existing objects; what is left of them too small. The run's
    ``min_size`` reaches the fitting (a stand-in for iter_segment returns chosen labels)."""
    from scipy import ndimage as ndi

    from napari_segany import automatic
    from napari_segany.automatic import AutomaticParams, AutomaticResult
    from napari_segany.progress import Progress

    _image, truth = nuclei
    found = []

    def iter_segment(session, **params):
        yield Progress(1, 1, "segmenting")
        labels = found.pop(0)
        ids = np.unique(labels[labels > 0])
        scores = {int(i): (0.9, 0.9) for i in ids}
        return AutomaticResult(labels, scores, "instance_head", AutomaticParams(**params))

    monkeypatch.setattr(automatic, "iter_segment", iter_segment)
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    manual = _commit_largest(ui, truth, 1)
    mine = manual == 1

    def run(labels, **params) -> str:
        found.append(labels.astype(np.uint32))
        widget.segment_all(**params)
        ui.wait_idle()
        return widget.status.text()

    tick = 'tick "Overwrite other objects" to write them whole'
    assert run(np.zeros_like(manual)) == (
        "Segment all found no objects: check that the image has signal and that Image "
        "and Channels choose the right layer and channel."
    )
    # the committed nucleus found again, 2 px larger
    again = ndi.binary_dilation(mine, iterations=2)
    assert run(again) == f"Segment all found 1 object, all on existing objects; {tick}."
    np.testing.assert_array_equal(ui.labels(), manual)
    # a 6x6 object over the top of the committed one: at least 24 px free, compact, but fewer
    # than the min_size of this run
    (r0, c0) = np.argwhere(mine)[0]
    square = np.zeros_like(manual)
    square[r0 - 4 : r0 + 2, c0 - 3 : c0 + 3] = 1
    assert run(square, min_size=40) == (
        f"Segment all found 1 object; what existing objects leave free of them is under "
        f"40 px or too thin; {tick}."
    )
    np.testing.assert_array_equal(ui.labels(), manual)
    assert run(square, min_size=10).startswith("Segment all: added 1 object (")
    # with Overwrite ticked the found object replaces the committed one's pixels
    widget.undo()
    widget.overwrite_check.setChecked(True)
    assert run(again) == "Segment all: added 1 object (Ctrl+Z undoes them)."
    np.testing.assert_array_equal(ui.labels() == 2, again)
