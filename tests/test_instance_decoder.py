"""micro-sam's instance-segmentation decoder: its layout, strict loading, attaching it to a model
(files, micro-sam exports, registry entries) and automatic segmentation with it.

Numerical parity with micro-sam's own code is proven in tests/test_microsam_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xxhash

from napari_segany import CheckpointError, build_model, load_model
from napari_segany.automatic import segment
from napari_segany.automatic.params import AutomaticParams
from napari_segany.inference.decoder_maps import DecoderMaps, labels_from_distances
from napari_segany.models.decoder_checkpoint import attach_decoder, decoder_from_state_dict
from napari_segany.models.decoder_settings import DecoderSettings
from napari_segany.models.registry import MODELS, ModelInfo
from napari_segany.models.unetr_decoder import InstanceDecoder, _Upsample


def _decoder_state(transposed: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return InstanceDecoder(transposed=transposed).state_dict()


@pytest.fixture(scope="module")
def small_model():
    """A random segany_cells-architecture model with a 128 px input (8×8 embedding grid): the
    decoder's maps are 128² and fast."""
    return build_model("segany_cells", img_size=128, seed=3)


@pytest.fixture
def decoder_file(tmp_path):
    path = tmp_path / "vit_x_decoder.pt"
    torch.save(_decoder_state(), path)
    return path


@pytest.fixture
def checkpoint_file(tmp_path, small_model):
    path = tmp_path / "model.pt"
    torch.save(
        {"napari_segany_architecture": "segany_cells", "model_state": small_model.state_dict()},
        path,
    )
    return path


# --------------------------------------------------------------------------------------------
# the architecture


@pytest.mark.parametrize("transposed", [False, True])
def test_decoder_maps_cover_the_model_input(transposed):
    decoder = InstanceDecoder(transposed=transposed).eval()
    with torch.inference_mode():
        maps = decoder(torch.randn(2, 256, 8, 12))
    assert maps.shape == (2, 3, 128, 192)
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_state_dict_layout_is_micro_sams():
    keys = InstanceDecoder().state_dict()
    # 5 up-blocks and samplers with batch norm, 5 conv blocks, the output convolution
    assert len(keys) == 66
    assert tuple(keys["deconv1.block.0.conv.weight"].shape) == (512, 256, 1, 1)
    assert tuple(keys["decoder.blocks.0.block.1.weight"].shape) == (256, 512, 3, 3)
    assert "deconv4.block.2.running_var" in keys and "out_conv.bias" in keys
    transposed = InstanceDecoder(transposed=True).state_dict()
    assert tuple(transposed["decoder.samplers.0.block.weight"].shape) == (512, 256, 2, 2)


