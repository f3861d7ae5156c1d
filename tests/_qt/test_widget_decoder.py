"""Segment all in the widget with a model that carries a micro-sam instance-segmentation decoder.

Needs a display: ``xvfb-run -a pytest tests/_qt``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


@pytest.fixture
def export_file(tmp_path):
    """A micro-sam-style export: a small random model and a random decoder in one file."""
    import torch

    from napari_segany import build_model
    from napari_segany.models.checkpoint import ARCH_KEY
    from napari_segany.models.unetr_decoder import InstanceDecoder

    torch.manual_seed(0)
    path = tmp_path / "finetuned_with_decoder.pt"
    model = build_model("segany_cells", img_size=128, seed=3)
    torch.save(
        {
            ARCH_KEY: "segany_cells",
            "model_state": model.state_dict(),
            "decoder_state": InstanceDecoder(transposed=False).state_dict(),
        },
        path,
    )
    return path


def test_segment_all_uses_the_models_decoder(nuclei, make_annotator, export_file):
    from napari_segany import load_model
    from napari_segany.automatic import AutomaticParams, segment

    image_layer, _ = nuclei
    image = np.asarray(image_layer.data)
    ui = make_annotator()
    ui.widget.set_checkpoint(str(export_file))
    ui.compute()
    ui.widget.segment_all()
    ui.wait_idle()
    from_widget = ui.labels()

    model = load_model(export_file, device="cpu")
    with_decoder = np.asarray(segment(image, model, method="decoder").labels)
    with_head = np.asarray(segment(image, model, method="instance_head").labels)
    # random weights find some objects; the widget's are the decoder's, not the head's
    assert with_decoder.max() > 0
    assert not np.array_equal(with_decoder, with_head)
    # every object kept, also those below the instance head's min_size (the decoder's is 0)
    assert np.bincount(with_decoder.ravel())[1:].min() < AutomaticParams().min_size
    np.testing.assert_array_equal(from_widget, with_decoder)
