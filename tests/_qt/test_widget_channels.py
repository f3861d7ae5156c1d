"""RGB images in the annotator: the channel with signal is found, R, G, B or their mean can be
chosen; an image without signal gives no object and says so.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def _dapi_rgb(nuclei) -> tuple[np.ndarray, np.ndarray]:
    """The sample's nuclei as a dim 8-bit DAPI image saved as RGB (blue only), and its gray."""
    image_layer, _ = nuclei
    gray = (np.asarray(image_layer.data) // 32).astype(np.uint8)
    rgb = np.zeros((*gray.shape, 3), np.uint8)
    rgb[..., 2] = gray
    return rgb, gray


def _annotate_dapi_rgb(viewer, nuclei, make_annotator):
    """The sample as a blue-only RGB layer, chosen in a new annotator: (driver, gray, truth)."""
    rgb, gray = _dapi_rgb(nuclei)
    viewer.add_image(rgb, rgb=True, name="dapi rgb")
    ui = make_annotator()
    ui.widget.image_combo.setCurrentText("dapi rgb")
    return ui, gray, nuclei[1]


def _choose(widget, text: str) -> None:
    index = widget.channel_combo.findText(text)
    assert index >= 0, text
    widget.channel_combo.setCurrentIndex(index)


def test_a_dapi_rgb_is_segmented_like_its_gray_version(viewer, nuclei, make_annotator):
    from napari_segany import load_model
    from napari_segany.automatic import segment

    ui, gray, truth = _annotate_dapi_rgb(viewer, nuclei, make_annotator)
    widget = ui.widget
    assert widget.channel_combo.isEnabled()
    names = [widget.channel_combo.itemText(i) for i in range(widget.channel_combo.count())]
    assert names == ["auto: all, or the one with signal", "R", "G", "B", "mean of R, G, B"]
    ui.compute()
    assert widget.session.channel == 2  # found without being chosen
    widget.segment_all()
    ui.wait_idle()
    expected = segment(gray, load_model(device="cpu"))
    assert int(ui.labels().max()) == expected.count >= 0.8 * truth.max()
    np.testing.assert_array_equal(ui.labels(), expected.labels)

    target, centre = ui.centre_of_largest(truth)
    mask = ui.preview_of(centre)
    iou = (mask & (truth == target)).sum() / (mask | (truth == target)).sum()
    assert iou > 0.8


def test_choosing_a_channel_changes_what_is_segmented(viewer, nuclei, make_annotator):
    ui, _gray, truth = _annotate_dapi_rgb(viewer, nuclei, make_annotator)
    widget = ui.widget
    _target, centre = ui.centre_of_largest(truth)

    _choose(widget, "R")  # empty: nothing to segment there
    ui.compute()
    assert widget.session.channel == 0 and not widget.session.has_signal
    assert not ui.preview_of(centre).any()
    assert widget.status.text() == "No signal under the click: this image is empty."
    red = widget.session

    _choose(widget, "mean of R, G, B")  # another read: another session, computed anew
    assert widget.session is None
    ui.compute()
    assert widget.session is not red and widget.session.channel == "mean"
    assert ui.preview_of(centre)[int(centre[0]), int(centre[1])]

    _choose(widget, "R")  # back: its session is kept
    assert widget.session is red
    ui.qtbot.waitUntil(widget.ready)  # its layers are put back before the viewer closes


def test_an_image_without_signal_gives_no_object(viewer, make_annotator):
    viewer.add_image(np.zeros((256, 256), np.uint16), name="empty")
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    assert not ui.preview_of((128.0, 128.0)).any()
    assert widget.status.text() == "No signal under the click: this image is empty."
    assert widget.commit() == 0
    assert widget.status.text() == "Nothing to commit: the preview is empty."
    widget.segment_all()
    ui.wait_idle()
    assert widget.status.text() == (
        "Segment all: the image has no signal (every pixel has the same value); "
        "check Image and Channels."
    )
    assert not ui.labels().any()


def test_the_plane_of_an_rgb_layer_knows_its_channel():
    import napari

    from napari_segany._qt.image_source import ImageSourceError, current_plane

    rgb = napari.layers.Image(np.zeros((20, 30, 3), np.uint8), rgb=True)
    auto, blue = current_plane(rgb), current_plane(rgb, channel=2)
    assert auto.channel is None and blue.channel == 2 and blue.channel_axis is None
    assert auto.key != blue.key  # another read, another session
    assert current_plane(rgb, channel="mean").channel == "mean"
    gray = napari.layers.Image(np.zeros((20, 30), np.uint16))
    with pytest.raises(ImageSourceError, match="only RGB layers"):
        current_plane(gray, channel=0)
    with pytest.raises(ImageSourceError, match="no channel 3"):
        current_plane(rgb, channel=3)
