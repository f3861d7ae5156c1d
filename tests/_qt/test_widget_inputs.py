"""What the annotator segments and where it writes: image kinds, output layers, model settings.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


def test_commit_into_a_chosen_zarr_backed_labels_layer(viewer, nuclei, make_annotator):
    zarr = pytest.importorskip("zarr")
    _image, truth = nuclei
    store = zarr.create_array(
        zarr.storage.MemoryStore(), shape=truth.shape, chunks=(128, 128), dtype="uint32"
    )
    store[:4, :4] = 3  # an object already there
    viewer.add_labels(store, name="on disk")
    viewer.add_labels(np.zeros((10, 10), np.uint8), name="wrong size")
    ui = make_annotator()
    widget = ui.widget
    outputs = [widget.output_combo.itemText(i) for i in range(widget.output_combo.count())]
    assert outputs == [
        "segmentation (new layer)",
        "nuclei ground truth",
        "on disk",
        "wrong size",
    ]
    widget.output_combo.setCurrentText("on disk")
    ui.compute()
    assert widget.labels_layer.name == "on disk"
    assert "segmentation" not in [layer.name for layer in viewer.layers]
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    shown = ui.current_mask()
    assert widget.commit() == 4  # the next free ID of the zarr array
    assert np.array_equal(store[:] == 4, shown & (store[:] != 3))  # written through
    widget.undo()
    assert not (store[:] == 4).any() and (store[:4, :4] == 3).all()

    # a labels layer of another size is refused with a message; "on disk" stays the output
    said = []
    say = widget.panel.say
    widget.panel.say = lambda text: (said.append(text), say(text))
    widget.output_combo.setCurrentText("wrong size")
    ui.click(centre)
    ui.wait_preview()
    assert widget.commit() == 5  # 4 was given before the undo
    assert said[-2:] == [
        "'wrong size' has shape (10, 10), the image needs (512, 512); "
        "choose a Labels layer of that shape.",
        "Committed object 5.",
    ]
    assert widget.labels_layer.name == "on disk"
    assert (store[:] == 5).any()
    assert not viewer.layers["wrong size"].data.any()


def test_stack_uses_the_current_plane(viewer, make_annotator):
    from napari_segany.synthetic import generate_nuclei

    planes = [generate_nuclei((128, 128), n_objects=8, seed=s) for s in (1, 2)]
    stack = np.stack([p[0] for p in planes])
    viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 1)
    ui = make_annotator()
    widget = ui.widget
    ui.compute()
    assert widget.plane.leading == (1,)
    assert widget.labels_layer.data.shape == stack.shape
    _target, centre = ui.centre_of_largest(planes[1][1])
    ui.click(centre)
    ui.wait_preview()
    assert widget.commit() == 1
    data = ui.labels()
    assert data[1].any() and not data[0].any()
    # another plane has no embeddings yet: the prompts go, the widget asks to compute
    viewer.dims.set_current_step(0, 0)
    assert widget.session is None and widget.plane is None
    assert widget.status.text() == "Compute embeddings to start segmenting this image."
    viewer.dims.set_current_step(0, 1)  # back: its session is kept
    assert widget.session is not None and widget.plane.leading == (1,)


@pytest.mark.parametrize("kind", ["rgb", "multichannel"])
def test_rgb_and_multichannel_images(viewer, make_annotator, kind):
    from napari_segany.synthetic import generate_nuclei

    image, truth = generate_nuclei((160, 160), n_objects=10, seed=4, dtype=np.uint8)
    if kind == "rgb":
        viewer.add_image(np.stack([image, image // 2, np.zeros_like(image)], axis=-1), rgb=True)
    else:  # two channels on axis 0, and a dimmer second channel
        viewer.add_image(np.stack([image, image // 3]), name="two channels")
    ui = make_annotator()
    widget = ui.widget
    # a multichannel image's axes; an RGB image's R, G, B and mean (its default: automatic)
    assert widget.channel_combo.isEnabled()
    if kind == "multichannel":
        widget.channel_combo.setCurrentIndex(widget.channel_combo.findText("axis 0 (2)"))
        assert widget.panel.pickers.channel_axis() == 0
    ui.compute()
    if kind == "rgb":  # two channels with signal: the RGB image is read whole
        assert widget.session.channel is None
    assert widget.plane.shape == truth.shape
    assert widget.labels_layer.data.shape == truth.shape
    _target, centre = ui.centre_of_largest(truth)
    ui.click(centre)
    ui.wait_preview()
    assert ui.current_mask()[int(centre[0]), int(centre[1])]
    assert widget.commit() == 1


def test_reopening_a_file_uses_its_cached_embeddings(
    make_napari_viewer_proxy, make_annotator, tmp_path, monkeypatch
):
    tifffile = pytest.importorskip("tifffile")
    from napari_segany.synthetic import generate_nuclei
    from napari_segany.tiled.tile_store import TileStore

    monkeypatch.setenv("NAPARI_SEGANY_EMBEDDINGS", str(tmp_path / "embeddings"))
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, generate_nuclei((384, 384), n_objects=30, seed=5)[0])
    encoded = []
    encode = TileStore.encode_batch

    def counting(self, batch):
        encoded.append(batch.shape[0])  # tiles are encoded in batches
        return encode(self, batch)

    # every tile encoded (the flipped views a click's instance map needs are not tiles)
    monkeypatch.setattr(TileStore, "encode_batch", counting)

    first = make_napari_viewer_proxy()
    first.open(path, plugin="napari")
    ui = make_annotator(first)
    ui.widget.tile_spin.setValue(256)
    ui.compute()
    assert sum(encoded) == 4
    assert len(list((tmp_path / "embeddings").glob("*.zarr"))) == 1

    encoded.clear()
    second = make_napari_viewer_proxy()  # as after restarting napari
    second.open(path, plugin="napari")
    again = make_annotator(second)
    again.compute()
    assert encoded == [], "no tile encoded again"
    again.click((192.0, 192.0))
    again.wait_preview()


def test_settings_persist_across_sessions(make_annotator, tmp_path):
    from napari_segany.user_settings import AnnotatorSettings

    widget = make_annotator().widget
    checkpoint = tmp_path / "my_model.pth"
    checkpoint.write_bytes(b"not really")
    widget.device_combo.setCurrentText("cpu")
    widget.tile_spin.setValue(512)
    widget.halo_spin.setValue(64)
    widget.set_checkpoint(str(checkpoint))
    stored = AnnotatorSettings.load()
    assert (stored.model, stored.device, stored.tile_size, stored.halo) == ("file", "cpu", 512, 64)
    assert stored.checkpoint == str(checkpoint)

    again = make_annotator().widget  # a new napari session reads the same file
    assert again.device_combo.currentText() == "cpu"
    assert (again.tile_spin.value(), again.halo_spin.value()) == (512, 64)
    assert again.model_spec() == str(checkpoint)
    assert again.model_combo.currentText() == "File: my_model.pth"

    # the model picker lists the registry, saying which models are cached
    items = [again.model_combo.itemText(i) for i in range(again.model_combo.count())]
    assert items[0] == "segany_cells (embedded)"
    assert any(t.startswith("vit_b (") for t in items)
    assert items[-1] == "File: my_model.pth"


def test_bad_layers_give_a_message_not_a_traceback(viewer, make_annotator):
    ui = make_annotator()
    widget = ui.widget
    widget.compute_embeddings()  # no image at all
    assert widget.status.text() == "Open or add an image layer first."
    viewer.add_labels(np.zeros((32, 32), dtype=np.uint8), name="only labels")
    widget.compute_embeddings()
    assert widget.status.text() == "Open or add an image layer first."
    assert widget.session is None
    # a broken checkpoint file: the worker's error is shown in the widget
    viewer.add_image(np.random.default_rng(0).random((64, 64)), name="noise")
    assert widget.image_combo.currentText() == "noise"
    widget.set_checkpoint(__file__)
    widget.compute_button.click()
    ui.wait_idle()
    assert widget.session is None
    assert widget.status.text().startswith("CheckpointError: ")
    assert widget.compute_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_a_device_this_computer_lacks_gives_a_message(viewer, make_annotator):
    torch = pytest.importorskip("torch")
    if torch.backends.mps.is_available():
        pytest.skip("this computer has an MPS device")
    viewer.add_image(np.random.default_rng(0).random((64, 64)), name="noise")
    ui = make_annotator()
    widget = ui.widget
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("segany_cells"))
    widget.device_combo.setCurrentText("mps")
    widget.compute_button.click()
    ui.wait_idle()
    assert widget.session is None
    assert "mps" in widget.status.text() and "auto" in widget.status.text()