@pytest.mark.parametrize(("cin", "cout"), [(64, 32), (32, 64)])
def test_upsampling_order_does_not_change_the_result(cin, cout):
    torch.manual_seed(1)
    up = _Upsample(cin, cout, transposed=False)
    x = torch.randn(1, cin, 10, 14)
    expected = up.conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear"))
    torch.testing.assert_close(up(x), expected, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# strict loading


def test_missing_extra_and_wrongly_shaped_keys_are_named():
    state = _decoder_state()
    missing = dict(state)
    del missing["out_conv.weight"]
    with pytest.raises(CheckpointError, match=r"missing: out_conv\.weight"):
        decoder_from_state_dict(missing, "dec.pt")
    extra = {**state, "head.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected: head\.weight"):
        decoder_from_state_dict(extra, "dec.pt")
    wrong = {**state, "base.block.1.weight": torch.zeros(512, 128, 3, 3)}
    with pytest.raises(CheckpointError, match=r"wrong shape: base\.block\.1\.weight"):
        decoder_from_state_dict(wrong, "dec.pt")


def test_a_sam_checkpoint_given_as_the_decoder_is_refused(small_model, checkpoint_file):
    with pytest.raises(CheckpointError, match="checkpoint without a decoder"):
        load_model(checkpoint_file, decoder=checkpoint_file, device="cpu")


def test_unreadable_or_missing_decoder_files(tmp_path, checkpoint_file):
    text = tmp_path / "notes_decoder.pt"
    text.write_text("not a torch file")
    with pytest.raises(CheckpointError, match=r"Cannot read .* as a decoder file"):
        load_model(checkpoint_file, decoder=text, device="cpu")
    with pytest.raises(CheckpointError, match="Decoder file not found"):
        load_model(checkpoint_file, decoder=tmp_path / "absent.pt", device="cpu")
    pickled = tmp_path / "object_decoder.pt"
    torch.save({"decoder": object.__new__(DecoderMaps)}, pickled)
    with pytest.raises(CheckpointError, match="Cannot read"):  # never unpickled
        load_model(checkpoint_file, decoder=pickled, device="cpu")


# --------------------------------------------------------------------------------------------
# attaching


def test_load_model_attaches_a_decoder_file(checkpoint_file, decoder_file):
    plain = load_model(checkpoint_file, device="cpu")
    assert not plain.has_instance_decoder
    with pytest.raises(ValueError, match="comes with no instance-segmentation decoder"):
        load_model(checkpoint_file, decoder=True, device="cpu")
    model = load_model(checkpoint_file, decoder=decoder_file, device="cpu")
    assert model.has_instance_decoder
    state = torch.load(decoder_file, weights_only=True)
    torch.testing.assert_close(model.instance_decoder.out_conv.weight, state["out_conv.weight"])
    assert model.instance_decoder.settings == DecoderSettings()


def test_a_micro_sam_export_brings_its_decoder(tmp_path, small_model):
    export = tmp_path / "finetuned.pt"
    torch.save(
        {
            "napari_segany_architecture": "segany_cells",
            "model_state": small_model.state_dict(),
            "decoder_state": _decoder_state(transposed=True),
        },
        export,
    )
    model = load_model(export, device="cpu")
    assert model.has_instance_decoder and model.instance_decoder.transposed
    assert not load_model(export, decoder=False, device="cpu").has_instance_decoder


def test_registry_models_fetch_their_decoder(tmp_path, cache, monkeypatch, small_model):
    def published(name: str, data_path, **extra) -> ModelInfo:
        digest = xxhash.xxh128(data_path.read_bytes()).hexdigest()
        return ModelInfo(
            name=name,
            architecture="segany_cells",
            url=data_path.as_uri(),
            known_hash=f"xxh128:{digest}",
            size_bytes=None,
            license="CC-BY-4.0",
            description="test",
            filename=f"{name}.pt",
            **extra,
        )

    sam_file = tmp_path / "served.pt"
    torch.save(
        {"napari_segany_architecture": "segany_cells", "model_state": small_model.state_dict()},
        sam_file,
    )
    decoder_file = tmp_path / "served_decoder.pt"
    torch.save(_decoder_state(seed=5), decoder_file)
    settings = DecoderSettings(center_distance_threshold=0.4, min_size=100)
    info = published(
        "cells_lm",
        sam_file,
        decoder=published("cells_lm_decoder", decoder_file),
        decoder_settings=settings,
    )
    monkeypatch.setitem(MODELS, "cells_lm", info)
    model = load_model("cells_lm", device="cpu")
    assert model.has_instance_decoder
    assert model.instance_decoder.settings == settings
    assert sorted(p.name for p in cache.iterdir()) == ["cells_lm.pt", "cells_lm_decoder.pt"]


def test_published_micro_sam_models_list_their_decoders():
    with_decoder = {name for name, info in MODELS.items() if info.has_decoder}
    assert {"vit_b_lm", "vit_l_lm", "vit_t_lm", "vit_b_em_organelles"} <= with_decoder
    assert {"vit_b_histopathology", "vit_l_histopathology"} <= with_decoder
    assert "vit_b" not in with_decoder and "segany_cells" not in with_decoder
    lm = MODELS["vit_b_lm"]
    assert lm.decoder.url.endswith("/diplomatic-bug/1.2/files/vit_b_decoder.pt")
    assert lm.decoder.known_hash.startswith("xxh128:")
    assert lm.decoder_settings.min_size == 100


# --------------------------------------------------------------------------------------------
# post-processing and automatic segmentation


def _two_touching_discs(shape=(60, 90)):
    rows, cols = np.indices(shape)
    centres = [(30, 30), (30, 56)]
    dist = np.stack([np.hypot(rows - r, cols - c) for r, c in centres])
    nearest = dist.min(axis=0)
    inside = nearest < 14
    foreground = inside.astype(np.float32)
    center = np.clip(nearest / 14, 0, 1).astype(np.float32)
    # boundary distance: 1 at each disc's rim and where the two discs meet
    rim = np.abs(dist[0] - dist[1]) / 26
    boundary = np.clip(1 - np.minimum(14 - nearest, rim * 14) / 14, 0, 1).astype(np.float32)
    return DecoderMaps(foreground, center, boundary), inside


def test_labels_from_distances_separates_touching_objects():
    maps, inside = _two_touching_discs()
    labels = labels_from_distances(maps, DecoderSettings(distance_smoothing=1.0))
    assert labels.dtype == np.uint32
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[30, 30] != labels[30, 56]
    assert np.mean((labels > 0) == inside) > 0.97


def test_labels_from_distances_drops_small_objects_and_empty_maps():
    maps, _ = _two_touching_discs()
    big = labels_from_distances(maps, DecoderSettings(min_size=10_000))
    assert big.max() == 0
    empty = DecoderMaps(*(np.zeros((20, 20), np.float32) for _ in range(3)))
    assert labels_from_distances(empty, DecoderSettings()).max() == 0


def test_decoder_options_and_method_choice(small_model):
    params = AutomaticParams.from_options(center_distance_threshold=0.4, min_size=50)
    assert params.min_size == 50
    assert dict(params.decoder_overrides) == {"center_distance_threshold": 0.4, "min_size": 50}
    with pytest.raises(ValueError, match="center_distance_threshold must be above 0"):
        AutomaticParams.from_options(center_distance_threshold=0)
    with pytest.raises(ValueError, match="has no instance-segmentation decoder"):
        AutomaticParams(method="decoder").resolve_method(small_model)
    model = build_model("vit_t", img_size=256, seed=0)
    assert AutomaticParams().resolve_method(model) == "point_grid"
    attach_decoder(model, _decoder_state(), DecoderSettings(min_size=7))
    assert AutomaticParams().resolve_method(model) == "decoder"
    settings = params.decoder_settings(model)
    assert settings.min_size == 50 and settings.center_distance_threshold == 0.4
    assert AutomaticParams().decoder_settings(model).min_size == 7


def test_segment_with_the_decoder_tiles_and_stitches(small_model):
    model = build_model("segany_cells", img_size=128, seed=3)
    model.load_state_dict(small_model.state_dict())
    attach_decoder(model, _decoder_state(seed=2))
    image = np.random.default_rng(0).integers(0, 255, (200, 260), dtype=np.uint8)
    result = segment(image, model, method="decoder", min_confidence=0.0)
    assert result.method == "decoder"
    assert result.labels.shape == (200, 260)
    assert result.count == len(np.unique(result.labels)) - 1 > 0
    first = next(iter(result.named_scores().values()))
    assert set(first) == {"foreground_probability", "stability", "confidence"}


def test_a_plain_sam_state_dict_given_as_the_decoder_is_refused(tmp_path, small_model):
    path = tmp_path / "sam.pt"
    torch.save(small_model.state_dict(), path)
    with pytest.raises(CheckpointError, match="is a SAM model checkpoint"):
        attach_decoder(build_model("segany_cells", img_size=128, seed=3), path)


def test_cli_and_dask_segment_with_a_decoder_file(tmp_path, checkpoint_file, decoder_file):
    import tifffile

    from napari_segany.automatic.distributed import ImageJob, iter_segment_dask
    from napari_segany.cli import main
    from napari_segany.progress import run_with_progress

    image = np.random.default_rng(1).integers(0, 4000, (150, 180), dtype=np.uint16)
    image_file = tmp_path / "cells.tif"
    tifffile.imwrite(image_file, image)
    out = tmp_path / "cells.labels.tif"
    args = ["segment", str(image_file), "-o", str(out), "--model", str(checkpoint_file)]
    args += ["--decoder", str(decoder_file), "--method", "decoder", "--quiet"]
    assert main(args) == 0
    labels = tifffile.imread(out)
    assert labels.shape == image.shape

    params = AutomaticParams(method="decoder")
    job = iter_segment_dask(
        [ImageJob(str(image_file))], str(checkpoint_file), params, decoder_ref=str(decoder_file)
    )
    (result,) = run_with_progress(job, show=False)
    np.testing.assert_array_equal(result.labels, labels)


def test_cli_names_a_decoder_that_does_not_fit(tmp_path, checkpoint_file, capsys):
    import tifffile

    from napari_segany.cli import main

    image_file = tmp_path / "cells.tif"
    tifffile.imwrite(image_file, np.zeros((64, 64), np.uint16))
    bad = tmp_path / "bad_decoder.pt"
    torch.save({"out_conv.weight": torch.zeros(3, 64, 1, 1)}, bad)
    args = ["segment", str(image_file), "-o", str(tmp_path / "x.tif"), "--model"]
    assert main([*args, str(checkpoint_file), "--decoder", str(bad), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "does not match the micro-sam instance decoder architecture" in err
    assert "Traceback" not in err
